/*
 * parquet.c - Parquet footer and flat-column values (contract in
 * include/parquet.h).
 *
 * Layout of a file: "PAR1", column chunks (pages), the footer (a Thrift
 * compact-protocol FileMetaData), its length (4 bytes LE), "PAR1".  A
 * column chunk is an optional dictionary page followed by data pages, each
 * a Thrift PageHeader and its (possibly compressed) bytes.  Thrift decoding
 * is libthrift-c-glib's, on types generated from parquet_footer.thrift;
 * this file decodes only what lies inside pages: repetition/definition
 * levels (RLE/bit-packed hybrid), PLAIN values and dictionary indices.
 *
 * Not here: nested columns, the DELTA_* and BYTE_STREAM_SPLIT encodings,
 * LZ4/Brotli/LZO, encryption, page indexes, bloom filters.
 */
#include "parquet.h"

#include <errno.h>
#include <glib-object.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <thrift/c_glib/protocol/thrift_compact_protocol.h>
#include <thrift/c_glib/transport/thrift_transport.h>
#include <time.h>
#include <unistd.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include "mesh_util.h"
#include "pq_parquet_footer_types.h"

struct parquet_file {
	int fd;
	char *name;
	uint64_t size;
	uint64_t data_end;           /* first byte of the footer */
	uint8_t *footer;             /* its bytes, as parsed (parquet_project_footer) */
	size_t footer_len;
	PqFileMetaData *meta;
	struct parquet_column *cols;
	size_t n_cols;
	size_t *leaf_schema;         /* schema index of each leaf */
};

/* ---- Thrift ---- */

/* A read-only Thrift transport over a byte range.  libthrift-c-glib's
 * ThriftMemoryBuffer answers a read past its end with 0 bytes and no error
 * (the protocol then spins on a truncated footer) and moves its remaining
 * bytes down on every read; this one fails a short read and only advances
 * an offset. */
typedef struct {
	ThriftTransport parent;
	const guint8 *data;
	gsize len, pos;
	GByteArray *sink;            /* set: a write-only transport appending here */
} MeshThriftSlice;
typedef struct {
	ThriftTransportClass parent;
} MeshThriftSliceClass;

G_DEFINE_TYPE(MeshThriftSlice, mesh_thrift_slice, THRIFT_TYPE_TRANSPORT)

static gint32 slice_read(ThriftTransport *t, gpointer buf, guint32 len, GError **error)
{
	MeshThriftSlice *s = (MeshThriftSlice *)t;
	if (len > s->len - s->pos) {
		g_set_error(error, THRIFT_TRANSPORT_ERROR, THRIFT_TRANSPORT_ERROR_RECEIVE,
			    "truncated: %u more bytes needed at offset %zu of %zu", len, (size_t)s->pos, (size_t)s->len);
		return -1;
	}
	memcpy(buf, s->data + s->pos, len);
	s->pos += len;
	return (gint32)len;
}

static gboolean slice_true(ThriftTransport *t, GError **error)
{
	(void)t;
	(void)error;
	return TRUE;
}

static gboolean slice_is_open(ThriftTransport *t)
{
	(void)t;
	return TRUE;
}

static gboolean slice_write(ThriftTransport *t, const gpointer buf, const guint32 len, GError **error)
{
	MeshThriftSlice *s = (MeshThriftSlice *)t;
	if (!s->sink) {
		g_set_error(error, THRIFT_TRANSPORT_ERROR, THRIFT_TRANSPORT_ERROR_SEND, "read-only transport");
		return FALSE;
	}
	g_byte_array_append(s->sink, buf, len);
	return TRUE;
}

static gboolean slice_size(ThriftTransport *t, glong n, GError **error)
{
	(void)t;
	(void)n;
	(void)error;
	return TRUE;
}

/* Lets the protocol refuse a container larger than the bytes left. */
static gboolean slice_available(ThriftTransport *t, glong n, GError **error)
{
	MeshThriftSlice *s = (MeshThriftSlice *)t;
	if (n < 0 || (gsize)n > s->len - s->pos) {
		g_set_error(error, THRIFT_TRANSPORT_ERROR, THRIFT_TRANSPORT_ERROR_RECEIVE,
			    "a length of %ld bytes runs past the end (%zu left)", (long)n, (size_t)(s->len - s->pos));
		return FALSE;
	}
	return TRUE;
}

static void mesh_thrift_slice_init(MeshThriftSlice *s)
{
	s->data = NULL;
	s->len = s->pos = 0;
	s->sink = NULL;
}

static void mesh_thrift_slice_class_init(MeshThriftSliceClass *klass)
{
	ThriftTransportClass *t = THRIFT_TRANSPORT_CLASS(klass);
	t->is_open = slice_is_open;
	t->peek = slice_true;
	t->open = slice_true;
	t->close = slice_true;
	t->read = slice_read;
	t->read_all = slice_read;
	t->read_end = slice_true;
	t->write = slice_write;
	t->write_end = slice_true;
	t->flush = slice_true;
	t->updateKnownMessageSize = slice_size;
	t->checkReadBytesAvailable = slice_available;
	t->resetConsumedMessageSize = slice_size;
	t->countConsumedMessageBytes = slice_size;
}

/* The compact protocol, with every read that skips may fail leaving its
 * outputs defined.  libthrift-c-glib 0.17's thrift_protocol_skip ignores
 * the errors of the reads it makes and then uses their outputs: a failed
 * read_binary leaves its buffer pointer unset and skip frees it; a failed
 * list, set, map or field header leaves a size and a type unset and skip
 * loops over them.  Well-formed bytes (the walk below) do not reach those
 * paths by themselves, but the generated readers trust the element types
 * of containers (a list of strings read as a list of structs walks off its
 * bytes), so every output is set before the library's reader runs: a
 * failed read then gives a NULL buffer, an empty container and T_STOP. */
typedef struct {
	ThriftCompactProtocol parent;
} MeshCompactProtocol;
typedef struct {
	ThriftCompactProtocolClass parent;
} MeshCompactProtocolClass;

G_DEFINE_TYPE(MeshCompactProtocol, mesh_compact_protocol, THRIFT_TYPE_COMPACT_PROTOCOL)

#define COMPACT_PARENT THRIFT_PROTOCOL_CLASS(mesh_compact_protocol_parent_class)

static gint32 safe_read_binary(ThriftProtocol *p, gpointer *buf, guint32 *len, GError **error)
{
	*buf = NULL;
	*len = 0;
	return COMPACT_PARENT->read_binary(p, buf, len, error);
}

static gint32 safe_read_string(ThriftProtocol *p, gchar **str, GError **error)
{
	*str = NULL;
	return COMPACT_PARENT->read_string(p, str, error);
}

static gint32 safe_read_field_begin(ThriftProtocol *p, gchar **name, ThriftType *type, gint16 *id,
				    GError **error)
{
	*name = NULL;
	*type = T_STOP;
	*id = 0;
	gint32 rc = COMPACT_PARENT->read_field_begin(p, name, type, id, error);
	if (rc < 0)
		*type = T_STOP;
	return rc;
}

typedef gint32 (*sequence_begin)(ThriftProtocol *p, ThriftType *type, guint32 *size, GError **error);

/* A list or set header read by the parent's `begin`: empty when it fails. */
static gint32 safe_sequence_begin(sequence_begin begin, ThriftProtocol *p, ThriftType *type, guint32 *size,
				  GError **error)
{
	*type = T_STOP;
	*size = 0;
	gint32 rc = begin(p, type, size, error);
	if (rc < 0)
		*size = 0;
	return rc;
}

static gint32 safe_read_list_begin(ThriftProtocol *p, ThriftType *type, guint32 *size, GError **error)
{
	return safe_sequence_begin(COMPACT_PARENT->read_list_begin, p, type, size, error);
}

static gint32 safe_read_set_begin(ThriftProtocol *p, ThriftType *type, guint32 *size, GError **error)
{
	return safe_sequence_begin(COMPACT_PARENT->read_set_begin, p, type, size, error);
}

static gint32 safe_read_map_begin(ThriftProtocol *p, ThriftType *key, ThriftType *value, guint32 *size,
				  GError **error)
{
	*key = *value = T_STOP;
	*size = 0;
	gint32 rc = COMPACT_PARENT->read_map_begin(p, key, value, size, error);
	if (rc < 0)
		*size = 0;
	return rc;
}

static void mesh_compact_protocol_init(MeshCompactProtocol *p)
{
	(void)p;
}

static void mesh_compact_protocol_class_init(MeshCompactProtocolClass *klass)
{
	ThriftProtocolClass *c = THRIFT_PROTOCOL_CLASS(klass);
	c->read_binary = safe_read_binary;
	c->read_string = safe_read_string;
	c->read_field_begin = safe_read_field_begin;
	c->read_list_begin = safe_read_list_begin;
	c->read_set_begin = safe_read_set_begin;
	c->read_map_begin = safe_read_map_begin;
}

/* A structural check of Thrift compact-protocol bytes before libthrift
 * sees them.  Debian's libthrift-c-glib 0.17 skips fields it does not know
 * (thrift_protocol_skip) without checking the reads it makes: on malformed
 * input it frees an uninitialised pointer or loops.  Bytes that pass this
 * walk are well formed - every length inside the buffer, every type known,
 * nesting bounded - so the library never takes those error paths.  This
 * only measures; the values are read by the generated code.  *end gets the
 * offset just past the struct. */
