/*
 * csv.c - streaming RFC 4180 reader (contract in include/csv.h).
 *
 * The buffer always starts at the current record; when a record runs past
 * the data read so far, the rest of the buffer moves to the front and more
 * is read, up to CSV_MAX_RECORD.  Fields point into the buffer; only fields
 * with doubled quotes are unescaped, in place (the escaped form is longer,
 * so the unescaped text fits where it was).
 */
#include "csv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "mesh_util.h"
#include "progress.h"

struct csv_reader {
	int fd;                 /* -1 for memory input */
	char *name;
	char *buf;
	size_t cap, len, pos;   /* data is buf[pos, len) */
	size_t block;
	bool eof, owned, started;
	uint64_t line, row, consumed;   /* consumed: bytes before buf[pos] */
	struct csv_field *fields;
	size_t n_fields_cap;
	bool span;              /* a window on memory that is never written */
	size_t stop;            /* span: no record starts at or after buf[stop] */
	char *unescaped;        /* span: where fields with "" are unescaped */
	size_t unescaped_cap;
	struct progress *progress;      /* bytes read are counted here (NULL: not) */
};

/* Bytes that end an unquoted field or make it malformed. */
static const unsigned char field_end[256] = {[','] = 1, ['\n'] = 1, ['\r'] = 1, ['"'] = 1};

struct csv_reader *csv_reader_fd(int fd, const char *name, size_t block)
{
	struct csv_reader *r = xcalloc(1, sizeof *r);
	r->fd = fd;
	r->name = xstrdup(name);
	r->block = block ? block : (1u << 20);
	r->cap = r->block * 2;
	r->buf = xmalloc(r->cap);
	r->owned = true;
	r->line = 1;
	return r;
}

struct csv_reader *csv_reader_mem(const char *data, size_t len, const char *name)
{
	struct csv_reader *r = xcalloc(1, sizeof *r);
	r->fd = -1;
	r->name = xstrdup(name);
	r->buf = (char *)data;   /* only read, except for in-place unescaping: see below */
	r->len = r->cap = len;
	r->eof = true;
	r->line = 1;
	/* memory input is unescaped in place too: work on a private copy */
	r->buf = xmalloc(len ? len : 1);
	memcpy(r->buf, data, len);
	r->owned = true;
	return r;
}

struct csv_reader *csv_reader_span(const char *data, size_t len, const char *name, uint64_t start,
				   uint64_t stop, uint64_t line, uint64_t row)
{
	struct csv_reader *r = xcalloc(1, sizeof *r);
	r->fd = -1;
	r->name = xstrdup(name);
	r->buf = (char *)data;   /* never written: see parse() */
	r->len = r->cap = len;
	r->pos = start < len ? (size_t)start : len;
	r->stop = stop < len ? (size_t)stop : len;
	r->eof = r->span = true;
	r->started = start > 0;   /* a byte order mark only at the start of the file */
	r->line = line;
	r->row = row;
	return r;
}

uint64_t csv_reader_pos(const struct csv_reader *r)
{
	return r->consumed + r->pos;
}

uint64_t csv_reader_line(const struct csv_reader *r)
{
	return r->line;
}

void csv_reader_free(struct csv_reader *r)
{
	if (!r)
		return;
	if (r->owned)
		free(r->buf);
	free(r->unescaped);
	free(r->fields);
	free(r->name);
	free(r);
}

uint64_t csv_bytes(const struct csv_reader *r)
{
	return r->consumed;
}

