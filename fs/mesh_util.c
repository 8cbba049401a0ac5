/* mesh_util.c - names, SemVer, time, SHA-256, file and string helpers
 * (contract in include/mesh_util.h). */
#include "mesh_util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

/* ---- allocation ---- */

static void oom(void)
{
	fputs("meshfs: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p)
		oom();
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		oom();
	return p;
}

/* ---- names ---- */

bool mesh_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > MESH_NAME_MAX)
		return false;
	if (!(islower((unsigned char)name[0]) || isdigit((unsigned char)name[0])))
		return false;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool mesh_filename_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > 255 || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '/' || c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* ---- SemVer 2.0.0 ---- */

/* A numeric identifier: digits, no leading zero unless it is "0". */
static int parse_num(const char **p, uint64_t *out)
{
	const char *s = *p;
	if (!isdigit((unsigned char)*s))
		return -1;
	if (s[0] == '0' && isdigit((unsigned char)s[1]))
		return -1;
	uint64_t v = 0;
	while (isdigit((unsigned char)*s)) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		s++;
	}
	*out = v;
	*p = s;
	return 0;
}

/* Dot-separated identifiers of [0-9A-Za-z-]; numeric ones without leading
 * zeros when `numeric_rule` (pre-release) is set. */
static int check_idents(const char *s, size_t n, bool numeric_rule)
{
	if (n == 0)
		return -1;
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			size_t len = i - start;
			if (len == 0)
				return -1;
			bool all_digits = true;
			for (size_t k = start; k < i; k++)
				if (!isdigit((unsigned char)s[k]))
					all_digits = false;
			if (numeric_rule && all_digits && len > 1 && s[start] == '0')
				return -1;
			start = i + 1;
			continue;
		}
		unsigned char c = (unsigned char)s[i];
		if (!(isalnum(c) || c == '-'))
			return -1;
	}
	return 0;
}