enum { CT_STOP, CT_TRUE, CT_FALSE, CT_BYTE, CT_I16, CT_I32, CT_I64, CT_DOUBLE, CT_BINARY, CT_LIST, CT_SET,
       CT_MAP, CT_STRUCT };
#define COMPACT_MAX_DEPTH 32

/* A varint of at most `bytes` bytes (5: the library reads field ids,
 * i16, i32, lengths and sizes with its 32-bit reader, which refuses a
 * sixth byte without setting its output; 10: i64). */
static int compact_varint_n(const uint8_t *p, size_t len, size_t *at, uint64_t *v, int bytes)
{
	*v = 0;
	for (int shift = 0; shift < 7 * bytes; shift += 7) {
		if (*at >= len)
			return -1;
		uint8_t b = p[(*at)++];
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

static int compact_varint(const uint8_t *p, size_t len, size_t *at, uint64_t *v)
{
	if (compact_varint_n(p, len, at, v, 5) < 0 || *v > UINT32_MAX)
		return -1;
	return 0;
}

static int compact_skip(const uint8_t *p, size_t len, size_t *at, int type, int depth, bool in_container);

static int compact_struct(const uint8_t *p, size_t len, size_t *at, int depth)
{
	if (depth > COMPACT_MAX_DEPTH)
		return -1;
	uint64_t seen = 0;
	int64_t last = 0;
	for (;;) {
		if (*at >= len)
			return -1;
		uint8_t h = p[(*at)++];
		if (h == CT_STOP)
			return 0;
		uint64_t zz;
		int64_t id = last + (h >> 4);
		if (!(h >> 4)) {
			if (compact_varint(p, len, at, &zz) < 0)
				return -1;
			id = (int64_t)(zz >> 1) ^ -(int64_t)(zz & 1);
		}
		/* a field twice in one struct: the generated reader frees the
		 * first binary value with the wrong function; no writer does it */
		if (id > 0 && id < 64) {
			if (seen & (1ull << id))
				return -1;
			seen |= 1ull << id;
		}
		last = id;
		if (compact_skip(p, len, at, h & 0x0f, depth, false) < 0)
			return -1;
	}
}

static int compact_skip(const uint8_t *p, size_t len, size_t *at, int type, int depth, bool in_container)
{
	uint64_t v;
	switch (type) {
	case CT_TRUE:
	case CT_FALSE:
		if (in_container)   /* a boolean element is a byte; a field's is in its header */
			return *at < len ? (int)(++*at, 0) : -1;
		return 0;
	case CT_BYTE:
		return *at < len ? (int)(++*at, 0) : -1;
	case CT_I16:
	case CT_I32:
		return compact_varint(p, len, at, &v);
	case CT_I64:
		return compact_varint_n(p, len, at, &v, 10);
	case CT_DOUBLE:
		if (len - *at < 8)
			return -1;
		*at += 8;
		return 0;
	case CT_BINARY:
		if (compact_varint(p, len, at, &v) < 0 || v > len - *at)
			return -1;
		*at += (size_t)v;
		return 0;
	case CT_LIST:
	case CT_SET: {
		if (*at >= len || depth >= COMPACT_MAX_DEPTH)
			return -1;
		uint8_t h = p[(*at)++];
		uint64_t n = h >> 4;
		int et = h & 0x0f;
		if (n == 15 && compact_varint(p, len, at, &n) < 0)
			return -1;
		if (n > len - *at || et == CT_STOP || et > CT_STRUCT)   /* every element takes a byte */
			return -1;
		for (uint64_t i = 0; i < n; i++)
			if (compact_skip(p, len, at, et, depth + 1, true) < 0)
				return -1;
		return 0;
	}
	case CT_MAP: {
		if (compact_varint(p, len, at, &v) < 0 || depth >= COMPACT_MAX_DEPTH)
			return -1;
		if (!v)
			return 0;
		if (*at >= len || v > (len - *at) / 2)
			return -1;
		uint8_t kv = p[(*at)++];
		int kt = kv >> 4, vt = kv & 0x0f;
		if (kt == CT_STOP || kt > CT_STRUCT || vt == CT_STOP || vt > CT_STRUCT)
			return -1;
		for (uint64_t i = 0; i < v; i++)
			if (compact_skip(p, len, at, kt, depth + 1, true) < 0 ||
			    compact_skip(p, len, at, vt, depth + 1, true) < 0)
				return -1;
		return 0;
	}
	case CT_STRUCT:
		return compact_struct(p, len, at, depth + 1);
	default:
		return -1;
	}
}

/* Reads one struct from buf[0..len); *used gets the bytes it took. */
static int thrift_decode(const void *buf, size_t len, ThriftStruct *obj, size_t *used, char *why,
			 size_t why_len)
{
	size_t end = 0;
	if (compact_struct(buf, len, &end, 0) < 0) {
		if (why)
			snprintf(why, why_len, "malformed Thrift compact data (at byte %zu of %zu)", end, len);
		if (used)
			*used = end;
		return -EINVAL;
	}
	len = end;
	GError *gerr = NULL;
	MeshThriftSlice *slice = g_object_new(mesh_thrift_slice_get_type(), NULL);
	slice->data = buf;
	slice->len = len;
	ThriftProtocol *p = g_object_new(mesh_compact_protocol_get_type(), "transport", slice,
					 "string_limit", (gint32)PARQUET_MAX_FOOTER,
					 "container_limit", (gint32)(1 << 22), NULL);
	int rc = thrift_struct_read(obj, p, &gerr) < 0 ? -EINVAL : 0;
	g_object_unref(p);
	if (rc && why)
		snprintf(why, why_len, "%s", gerr && gerr->message ? gerr->message : "malformed Thrift data");
	if (used)
		*used = slice->pos;
	g_clear_error(&gerr);
	g_object_unref(slice);
	return rc;
}

/* ---- small helpers ---- */

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;
		got += (size_t)r;
	}
	return 0;
}

static const char *physical_name(int t)
{
	static const char *names[] = {"BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE", "BYTE_ARRAY",
				      "FIXED_LEN_BYTE_ARRAY"};
	return t >= 0 && t < 8 ? names[t] : "unknown";
}

static const char *codec_name(int c)
{
	static const char *names[] = {"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"};
	return c >= 0 && c < 8 ? names[c] : "unknown";
}

static const char *encoding_name(int e)
{
	static const char *names[] = {"PLAIN", "GROUP_VAR_INT", "PLAIN_DICTIONARY", "RLE", "BIT_PACKED",
				      "DELTA_BINARY_PACKED", "DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY",
				      "RLE_DICTIONARY", "BYTE_STREAM_SPLIT"};
	return e >= 0 && e < 10 ? names[e] : "unknown";
}

/* ---- values as text ---- */

static int unit_digits(int unit)
{
	return unit == 1 ? 3 : unit == 2 ? 6 : 9;
}

static int64_t unit_per_second(int unit)
{
	return unit == 1 ? 1000 : unit == 2 ? 1000000 : 1000000000;
}

static size_t format_date(int64_t days, char *out, size_t cap)
{
	time_t t = (time_t)(days * 86400);
	struct tm tm;
	if (!gmtime_r(&t, &tm))
		return (size_t)snprintf(out, cap, "%" PRId64, days);
	return strftime(out, cap, "%Y-%m-%d", &tm);
}

static size_t format_timestamp(int64_t v, int unit, char *out, size_t cap)
{
	int64_t per = unit_per_second(unit);
	int64_t secs = v / per, frac = v % per;
	if (frac < 0) {
		frac += per;
		secs--;
	}
	time_t t = (time_t)secs;
	struct tm tm;
	if (!gmtime_r(&t, &tm))
		return (size_t)snprintf(out, cap, "%" PRId64, v);
	size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	if (frac)
		n += (size_t)snprintf(out + n, cap - n, ".%0*" PRId64, unit_digits(unit), frac);
	n += (size_t)snprintf(out + n, cap - n, "Z");
	return n;
}

static size_t format_time(int64_t v, int unit, char *out, size_t cap)
{
	int64_t per = unit_per_second(unit);
	int64_t secs = v / per, frac = v % per;
	size_t n = (size_t)snprintf(out, cap, "%02" PRId64 ":%02" PRId64 ":%02" PRId64, secs / 3600, secs / 60 % 60,
				    secs % 60);
	if (frac > 0)
		n += (size_t)snprintf(out + n, cap - n, ".%0*" PRId64, unit_digits(unit), frac);
	return n;
}

/* An unscaled integer with `scale` decimal digits after the point. */
static size_t format_decimal(__int128 v, int scale, char *out, size_t cap)
{
	char digits[64];
	size_t nd = 0;
	bool neg = v < 0;
	unsigned __int128 u = neg ? (unsigned __int128)(-(v + 1)) + 1 : (unsigned __int128)v;
	do {
		digits[nd++] = (char)('0' + (int)(u % 10));
		u /= 10;
	} while (u && nd < sizeof digits);
	while ((int)nd <= scale && nd < sizeof digits)
		digits[nd++] = '0';
	size_t n = 0;
	if (neg && n + 1 < cap)
		out[n++] = '-';
	for (size_t i = nd; i > 0 && n + 2 < cap; i--) {
		out[n++] = digits[i - 1];
		if (scale > 0 && i - 1 == (size_t)scale)
			out[n++] = '.';
	}
	out[n] = '\0';
	return n;
}

