/*
 * mask.c - length-preserving masking of CSV and JSON Lines windows
 * (contract in include/mask.h).
 *
 * CSV is scanned 64 bytes at a time with bit masks, one bit per byte for
 * quote, comma, LF and CR.  The running XOR of the quote bits tells which
 * bytes are inside quotes (a doubled quote toggles twice, so RFC 4180
 * escapes need no special case); separators outside quotes then fall out of
 * a few word operations, and masking visits only the records (LF bits) and,
 * within a record, jumps to the masked columns' fields by clearing comma
 * bits.  JSON Lines is scanned byte by byte, with fast skips over string
 * contents and over lines that need no masking.
 *
 * Both scanners keep their whole state in a small struct that does not
 * depend on the plan, so the index stores it at fixed offsets (every
 * interval, in the middle of records too) and a window is masked by
 * resuming from the last checkpoint before it: the same bytes as a scan
 * from the start of the file.  The one plan-dependent bit, whether the
 * current top-level JSON member is masked, is recomputed on resume by
 * re-reading that member's key, whose offset the state carries.
 *
 * The build pass is also the strict check: everything mask_read() relies on
 * (RFC 4180 quoting, field counts, valid JSON) is verified there once, and
 * mask_read() only guards against a file that changed since.
 *
 * Not here: who sees what (policy), formats other than CSV and JSON Lines,
 * compressed files.
 */
#include "mask.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "mesh_util.h"

#define BUILD_CHUNK (1u << 20)
#define RESUME_CHUNK (16u << 10)
#define NO_KEY UINT64_MAX
/* A key longer than this many raw bytes decodes to more than MASK_NAME_MAX
 * bytes (an escape is at most 6 bytes for at least 1), so matches nothing. */
#define KEY_RAW_MAX (6 * (MASK_NAME_MAX + 1) + 16)

/* ---- scanner state (what a checkpoint holds) ---- */

struct csv_state {
	uint32_t col;             /* field index in the current record */
	uint8_t inside;           /* the last byte was inside quotes */
	uint8_t last_close;       /* the last byte was a closing quote */
	uint8_t last_boundary;    /* the last byte ended a field or a quoted part (or none: record start) */
	uint8_t last_cr;          /* the last byte was a CR outside quotes */
};

enum { LINE_START, LINE_OBJECT, LINE_OTHER, LINE_END };
enum { EXPECT_VALUE, EXPECT_VALUE_OR_CLOSE, EXPECT_KEY, EXPECT_KEY_OR_CLOSE, EXPECT_COLON, EXPECT_COMMA };
enum { TOKEN_NONE, TOKEN_STRING, TOKEN_ESCAPE, TOKEN_UNICODE, TOKEN_NUMBER, TOKEN_LITERAL };
enum { STRING_VALUE, STRING_KEY, STRING_TOP_KEY };
enum { N_START, N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_EXP_MARK, N_EXP_SIGN, N_EXP };

struct json_state {
	uint64_t key_offset;      /* the opening quote of the current top-level key, or NO_KEY */
	uint64_t objects;         /* bit d: the container at depth d+1 is an object (not an array) */
	uint32_t depth;           /* open objects and arrays */
	uint8_t line, expect, token, string_kind;
	uint8_t index;            /* bytes of the current number or literal so far (saturating) */
	uint8_t literal;          /* 't', 'f' or 'n' */
	uint8_t number;           /* N_*: number grammar, checked while building only */
	uint8_t hex;              /* \u digits read, checked while building only */
};

struct mask_index {
	enum mask_format format;
	uint64_t size;
	uint64_t data_start;      /* CSV: first byte after the header row; JSONL: 0 or 3 (BOM) */
	uint64_t interval;
	unsigned char *points;    /* point k (point_size bytes: a struct csv_state or
				   json_state): the state at data_start + k * interval */
	size_t point_size, n_points;
	char **columns;           /* CSV header names, NUL-terminated */
	size_t *column_len;       /* their lengths (a name may hold a NUL) */
	size_t n_columns;
};

struct mask_plan {
	enum mask_format format;
	size_t n_columns;         /* CSV: of the index the plan was made for */
	uint32_t *csv_list;       /* CSV: the masked columns, ascending */
	size_t n_csv_list;
	char **names;             /* JSONL: top-level keys to mask */
	size_t *name_len;
	size_t n_names;
	bool empty;
};

enum run_mode { RUN_CHECK, RUN_STATE, RUN_MASK };

/* ---- small helpers ---- */

static inline unsigned lowest_bit(uint64_t x)
{
	return (unsigned)__builtin_ctzll(x);
}

static inline unsigned highest_bit(uint64_t x)
{
	return 63u - (unsigned)__builtin_clzll(x);
}

/* Without -mpopcnt, __builtin_popcountll is a libgcc call: slower than this. */
static inline unsigned count_bits(uint64_t x)
{
	x -= (x >> 1) & 0x5555555555555555ull;
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (unsigned)((x * 0x0101010101010101ull) >> 56);
}

/* The bits below `bit` (bit may be 64). */
static inline uint64_t below(unsigned bit)
{
	return bit >= 64 ? ~0ull : (1ull << bit) - 1;
}

/* Bit i of the result is the XOR of bits 0..i of x. */
static inline uint64_t prefix_xor(uint64_t x)
{
	x ^= x << 1;
	x ^= x << 2;
	x ^= x << 4;
	x ^= x << 8;
	x ^= x << 16;
	x ^= x << 32;
	return x;
}

static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t offset)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = pread(fd, (char *)buf + done, len - done, (off_t)(offset + done));
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

/* byte_mask[b]: 0xff in byte i of the result where bit i of b is set. */
#define BYTE_MASK_BIT(b, i) ((uint64_t)(((b) >> (i)) & 1) * (0xffull << (8 * (i))))
#define BYTE_MASK(b) (BYTE_MASK_BIT(b, 0) | BYTE_MASK_BIT(b, 1) | BYTE_MASK_BIT(b, 2) | BYTE_MASK_BIT(b, 3) | \
		      BYTE_MASK_BIT(b, 4) | BYTE_MASK_BIT(b, 5) | BYTE_MASK_BIT(b, 6) | BYTE_MASK_BIT(b, 7))