bool utf8_valid(const unsigned char *s, size_t len, size_t *bad_at)
{
	size_t i = 0;
	while (i < len) {
		/* ASCII fast path, 8 bytes at a time */
		while (i + 8 <= len) {
			uint64_t w;
			memcpy(&w, s + i, 8);
			if (w & 0x8080808080808080ull)
				break;
			i += 8;
		}
		if (i >= len)
			break;
		unsigned char c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t n;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			goto bad;
		for (size_t k = 1; k <= n; k++) {
			if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			goto bad;
		i += n + 1;
	}
	return true;
bad:
	if (bad_at)
		*bad_at = i;
	return false;
}

/* Read more input after the current record's bytes; 0 if nothing more. */
static int refill(struct csv_reader *r, struct mesh_err *err)
{
	if (r->eof)
		return 0;
	if (r->pos > 0) {
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->consumed += r->pos;
		r->pos = 0;
	}
	if (r->len + r->block > r->cap) {
		if (r->len >= CSV_MAX_RECORD)
			return mesh_errf(err, -EFBIG, "%s:%llu: a record longer than %u bytes (an unterminated "
					 "quote?)", r->name, (unsigned long long)r->line, CSV_MAX_RECORD);
		r->cap = r->len + r->block;
		r->buf = xrealloc(r->buf, r->cap);
	}
	ssize_t n;
	do
		n = read(r->fd, r->buf + r->len, r->block);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return mesh_errf(err, -errno, "%s: read: %s", r->name, strerror(errno));
	if (n == 0) {
		r->eof = true;
		return 0;
	}
	r->len += (size_t)n;
	progress_add(r->progress, (uint64_t)n);
	return 1;
}

void csv_reader_set_progress(struct csv_reader *r, struct progress *p)
{
	r->progress = p;
}

static struct csv_field *field_slot(struct csv_reader *r, size_t i)
{
	if (i >= r->n_fields_cap) {
		r->n_fields_cap = r->n_fields_cap ? r->n_fields_cap * 2 : 32;
		r->fields = xrealloc(r->fields, r->n_fields_cap * sizeof *r->fields);
	}
	return &r->fields[i];
}

/* Column (1-based) of byte `at` in the record starting at `start`. */
static size_t column_of(const char *start, const char *at)
{
	const char *nl = at;
	while (nl > start && nl[-1] != '\n')
		nl--;
	return (size_t)(at - nl) + 1;
}

/* The next byte in [p, end) that ends an unquoted field (field_end[]).
 * With SSE2, 16 bytes are classified at once and the block's bit mask is
 * kept in *sc for the next fields of the same block; *high collects the
 * bytes' top bits (any non-ASCII byte means the record's UTF-8 is checked). */
struct scan {
	const char *base;       /* a classified block of 16 bytes, or NULL */
	unsigned mask;
};

static inline char *next_field_end(struct scan *sc, char *p, const char *end, unsigned *high)
{
#ifdef __SSE2__
	for (;;) {
		if (sc->base && p >= sc->base && p < sc->base + 16) {
			unsigned bits = sc->mask >> (p - sc->base);
			if (bits)
				return p + __builtin_ctz(bits);
			p = (char *)sc->base + 16;
		}
		if (end - p < 16)
			break;
		__m128i v = _mm_loadu_si128((const __m128i *)p);
		__m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(',')),
						      _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))),
					 _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\r')),
						      _mm_cmpeq_epi8(v, _mm_set1_epi8('"'))));
		*high |= (unsigned)_mm_movemask_epi8(v);
		sc->base = p;
		sc->mask = (unsigned)_mm_movemask_epi8(m);
	}
#else
	(void)sc;
#endif
	while (p < end && !field_end[(unsigned char)*p])
		*high |= (unsigned char)*p++ & 0x80;
	return p;
}

/* Parse one record from buf[pos, len).  Returns 1 with a record, 0 if the
 * data ends inside the record (need more), <0 on malformed input. */