/* Big-endian two's complement of up to 16 bytes. */
static bool be_int128(const uint8_t *p, size_t n, __int128 *out)
{
	if (n == 0 || n > 16)
		return false;
	unsigned __int128 u = (p[0] & 0x80) ? ~(unsigned __int128)0 : 0;
	for (size_t i = 0; i < n; i++)
		u = (u << 8) | p[i];
	*out = (__int128)u;
	return true;
}

/* Text of one PLAIN-encoded value of column c (n bytes at p) into buf, or
 * (for strings) a pointer to the value itself.  Returns false if the value
 * cannot be shown (a DECIMAL over 16 bytes). */
static bool value_text(const struct parquet_column *c, const uint8_t *p, size_t n, char *buf, size_t cap,
		       const char **text, size_t *len)
{
	*text = buf;
	switch (c->physical) {
	case PARQUET_BOOLEAN:
		*len = (size_t)snprintf(buf, cap, "%s", p[0] ? "true" : "false");
		return true;
	case PARQUET_INT32:
	case PARQUET_INT64: {
		int64_t v = c->physical == PARQUET_INT32 ? (int64_t)(int32_t)le32(p) : (int64_t)le64(p);
		switch (c->annotation) {
		case PARQUET_ANN_DATE: *len = format_date(v, buf, cap); break;
		case PARQUET_ANN_TIMESTAMP: *len = format_timestamp(v, c->time_unit, buf, cap); break;
		case PARQUET_ANN_TIME: *len = format_time(v, c->time_unit, buf, cap); break;
		case PARQUET_ANN_DECIMAL: *len = format_decimal(v, c->scale, buf, cap); break;
		default:
			if (!c->is_signed)
				*len = (size_t)snprintf(buf, cap, "%" PRIu64,
							c->physical == PARQUET_INT32 ? (uint64_t)le32(p) : (uint64_t)v);
			else
				*len = (size_t)snprintf(buf, cap, "%" PRId64, v);
		}
		return true;
	}
	case PARQUET_INT96: {
		/* nanoseconds of the day, then the Julian day number */
		int64_t nanos = (int64_t)le64(p);
		int64_t days = (int64_t)le32(p + 8) - 2440588;
		*len = format_timestamp(days * 86400 * 1000000000LL + nanos, 3, buf, cap);
		return true;
	}
	case PARQUET_FLOAT: {
		float f;
		memcpy(&f, p, 4);
		*len = (size_t)snprintf(buf, cap, "%.7g", (double)f);
		if (strtof(buf, NULL) != f)
			*len = (size_t)snprintf(buf, cap, "%.9g", (double)f);
		return true;
	}
	case PARQUET_DOUBLE: {
		double d;
		memcpy(&d, p, 8);
		/* the shortest text that reads back as the same double */
		*len = (size_t)snprintf(buf, cap, "%.15g", d);
		if (strtod(buf, NULL) != d)
			*len = (size_t)snprintf(buf, cap, "%.17g", d);
		return true;
	}
	case PARQUET_BYTE_ARRAY:
	case PARQUET_FIXED_LEN_BYTE_ARRAY:
		if (c->annotation == PARQUET_ANN_DECIMAL) {
			__int128 v;
			if (!be_int128(p, n, &v))
				return false;
			*len = format_decimal(v, c->scale, buf, cap);
		} else if (c->annotation == PARQUET_ANN_UUID && n == 16) {
			size_t k = 0;
			for (size_t i = 0; i < 16; i++)
				k += (size_t)snprintf(buf + k, cap - k, "%s%02x",
						      (i == 4 || i == 6 || i == 8 || i == 10) ? "-" : "", p[i]);
			*len = k;
		} else if (c->physical == PARQUET_FIXED_LEN_BYTE_ARRAY && c->annotation != PARQUET_ANN_STRING) {
			size_t k = 0;
			for (size_t i = 0; i < n && k + 3 < cap; i++)
				k += (size_t)snprintf(buf + k, cap - k, "%02x", p[i]);
			*len = k;
		} else {
			*text = (const char *)p;
			*len = n;
		}
		return true;
	}
	return false;
}

/* ---- schema ---- */

static int set_column_type(struct parquet_column *col, const PqSchemaElement *se)
{
	col->physical = (enum parquet_physical)se->type;
	col->type_length = se->__isset_type_length ? se->type_length : 0;
	col->is_signed = true;
	const PqLogicalType *lt = se->__isset_logicalType ? se->logicalType : NULL;
	if (lt && lt->__isset_STRING)
		col->annotation = PARQUET_ANN_STRING;
	else if (lt && (lt->__isset_ENUM || lt->__isset_JSON))
		col->annotation = PARQUET_ANN_STRING;
	else if (lt && lt->__isset_DATE)
		col->annotation = PARQUET_ANN_DATE;
	else if (lt && lt->__isset_TIMESTAMP) {
		col->annotation = PARQUET_ANN_TIMESTAMP;
		const PqTimeUnit *u = lt->TIMESTAMP->unit;
		col->time_unit = u->__isset_MILLIS ? 1 : u->__isset_MICROS ? 2 : 3;
	} else if (lt && lt->__isset_TIME) {
		col->annotation = PARQUET_ANN_TIME;
		const PqTimeUnit *u = lt->TIME->unit;
		col->time_unit = u->__isset_MILLIS ? 1 : u->__isset_MICROS ? 2 : 3;
	} else if (lt && lt->__isset_DECIMAL) {
		col->annotation = PARQUET_ANN_DECIMAL;
		col->scale = lt->DECIMAL->scale;
		col->precision = lt->DECIMAL->precision;
	} else if (lt && lt->__isset_INTEGER) {
		col->annotation = PARQUET_ANN_INT;
		col->is_signed = lt->INTEGER->isSigned;
	} else if (lt && lt->__isset_UUID)
		col->annotation = PARQUET_ANN_UUID;
	else if (lt && (lt->__isset_UNKNOWN || lt->__isset_BSON || lt->__isset_MAP || lt->__isset_LIST))
		col->annotation = PARQUET_ANN_OTHER;
	else if (se->__isset_converted_type) {
		switch (se->converted_type) {
		case PQ_CONVERTED_TYPE_UTF8: case PQ_CONVERTED_TYPE_ENUM: case PQ_CONVERTED_TYPE_JSON:
			col->annotation = PARQUET_ANN_STRING; break;
		case PQ_CONVERTED_TYPE_DATE: col->annotation = PARQUET_ANN_DATE; break;
		case PQ_CONVERTED_TYPE_TIMESTAMP_MILLIS: col->annotation = PARQUET_ANN_TIMESTAMP; col->time_unit = 1; break;
		case PQ_CONVERTED_TYPE_TIMESTAMP_MICROS: col->annotation = PARQUET_ANN_TIMESTAMP; col->time_unit = 2; break;
		case PQ_CONVERTED_TYPE_TIME_MILLIS: col->annotation = PARQUET_ANN_TIME; col->time_unit = 1; break;
		case PQ_CONVERTED_TYPE_TIME_MICROS: col->annotation = PARQUET_ANN_TIME; col->time_unit = 2; break;
		case PQ_CONVERTED_TYPE_DECIMAL:
			col->annotation = PARQUET_ANN_DECIMAL;
			col->scale = se->__isset_scale ? se->scale : 0;
			col->precision = se->__isset_precision ? se->precision : 0;
			break;
		case PQ_CONVERTED_TYPE_UINT_8: case PQ_CONVERTED_TYPE_UINT_16: case PQ_CONVERTED_TYPE_UINT_32:
		case PQ_CONVERTED_TYPE_UINT_64:
			col->annotation = PARQUET_ANN_INT; col->is_signed = false; break;
		case PQ_CONVERTED_TYPE_INT_8: case PQ_CONVERTED_TYPE_INT_16: case PQ_CONVERTED_TYPE_INT_32:
		case PQ_CONVERTED_TYPE_INT_64:
			col->annotation = PARQUET_ANN_INT; break;
		default: col->annotation = PARQUET_ANN_OTHER;
		}
	}
	if (col->scale < 0 || col->scale > 38)
		return -EINVAL;
	if (col->physical > PARQUET_FIXED_LEN_BYTE_ARRAY || (int)col->physical < 0)
		return -EINVAL;
	if (col->physical == PARQUET_FIXED_LEN_BYTE_ARRAY && (col->type_length <= 0 || col->type_length > (1 << 20)))
		return -EINVAL;
	/* what the column holds, in contract terms */
	switch (col->physical) {
	case PARQUET_BOOLEAN: col->logical = LT_BOOLEAN; break;
	case PARQUET_INT32:
	case PARQUET_INT64:
		col->logical = col->annotation == PARQUET_ANN_DATE ? LT_DATE
			     : col->annotation == PARQUET_ANN_TIMESTAMP ? LT_TIMESTAMP
			     : col->annotation == PARQUET_ANN_DECIMAL ? LT_NUMBER
			     : col->annotation == PARQUET_ANN_TIME ? LT_STRING : LT_INTEGER;
		break;
	case PARQUET_INT96: col->logical = LT_TIMESTAMP; break;
	case PARQUET_FLOAT: case PARQUET_DOUBLE: col->logical = LT_NUMBER; break;
	default: col->logical = col->annotation == PARQUET_ANN_DECIMAL ? LT_NUMBER : LT_STRING;
	}
	static const char *ann[] = {"", " STRING", " DATE", " TIME", " TIMESTAMP", " DECIMAL", " INT", " UUID", " (other)"};
	snprintf(col->type_text, sizeof col->type_text, "%s%s", physical_name(col->physical), ann[col->annotation]);
	return 0;
}