#define BYTE_MASK4(b) BYTE_MASK(b), BYTE_MASK((b) + 1), BYTE_MASK((b) + 2), BYTE_MASK((b) + 3)
#define BYTE_MASK16(b) BYTE_MASK4(b), BYTE_MASK4((b) + 4), BYTE_MASK4((b) + 8), BYTE_MASK4((b) + 12)
#define BYTE_MASK64(b) BYTE_MASK16(b), BYTE_MASK16((b) + 16), BYTE_MASK16((b) + 32), BYTE_MASK16((b) + 48)
static const uint64_t byte_mask[256] = {BYTE_MASK64(0), BYTE_MASK64(64), BYTE_MASK64(128), BYTE_MASK64(192)};

/* Overwrite with '*' the bytes of p[0, k) whose bit is set. */
static inline void put_stars(unsigned char *p, uint64_t bits, size_t k)
{
	if (k == 64) {
#if defined(__SSE2__)
		const __m128i star = _mm_set1_epi8('*');
		for (int j = 0; j < 4; j++, bits >>= 16) {
			if (!(bits & 0xffff))
				continue;
			__m128i on = _mm_set_epi64x((long long)byte_mask[bits >> 8 & 0xff], (long long)byte_mask[bits & 0xff]);
			__m128i *q = (__m128i *)(void *)(p + 16 * j);
			__m128i v = _mm_loadu_si128(q);
			_mm_storeu_si128(q, _mm_or_si128(_mm_and_si128(on, star), _mm_andnot_si128(on, v)));
		}
#else
		for (int j = 0; j < 8; j++, bits >>= 8) {
			if (!(bits & 0xff))
				continue;
			uint64_t on = byte_mask[bits & 0xff], word;
			memcpy(&word, p + 8 * j, 8);
			word = (word & ~on) | (0x2a2a2a2a2a2a2a2aull & on);
			memcpy(p + 8 * j, &word, 8);
		}
#endif
		return;
	}
	while (bits) {
		p[lowest_bit(bits)] = '*';
		bits &= bits - 1;
	}
}

/* ---- CSV ---- */

struct csv_bits {
	uint64_t quote, comma, lf, cr;
};

static inline void csv_classify(const unsigned char *p, struct csv_bits *b)
{
#if defined(__SSE2__)
	const __m128i quote = _mm_set1_epi8('"'), comma = _mm_set1_epi8(','), lf = _mm_set1_epi8('\n'),
		      cr = _mm_set1_epi8('\r');
	b->quote = b->comma = b->lf = b->cr = 0;
	for (int j = 0; j < 4; j++) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * j));
		b->quote |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)) << (16 * j);
		b->comma |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, comma)) << (16 * j);
		b->lf |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf)) << (16 * j);
		b->cr |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, cr)) << (16 * j);
	}
#else
	b->quote = b->comma = b->lf = b->cr = 0;
	for (unsigned i = 0; i < 64; i++) {
		uint64_t bit = 1ull << i;
		switch (p[i]) {
		case '"': b->quote |= bit; break;
		case ',': b->comma |= bit; break;
		case '\n': b->lf |= bit; break;
		case '\r': b->cr |= bit; break;
		default: break;
		}
	}
#endif
}

struct csv_run {
	struct csv_state st;
	uint32_t n_columns;
	const uint32_t *mask_cols;   /* RUN_MASK: masked columns, ascending */
	size_t n_mask_cols;
	/* RUN_CHECK: where we are, for messages */
	uint64_t lines;           /* LF bytes before the current block */
	uint64_t line_start;      /* offset of the first byte of the current line */
	uint64_t open_line, open_column;   /* the last opening quote of a field */
	uint64_t error_line, error_column;
	const char *error;
};

static void csv_where(const struct csv_run *r, uint64_t lf, uint64_t base, unsigned bit, uint64_t *line,
		      uint64_t *column)
{
	uint64_t lf_before = lf & below(bit);
	*line = r->lines + count_bits(lf_before) + 1;
	uint64_t start = lf_before ? base + highest_bit(lf_before) + 1 : r->line_start;
	*column = base + bit - start + 1;
}

static int csv_fail(struct csv_run *r, uint64_t lf, uint64_t base, unsigned bit, const char *what)
{
	csv_where(r, lf, base, bit, &r->error_line, &r->error_column);
	r->error = what;
	return -1;
}

/* Scan p[0, n), the file's bytes from offset `base`; `next` is the byte
 * after them (-1 at end of file or when not needed: RUN_CHECK and
 * RUN_STATE never look at it).  RUN_MASK overwrites masked bytes in place.
 * Returns 0, or -1 with r->error set. */