static int parse(struct csv_reader *r, struct csv_record *rec, struct mesh_err *err)
{
	char *start = r->buf + r->pos, *p = start, *end = r->buf + r->len;
	/* more: the record may go on past `end` (fd: not read yet; span: past
	 * the longest record allowed, which csv_next() reports) */
	bool more = !r->eof;
	if (r->span && r->len - r->pos > CSV_MAX_RECORD) {
		end = start + CSV_MAX_RECORD;
		more = true;
	}
	size_t nf = 0;
	uint64_t lines = 0;
	struct scan sc = {NULL, 0};
	unsigned high = 0;
	for (;;) {
		struct csv_field *f = field_slot(r, nf);
		if (p < end && *p == '"') {
			/* quoted field: find its end first; unescaping waits until
			 * the whole record is in the buffer (a refill re-parses) */
			char *content = ++p;
			bool escaped = false;
			high = 1;   /* quoted text: check its UTF-8 */
			for (;;) {
				char *q = memchr(p, '"', (size_t)(end - p));
				if (!q) {
					if (more)
						return 0;
					return mesh_errf(err, -EINVAL, "%s:%llu:%zu: a quoted field is never closed",
							 r->name, (unsigned long long)r->line,
							 column_of(start, content - 1));
				}
				for (char *k = p; k < q; k++)
					lines += *k == '\n';
				if (q + 1 >= end && more)
					return 0;   /* is it "" or the end? need the next byte */
				if (q + 1 < end && q[1] == '"') {
					escaped = true;
					p = q + 2;
					continue;
				}
				f->ptr = content;
				f->len = (size_t)(q - content);
				f->quoted = true;
				f->escaped = escaped;
				p = q + 1;
				break;
			}
			if (p < end && *p != ',' && *p != '\n' && *p != '\r')
				return mesh_errf(err, -EINVAL, "%s:%llu:%zu: text after the closing quote of a field",
						 r->name, (unsigned long long)(r->line + lines), column_of(start, p));
		} else {
			char *q = next_field_end(&sc, p, end, &high);
			if (q < end && *q == '"')
				return mesh_errf(err, -EINVAL, "%s:%llu:%zu: a quote inside an unquoted field "
						 "(quote the whole field and double the quote)", r->name,
						 (unsigned long long)(r->line + lines), column_of(start, q));
			f->ptr = p;
			f->len = (size_t)(q - p);
			f->quoted = f->escaped = false;
			p = q;
		}
		nf++;
		if (p >= end) {
			if (more)
				return 0;
			break;   /* last record without a newline */
		}
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p == '\r') {
			if (p + 1 >= end && more)
				return 0;
			if (p + 1 < end && p[1] == '\n')
				p++;
		}
		p++;   /* the newline */
		lines++;
		break;
	}
	size_t bad;
	if (high && !utf8_valid((const unsigned char *)start, (size_t)(p - start), &bad))
		return mesh_errf(err, -EINVAL, "%s:%llu:%zu: invalid UTF-8 (byte 0x%02x)", r->name,
				 (unsigned long long)r->line, column_of(start, start + bad),
				 (unsigned char)start[bad]);
	size_t used = 0;
	for (size_t i = 0; i < nf; i++) {
		struct csv_field *f = &r->fields[i];
		if (!f->escaped)
			continue;
		/* "" -> " in place: the text only gets shorter; a span is never
		 * written, its fields go to a buffer the size of the record */
		char *w = (char *)f->ptr;
		if (r->span) {
			size_t need = (size_t)(p - start);
			if (r->unescaped_cap < need) {
				r->unescaped_cap = need;
				free(r->unescaped);
				r->unescaped = xmalloc(need);
			}
			w = r->unescaped + used;
		}
		const char *from = f->ptr;
		f->ptr = w;
		for (size_t k = 0; k < f->len; k++) {
			*w++ = from[k];
			if (from[k] == '"')
				k++;
		}
		f->len = (size_t)(w - f->ptr);
		used += f->len;
		f->escaped = false;
	}
	rec->fields = r->fields;
	rec->n = nf;
	rec->line = r->line;
	rec->offset = r->consumed + r->pos;
	rec->row = ++r->row;
	r->line += lines;
	r->pos += (size_t)(p - start);
	return 1;
}

int csv_next(struct csv_reader *r, struct csv_record *rec, struct mesh_err *err)
{
	if (!r->started) {
		r->started = true;
		if (r->fd >= 0) {
			int rc = refill(r, err);
			if (rc < 0)
				return rc;
		}
		if (r->len - r->pos >= 3 && !memcmp(r->buf + r->pos, "\xef\xbb\xbf", 3))
			r->pos += 3;   /* UTF-8 byte order mark */
	}
	if (r->span) {
		if (r->pos >= r->stop)
			return 0;
		int rc = parse(r, rec, err);
		if (rc == 0)
			rc = mesh_errf(err, -EFBIG, "%s:%llu: a record longer than %u bytes (an unterminated quote?)",
				       r->name, (unsigned long long)r->line, CSV_MAX_RECORD);
		return rc;
	}
	for (;;) {
		if (r->pos >= r->len) {
			if (r->fd < 0 || r->eof)
				return 0;
			int rc = refill(r, err);
			if (rc <= 0)
				return rc;
			continue;
		}
		int rc = parse(r, rec, err);
		if (rc != 0)
			return rc;
		/* the record runs past the data read so far */
		rc = refill(r, err);
		if (rc < 0)
			return rc;
		if (rc == 0 && r->fd >= 0 && !r->eof)
			return 0;
	}
}