/* Walks the depth-first schema list; leaves become columns. */
static int read_schema(struct parquet_file *pf, struct mesh_err *err)
{
	GPtrArray *schema = pf->meta->schema;
	if (!schema || schema->len < 1)
		return mesh_errf(err, -EINVAL, "%s: Parquet footer has an empty schema", pf->name);
	guint n = schema->len;
	/* stack of (remaining children, depth, optional, repeated, name length) */
	struct frame { int64_t left; bool repeated; size_t name_len; } *stack = xcalloc(n + 1, sizeof *stack);
	struct strbuf path = STRBUF_INIT;
	size_t depth = 0;
	const PqSchemaElement *root = g_ptr_array_index(schema, 0);
	stack[0].left = root->__isset_num_children ? root->num_children : 0;
	int rc = 0;
	pf->cols = xcalloc(n, sizeof *pf->cols);
	pf->leaf_schema = xcalloc(n, sizeof *pf->leaf_schema);
	for (guint i = 1; i < n && !rc; i++) {
		while (depth > 0 && stack[depth].left == 0)
			depth--;
		if (stack[depth].left <= 0) {
			rc = mesh_errf(err, -EINVAL, "%s: Parquet schema element %u lies outside the tree", pf->name, i);
			break;
		}
		stack[depth].left--;
		const PqSchemaElement *se = g_ptr_array_index(schema, i);
		bool repeated = (se->__isset_repetition_type && se->repetition_type == PQ_FIELD_REPETITION_TYPE_REPEATED) ||
				stack[depth].repeated;
		path.len = stack[depth].name_len;
		if (path.buf)
			path.buf[path.len] = '\0';
		strbuf_printf(&path, "%s%s", depth ? "." : "", se->name ? se->name : "");
		if (se->__isset_num_children && se->num_children > 0) {
			if ((guint)se->num_children > n - i - 1) {
				rc = mesh_errf(err, -EINVAL, "%s: Parquet schema element %s claims %d children", pf->name,
					       se->name, se->num_children);
				break;
			}
			depth++;
			stack[depth].left = se->num_children;
			stack[depth].repeated = repeated;
			stack[depth].name_len = path.len;
			continue;
		}
		if (!se->__isset_type) {
			rc = mesh_errf(err, -EINVAL, "%s: Parquet column %s has no type", pf->name, path.buf);
			break;
		}
		struct parquet_column *col = &pf->cols[pf->n_cols];
		pf->leaf_schema[pf->n_cols++] = i;
		col->name = xstrdup(path.buf);
		col->optional = se->__isset_repetition_type && se->repetition_type == PQ_FIELD_REPETITION_TYPE_OPTIONAL;
		col->flat = depth == 0 && !repeated;
		if (set_column_type(col, se) < 0) {
			rc = mesh_errf(err, -EINVAL, "%s: Parquet column %s has an invalid type", pf->name, col->name);
			break;
		}
		if (!col->flat)
			col->unsupported = xstrdup("nested or repeated column");
		else if (col->annotation == PARQUET_ANN_OTHER)
			col->unsupported = xstrdup("a logical type meshfs does not read");
		else if (col->annotation == PARQUET_ANN_DECIMAL && col->physical == PARQUET_FIXED_LEN_BYTE_ARRAY &&
			 col->type_length > 16)
			col->unsupported = xstrdup("a DECIMAL wider than 16 bytes");
	}
	if (!rc && pf->n_cols == 0)
		rc = mesh_errf(err, -EINVAL, "%s: Parquet schema has no columns", pf->name);
	if (!rc && pf->n_cols > PARQUET_MAX_COLUMNS)
		rc = mesh_errf(err, -ENOTSUP, "%s: more than %d Parquet columns", pf->name, PARQUET_MAX_COLUMNS);
	free(stack);
	strbuf_release(&path);
	return rc;
}

/* ---- statistics ---- */

static bool stat_number(const struct parquet_column *c, const GByteArray *b, int64_t *i, double *d)
{
	if (!b)
		return false;
	switch (c->physical) {
	case PARQUET_INT32: if (b->len != 4) return false; *i = (int32_t)le32(b->data); return true;
	case PARQUET_INT64: if (b->len != 8) return false; *i = (int64_t)le64(b->data); return true;
	case PARQUET_FLOAT: { float f; if (b->len != 4) return false; memcpy(&f, b->data, 4); *d = f; return f == f; }
	case PARQUET_DOUBLE: if (b->len != 8) return false; memcpy(d, b->data, 8); return *d == *d;
	default: return false;
	}
}

static void read_statistics(struct parquet_file *pf)
{
	GPtrArray *rgs = pf->meta->row_groups;
	for (size_t k = 0; k < pf->n_cols; k++) {
		struct parquet_column *c = &pf->cols[k];
		bool numeric = (c->physical == PARQUET_INT32 || c->physical == PARQUET_INT64 ||
				c->physical == PARQUET_FLOAT || c->physical == PARQUET_DOUBLE) &&
			       c->is_signed && c->annotation != PARQUET_ANN_DECIMAL && c->flat;
		bool has_nulls = true, has_mm = numeric;
		int64_t nulls = 0, imin = INT64_MAX, imax = INT64_MIN;
		double dmin = 0, dmax = 0;
		bool first = true;
		for (guint r = 0; r < rgs->len; r++) {
			PqRowGroup *rg = g_ptr_array_index(rgs, r);
			PqColumnChunk *cc = g_ptr_array_index(rg->columns, k);
			PqColumnMetaData *md = cc->meta_data;
			PqStatistics *st = md->__isset_statistics ? md->statistics : NULL;
			if (!st || !st->__isset_null_count || st->null_count < 0)
				has_nulls = false;
			else
				nulls += st->null_count;
			if (md->num_values == (st && st->__isset_null_count ? st->null_count : -1))
				continue;   /* only nulls: no bounds to merge */
			const GByteArray *mn = st ? (st->__isset_min_value ? st->min_value : st->__isset_min ? st->min : NULL) : NULL;
			const GByteArray *mx = st ? (st->__isset_max_value ? st->max_value : st->__isset_max ? st->max : NULL) : NULL;
			int64_t i1 = 0, i2 = 0;
			double d1 = 0, d2 = 0;
			if (!has_mm || !stat_number(c, mn, &i1, &d1) || !stat_number(c, mx, &i2, &d2)) {
				has_mm = false;
				continue;
			}
			if (i1 < imin) imin = i1;
			if (i2 > imax) imax = i2;
			if (first || d1 < dmin) dmin = d1;
			if (first || d2 > dmax) dmax = d2;
			first = false;
		}
		c->has_null_count = has_nulls;
		c->null_count = nulls;
		if (has_mm && !first) {
			char buf[96];
			const char *t;
			size_t n;
			uint8_t raw[8];
			for (int side = 0; side < 2; side++) {
				if (c->physical == PARQUET_INT32) {
					uint32_t v = (uint32_t)(int32_t)(side ? imax : imin);
					memcpy(raw, &v, 4);
				} else if (c->physical == PARQUET_INT64) {
					uint64_t v = (uint64_t)(side ? imax : imin);
					memcpy(raw, &v, 8);
				} else if (c->physical == PARQUET_FLOAT) {
					float f = (float)(side ? dmax : dmin);
					memcpy(raw, &f, 4);
				} else {
					double d = side ? dmax : dmin;
					memcpy(raw, &d, 8);
				}
				value_text(c, raw, 8, buf, sizeof buf, &t, &n);
				*(side ? &c->max_text : &c->min_text) = xstrndup(t, n);
			}
			c->has_min_max = true;
		}
	}
}

/* ---- footer ---- */