static inline __attribute__((always_inline)) int csv_scan(struct csv_run *r, unsigned char *p, size_t n,
							   int next, uint64_t base, enum run_mode mode)
{
	for (size_t i = 0; i < n; i += 64) {
		size_t k = n - i < 64 ? n - i : 64;
		struct csv_bits b;
		if (k == 64) {
			csv_classify(p + i, &b);
		} else {
			unsigned char tail[64] = {0};
			memcpy(tail, p + i, k);
			csv_classify(tail, &b);
		}
		uint64_t valid = below((unsigned)k);
		uint64_t inside = prefix_xor(b.quote) ^ (0 - (uint64_t)r->st.inside);
		uint64_t close = b.quote & ~inside;
		uint64_t open = b.quote & inside;
		uint64_t sep = (b.comma | b.lf) & ~inside & valid;
		uint64_t cr_out = b.cr & ~inside & valid;
		uint64_t after_close = (close << 1) | r->st.last_close;

		if (mode == RUN_CHECK) {
			uint64_t boundary = ((sep | close) << 1) | r->st.last_boundary;
			uint64_t bad_open = open & ~boundary & valid;
			uint64_t bad_after_close = after_close & ~(b.comma | b.lf | b.cr | b.quote) & valid;
			uint64_t bad_cr = ((cr_out << 1) | r->st.last_cr) & ~b.lf & valid;
			uint64_t bad = bad_open | bad_after_close | bad_cr;
			if (bad) {
				unsigned bit = lowest_bit(bad);
				uint64_t at = 1ull << bit;
				return csv_fail(r, b.lf, base + i, bit,
						bad_cr & at ? "a CR outside quotes is not followed by LF"
						: bad_after_close & at ? "text after the closing quote of a field"
						: "a quote inside an unquoted field");
			}
			uint64_t field_quote = open & ~after_close & valid;
			if (field_quote)
				csv_where(r, b.lf, base + i, highest_bit(field_quote), &r->open_line, &r->open_column);
			for (uint64_t s = sep; s; s &= s - 1) {
				unsigned bit = lowest_bit(s);
				if (b.lf >> bit & 1)
					r->st.col = 0;
				else if (++r->st.col >= r->n_columns)
					return csv_fail(r, b.lf, base + i, bit + 1,
							"the record has more fields than the header");
			}
			uint64_t lf = b.lf & valid;
			if (lf) {
				r->lines += count_bits(lf);
				r->line_start = base + i + highest_bit(lf) + 1;
			}
		} else if (mode == RUN_STATE) {
			uint64_t lf_sep = sep & b.lf;
			if (lf_sep)
				r->st.col = count_bits(sep & ~below(highest_bit(lf_sep) + 1));
			else
				r->st.col += count_bits(sep);
		} else {
			/* Record by record: skip to each masked column's field by
			 * clearing comma bits, rather than visiting every field;
			 * a record with too many fields is caught by counting its
			 * commas. */
			uint32_t col = r->st.col;
			uint64_t range = 0, rest = sep;
			unsigned start = 0;   /* first bit of the field in progress */
			for (;;) {
				uint64_t lf_sep = rest & b.lf;
				unsigned stop = lf_sep ? lowest_bit(lf_sep) : 64;   /* the record's end in this block */
				uint64_t commas = rest & below(stop);
				uint64_t x = commas;
				uint32_t c = col;
				unsigned field = start;
				for (size_t m = 0; m < r->n_mask_cols; m++) {
					uint32_t want = r->mask_cols[m];
					if (want < c)
						continue;
					while (c < want && x) {
						field = lowest_bit(x) + 1;
						x &= x - 1;
						c++;
					}
					if (c < want)
						break;
					range |= below(x ? lowest_bit(x) : stop) & ~below(field);
				}
				col += count_bits(commas);
				if (col >= r->n_columns)
					return csv_fail(r, b.lf, base + i, 0, "the record has more fields than the header");
				if (!lf_sep)
					break;
				col = 0;
				start = stop + 1;
				rest &= ~below(start);
			}
			if (range) {
				int after = i + 64 < n ? p[i + 64] : next;
				uint64_t next_quote = (b.quote >> 1) | ((uint64_t)(after == '"') << (k - 1));
				uint64_t final_close = close & ~next_quote;
				uint64_t field_quote = open & ~after_close;
				uint64_t keep = sep | cr_out | field_quote | final_close;
				put_stars(p + i, range & ~keep & valid, k);
			}
			r->st.col = col;
		}
		unsigned last = (unsigned)k - 1;
		r->st.inside = inside >> last & 1;
		r->st.last_close = close >> last & 1;
		r->st.last_boundary = (sep | close) >> last & 1;
		r->st.last_cr = cr_out >> last & 1;
	}
	return 0;
}

static int csv_scan_check(struct csv_run *r, unsigned char *p, size_t n, uint64_t base)
{
	return csv_scan(r, p, n, -1, base, RUN_CHECK);
}

static int csv_scan_state(struct csv_run *r, unsigned char *p, size_t n, uint64_t base)
{
	return csv_scan(r, p, n, -1, base, RUN_STATE);
}

static int csv_scan_mask(struct csv_run *r, unsigned char *p, size_t n, int next, uint64_t base)
{
	return csv_scan(r, p, n, next, base, RUN_MASK);
}

static void add_column(struct mask_index *ix, const struct strbuf *name)
{
	ix->columns = xrealloc(ix->columns, (ix->n_columns + 1) * sizeof *ix->columns);
	ix->column_len = xrealloc(ix->column_len, (ix->n_columns + 1) * sizeof *ix->column_len);
	ix->columns[ix->n_columns] = xstrndup(name->buf ? name->buf : "", name->len);
	ix->column_len[ix->n_columns] = name->len;
	ix->n_columns++;
}

/* The header row, by the same strict rules as the data.  Sets data_start,
 * the column names and *lines (LF bytes in the header). */
static int csv_header(int fd, struct mask_index *ix, uint64_t *lines, struct mesh_err *err)
{
	size_t cap = MASK_HEADER_MAX + 4;
	unsigned char *buf = xmalloc(cap);
	ssize_t got = pread_full(fd, buf, cap, 0);
	if (got < 0) {
		free(buf);
		return mesh_errf(err, (int)got, "read: %s", strerror((int)-got));
	}
	size_t len = (size_t)got, i = 0;
	bool whole = len < cap;
	uint64_t line = 1, line_start = 0;
	const char *problem = NULL;
	struct strbuf name = STRBUF_INIT;
	if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
		i = line_start = 3;
	ix->data_start = len;
	while (len > 0) {
		name.len = 0;
		if (name.buf)
			name.buf[0] = '\0';
		if (i < len && buf[i] == '"') {
			i++;
			for (;;) {
				if (i >= len) {
					problem = whole ? "a quoted field is never closed" : NULL;
					goto out;
				}
				if (buf[i] == '"') {
					if (i + 1 < len && buf[i + 1] == '"') {
						strbuf_add(&name, "\"", 1);
						i += 2;
						continue;
					}
					if (i + 1 >= len && !whole)
						goto out;
					i++;
					break;
				}
				if (buf[i] == '\n') {
					line++;
					line_start = i + 1;
				}
				strbuf_add(&name, buf + i, 1);
				i++;
			}
			if (i < len && buf[i] != ',' && buf[i] != '\n' && buf[i] != '\r') {
				problem = "text after the closing quote of a field";
				goto out;
			}
		} else {
			size_t start = i;
			while (i < len && buf[i] != ',' && buf[i] != '\n' && buf[i] != '\r') {
				if (buf[i] == '"') {
					problem = "a quote inside an unquoted field";
					goto out;
				}
				i++;
			}
			strbuf_add(&name, buf + start, i - start);
		}
		if (i >= len && !whole)
			goto out;
		if (name.len && memchr(name.buf, '\0', name.len)) {   /* names are C strings to callers */
			problem = "a NUL byte in a column name";
			goto out;
		}
		add_column(ix, &name);
		if (i >= len) {
			ix->data_start = len;
			break;
		}
		if (buf[i] == ',') {
			i++;
			continue;
		}
		if (buf[i] == '\r') {
			if (i + 1 >= len && !whole)
				goto out;
			if (i + 1 >= len || buf[i + 1] != '\n') {
				problem = "a CR outside quotes is not followed by LF";
				goto out;
			}
			i++;
		}
		line++;
		ix->data_start = i + 1;
		break;
	}
	strbuf_release(&name);
	free(buf);
	*lines = line - 1;
	return 0;
out:
	strbuf_release(&name);
	free(buf);
	if (!problem)
		return mesh_errf(err, -EINVAL, "line 1: the header row is longer than %u bytes", MASK_HEADER_MAX);
	return mesh_errf(err, -EINVAL, "line %llu, column %llu: %s (header row)", (unsigned long long)line,
			 (unsigned long long)(i - line_start + 1), problem);
}