int semver_parse(const char *text, struct semver *out)
{
	struct semver v = {0};
	if (!text || strlen(text) > 255)
		return -EINVAL;
	const char *p = text;
	if (parse_num(&p, &v.major) || *p++ != '.' || parse_num(&p, &v.minor) ||
	    *p++ != '.' || parse_num(&p, &v.patch))
		return -EINVAL;
	if (*p == '-') {
		p++;
		size_t n = strcspn(p, "+");
		if (n >= sizeof v.prerelease || check_idents(p, n, true))
			return -EINVAL;
		memcpy(v.prerelease, p, n);
		p += n;
	}
	if (*p == '+') {
		p++;
		size_t n = strlen(p);
		if (n >= sizeof v.build || check_idents(p, n, false))
			return -EINVAL;
		memcpy(v.build, p, n);
		p += n;
	}
	if (*p)
		return -EINVAL;
	if (out)
		*out = v;
	return 0;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

/* SemVer §11: identifiers compared left to right; numeric < alphanumeric. */
static int cmp_prerelease(const char *a, const char *b)
{
	if (!*a || !*b)
		return !*a - !*b;  /* no pre-release ranks higher */
	while (*a && *b) {
		size_t la = strcspn(a, "."), lb = strcspn(b, ".");
		bool na = true, nb = true;
		for (size_t i = 0; i < la; i++)
			na &= isdigit((unsigned char)a[i]) != 0;
		for (size_t i = 0; i < lb; i++)
			nb &= isdigit((unsigned char)b[i]) != 0;
		int c;
		if (na && nb)
			c = la != lb ? (la < lb ? -1 : 1) : strncmp(a, b, la);
		else if (na != nb)
			c = na ? -1 : 1;
		else {
			c = strncmp(a, b, la < lb ? la : lb);
			if (!c)
				c = cmp_u64(la, lb);
		}
		if (c)
			return c < 0 ? -1 : 1;
		a += la + (a[la] == '.');
		b += lb + (b[lb] == '.');
	}
	return (*a != 0) - (*b != 0);
}

int semver_cmp(const struct semver *a, const struct semver *b)
{
	int c = cmp_u64(a->major, b->major);
	if (!c)
		c = cmp_u64(a->minor, b->minor);
	if (!c)
		c = cmp_u64(a->patch, b->patch);
	if (!c)
		c = cmp_prerelease(a->prerelease, b->prerelease);
	return c;
}

int semver_cmp_str(const char *a, const char *b)
{
	struct semver va, vb;
	int ea = semver_parse(a, &va), eb = semver_parse(b, &vb);
	if (ea || eb)
		return (ea == 0) - (eb == 0);
	return semver_cmp(&va, &vb);
}

/* ---- time ---- */

void mesh_time_rfc3339(const struct timespec *ts, char *buf, size_t size)
{
	struct tm tm;
	gmtime_r(&ts->tv_sec, &tm);
	char base[32];
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%03ldZ", base, ts->tv_nsec / 1000000);
}

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int mesh_time_parse(const char *text, time_t *out)
{
	int y, mo, d, h = 0, mi = 0, s = 0;
	if (!text || strlen(text) < 10 || digits(text, 4, &y) || text[4] != '-' ||
	    digits(text + 5, 2, &mo) || text[7] != '-' || digits(text + 8, 2, &d))
		return -EINVAL;
	const char *p = text + 10;
	long offset = 0;
	if (*p) {
		if ((*p != 'T' && *p != 't' && *p != ' ') || strlen(p) < 9 ||
		    digits(p + 1, 2, &h) || p[3] != ':' || digits(p + 4, 2, &mi) ||
		    p[6] != ':' || digits(p + 7, 2, &s))
			return -EINVAL;
		p += 9;
		if (*p == '.') {
			p++;
			if (!isdigit((unsigned char)*p))
				return -EINVAL;
			while (isdigit((unsigned char)*p))
				p++;
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int oh, om;
			if (strlen(p) != 6 || digits(p + 1, 2, &oh) || p[3] != ':' ||
			    digits(p + 4, 2, &om))
				return -EINVAL;
			offset = (oh * 3600L + om * 60L) * (*p == '+' ? 1 : -1);
			p += 6;
		} else {
			return -EINVAL;
		}
		if (*p)
			return -EINVAL;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
		return -EINVAL;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
		return -EINVAL;
	/* days from the civil date (proleptic Gregorian), without timegm's
	 * locking and time-zone machinery: validation calls this per value */
	int yy = y - (mo <= 2);
	int era = (yy >= 0 ? yy : yy - 399) / 400;
	int yoe = yy - era * 400;
	int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	long long days = (long long)era * 146097 + doe - 719468;
	*out = (time_t)(days * 86400 + h * 3600 + mi * 60 + s) - offset;
	return 0;
}

/* ---- SHA-256 ---- */

struct mesh_sha256 {
	EVP_MD_CTX *md;
};

struct mesh_sha256 *mesh_sha256_new(void)
{
	struct mesh_sha256 *ctx = xmalloc(sizeof *ctx);
	ctx->md = EVP_MD_CTX_new();
	if (!ctx->md || EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL) != 1)
		oom();
	return ctx;
}

void mesh_sha256_update(struct mesh_sha256 *ctx, const void *data, size_t len)
{
	EVP_DigestUpdate(ctx->md, data, len);
}

void mesh_sha256_final(struct mesh_sha256 *ctx, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_DigestFinal_ex(ctx->md, md, &n);
	for (unsigned i = 0; i < n && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[64] = '\0';
	EVP_MD_CTX_free(ctx->md);
	free(ctx);
}

/* ---- files ---- */

int mesh_open_regular_at(int dirfd, const char *path, int flags, mode_t mode, struct stat *st)
{
	int fd = openat(dirfd, path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	struct stat local;
	if (!st)
		st = &local;
	if (fstat(fd, st) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return -EINVAL;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

int mesh_open_dir_at(int dirfd, const char *path)
{
	int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int remove_tree(int dirfd, const char *name, int depth)
{
	int rc = 0;
	int fd = mesh_open_dir_at(dirfd, name);
	if (fd >= 0) {
		DIR *d = fdopendir(fd);
		if (!d) {
			rc = -errno;
			close(fd);
			return rc;
		}
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			int r = 0;
			if (unlinkat(fd, e->d_name, 0) < 0)
				r = errno == EISDIR ? (depth < 16 ? remove_tree(fd, e->d_name, depth + 1) : -ELOOP) : -errno;
			if (!rc)
				rc = r;
		}
		closedir(d);
	}
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && !rc)
		rc = -errno;
	return rc;
}

int mesh_remove_tree_at(int dirfd, const char *name)
{
	return remove_tree(dirfd, name, 0);
}

const char *mesh_open_strerror(int rc)
{
	if (rc == -ELOOP)
		return "a symbolic link (not followed)";
	if (rc == -EINVAL)
		return "not a regular file (a FIFO, device, socket or directory)";
	return strerror(-rc);
}

int mesh_read_file_at(int dirfd, const char *path, size_t limit, char **data,
		      size_t *len, struct mesh_err *err)
{
	struct stat st;
	int fd = mesh_open_regular_at(dirfd, path, O_RDONLY, 0, &st);
	if (fd < 0)
		return mesh_errf(err, fd, "%s: %s", path, mesh_open_strerror(fd));
	if ((size_t)st.st_size > limit) {
		close(fd);
		return mesh_errf(err, -EFBIG, "%s: %lld bytes, more than the %zu allowed",
				 path, (long long)st.st_size, limit);
	}
	size_t cap = (size_t)st.st_size + 1, n = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		if (n + 1 >= cap) {
			if (cap > limit + 1) {
				free(buf);
				close(fd);
				return mesh_errf(err, -EFBIG, "%s: larger than %zu bytes", path, limit);
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			close(fd);
			return mesh_errf(err, -e, "%s: read: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*data = buf;
	if (len)
		*len = n;
	return 0;
}

int mesh_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int mesh_fsync_dir_at(int dirfd, const char *path)
{
	int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static int write_replace(int dirfd, const char *name, const void *data, size_t len, mode_t mode, bool sync,
			 struct mesh_err *err);

int mesh_write_file_atomic(int dirfd, const char *path, const void *data,
			   size_t len, mode_t mode, struct mesh_err *err)
{
	return write_replace(dirfd, path, data, len, mode, true, err);
}

int mesh_write_file_replace(int dirfd, const char *path, const void *data,
			    size_t len, mode_t mode, struct mesh_err *err)
{
	return write_replace(dirfd, path, data, len, mode, false, err);
}

static int write_replace(int dirfd, const char *name, const void *data, size_t len, mode_t mode, bool sync,
			 struct mesh_err *err)
{
	char host[64] = "";
	if (gethostname(host, sizeof host - 1) < 0)
		host[0] = '\0';
	for (char *p = host; *p; p++)
		if (*p == '/')
			*p = '_';
	unsigned int nonce = 0;
	if (getrandom(&nonce, sizeof nonce, GRND_NONBLOCK) != (ssize_t)sizeof nonce)
		nonce = (unsigned int)getpid() ^ (unsigned int)time(NULL);
	const char *base = strrchr(name, '/');
	char tmp[4096];
	int n = base ? snprintf(tmp, sizeof tmp, "%.*s/.tmp-%s.%s.%ld.%08x", (int)(base - name), name, base + 1,
				host, (long)getpid(), nonce)
		     : snprintf(tmp, sizeof tmp, ".tmp-%s.%s.%ld.%08x", name, host, (long)getpid(), nonce);
	if (n < 0 || (size_t)n >= sizeof tmp)
		return mesh_errf(err, -ENAMETOOLONG, "%s: name too long", name);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return mesh_errf(err, -errno, "%s: %s", tmp, strerror(errno));
	int rc = mesh_write_all(fd, data, len);
	if (!rc && fchmod(fd, mode) < 0)
		rc = -errno;
	if (!rc && sync && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (!rc && renameat(dirfd, tmp, dirfd, name) < 0)
		rc = -errno;
	if (rc) {
		unlinkat(dirfd, tmp, 0);
		return mesh_errf(err, rc, "%s: %s", name, strerror(-rc));
	}
	if (!sync)
		return 0;
	/* make the rename durable: fsync the containing directory */
	char dir[4096];
	snprintf(dir, sizeof dir, "%.*s", base ? (int)(base - name) : 1, base ? name : ".");
	mesh_fsync_dir_at(dirfd, dir);
	return 0;
}

/* ---- text for a terminal ---- */

/* Length of a valid UTF-8 sequence at s (1..4), or 0 when it is not one
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n;
	unsigned cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

char *mesh_escape_text(const char *text)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_add(&sb, "", 0);
	const unsigned char *p = (const unsigned char *)(text ? text : "");
	while (*p) {
		size_t n = utf8_len(p);
		if (n == 1 && *p >= 0x20 && *p != 0x7f && *p != '\\') {
			strbuf_add(&sb, p, 1);
		} else if (n == 1) {
			switch (*p) {
			case '\n': strbuf_puts(&sb, "\\n"); break;
			case '\t': strbuf_puts(&sb, "\\t"); break;
			case '\r': strbuf_puts(&sb, "\\r"); break;
			case 0x1b: strbuf_puts(&sb, "\\e"); break;
			case '\\': strbuf_puts(&sb, "\\\\"); break;
			default: strbuf_printf(&sb, "\\x%02x", *p); break;
			}
		} else if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0) {
			/* C1 controls: U+009B is a CSI on many terminals */
			strbuf_printf(&sb, "\\x%02x\\x%02x", p[0], p[1]);
		} else if (n == 0) {
			strbuf_printf(&sb, "\\x%02x", *p);
			n = 1;
		} else {
			strbuf_add(&sb, p, n);
		}
		p += n;
	}
	return strbuf_detach(&sb, NULL);
}

/* ---- string buffer ---- */

static void strbuf_grow(struct strbuf *sb, size_t extra)
{
	if (sb->len + extra + 1 <= sb->cap)
		return;
	size_t cap = sb->cap ? sb->cap : 64;
	while (cap < sb->len + extra + 1)
		cap *= 2;
	sb->buf = xrealloc(sb->buf, cap);
	sb->cap = cap;
}

void strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
	strbuf_grow(sb, len);
	memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
}

void strbuf_puts(struct strbuf *sb, const char *s)
{
	strbuf_add(sb, s, strlen(s));
}

void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
	if (!fmt)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	strbuf_grow(sb, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

char *strbuf_detach(struct strbuf *sb, size_t *len)
{
	if (!sb->buf)
		strbuf_grow(sb, 0), sb->buf[0] = '\0';
	char *b = sb->buf;
	if (len)
		*len = sb->len;
	sb->buf = NULL;
	sb->len = sb->cap = 0;
	return b;
}

void strbuf_release(struct strbuf *sb)
{
	free(sb->buf);
	sb->buf = NULL;
	sb->len = sb->cap = 0;
}

char *mesh_json_text(const void *json)
{
	char *text = json_dumps(json, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!text)
		oom();
	size_t n = strlen(text);
	char *out = xmalloc(n + 2);
	memcpy(out, text, n);
	out[n] = '\n';
	out[n + 1] = '\0';
	free(text);
	return out;
}

void mesh_str_replace(char *buf, size_t size, const char *from, const char *to)
{
	size_t flen = strlen(from);
	if (!flen || !size)
		return;
	struct strbuf out = {0};
	const char *p = buf, *hit;
	while ((hit = strstr(p, from))) {
		strbuf_add(&out, p, (size_t)(hit - p));
		strbuf_puts(&out, to);
		p = hit + flen;
	}
	strbuf_puts(&out, p);
	size_t len;
	char *text = strbuf_detach(&out, &len);
	snprintf(buf, size, "%s", text ? text : "");
	free(text);
}