static int check_row_groups(struct parquet_file *pf, struct mesh_err *err)
{
	PqFileMetaData *m = pf->meta;
	if (m->num_rows < 0)
		return mesh_errf(err, -EINVAL, "%s: Parquet footer gives a negative row count", pf->name);
	int64_t total = 0;
	for (guint r = 0; r < m->row_groups->len; r++) {
		PqRowGroup *rg = g_ptr_array_index(m->row_groups, r);
		if (rg->num_rows < 0 || rg->num_rows > INT64_MAX - total)
			return mesh_errf(err, -EINVAL, "%s: row group %u has an invalid row count", pf->name, r);
		total += rg->num_rows;
		if (!rg->columns || rg->columns->len != pf->n_cols)
			return mesh_errf(err, -EINVAL, "%s: row group %u has %u column chunks, the schema %zu columns",
					 pf->name, r, rg->columns ? rg->columns->len : 0, pf->n_cols);
		for (guint k = 0; k < rg->columns->len; k++) {
			PqColumnChunk *cc = g_ptr_array_index(rg->columns, k);
			struct parquet_column *col = &pf->cols[k];
			if (cc->__isset_file_path || !cc->__isset_meta_data || !cc->meta_data)
				return mesh_errf(err, -ENOTSUP, "%s: column %s of row group %u is stored elsewhere or "
						 "encrypted", pf->name, col->name, r);
			PqColumnMetaData *md = cc->meta_data;
			if ((int)md->type != (int)col->physical)
				return mesh_errf(err, -EINVAL, "%s: column %s of row group %u is %s, the schema says %s",
						 pf->name, col->name, r, physical_name(md->type), physical_name(col->physical));
			int64_t start = md->data_page_offset;
			if (md->__isset_dictionary_page_offset && md->dictionary_page_offset > 0 &&
			    md->dictionary_page_offset < start)
				start = md->dictionary_page_offset;
			if (start < 4 || md->total_compressed_size < 0 || (uint64_t)start > pf->data_end ||
			    (uint64_t)md->total_compressed_size > pf->data_end - (uint64_t)start)
				return mesh_errf(err, -EINVAL, "%s: column %s of row group %u points outside the file",
						 pf->name, col->name, r);
			if (col->flat && md->num_values != rg->num_rows)
				return mesh_errf(err, -EINVAL, "%s: column %s of row group %u has %" PRId64
						 " values for %" PRId64 " rows", pf->name, col->name, r,
						 (int64_t)md->num_values, (int64_t)rg->num_rows);
			if (!col->unsupported && md->codec != PQ_COMPRESSION_CODEC_UNCOMPRESSED &&
			    md->codec != PQ_COMPRESSION_CODEC_SNAPPY && md->codec != PQ_COMPRESSION_CODEC_GZIP &&
			    md->codec != PQ_COMPRESSION_CODEC_ZSTD) {
				char why[80];
				snprintf(why, sizeof why, "compressed with %s", codec_name(md->codec));
				col->unsupported = xstrdup(why);
			}
			for (guint e = 0; !col->unsupported && md->encodings && e < md->encodings->len; e++) {
				int enc = g_array_index(md->encodings, PqEncoding, e);
				if (enc != PQ_ENCODING_PLAIN && enc != PQ_ENCODING_PLAIN_DICTIONARY &&
				    enc != PQ_ENCODING_RLE_DICTIONARY && enc != PQ_ENCODING_RLE) {
					char why[80];
					snprintf(why, sizeof why, "%s encoding", encoding_name(enc));
					col->unsupported = xstrdup(why);
				}
			}
		}
	}
	if (total != m->num_rows)
		return mesh_errf(err, -EINVAL, "%s: the footer says %" PRId64 " rows, its row groups hold %" PRId64,
				 pf->name, (int64_t)m->num_rows, total);
	return 0;
}

int parquet_open(int fd, const char *name, struct parquet_file **out, struct mesh_err *err)
{
	*out = NULL;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return mesh_errf(err, -errno, "%s: %s", name, strerror(errno));
	uint64_t size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
	if (size < 12)
		return mesh_errf(err, -EINVAL, "%s: not a Parquet file (%llu bytes; a Parquet file starts and ends "
				 "with PAR1 around its footer)", name, (unsigned long long)size);
	uint8_t head[4], tail[8];
	int rc = pread_all(fd, head, 4, 0);
	if (!rc)
		rc = pread_all(fd, tail, 8, size - 8);
	if (rc)
		return mesh_errf(err, rc, "%s: %s", name, strerror(-rc));
	if (memcmp(head, "PAR1", 4) && memcmp(head, "PARE", 4))
		return mesh_errf(err, -EINVAL, "%s: not a Parquet file (it does not start with the PAR1 magic)", name);
	if (!memcmp(tail + 4, "PARE", 4))
		return mesh_errf(err, -ENOTSUP, "%s: encrypted Parquet footer (not supported)", name);
	if (memcmp(tail + 4, "PAR1", 4))
		return mesh_errf(err, -EINVAL, "%s: truncated Parquet file (it does not end with the PAR1 magic)", name);
	uint32_t flen = le32(tail);
	if (flen == 0 || (uint64_t)flen > size - 12 || flen > PARQUET_MAX_FOOTER)
		return mesh_errf(err, -EINVAL, "%s: corrupt Parquet footer (length %u in a file of %llu bytes)", name,
				 flen, (unsigned long long)size);
	uint8_t *buf = xmalloc(flen);
	rc = pread_all(fd, buf, flen, size - 8 - flen);
	if (rc) {
		free(buf);
		return mesh_errf(err, rc, "%s: %s", name, strerror(-rc));
	}
	struct parquet_file *pf = xcalloc(1, sizeof *pf);
	pf->fd = fd;
	pf->name = xstrdup(name);
	pf->size = size;
	pf->data_end = size - 8 - flen;
	pf->meta = g_object_new(PQ_TYPE_FILE_META_DATA, NULL);
	char why[200];
	size_t used = 0;
	rc = thrift_decode(buf, flen, THRIFT_STRUCT(pf->meta), &used, why, sizeof why);
	pf->footer = buf;
	pf->footer_len = flen;
	if (rc)
		rc = mesh_errf(err, -EINVAL, "%s: corrupt Parquet footer: %s", name, why);
	if (!rc)
		rc = read_schema(pf, err);
	if (!rc)
		rc = check_row_groups(pf, err);
	if (rc) {
		parquet_close(pf);
		return rc;
	}
	read_statistics(pf);
	*out = pf;
	return 0;
}

void parquet_close(struct parquet_file *pf)
{
	if (!pf)
		return;
	for (size_t i = 0; i < pf->n_cols; i++) {
		free(pf->cols[i].name);
		free(pf->cols[i].min_text);
		free(pf->cols[i].max_text);
		free(pf->cols[i].unsupported);
	}
	free(pf->cols);
	free(pf->leaf_schema);
	free(pf->footer);
	if (pf->meta)
		g_object_unref(pf->meta);
	free(pf->name);
	free(pf);
}

int64_t parquet_num_rows(const struct parquet_file *pf) { return pf->meta->num_rows; }
size_t parquet_num_row_groups(const struct parquet_file *pf) { return pf->meta->row_groups->len; }
size_t parquet_num_columns(const struct parquet_file *pf) { return pf->n_cols; }
const struct parquet_column *parquet_column_at(const struct parquet_file *pf, size_t i)
{
	return i < pf->n_cols ? &pf->cols[i] : NULL;
}
uint64_t parquet_file_size(const struct parquet_file *pf) { return pf->size; }
const char *parquet_created_by(const struct parquet_file *pf)
{
	return pf->meta->__isset_created_by ? pf->meta->created_by : NULL;
}

/* ---- RLE / bit-packed hybrid ---- */

struct rle {
	const uint8_t *p, *end;
	int bw;
	uint64_t left;
	bool packed;
	uint32_t value;
	const uint8_t *bits;
	uint64_t bitpos;
};

static void rle_init(struct rle *r, const uint8_t *p, const uint8_t *end, int bw)
{
	memset(r, 0, sizeof *r);
	r->p = p;
	r->end = end;
	r->bw = bw;
}

static int rle_next(struct rle *r, uint32_t *out)
{
	if (!r->left) {
		uint64_t h = 0;
		int shift = 0;
		uint8_t b;
		do {
			if (r->p >= r->end || shift > 35)
				return -1;
			b = *r->p++;
			h |= (uint64_t)(b & 0x7f) << shift;
			shift += 7;
		} while (b & 0x80);
		if (h & 1) {
			uint64_t groups = h >> 1;
			uint64_t nbytes = groups * (uint64_t)r->bw;
			if (!groups || nbytes > (uint64_t)(r->end - r->p))
				return -1;
			r->left = groups * 8;
			r->bits = r->p;
			r->bitpos = 0;
			r->packed = true;
			r->p += nbytes;
		} else {
			size_t nb = ((size_t)r->bw + 7) / 8;
			r->left = h >> 1;
			if (!r->left || nb > (size_t)(r->end - r->p))
				return -1;
			r->value = 0;
			for (size_t i = 0; i < nb; i++)
				r->value |= (uint32_t)r->p[i] << (8 * i);
			r->p += nb;
			r->packed = false;
		}
	}
	r->left--;
	if (!r->packed) {
		*out = r->value;
		return 0;
	}
	uint64_t v = 0;
	size_t byte = (size_t)(r->bitpos / 8), shift = (size_t)(r->bitpos % 8);
	size_t need = (shift + (size_t)r->bw + 7) / 8;
	for (size_t i = 0; i < need; i++)
		v |= (uint64_t)r->bits[byte + i] << (8 * i);
	r->bitpos += (uint64_t)r->bw;
	*out = r->bw ? (uint32_t)((v >> shift) & ((r->bw == 32) ? 0xffffffffu : ((1u << r->bw) - 1))) : 0;
	return 0;
}

/* ---- decompression ---- */