/* ---- JSON Lines ---- */

struct key_decoder {
	uint32_t len;             /* bytes in buf; MASK_NAME_MAX + 1: too long to match */
	uint32_t code;            /* \u digits so far */
	uint32_t high;            /* a high surrogate waiting for its low half, or 0 */
	uint8_t escape;           /* 0; 1 after '\'; 2..5 after \u and 0..3 digits */
	char buf[MASK_NAME_MAX + 8];
};

static void key_reset(struct key_decoder *d)
{
	d->len = d->code = d->high = 0;
	d->escape = 0;
}

static void key_add(struct key_decoder *d, const void *s, size_t n)
{
	if (d->len > MASK_NAME_MAX)
		return;
	if (n > MASK_NAME_MAX - d->len) {
		d->len = MASK_NAME_MAX + 1;
		return;
	}
	memcpy(d->buf + d->len, s, n);
	d->len += (uint32_t)n;
}

static void key_add_code(struct key_decoder *d, uint32_t cp)
{
	unsigned char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | cp >> 6);
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | cp >> 12);
		u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | cp >> 18);
		u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	key_add(d, u, n);
}

static void key_flush_high(struct key_decoder *d)
{
	if (d->high) {
		key_add_code(d, d->high);
		d->high = 0;
	}
}

static unsigned hex_value(unsigned char c)
{
	return c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
	       : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 0;
}

/* Feed one byte of a key's text (after its opening quote).  Returns true
 * at the closing quote, when the key is complete. */
static bool key_feed(struct key_decoder *d, unsigned char c)
{
	if (d->escape == 0) {
		if (c == '"') {
			key_flush_high(d);
			return true;
		}
		if (c == '\\') {
			d->escape = 1;
			return false;
		}
		key_flush_high(d);
		key_add(d, &c, 1);
		return false;
	}
	if (d->escape == 1) {
		if (c == 'u') {
			d->escape = 2;
			d->code = 0;
			return false;
		}
		d->escape = 0;
		key_flush_high(d);
		char out = c == 'b' ? '\b' : c == 'f' ? '\f' : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : (char)c;
		key_add(d, &out, 1);
		return false;
	}
	d->code = d->code << 4 | hex_value(c);
	if (++d->escape < 6)
		return false;
	d->escape = 0;
	uint32_t cp = d->code;
	if (cp >= 0xdc00 && cp <= 0xdfff && d->high) {
		cp = 0x10000 + ((d->high - 0xd800) << 10) + (cp - 0xdc00);
		d->high = 0;
		key_add_code(d, cp);
	} else {
		key_flush_high(d);
		if (cp >= 0xd800 && cp <= 0xdbff)
			d->high = cp;
		else
			key_add_code(d, cp);
	}
	return false;
}

static bool plan_has_key(const struct mask_plan *plan, const struct key_decoder *d)
{
	if (d->len > MASK_NAME_MAX)
		return false;
	for (size_t i = 0; i < plan->n_names; i++)
		if (plan->name_len[i] == d->len && !memcmp(plan->names[i], d->buf, d->len))
			return true;
	return false;
}

struct json_run {
	struct json_state st;
	const struct mask_plan *plan;    /* RUN_STATE, RUN_MASK */
	bool masked;                     /* the current top-level member's value is masked */
	struct key_decoder key;
	/* RUN_CHECK */
	uint64_t line, line_start;
	uint64_t error_at;
	const char *error;
};

static void json_line_reset(struct json_run *r)
{
	r->st.key_offset = NO_KEY;
	r->st.depth = 0;
	r->st.line = LINE_START;
	r->st.expect = EXPECT_VALUE;
	r->st.token = TOKEN_NONE;
	r->masked = false;
}

static inline void json_value_done(struct json_state *st)
{
	if (st->depth == 0)
		st->line = LINE_END;
	else
		st->expect = EXPECT_COMMA;
}

static bool number_step(uint8_t *state, unsigned char c)
{
	bool digit = c >= '0' && c <= '9';
	switch (*state) {
	case N_START:
		if (c == '-') {
			*state = N_MINUS;
			return true;
		}
		/* fall through */
	case N_MINUS:
		if (!digit)
			return false;
		*state = c == '0' ? N_ZERO : N_INT;
		return true;
	case N_ZERO:
	case N_INT:
		if (digit && *state == N_INT)
			return true;
		if (c == '.')
			*state = N_DOT;
		else if (c == 'e' || c == 'E')
			*state = N_EXP_MARK;
		else
			return false;
		return true;
	case N_DOT:
	case N_FRAC:
		if (digit) {
			*state = N_FRAC;
			return true;
		}
		if (*state == N_FRAC && (c == 'e' || c == 'E')) {
			*state = N_EXP_MARK;
			return true;
		}
		return false;
	case N_EXP_MARK:
		if (c == '+' || c == '-') {
			*state = N_EXP_SIGN;
			return true;
		}
		/* fall through */
	default:
		if (!digit)
			return false;
		*state = N_EXP;
		return true;
	}
}

static bool number_complete(uint8_t state)
{
	return state == N_ZERO || state == N_INT || state == N_FRAC || state == N_EXP;
}

static inline bool number_byte(unsigned char c)
{
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

static const char *literal_word(uint8_t first)
{
	return first == 't' ? "true" : first == 'f' ? "false" : "null";
}

/* Length of the run of plain string bytes at p: up to a quote, a backslash
 * or a control character. */
static inline size_t string_run(const unsigned char *p, size_t n)
{
	size_t i = 0;
#if defined(__SSE2__)
	const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), control = _mm_set1_epi8(0x1f);
	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
		__m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
					   _mm_cmpeq_epi8(_mm_max_epu8(v, control), control));
		unsigned m = (unsigned)_mm_movemask_epi8(hit);
		if (m)
			return i + (unsigned)__builtin_ctz(m);
	}
