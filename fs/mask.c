/*
 * mask.c - length-preserving masking of CSV and JSON Lines windows
 * (contract in include/mask.h).
 *
 * Both formats are masked by one left-to-right state machine that only
 * ever looks at the bytes before a position, so scanning from any record
 * start gives the same bytes as scanning from the start of the file: a
 * window is the slice [offset, offset+len) of that scan, begun at the last
 * checkpoint at or before offset.
 */
#include "mask.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mesh_util.h"

struct mask_index {
	enum mask_format format;
	uint64_t size;
	uint64_t *points;     /* record starts, ascending; points[0] = 0 */
	size_t n;
	uint64_t header_end;  /* CSV: first byte after the header row */
	char **columns;       /* CSV header names */
	size_t n_columns;
};

struct mask_plan {
	bool *csv_mask;       /* per CSV column */
	size_t n_csv;
	char **keys;          /* JSONL top-level keys */
	size_t n_keys;
};

static ssize_t pread_full(int fd, char *buf, size_t len, off_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = pread(fd, buf + done, len - done, off + (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

static void add_point(struct mask_index *ix, uint64_t at, size_t *cap)
{
	if (ix->n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		ix->points = xrealloc(ix->points, *cap * sizeof *ix->points);
	}
	ix->points[ix->n++] = at;
}

static void parse_header(struct mask_index *ix, const char *buf, size_t len)
{
	size_t i = 0;
	if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
		i = 3;
	struct strbuf field = STRBUF_INIT;
	bool quoted = false;
	for (; i < len; i++) {
		char c = buf[i];
		if (quoted) {
			if (c == '"' && i + 1 < len && buf[i + 1] == '"') {
				strbuf_add(&field, "\"", 1);
				i++;
			} else if (c == '"') {
				quoted = false;
			} else {
				strbuf_add(&field, &c, 1);
			}
			continue;
		}
		if (c == '"') {
			quoted = true;
		} else if (c == ',' || c == '\n' || c == '\r') {
			ix->columns = xrealloc(ix->columns, (ix->n_columns + 1) * sizeof *ix->columns);
			ix->columns[ix->n_columns++] = xstrdup(field.buf ? field.buf : "");
			field.len = 0;
			if (field.buf)
				field.buf[0] = '\0';
			if (c != ',') {
				ix->header_end = i + 1 + (c == '\r' && i + 1 < len && buf[i + 1] == '\n');
				break;
			}
		} else {
			strbuf_add(&field, &c, 1);
		}
	}
	if (!ix->header_end) {   /* header only, no newline */
		ix->columns = xrealloc(ix->columns, (ix->n_columns + 1) * sizeof *ix->columns);
		ix->columns[ix->n_columns++] = xstrdup(field.buf ? field.buf : "");
		ix->header_end = len;
	}
	strbuf_release(&field);
}

int mask_index_build(int fd, enum mask_format format, struct mask_index **out, struct mesh_err *err)
{
	struct mask_index *ix = xcalloc(1, sizeof *ix);
	ix->format = format;
	size_t cap = 0;
	add_point(ix, 0, &cap);
	size_t block = 1u << 20;
	char *buf = xmalloc(block);
	uint64_t off = 0, last = 0;
	bool quoted = false, first = true;
	for (;;) {
		ssize_t r = pread_full(fd, buf, block, (off_t)off);
		if (r < 0) {
			free(buf);
			mask_index_free(ix);
			return mesh_errf(err, (int)r, "masking index: read: %s", strerror((int)-r));
		}
		if (r == 0)
			break;
		if (first && format == MASK_CSV)
			parse_header(ix, buf, (size_t)r);
		first = false;
		for (ssize_t i = 0; i < r; i++) {
			char c = buf[i];
			if (format == MASK_CSV && c == '"')
				quoted = !quoted;   /* "" toggles twice: still right */
			else if (c == '\n' && !quoted) {
				uint64_t next = off + (uint64_t)i + 1;
				if (next - last >= MASK_CHECKPOINT) {
					add_point(ix, next, &cap);
					last = next;
				}
			}
		}
		off += (uint64_t)r;
	}
	free(buf);
	ix->size = off;
	*out = ix;
	return 0;
}

void mask_index_free(struct mask_index *ix)
{
	if (!ix)
		return;
	for (size_t i = 0; i < ix->n_columns; i++)
		free(ix->columns[i]);
	free(ix->columns);
	free(ix->points);
	free(ix);
}

uint64_t mask_index_size(const struct mask_index *ix)
{
	return ix->size;
}

int mask_plan_new(const struct mask_index *ix, const char *const *columns, size_t n,
		  struct mask_plan **out, struct mesh_err *err)
{
	struct mask_plan *p = xcalloc(1, sizeof *p);
	if (ix->format == MASK_CSV) {
		p->n_csv = ix->n_columns;
		p->csv_mask = xcalloc(ix->n_columns + 1, sizeof *p->csv_mask);
		for (size_t k = 0; k < n; k++) {
			bool found = false;
			for (size_t i = 0; i < ix->n_columns; i++)
				if (!strcmp(ix->columns[i], columns[k]))
					p->csv_mask[i] = found = true;
			if (!found) {
				mask_plan_free(p);
				return mesh_errf(err, -ENOENT, "column %s to mask is not in the file's header", columns[k]);
			}
		}
	} else {
		p->keys = xcalloc(n + 1, sizeof *p->keys);
		for (size_t k = 0; k < n; k++)
			p->keys[p->n_keys++] = xstrdup(columns[k]);
	}
	*out = p;
	return 0;
}

void mask_plan_free(struct mask_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_keys; i++)
		free(p->keys[i]);
	free(p->keys);
	free(p->csv_mask);
	free(p);
}

/* ---- CSV ---- */

/* Mask buf[0, len), which starts at a record start at file offset `at`. */
static void mask_csv(const struct mask_index *ix, const struct mask_plan *p, char *buf, size_t len, uint64_t at)
{
	size_t col = 0;
	bool quoted = false, field_start = true;
	size_t i = at < ix->header_end ? (size_t)(ix->header_end - at) : 0;   /* never the header */
	if (i > len)
		return;
	for (; i < len; i++) {
		char c = buf[i];
		bool masked = col < p->n_csv && p->csv_mask[col];
		if (quoted) {
			if (c == '"') {
				if (i + 1 < len && buf[i + 1] == '"') {
					if (masked)
						buf[i] = buf[i + 1] = '*';
					i++;
					continue;
				}
				quoted = false;   /* the closing quote stays */
				continue;
			}
			if (masked)
				buf[i] = '*';
			continue;
		}
		if (c == '"' && field_start) {
			quoted = true;
			field_start = false;
			continue;
		}
		if (c == ',') {
			col++;
			field_start = true;
			continue;
		}
		if (c == '\n' || c == '\r') {
			if (c == '\n')
				col = 0;
			field_start = true;
			continue;
		}
		field_start = false;
		if (masked)
			buf[i] = '*';
	}
}

/* ---- JSON Lines ---- */

static bool key_masked(const struct mask_plan *p, const char *k, size_t n)
{
	for (size_t i = 0; i < p->n_keys; i++)
		if (strlen(p->keys[i]) == n && !memcmp(p->keys[i], k, n))
			return true;
	return false;
}

/* Mask one scalar or nested value starting at buf[*i]; stops at the end of
 * the value.  Returns false if the text is not JSON (left as it is). */
static bool mask_value(char *buf, size_t len, size_t *i, int depth)
{
	size_t j = *i;
	while (j < len && (buf[j] == ' ' || buf[j] == '\t'))
		j++;
	if (j >= len || depth > 64)
		return false;
	char c = buf[j];
	if (c == '"') {
		j++;
		while (j < len && buf[j] != '"') {
			if (buf[j] == '\\' && j + 1 < len) {
				buf[j] = buf[j + 1] = '*';
				j += 2;
				continue;
			}
			buf[j++] = '*';
		}
		if (j >= len)
			return false;
		*i = j + 1;
		return true;
	}
	if (c == '{' || c == '[') {
		char close = c == '{' ? '}' : ']';
		j++;
		for (;;) {
			while (j < len && (buf[j] == ' ' || buf[j] == '\t' || buf[j] == ','))
				j++;
			if (j >= len)
				return false;
			if (buf[j] == close) {
				*i = j + 1;
				return true;
			}
			if (c == '{') {   /* a key: kept as it is */
				if (buf[j] != '"')
					return false;
				j++;
				while (j < len && buf[j] != '"')
					j += buf[j] == '\\' ? 2 : 1;
				j++;
				while (j < len && (buf[j] == ' ' || buf[j] == '\t'))
					j++;
				if (j >= len || buf[j] != ':')
					return false;
				j++;
			}
			if (!mask_value(buf, len, &j, depth + 1))
				return false;
		}
	}
	/* number, true, false, null: "0"/"null" then spaces, same length */
	size_t end = j;
	while (end < len && buf[end] != ',' && buf[end] != '}' && buf[end] != ']' && buf[end] != ' ' &&
	       buf[end] != '\n' && buf[end] != '\r' && buf[end] != '\t')
		end++;
	size_t n = end - j;
	const char *repl = (c == '-' || (c >= '0' && c <= '9')) ? "0" : n >= 4 ? "null" : "0";
	size_t rl = strlen(repl);
	for (size_t k = 0; k < n; k++)
		buf[j + k] = k < rl ? repl[k] : ' ';
	*i = end;
	return true;
}

/* Mask the top-level values of the planned keys in one line buf[0, len).
 * False when the line is not a JSON object meshfs can follow. */
static bool mask_json_line(const struct mask_plan *p, char *buf, size_t len)
{
	size_t i = 0;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r'))
		i++;
	if (i >= len)
		return true;   /* a blank line */
	if (buf[i] != '{')
		return false;
	i++;
	for (;;) {
		while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == ','))
			i++;
		if (i < len && buf[i] == '}')
			return true;
		if (i >= len || buf[i] != '"')
			return false;
		size_t k0 = ++i;
		while (i < len && buf[i] != '"')
			i += buf[i] == '\\' ? 2 : 1;
		if (i >= len)
			return false;
		size_t k1 = i++;
		while (i < len && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		if (i >= len || buf[i] != ':')
			return false;
		i++;
		if (key_masked(p, buf + k0, k1 - k0)) {
			if (!mask_value(buf, len, &i, 0))
				return false;
		} else {
			/* skip the value without changing it: mask a copy */
			size_t save = i;
			char *copy = xmalloc(len - i);
			memcpy(copy, buf + i, len - i);
			size_t j = 0;
			bool ok = mask_value(copy, len - save, &j, 0);
			free(copy);
			if (!ok)
				return false;
			i = save + j;
		}
	}
}

static void mask_jsonl(const struct mask_plan *p, char *buf, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i <= len; i++)
		if (i == len || buf[i] == '\n') {
			/* fail closed: a line we cannot follow is masked whole */
			if (!mask_json_line(p, buf + start, i - start))
				for (size_t k = start; k < i; k++)
					if (buf[k] != '\r')
						buf[k] = '*';
			start = i + 1;
		}
}