static int decompress(int codec, const uint8_t *src, size_t n, uint8_t *dst, size_t want, char *why, size_t wl)
{
	switch (codec) {
	case PQ_COMPRESSION_CODEC_UNCOMPRESSED:
		if (n != want) {
			snprintf(why, wl, "page is %zu bytes, its header says %zu", n, want);
			return -EINVAL;
		}
		memcpy(dst, src, n);
		return 0;
	case PQ_COMPRESSION_CODEC_SNAPPY: {
		size_t len = 0;
		if (snappy_uncompressed_length((const char *)src, n, &len) != SNAPPY_OK || len != want ||
		    snappy_uncompress((const char *)src, n, (char *)dst, &len) != SNAPPY_OK || len != want) {
			snprintf(why, wl, "corrupt Snappy page");
			return -EINVAL;
		}
		return 0;
	}
	case PQ_COMPRESSION_CODEC_ZSTD: {
		size_t r = ZSTD_decompress(dst, want, src, n);
		if (ZSTD_isError(r) || r != want) {
			snprintf(why, wl, "corrupt Zstandard page%s%s", ZSTD_isError(r) ? ": " : "",
				 ZSTD_isError(r) ? ZSTD_getErrorName(r) : "");
			return -EINVAL;
		}
		return 0;
	}
	case PQ_COMPRESSION_CODEC_GZIP: {
		z_stream z;
		memset(&z, 0, sizeof z);
		if (inflateInit2(&z, 15 + 32) != Z_OK) {
			snprintf(why, wl, "zlib init failed");
			return -ENOMEM;
		}
		z.next_in = (Bytef *)src;
		z.avail_in = (uInt)n;
		z.next_out = dst;
		z.avail_out = (uInt)want;
		int zr;
		while ((zr = inflate(&z, Z_FINISH)) == Z_STREAM_END && z.avail_in && z.avail_out)
			inflateReset(&z);   /* concatenated gzip members */
		size_t got = want - z.avail_out;
		inflateEnd(&z);
		if ((zr != Z_STREAM_END && zr != Z_OK && zr != Z_BUF_ERROR) || got != want) {
			snprintf(why, wl, "corrupt gzip page");
			return -EINVAL;
		}
		return 0;
	}
	default:
		snprintf(why, wl, "compressed with %s (not supported)", codec_name(codec));
		return -ENOTSUP;
	}
}

/* ---- cursor ---- */

struct parquet_cursor {
	struct parquet_file *pf;
	const struct parquet_column *c;
	size_t col;
	guint rg;                  /* next row group to open */
	bool in_chunk;
	uint64_t pos, end;         /* file range of the current chunk */
	int64_t chunk_left;        /* values of the chunk not yet paged in */
	int codec;
	/* dictionary of the current chunk */
	uint8_t *dict_buf;
	uint32_t *dict_off, *dict_len;
	uint32_t dict_n;
	/* current page */
	uint8_t *raw, *page;
	size_t raw_cap, page_cap;
	int64_t page_left;
	bool has_def;
	struct rle def;
	int encoding;              /* PLAIN, dictionary (2/8) or RLE (booleans) */
	const uint8_t *vp, *vend;  /* PLAIN values */
	uint64_t bool_bit;
	struct rle idx;            /* dictionary indices or RLE booleans */
	char text[160];
	uint64_t bytes;
};

static size_t fixed_width(const struct parquet_column *c)
{
	switch (c->physical) {
	case PARQUET_INT32: case PARQUET_FLOAT: return 4;
	case PARQUET_INT64: case PARQUET_DOUBLE: return 8;
	case PARQUET_INT96: return 12;
	case PARQUET_FIXED_LEN_BYTE_ARRAY: return (size_t)c->type_length;
	default: return 0;
	}
}

int parquet_cursor_open(struct parquet_file *pf, size_t column, struct parquet_cursor **out, struct mesh_err *err)
{
	*out = NULL;
	if (column >= pf->n_cols)
		return mesh_errf(err, -EINVAL, "%s: no column %zu", pf->name, column);
	const struct parquet_column *c = &pf->cols[column];
	if (c->unsupported)
		return mesh_errf(err, -ENOTSUP, "%s: column %s: %s", pf->name, c->name, c->unsupported);
	struct parquet_cursor *cur = xcalloc(1, sizeof *cur);
	cur->pf = pf;
	cur->c = c;
	cur->col = column;
	*out = cur;
	return 0;
}

void parquet_cursor_free(struct parquet_cursor *cur)
{
	if (!cur)
		return;
	free(cur->dict_buf);
	free(cur->dict_off);
	free(cur->dict_len);
	free(cur->raw);
	free(cur->page);
	free(cur);
}

uint64_t parquet_cursor_bytes(const struct parquet_cursor *cur)
{
	return cur->bytes;
}

static int cur_fail(struct parquet_cursor *cur, int rc, struct mesh_err *err, const char *why)
{
	return mesh_errf(err, rc, "%s: column %s, row group %u: %s", cur->pf->name, cur->c->name, cur->rg, why);
}

static void *grow(uint8_t **buf, size_t *cap, size_t n)
{
	if (n > *cap || !*buf) {   /* never NULL: memcpy of 0 bytes to NULL is undefined */
		free(*buf);
		*buf = xmalloc(n ? n : 1);
		*cap = n;
	}
	return *buf;
}

/* PLAIN values of the dictionary page into dict_* (the cursor owns them). */
static int load_dictionary(struct parquet_cursor *cur, uint8_t *data, size_t n, int32_t count, struct mesh_err *err)
{
	free(cur->dict_buf);
	free(cur->dict_off);
	free(cur->dict_len);
	cur->dict_buf = data;
	cur->dict_n = 0;
	if (count < 0 || (size_t)count > n + 1)
		return cur_fail(cur, -EINVAL, err, "dictionary page holds fewer bytes than its values");
	cur->dict_off = xcalloc((size_t)count + 1, sizeof *cur->dict_off);
	cur->dict_len = xcalloc((size_t)count + 1, sizeof *cur->dict_len);
	size_t w = fixed_width(cur->c), at = 0;
	for (int32_t i = 0; i < count; i++) {
		uint32_t len;
		if (cur->c->physical == PARQUET_BYTE_ARRAY) {
			if (n - at < 4)
				return cur_fail(cur, -EINVAL, err, "truncated dictionary page");
			len = le32(data + at);
			at += 4;
		} else if (cur->c->physical == PARQUET_BOOLEAN) {
			return cur_fail(cur, -EINVAL, err, "dictionary page for a BOOLEAN column");
		} else {
			len = (uint32_t)w;
		}
		if (len > n - at)
			return cur_fail(cur, -EINVAL, err, "truncated dictionary page");
		cur->dict_off[i] = (uint32_t)at;
		cur->dict_len[i] = len;
		at += len;
	}
	cur->dict_n = (uint32_t)count;
	return 0;
}

/* Reads the next page header of the current chunk and its bytes: 1 when a
 * data page is ready, 0 when the chunk is done, negative on errors. */