#endif
	for (; i < n; i++)
		if (p[i] == '"' || p[i] == '\\' || p[i] < 0x20)
			return i;
	return n;
}

static int json_fail(struct json_run *r, uint64_t at, const char *what)
{
	r->error_at = at;
	r->error = what;
	return -1;
}

static inline bool json_is_object(const struct json_state *st)
{
	return st->depth > 0 && (st->objects >> (st->depth - 1) & 1);
}

/* Scan p[0, n), the file's bytes from offset `base`.  RUN_MASK overwrites
 * masked bytes in place; RUN_CHECK verifies the JSON grammar.  Returns 0,
 * or -1 with r->error set. */
static inline __attribute__((always_inline)) int json_scan(struct json_run *r, unsigned char *p, size_t n,
							    uint64_t base, enum run_mode mode)
{
	struct json_state *st = &r->st;
	const bool check = mode == RUN_CHECK, out = mode == RUN_MASK;
	size_t i = 0;
	while (i < n) {
		unsigned char c = p[i];
		switch (st->token) {
		case TOKEN_STRING: {
			size_t j = i + string_run(p + i, n - i);
			bool top_key = st->string_kind == STRING_TOP_KEY;
			bool masks = out && r->masked && st->string_kind == STRING_VALUE;
			if (top_key && !check && j > i) {
				size_t q = i;
				while (q < j && r->key.escape)   /* the digits of a \u escape */
					key_feed(&r->key, p[q++]);
				if (q < j) {
					key_flush_high(&r->key);
					key_add(&r->key, p + q, j - q);
				}
			}
			if (masks)
				memset(p + i, '*', j - i);
			i = j;
			if (i == n)
				return 0;
			c = p[i];
			if (c == '"') {
				if (top_key) {
					if (!check)
						r->masked = key_feed(&r->key, c) && plan_has_key(r->plan, &r->key);
					st->expect = EXPECT_COLON;
				} else if (st->string_kind == STRING_KEY) {
					st->expect = EXPECT_COLON;
				} else {
					json_value_done(st);
				}
				st->token = TOKEN_NONE;
				i++;
				continue;
			}
			if (c != '\\')
				return json_fail(r, base + i, "a control character inside a string");
			if (masks)
				p[i] = '*';
			if (top_key && !check)
				key_feed(&r->key, c);
			st->token = TOKEN_ESCAPE;
			i++;
			continue;
		}
		case TOKEN_ESCAPE:
			if (check && (!c || !strchr("\"\\/bfnrtu", c)))
				return json_fail(r, base + i, "an invalid escape in a string");
			if (out && r->masked && st->string_kind == STRING_VALUE)
				p[i] = '*';
			if (st->string_kind == STRING_TOP_KEY && !check)
				key_feed(&r->key, c);
			st->token = c == 'u' && check ? TOKEN_UNICODE : TOKEN_STRING;
			st->hex = 0;
			i++;
			continue;
		case TOKEN_UNICODE:
			if (!check) {   /* masking takes the digits as plain string bytes */
				st->token = TOKEN_STRING;
				continue;
			}
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
				return json_fail(r, base + i, "\\u is not followed by four hex digits");
			if (++st->hex == 4)
				st->token = TOKEN_STRING;
			i++;
			continue;
		case TOKEN_NUMBER:
			if (number_byte(c)) {
				if (check && !number_step(&st->number, c))
					return json_fail(r, base + i, "a malformed number");
				if (out && r->masked)
					p[i] = ' ';
				i++;
				continue;
			}
			if (check && !number_complete(st->number))
				return json_fail(r, base + i, "a malformed number");
			st->token = TOKEN_NONE;
			json_value_done(st);
			break;
		case TOKEN_LITERAL:
			if (c >= 'a' && c <= 'z') {
				if (check) {
					const char *word = literal_word(st->literal);
					if (st->index >= strlen(word) || word[st->index] != c)
						return json_fail(r, base + i, "an invalid literal (not true, false or null)");
				}
				if (out && r->masked)
					p[i] = st->index < 4 ? (unsigned char)"null"[st->index] : ' ';
				if (st->index < UINT8_MAX)
					st->index++;
				i++;
				continue;
			}
			if (check && st->index != strlen(literal_word(st->literal)))
				return json_fail(r, base + i, "an invalid literal (not true, false or null)");
			st->token = TOKEN_NONE;
			json_value_done(st);
			break;
		default:
			break;
		}

		/* between tokens */
		if (c == ' ' || c == '\t' || c == '\r') {
			i++;
			continue;
		}
		if (c == '\n') {
			/* masking may stop skipping a non-object line right before its LF */
			if (st->line == LINE_OBJECT || (st->line == LINE_OTHER && check))
				return json_fail(r, base + i, "the line ends inside a JSON value");
			json_line_reset(r);
			i++;
			if (check) {
				r->line++;
				r->line_start = base + i;
			}
			continue;
		}
		if (st->line == LINE_END)
			return json_fail(r, base + i, "text after the line's JSON value");
		if (st->line == LINE_START) {
			st->line = c == '{' ? LINE_OBJECT : LINE_OTHER;
			st->expect = EXPECT_VALUE;
		}
		if (st->line == LINE_OTHER && !check) {   /* not an object: nothing to mask */
			const unsigned char *lf = memchr(p + i, '\n', n - i);
			if (!lf)
				return 0;
			i = (size_t)(lf - p);
			st->line = LINE_END;
			continue;
		}
		bool value_ok = st->expect == EXPECT_VALUE || st->expect == EXPECT_VALUE_OR_CLOSE;
		bool top = st->depth == 1 && st->line == LINE_OBJECT;
		switch (c) {
		case '{':
		case '[':
			if (check && !value_ok)
				return json_fail(r, base + i, "an unexpected bracket");
			if (st->depth >= MASK_JSON_DEPTH_MAX)
				return json_fail(r, base + i, "JSON nested too deeply");
			if (c == '{')
				st->objects |= 1ull << st->depth;
			else
				st->objects &= ~(1ull << st->depth);
			st->depth++;
			st->expect = c == '{' ? EXPECT_KEY_OR_CLOSE : EXPECT_VALUE_OR_CLOSE;
			i++;
			continue;
		case '}':
		case ']':
			if (st->depth == 0)
				return json_fail(r, base + i, "an unexpected closing bracket");
			if (check) {
				bool object = json_is_object(st);
				if (object != (c == '}'))
					return json_fail(r, base + i, "a mismatched closing bracket");
				if (st->expect != EXPECT_COMMA &&
				    st->expect != (object ? EXPECT_KEY_OR_CLOSE : EXPECT_VALUE_OR_CLOSE))
					return json_fail(r, base + i, "an unexpected closing bracket");
			}
			st->depth--;
			json_value_done(st);
			i++;
			continue;
		case ',':
			if (check && st->expect != EXPECT_COMMA)
				return json_fail(r, base + i, "an unexpected ','");
			st->expect = json_is_object(st) ? EXPECT_KEY : EXPECT_VALUE;
			if (top) {
				r->masked = false;
				st->key_offset = NO_KEY;
			}
			i++;
			continue;
		case ':':
			if (check && st->expect != EXPECT_COLON)
				return json_fail(r, base + i, "an unexpected ':'");
			st->expect = EXPECT_VALUE;
			i++;
			continue;
		case '"': {
			bool key = st->expect == EXPECT_KEY || st->expect == EXPECT_KEY_OR_CLOSE;
			if (check && !key && !value_ok)
				return json_fail(r, base + i, "an unexpected string");
			if (key && top) {
				st->string_kind = STRING_TOP_KEY;
				st->key_offset = base + i;
				key_reset(&r->key);
				r->masked = false;
			} else {
				st->string_kind = key ? STRING_KEY : STRING_VALUE;
			}
			st->token = TOKEN_STRING;
			i++;
			continue;
		}
		case '-':
		case '0': case '1': case '2': case '3': case '4':
		case '5': case '6': case '7': case '8': case '9':
			if (check && !value_ok)
				return json_fail(r, base + i, "an unexpected number");
			st->token = TOKEN_NUMBER;
			st->number = N_START;
			if (check)
				number_step(&st->number, c);
			if (out && r->masked)
				p[i] = '0';
			i++;
			continue;
		case 't':
		case 'f':
		case 'n':
			if (check && !value_ok)
				return json_fail(r, base + i, "an unexpected literal");
			st->token = TOKEN_LITERAL;
			st->literal = c;
			st->index = 1;
			if (out && r->masked)
				p[i] = 'n';
			i++;
			continue;
		default:
			return json_fail(r, base + i, "a character that cannot start a JSON value");
		}
	}
	return 0;
}