/* One scratch buffer per thread, grown as needed: no allocation (and no
 * mmap/munmap of a large block) per read; freed when the thread ends. */
struct scratch {
	char *buf;
	size_t size;
};
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
	struct scratch *s = p;
	free(s->buf);
	free(s);
}

static void scratch_key_make(void)
{
	pthread_key_create(&scratch_key, scratch_free);
}

static char *scratch_buffer(size_t size)
{
	pthread_once(&scratch_once, scratch_key_make);
	struct scratch *s = pthread_getspecific(scratch_key);
	if (!s) {
		s = xcalloc(1, sizeof *s);
		pthread_setspecific(scratch_key, s);
	}
	if (size > s->size) {
		free(s->buf);
		s->size = size + (64u << 10);
		s->buf = xmalloc(s->size);
	}
	return s->buf;
}

int mask_read(const struct mask_index *ix, const struct mask_plan *p, int fd, char *buf, size_t len,
	      off_t offset, size_t *out_len)
{
	*out_len = 0;
	if ((uint64_t)offset >= ix->size)
		return 0;
	if ((uint64_t)offset + len > ix->size)
		len = (size_t)(ix->size - (uint64_t)offset);
	/* the last checkpoint at or before offset */
	size_t lo = 0, hi = ix->n;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (ix->points[mid] <= (uint64_t)offset)
			lo = mid;
		else
			hi = mid;
	}
	uint64_t start = ix->points[lo];
	size_t lead = (size_t)((uint64_t)offset - start);
	/* JSONL lines are masked whole: read to the end of the window's last line */
	size_t tail = 0;
	if (ix->format == MASK_JSONL) {
		uint64_t end = (uint64_t)offset + len;
		tail = end < ix->size ? (size_t)(ix->size - end < (1u << 20) ? ix->size - end : (1u << 20)) : 0;
	}
	size_t total = lead + len + tail;
	char *scratch = scratch_buffer(total);
	ssize_t r = pread_full(fd, scratch, total, (off_t)start);
	if (r < 0)
		return (int)r;
	size_t got = (size_t)r;
	if (ix->format == MASK_CSV) {
		mask_csv(ix, p, scratch, got < lead + len ? got : lead + len, start);
	} else {
		/* cut after the newline that ends the window's last line */
		size_t cut = got;
		for (size_t i = lead + len; i < got; i++)
			if (scratch[i] == '\n') {
				cut = i + 1;
				break;
			}
		if (cut == got && got > lead + len && tail == (1u << 20))
			return -EIO;   /* a line longer than we look ahead: fail closed */
		mask_jsonl(p, scratch, cut);
	}
	size_t n = got > lead ? got - lead : 0;
	if (n > len)
		n = len;
	memcpy(buf, scratch + lead, n);
	*out_len = n;
	return 0;
}