static int next_page(struct parquet_cursor *cur, struct mesh_err *err)
{
	char why[200];
	while (cur->chunk_left > 0) {
		if (cur->pos >= cur->end)
			return cur_fail(cur, -EINVAL, err, "column chunk ends before all its values");
		/* the header: try a small window first, grow when it is cut */
		PqPageHeader *ph = NULL;
		size_t used = 0;
		int rc = -EINVAL;
		for (uint64_t window = 4096;; window *= 16) {
			uint64_t avail = cur->end - cur->pos;
			size_t n = (size_t)(window < avail ? window : avail);
			grow(&cur->raw, &cur->raw_cap, n);
			rc = pread_all(cur->pf->fd, cur->raw, n, cur->pos);
			if (rc)
				return cur_fail(cur, rc, err, strerror(-rc));
			if (ph)
				g_object_unref(ph);
			ph = g_object_new(PQ_TYPE_PAGE_HEADER, NULL);
			rc = thrift_decode(cur->raw, n, THRIFT_STRUCT(ph), &used, why, sizeof why);
			if (!rc || n == avail || window >= PARQUET_MAX_PAGE)
				break;
		}
		if (rc) {
			g_object_unref(ph);
			return cur_fail(cur, -EINVAL, err, "corrupt page header");
		}
		cur->pos += used;
		int32_t csize = ph->compressed_page_size, usize = ph->uncompressed_page_size;
		if (csize < 0 || usize < 0 || (uint32_t)csize > PARQUET_MAX_PAGE || (uint32_t)usize > PARQUET_MAX_PAGE ||
		    (uint64_t)csize > cur->end - cur->pos) {
			g_object_unref(ph);
			return cur_fail(cur, -EINVAL, err, "page size outside the column chunk or over the limit");
		}
		uint64_t data_at = cur->pos;
		cur->pos += (uint64_t)csize;
		cur->bytes += used + (uint64_t)csize;
		int type = ph->type;
		if (type != PQ_PAGE_TYPE_DATA_PAGE && type != PQ_PAGE_TYPE_DATA_PAGE_V2 &&
		    type != PQ_PAGE_TYPE_DICTIONARY_PAGE) {
			g_object_unref(ph);
			continue;   /* index pages: nothing to read */
		}
		grow(&cur->raw, &cur->raw_cap, (size_t)csize);
		rc = pread_all(cur->pf->fd, cur->raw, (size_t)csize, data_at);
		if (rc) {
			g_object_unref(ph);
			return cur_fail(cur, rc, err, strerror(-rc));
		}
		if (type == PQ_PAGE_TYPE_DICTIONARY_PAGE) {
			if (!ph->__isset_dictionary_page_header) {
				g_object_unref(ph);
				return cur_fail(cur, -EINVAL, err, "dictionary page without its header");
			}
			uint8_t *dict = xmalloc((size_t)usize + 1);
			rc = decompress(cur->codec, cur->raw, (size_t)csize, dict, (size_t)usize, why, sizeof why);
			int32_t count = ph->dictionary_page_header->num_values;
			g_object_unref(ph);
			if (rc) {
				free(dict);
				return cur_fail(cur, rc, err, why);
			}
			rc = load_dictionary(cur, dict, (size_t)usize, count, err);
			if (rc)
				return rc;
			continue;
		}
		/* a data page */
		int64_t nvalues;
		const uint8_t *levels, *values, *vend;
		size_t def_len = 0;
		bool v2 = type == PQ_PAGE_TYPE_DATA_PAGE_V2;
		grow(&cur->page, &cur->page_cap, (size_t)usize);
		if (!v2) {
			if (!ph->__isset_data_page_header) {
				g_object_unref(ph);
				return cur_fail(cur, -EINVAL, err, "data page without its header");
			}
			PqDataPageHeader *dh = ph->data_page_header;
			nvalues = dh->num_values;
			cur->encoding = dh->encoding;
			if (cur->c->optional && dh->definition_level_encoding != PQ_ENCODING_RLE) {
				g_object_unref(ph);
				snprintf(why, sizeof why, "definition levels in %s (not supported)",
					 encoding_name(dh->definition_level_encoding));
				return cur_fail(cur, -ENOTSUP, err, why);
			}
			rc = decompress(cur->codec, cur->raw, (size_t)csize, cur->page, (size_t)usize, why, sizeof why);
			if (rc) {
				g_object_unref(ph);
				return cur_fail(cur, rc, err, why);
			}
			levels = cur->page;
			vend = cur->page + usize;
			if (cur->c->optional) {
				if (usize < 4 || le32(levels) > (uint32_t)usize - 4) {
					g_object_unref(ph);
					return cur_fail(cur, -EINVAL, err, "definition levels run past the page");
				}
				def_len = le32(levels);
				levels += 4;
			}
			values = levels + def_len;
		} else {
			if (!ph->__isset_data_page_header_v2) {
				g_object_unref(ph);
				return cur_fail(cur, -EINVAL, err, "data page v2 without its header");
			}
			PqDataPageHeaderV2 *dh = ph->data_page_header_v2;
			nvalues = dh->num_values;
			cur->encoding = dh->encoding;
			int32_t rl = dh->repetition_levels_byte_length, dl = dh->definition_levels_byte_length;
			if (rl < 0 || dl < 0 || (int64_t)rl + dl > csize || (int64_t)rl + dl > usize) {
				g_object_unref(ph);
				return cur_fail(cur, -EINVAL, err, "levels run past the page");
			}
			size_t lv = (size_t)rl + (size_t)dl;
			memcpy(cur->page, cur->raw, lv);
			bool compressed = !dh->__isset_is_compressed || dh->is_compressed;
			rc = decompress(compressed ? cur->codec : PQ_COMPRESSION_CODEC_UNCOMPRESSED, cur->raw + lv,
					(size_t)csize - lv, cur->page + lv, (size_t)usize - lv, why, sizeof why);
			if (rc) {
				g_object_unref(ph);
				return cur_fail(cur, rc, err, why);
			}
			levels = cur->page + rl;
			def_len = (size_t)dl;
			values = levels + def_len;
			vend = cur->page + usize;
		}
		g_object_unref(ph);
		if (nvalues < 0 || nvalues > cur->chunk_left)
			return cur_fail(cur, -EINVAL, err, "page holds more values than its column chunk");
		cur->chunk_left -= nvalues;
		cur->page_left = nvalues;
		cur->has_def = cur->c->optional;
		if (cur->has_def)
			rle_init(&cur->def, levels, levels + def_len, 1);
		cur->vp = values;
		cur->vend = vend;
		cur->bool_bit = 0;
		switch (cur->encoding) {
		case PQ_ENCODING_PLAIN:
			break;
		case PQ_ENCODING_PLAIN_DICTIONARY:
		case PQ_ENCODING_RLE_DICTIONARY:
			if (!cur->dict_off)
				return cur_fail(cur, -EINVAL, err, "dictionary-encoded page without a dictionary page");
			if (values >= vend && nvalues > 0) {
				/* all nulls: no bit width byte needed, checked per value */
				rle_init(&cur->idx, vend, vend, 0);
				break;
			}
			if (values < vend && (*values > 32))
				return cur_fail(cur, -EINVAL, err, "dictionary index bit width over 32");
			rle_init(&cur->idx, values + 1, vend, values < vend ? *values : 0);
			break;
		case PQ_ENCODING_RLE:
			if (cur->c->physical != PARQUET_BOOLEAN)
				return cur_fail(cur, -ENOTSUP, err, "RLE-encoded values in a non-BOOLEAN column");
			if (vend - values < 4 || le32(values) > (uint32_t)(vend - values - 4))
				return cur_fail(cur, -EINVAL, err, "RLE boolean values run past the page");
			rle_init(&cur->idx, values + 4, values + 4 + le32(values), 1);
			break;
		default:
			snprintf(why, sizeof why, "%s encoding (not supported)", encoding_name(cur->encoding));
			return cur_fail(cur, -ENOTSUP, err, why);
		}
		return 1;
	}
	return 0;
}

/* Opens the next row group's chunk: 1, or 0 after the last. */
static int next_chunk(struct parquet_cursor *cur)
{
	GPtrArray *rgs = cur->pf->meta->row_groups;
	while (cur->rg < rgs->len) {
		PqRowGroup *rg = g_ptr_array_index(rgs, cur->rg++);
		PqColumnMetaData *md = ((PqColumnChunk *)g_ptr_array_index(rg->columns, cur->col))->meta_data;
		int64_t start = md->data_page_offset;
		if (md->__isset_dictionary_page_offset && md->dictionary_page_offset > 0 &&
		    md->dictionary_page_offset < start)
			start = md->dictionary_page_offset;
		cur->pos = (uint64_t)start;
		cur->end = (uint64_t)start + (uint64_t)md->total_compressed_size;
		cur->chunk_left = md->num_values;
		cur->codec = md->codec;
		free(cur->dict_off);
		free(cur->dict_len);
		free(cur->dict_buf);
		cur->dict_off = cur->dict_len = NULL;
		cur->dict_buf = NULL;
		cur->dict_n = 0;
		if (cur->chunk_left > 0)
			return 1;
	}
	return 0;
}

int parquet_cursor_next(struct parquet_cursor *cur, const char **text, size_t *len, bool *is_null,
			struct mesh_err *err)
{
	while (cur->page_left == 0) {
		int rc = cur->in_chunk ? next_page(cur, err) : 0;
		if (rc < 0)
			return rc;
		if (rc == 0) {
			cur->in_chunk = false;
			if (!next_chunk(cur))
				return 0;
			cur->in_chunk = true;
		}
	}
	cur->page_left--;
	*is_null = false;
	*text = NULL;
	*len = 0;
	if (cur->has_def) {
		uint32_t d;
		if (rle_next(&cur->def, &d) < 0)
			return cur_fail(cur, -EINVAL, err, "corrupt definition levels");
		if (d == 0) {
			*is_null = true;
			return 1;
		}
	}
	const struct parquet_column *c = cur->c;
	const uint8_t *p;
	size_t n;
	uint8_t b;
	if (cur->encoding == PQ_ENCODING_PLAIN) {
		if (c->physical == PARQUET_BOOLEAN) {
			uint64_t byte = cur->bool_bit / 8;
			if (byte >= (uint64_t)(cur->vend - cur->vp))
				return cur_fail(cur, -EINVAL, err, "values run past the page");
			b = (cur->vp[byte] >> (cur->bool_bit % 8)) & 1;
			cur->bool_bit++;
			p = &b;
			n = 1;
		} else if (c->physical == PARQUET_BYTE_ARRAY) {
			if (cur->vend - cur->vp < 4 || le32(cur->vp) > (uint64_t)(cur->vend - cur->vp - 4))
				return cur_fail(cur, -EINVAL, err, "values run past the page");
			n = le32(cur->vp);
			p = cur->vp + 4;
			cur->vp += 4 + n;
		} else {
			n = fixed_width(c);
			if ((size_t)(cur->vend - cur->vp) < n)
				return cur_fail(cur, -EINVAL, err, "values run past the page");
			p = cur->vp;
			cur->vp += n;
		}
	} else if (cur->encoding == PQ_ENCODING_RLE) {
		uint32_t v;
		if (rle_next(&cur->idx, &v) < 0)
			return cur_fail(cur, -EINVAL, err, "corrupt RLE boolean values");
		b = v & 1;
		p = &b;
		n = 1;
	} else {
		uint32_t i;
		if (rle_next(&cur->idx, &i) < 0)
			return cur_fail(cur, -EINVAL, err, "corrupt dictionary indices");
		if (i >= cur->dict_n)
			return cur_fail(cur, -EINVAL, err, "dictionary index out of range");
		p = cur->dict_buf + cur->dict_off[i];
		n = cur->dict_len[i];
	}
	if (!value_text(c, p, n, cur->text, sizeof cur->text, text, len))
		return cur_fail(cur, -ENOTSUP, err, "a value meshfs cannot show");
	return 1;
}