static int json_scan_check(struct json_run *r, unsigned char *p, size_t n, uint64_t base)
{
	return json_scan(r, p, n, base, RUN_CHECK);
}

static int json_scan_state(struct json_run *r, unsigned char *p, size_t n, uint64_t base)
{
	return json_scan(r, p, n, base, RUN_STATE);
}

static int json_scan_mask(struct json_run *r, unsigned char *p, size_t n, uint64_t base)
{
	return json_scan(r, p, n, base, RUN_MASK);
}

/* At end of file: a number or literal ends there; anything else open is an
 * error. */
static int json_finish_check(struct json_run *r, uint64_t at)
{
	struct json_state *st = &r->st;
	if (st->token == TOKEN_NUMBER) {
		if (!number_complete(st->number))
			return json_fail(r, at, "a malformed number");
		json_value_done(st);
	} else if (st->token == TOKEN_LITERAL) {
		if (st->index != strlen(literal_word(st->literal)))
			return json_fail(r, at, "an invalid literal (not true, false or null)");
		json_value_done(st);
	} else if (st->token != TOKEN_NONE) {
		return json_fail(r, at, "a string is never closed");
	}
	if (st->line != LINE_START && st->line != LINE_END)
		return json_fail(r, at, "the JSON value is not closed at end of file");
	return 0;
}

/* ---- index ---- */

int mask_format_for_name(const char *name, enum mask_format *out)
{
	const char *dot = strrchr(name, '.');
	if (dot && !strcasecmp(dot, ".csv")) {
		*out = MASK_CSV;
		return 0;
	}
	if (dot && (!strcasecmp(dot, ".jsonl") || !strcasecmp(dot, ".ndjson"))) {
		*out = MASK_JSONL;
		return 0;
	}
	return -ENOTSUP;
}

static void add_point(struct mask_index *ix, const void *state, size_t *cap)
{
	if (ix->n_points == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		ix->points = xrealloc(ix->points, *cap * ix->point_size);
	}
	memcpy(ix->points + ix->n_points++ * ix->point_size, state, ix->point_size);
}

/* The default interval: MASK_INTERVAL, doubled until the index fits in
 * MASK_INDEX_MAX bytes. */
static size_t default_interval(int fd, enum mask_format format)
{
	struct stat st;
	uint64_t size = fstat(fd, &st) == 0 && st.st_size > 0 ? (uint64_t)st.st_size : 0;
	uint64_t max_points = MASK_INDEX_MAX / (format == MASK_CSV ? sizeof(struct csv_state) : sizeof(struct json_state));
	size_t interval = MASK_INTERVAL;
	while (size / interval > max_points && interval < (1u << 30))
		interval *= 2;
	return interval;
}

int mask_index_build_interval(int fd, enum mask_format format, size_t interval,
			      struct mask_index **out, struct mesh_err *err)
{
	*out = NULL;
	if (format != MASK_CSV && format != MASK_JSONL)
		return mesh_errf(err, -EINVAL, "unknown masking format %d", (int)format);
	if (interval < 64)
		interval = 64;
	if (interval > (1u << 30))
		interval = 1u << 30;
	interval = (interval + 63) & ~(size_t)63;

	struct mask_index *ix = xcalloc(1, sizeof *ix);
	ix->format = format;
	ix->interval = interval;
	ix->point_size = format == MASK_CSV ? sizeof(struct csv_state) : sizeof(struct json_state);
	struct csv_run *csv = NULL;
	struct json_run *json = NULL;
	union {
		struct csv_state csv;
		struct json_state json;
	} state;
	memset(&state, 0, sizeof state);
	int rc = 0;
	if (format == MASK_CSV) {
		uint64_t lines = 0;
		rc = csv_header(fd, ix, &lines, err);
		if (rc) {
			mask_index_free(ix);
			return rc;
		}
		csv = xcalloc(1, sizeof *csv);
		csv->st.last_boundary = 1;
		csv->n_columns = (uint32_t)ix->n_columns;
		csv->lines = lines;
		csv->line_start = ix->data_start;
		state.csv = csv->st;
	} else {
		unsigned char bom[3];
		ssize_t got = pread_full(fd, bom, 3, 0);
		if (got < 0) {
			mask_index_free(ix);
			return mesh_errf(err, (int)got, "read: %s", strerror((int)-got));
		}
		ix->data_start = got == 3 && !memcmp(bom, "\xef\xbb\xbf", 3) ? 3 : 0;
		json = xcalloc(1, sizeof *json);
		json_line_reset(json);
		json->line = 0;
		json->line_start = ix->data_start;
		state.json = json->st;
	}
	size_t cap = 0;
	add_point(ix, &state, &cap);

	unsigned char *buf = xmalloc(BUILD_CHUNK);
	uint64_t pos = ix->data_start, next_point = ix->data_start + interval;
	for (;;) {
		ssize_t got = pread_full(fd, buf, BUILD_CHUNK, pos);
		if (got < 0) {
			rc = mesh_errf(err, (int)got, "read: %s", strerror((int)-got));
			goto out;
		}
		if (got == 0)
			break;
		size_t done = 0;
		while (done < (size_t)got) {
			size_t seg = (size_t)got - done;
			if (pos + done + seg > next_point)
				seg = (size_t)(next_point - (pos + done));
			if (csv ? csv_scan_check(csv, buf + done, seg, pos + done)
				: json_scan_check(json, buf + done, seg, pos + done))
				goto invalid;
			done += seg;
			if (pos + done == next_point) {
				if (csv)
					state.csv = csv->st;
				else
					state.json = json->st;
				add_point(ix, &state, &cap);
				next_point += interval;
			}
		}
		pos += (uint64_t)got;
	}
	ix->size = pos;
	if (csv) {
		if (csv->st.inside) {
			rc = mesh_errf(err, -EINVAL, "line %llu, column %llu: a quoted field is never closed",
				       (unsigned long long)csv->open_line, (unsigned long long)csv->open_column);
			goto out;
		}
		if (csv->st.last_cr) {
			csv->error = "a CR outside quotes is not followed by LF";
			csv->error_line = csv->lines + 1;
			csv->error_column = pos - csv->line_start;
			goto invalid;
		}
	} else if (json_finish_check(json, pos)) {
		goto invalid;
	}
	goto out;
invalid:
	if (csv) {
		rc = mesh_errf(err, -EINVAL, "line %llu, column %llu: %s", (unsigned long long)csv->error_line,
			       (unsigned long long)csv->error_column, csv->error);
	} else {
		/* json->line counts the lines before the current one; the error
		 * is on the current one unless it is the newline ending it */
		rc = mesh_errf(err, -EINVAL, "line %llu, column %llu: %s", (unsigned long long)json->line + 1,
			       (unsigned long long)(json->error_at - json->line_start + 1), json->error);
	}
out:
	free(buf);
	free(csv);
	free(json);
	if (rc) {
		mask_index_free(ix);
		return rc;
	}
	*out = ix;
	return 0;
}

int mask_index_build(int fd, enum mask_format format, struct mask_index **out, struct mesh_err *err)
{
	return mask_index_build_interval(fd, format, default_interval(fd, format), out, err);
}

void mask_index_free(struct mask_index *ix)
{
	if (!ix)
		return;
	for (size_t i = 0; i < ix->n_columns; i++)
		free(ix->columns[i]);
	free(ix->columns);
	free(ix->column_len);
	free(ix->points);
	free(ix);
}

uint64_t mask_index_size(const struct mask_index *ix)
{
	return ix->size;
}

enum mask_format mask_index_format(const struct mask_index *ix)
{
	return ix->format;
}

size_t mask_index_columns(const struct mask_index *ix)
{
	return ix->n_columns;
}

const char *mask_index_column(const struct mask_index *ix, size_t i)
{
	return i < ix->n_columns ? ix->columns[i] : NULL;
}

/* ---- plan ---- */

int mask_plan_new(const struct mask_index *ix, const char *const *names, size_t n,
		  struct mask_plan **out, struct mesh_err *err)
{
	*out = NULL;
	for (size_t k = 0; k < n; k++) {
		size_t len = strlen(names[k]);
		if (len == 0 || len > MASK_NAME_MAX)
			return mesh_errf(err, -EINVAL, "column to mask \"%.64s\": name is empty or longer than %d bytes",
					 names[k], MASK_NAME_MAX);
	}
	struct mask_plan *plan = xcalloc(1, sizeof *plan);
	plan->format = ix->format;
	plan->n_columns = ix->n_columns;
	plan->empty = true;
	if (ix->format == MASK_CSV) {
		uint8_t *masked = xcalloc(ix->n_columns + 1, 1);
		for (size_t k = 0; k < n; k++) {
			size_t len = strlen(names[k]);
			bool found = false;
			for (size_t i = 0; i < ix->n_columns; i++)
				if (ix->column_len[i] == len && !memcmp(ix->columns[i], names[k], len))
					masked[i] = found = true;
			if (!found) {
				struct strbuf list = STRBUF_INIT;
				for (size_t i = 0; i < ix->n_columns && list.len < 400; i++)
					strbuf_printf(&list, "%s%s", i ? ", " : "", ix->columns[i]);
				int rc = mesh_errf(err, -ENOENT, "column to mask \"%s\" is not in the header (%s)",
						   names[k], ix->n_columns ? list.buf : "the file is empty");
				strbuf_release(&list);
				free(masked);
				mask_plan_free(plan);
				return rc;
			}
			plan->empty = false;
		}
		plan->csv_list = xcalloc(ix->n_columns + 1, sizeof *plan->csv_list);
		for (size_t i = 0; i < ix->n_columns; i++)
			if (masked[i])
				plan->csv_list[plan->n_csv_list++] = (uint32_t)i;
		free(masked);
	} else {
		plan->names = xcalloc(n + 1, sizeof *plan->names);
		plan->name_len = xcalloc(n + 1, sizeof *plan->name_len);
		for (size_t k = 0; k < n; k++) {
			plan->names[k] = xstrdup(names[k]);
			plan->name_len[k] = strlen(names[k]);
		}
		plan->n_names = n;
		plan->empty = n == 0;
	}
	*out = plan;
	return 0;
}