/* ---- rewriting the footer for a file without some columns ---- */

void parquet_chunk_range(const struct parquet_file *pf, size_t rg, size_t col, uint64_t *start, uint64_t *len)
{
	PqRowGroup *g = g_ptr_array_index(pf->meta->row_groups, rg);
	PqColumnMetaData *md = ((PqColumnChunk *)g_ptr_array_index(g->columns, col))->meta_data;
	int64_t s = md->data_page_offset;
	if (md->__isset_dictionary_page_offset && md->dictionary_page_offset > 0 && md->dictionary_page_offset < s)
		s = md->dictionary_page_offset;
	*start = (uint64_t)s;                        /* checked by check_row_groups */
	*len = (uint64_t)md->total_compressed_size;
}

static bool logical_type_known(const PqLogicalType *lt)
{
	return lt->__isset_STRING || lt->__isset_MAP || lt->__isset_LIST || lt->__isset_ENUM ||
	       lt->__isset_DECIMAL || lt->__isset_DATE || lt->__isset_TIME || lt->__isset_TIMESTAMP ||
	       lt->__isset_INTEGER || lt->__isset_UNKNOWN || lt->__isset_JSON || lt->__isset_BSON ||
	       lt->__isset_UUID;
}

/* Which schema elements stay: a leaf when keep[] says so, a group when any
 * of its children stays (its num_children becomes the count that stays).
 * The tree was checked by read_schema; walked with an explicit stack. */
static int project_schema(const struct parquet_file *pf, GPtrArray *schema, const bool *keep, struct mesh_err *err)
{
	guint n = schema->len;
	bool *keep_el = xcalloc(n, sizeof *keep_el);
	struct frame { guint el; int64_t left; int32_t kept; } *st = xcalloc(n + 1, sizeof *st);
	size_t depth = 0, leaf = 0;
	PqSchemaElement *root = g_ptr_array_index(schema, 0);
	st[0] = (struct frame){0, root->__isset_num_children ? root->num_children : 0, 0};
	int rc = 0;
	for (guint i = 1; i <= n && !rc; i++) {
		while (depth > 0 && (st[depth].left == 0 || i == n)) {
			PqSchemaElement *g = g_ptr_array_index(schema, st[depth].el);
			g->num_children = st[depth].kept;
			keep_el[st[depth].el] = st[depth].kept > 0;
			depth--;
			if (keep_el[st[depth + 1].el])
				st[depth].kept++;
		}
		if (i == n)
			break;
		if (st[depth].left <= 0) {
			rc = -EINVAL;
			break;
		}
		st[depth].left--;
		PqSchemaElement *se = g_ptr_array_index(schema, i);
		if (se->__isset_num_children && se->num_children > 0) {
			depth++;
			st[depth] = (struct frame){i, se->num_children, 0};
			continue;
		}
		if (leaf >= pf->n_cols) {
			rc = -EINVAL;
			break;
		}
		keep_el[i] = keep[leaf++];
		if (keep_el[i])
			st[depth].kept++;
		if (keep_el[i] && se->__isset_logicalType && !logical_type_known(se->logicalType))
			se->__isset_logicalType = FALSE;   /* an empty union would not be valid Thrift */
	}
	if (rc || leaf != pf->n_cols)
		rc = mesh_errf(err, -EINVAL, "%s: the Parquet schema changed under the rewrite", pf->name);
	else if (st[0].kept == 0)
		rc = mesh_errf(err, -ENOTSUP, "%s: every column is masked: its view would have none", pf->name);
	if (!rc) {
		root->num_children = st[0].kept;
		for (guint i = n; i-- > 1;)
			if (!keep_el[i])
				g_ptr_array_remove_index(schema, i);
	}
	free(keep_el);
	free(st);
	return rc;
}

static void project_row_groups(const struct parquet_file *pf, PqFileMetaData *m, const bool *keep,
			       const uint64_t *new_start)
{
	for (guint r = 0; r < m->row_groups->len; r++) {
		PqRowGroup *rg = g_ptr_array_index(m->row_groups, r);
		int64_t total = 0;
		for (guint k = rg->columns->len; k-- > 0;) {
			if (!keep[k]) {
				g_ptr_array_remove_index(rg->columns, k);
				continue;
			}
			PqColumnChunk *cc = g_ptr_array_index(rg->columns, k);
			PqColumnMetaData *md = cc->meta_data;
			uint64_t start, len;
			parquet_chunk_range(pf, r, k, &start, &len);
			uint64_t ns = new_start[(size_t)r * pf->n_cols + k];
			md->data_page_offset = (int64_t)((uint64_t)md->data_page_offset - start + ns);
			if (md->__isset_dictionary_page_offset && (uint64_t)md->dictionary_page_offset >= start &&
			    (uint64_t)md->dictionary_page_offset < start + len)
				md->dictionary_page_offset = (int64_t)((uint64_t)md->dictionary_page_offset - start + ns);
			md->__isset_index_page_offset = FALSE;
			/* deprecated: where the chunk (or once its metadata) is */
			if (cc->file_offset != 0)
				cc->file_offset = (uint64_t)cc->file_offset >= start && (uint64_t)cc->file_offset <= start + len
							  ? (int64_t)((uint64_t)cc->file_offset - start + ns)
							  : (int64_t)(ns + len);
			if (md->total_uncompressed_size > 0 && md->total_uncompressed_size <= INT64_MAX - total)
				total += md->total_uncompressed_size;
		}
		rg->total_byte_size = total;
	}
}

int parquet_project_footer(const struct parquet_file *pf, const bool *keep, const uint64_t *new_start,
			   struct strbuf *out, struct mesh_err *err)
{
	PqFileMetaData *m = g_object_new(PQ_TYPE_FILE_META_DATA, NULL);
	char why[200];
	int rc = thrift_decode(pf->footer, pf->footer_len, THRIFT_STRUCT(m), NULL, why, sizeof why);
	if (rc)
		rc = mesh_errf(err, -EINVAL, "%s: corrupt Parquet footer: %s", pf->name, why);
	if (!rc && (m->schema->len != pf->meta->schema->len || m->row_groups->len != pf->meta->row_groups->len))
		rc = mesh_errf(err, -EINVAL, "%s: the Parquet footer changed under the rewrite", pf->name);
	if (!rc)
		rc = project_schema(pf, m->schema, keep, err);
	if (rc) {
		g_object_unref(m);
		return rc;
	}
	project_row_groups(pf, m, keep, new_start);
	bool dropped = false;
	for (size_t k = 0; k < pf->n_cols; k++)
		dropped |= !keep[k];
	if (m->__isset_column_orders) {
		if (m->column_orders->len != pf->n_cols) {
			g_ptr_array_set_size(m->column_orders, 0);
			m->__isset_column_orders = FALSE;
		}
		for (guint k = m->column_orders->len; k-- > 0;) {
			PqColumnOrder *o = g_ptr_array_index(m->column_orders, k);
			if (!keep[k] || !o->__isset_TYPE_ORDER) {
				/* an order of a kind this IDL does not know reads back as an
				 * empty union: leave all orders out rather than write one */
				if (keep[k]) {
					g_ptr_array_set_size(m->column_orders, 0);
					m->__isset_column_orders = FALSE;
					break;
				}
				g_ptr_array_remove_index(m->column_orders, k);
			}
		}
	}
	/* Arrow's and pandas' own schemas name every column: a reader trusts
	 * them over the Parquet schema, so they go with the first dropped one
	 * (pyarrow rebuilds its schema from the Parquet one). */
	if (dropped && m->__isset_key_value_metadata)
		for (guint i = m->key_value_metadata->len; i-- > 0;) {
			PqKeyValue *kv = g_ptr_array_index(m->key_value_metadata, i);
			if (kv->key && (!strcmp(kv->key, "ARROW:schema") || !strcmp(kv->key, "pandas")))
				g_ptr_array_remove_index(m->key_value_metadata, i);
		}

	GByteArray *bytes = g_byte_array_new();
	MeshThriftSlice *sink = g_object_new(mesh_thrift_slice_get_type(), NULL);
	sink->sink = bytes;
	ThriftProtocol *p = g_object_new(THRIFT_TYPE_COMPACT_PROTOCOL, "transport", sink, NULL);
	GError *gerr = NULL;
	if (thrift_struct_write(THRIFT_STRUCT(m), p, &gerr) < 0)
		rc = mesh_errf(err, -EIO, "%s: writing the Parquet footer: %s", pf->name,
			       gerr && gerr->message ? gerr->message : "Thrift error");
	else if (bytes->len > PARQUET_MAX_FOOTER)
		rc = mesh_errf(err, -EFBIG, "%s: the rewritten footer is larger than %u bytes", pf->name,
			       PARQUET_MAX_FOOTER);
	else
		strbuf_add(out, bytes->data, bytes->len);
	g_clear_error(&gerr);
	g_object_unref(p);
	g_object_unref(sink);
	g_byte_array_unref(bytes);
	g_object_unref(m);
	return rc;
}