void mask_plan_free(struct mask_plan *plan)
{
	if (!plan)
		return;
	for (size_t i = 0; i < plan->n_names; i++)
		free(plan->names[i]);
	free(plan->names);
	free(plan->name_len);
	free(plan->csv_list);
	free(plan);
}

int mask_plan_empty(const struct mask_plan *plan)
{
	return plan->empty;
}

/* ---- reading ---- */

static int changed(struct mesh_err *err, uint64_t at, const char *what)
{
	return mesh_errf(err, -EIO, "byte %llu: %s: the file changed since its masking index was built",
			 (unsigned long long)at, what);
}

/* Scan [from, to) of the file in RUN_STATE mode, through a stack buffer. */
static int resume_state(const struct mask_index *ix, struct csv_run *csv, struct json_run *json, int fd,
			uint64_t from, uint64_t to, struct mesh_err *err)
{
	unsigned char chunk[RESUME_CHUNK];
	while (from < to) {
		size_t want = to - from < sizeof chunk ? (size_t)(to - from) : sizeof chunk;
		ssize_t got = pread_full(fd, chunk, want, from);
		if (got < 0)
			return mesh_errf(err, (int)got, "read: %s", strerror((int)-got));
		if ((size_t)got < want)
			return changed(err, from + (uint64_t)got, "the file is shorter");
		int bad = ix->format == MASK_CSV ? csv_scan_state(csv, chunk, want, from)
						 : json_scan_state(json, chunk, want, from);
		if (bad)
			return changed(err, from, csv ? csv->error : json->error);
		from += want;
	}
	return 0;
}

/* Rebuild the plan-dependent part of a JSON checkpoint: decode the current
 * top-level key from its opening quote up to the checkpoint. */
static int resume_key(struct json_run *json, int fd, uint64_t checkpoint, struct mesh_err *err)
{
	if (json->st.line != LINE_OBJECT || json->st.key_offset == NO_KEY)
		return 0;
	unsigned char raw[KEY_RAW_MAX];
	uint64_t from = json->st.key_offset + 1;
	size_t want = checkpoint - from < sizeof raw ? (size_t)(checkpoint - from) : sizeof raw;
	ssize_t got = pread_full(fd, raw, want, from);
	if (got < 0)
		return mesh_errf(err, (int)got, "read: %s", strerror((int)-got));
	if ((size_t)got < want)
		return changed(err, from + (uint64_t)got, "the file is shorter");
	key_reset(&json->key);
	for (size_t i = 0; i < want; i++)
		if (key_feed(&json->key, raw[i])) {
			json->masked = plan_has_key(json->plan, &json->key);
			break;
		}
	return 0;
}

int mask_read(const struct mask_index *ix, const struct mask_plan *plan, int fd, char *buf, size_t len,
	      off_t offset, size_t *out_len, struct mesh_err *err)
{
	*out_len = 0;
	if (offset < 0)
		return mesh_errf(err, -EINVAL, "negative offset %lld", (long long)offset);
	if (plan->format != ix->format || plan->n_columns != ix->n_columns)
		return mesh_errf(err, -EINVAL, "the masking plan was made for another file");
	uint64_t start = (uint64_t)offset;
	if (start >= ix->size || len == 0)
		return 0;
	uint64_t end = len > ix->size - start ? ix->size : start + len;
	size_t n = (size_t)(end - start);
	ssize_t got = pread_full(fd, buf, n, start);
	if (got < 0)
		return mesh_errf(err, (int)got, "read: %s", strerror((int)-got));
	if ((size_t)got < n)
		return changed(err, start + (uint64_t)got, "the file is shorter");
	if (plan->empty) {
		*out_len = n;
		return 0;
	}
	uint64_t from = start > ix->data_start ? start : ix->data_start;
	if (from >= end) {   /* the header only */
		*out_len = n;
		return 0;
	}
	uint64_t k = (from - ix->data_start) / ix->interval;
	if (k >= ix->n_points)
		return changed(err, from, "no checkpoint");
	uint64_t checkpoint = ix->data_start + k * ix->interval;
	unsigned char *window = (unsigned char *)buf + (from - start);
	int rc;
	if (ix->format == MASK_CSV) {
		struct csv_run csv = {.n_columns = (uint32_t)ix->n_columns,
				      .mask_cols = plan->csv_list, .n_mask_cols = plan->n_csv_list};
		memcpy(&csv.st, ix->points + k * ix->point_size, sizeof csv.st);
		rc = resume_state(ix, &csv, NULL, fd, checkpoint, from, err);
		if (rc)
			return rc;
		int next = -1;
		if (end < ix->size && buf[n - 1] == '"') {   /* is the window's last quote a closing one? */
			unsigned char after;
			if (pread_full(fd, &after, 1, end) != 1)
				return changed(err, end, "the file is shorter");
			next = after;
		}
		if (csv_scan_mask(&csv, window, (size_t)(end - from), next, from))
			return changed(err, from, csv.error);
	} else {
		struct json_run json;
		memset(&json, 0, sizeof json);
		memcpy(&json.st, ix->points + k * ix->point_size, sizeof json.st);
		json.plan = plan;
		rc = resume_key(&json, fd, checkpoint, err);
		if (!rc)
			rc = resume_state(ix, NULL, &json, fd, checkpoint, from, err);
		if (!rc && json_scan_mask(&json, window, (size_t)(end - from), from))
			rc = changed(err, json.error_at, json.error);
		if (rc)
			return rc;
	}
	*out_len = n;
	return 0;
}

int mask_file_to_fd(const struct mask_index *ix, const struct mask_plan *plan, int in_fd, int out_fd,
		    struct mesh_err *err)
{
	size_t window = 1u << 20;
	char *buf = xmalloc(window);
	int rc = 0;
	for (uint64_t at = 0; at < ix->size;) {
		size_t got;
		rc = mask_read(ix, plan, in_fd, buf, window, (off_t)at, &got, err);
		if (rc)
			break;
		if (got == 0) {
			rc = changed(err, at, "nothing to read");
			break;
		}
		rc = mesh_write_all(out_fd, buf, got);
		if (rc) {
			rc = mesh_errf(err, rc, "write: %s", strerror(-rc));
			break;
		}
		at += got;
	}
	free(buf);
	return rc;
}
