/*
 * parquet_gen.c - a small Parquet writer for the tests' corpus: turns a CSV
 * file into a Parquet file through the same Thrift layer meshfs reads with
 * (types generated from fs/formats/parquet_footer.thrift).
 *
 *   parquet_gen [options] IN.csv OUT.parquet TYPES
 *     TYPES       comma-separated, one per CSV column: string, int32, int64,
 *                 double, boolean, date, timestamp (microseconds, UTC);
 *                 a trailing ? makes the column optional (empty field = null)
 *     --codec C   none (default), snappy, gzip, zstd
 *     --dict      dictionary-encode string columns (RLE_DICTIONARY)
 *     --v2        write data pages v2
 *     --rows N    rows per row group (default: all in one)
 *     --no-stats  omit column statistics
 *
 * Not a general writer: flat columns, one data page per column chunk, no
 * page index, no bloom filters.  A test tool, never installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib-object.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <thrift/c_glib/protocol/thrift_compact_protocol.h>
#include <thrift/c_glib/transport/thrift_memory_buffer.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "csv.h"
#include "mesh_util.h"
#include "pq_parquet_footer_types.h"

enum ctype { C_STRING, C_INT32, C_INT64, C_DOUBLE, C_BOOLEAN, C_DATE, C_TIMESTAMP };

struct col {
	char *name;
	enum ctype type;
	bool optional;
	char **values;   /* NULL entries are nulls */
};

static int codec = PQ_COMPRESSION_CODEC_UNCOMPRESSED;
static bool dict, v2, stats = true;

static void die(const char *msg)
{
	fprintf(stderr, "parquet_gen: %s\n", msg);
	exit(2);
}

/* A struct as Thrift compact bytes. */
/* One buffer and protocol for the whole run: libthrift's memory buffer
 * does not chain up its finalizer, so each one freed leaks a little. */
static GByteArray *encode(ThriftStruct *s)
{
	static ThriftMemoryBuffer *mb;
	static ThriftProtocol *p;
	if (!mb) {
		mb = g_object_new(THRIFT_TYPE_MEMORY_BUFFER, "buf_size", 64u << 20, NULL);
		p = g_object_new(THRIFT_TYPE_COMPACT_PROTOCOL, "transport", mb, NULL);
	}
	g_byte_array_set_size(mb->buf, 0);
	GError *e = NULL;
	if (thrift_struct_write(s, p, &e) < 0)
		die(e->message);
	GByteArray *out = g_byte_array_new();
	g_byte_array_append(out, mb->buf->data, mb->buf->len);
	return out;
}

static void put32(GByteArray *b, uint32_t v)
{
	uint8_t x[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24};
	g_byte_array_append(b, x, 4);
}

static void put_varint(GByteArray *b, uint64_t v)
{
	while (v >= 0x80) {
		uint8_t x = (uint8_t)(v | 0x80);
		g_byte_array_append(b, &x, 1);
		v >>= 7;
	}
	uint8_t x = (uint8_t)v;
	g_byte_array_append(b, &x, 1);
}

/* RLE/bit-packed hybrid, all as one bit-packed run (padded to 8 values). */
static void put_bitpacked(GByteArray *b, const uint32_t *v, size_t n, int bw)
{
	size_t groups = (n + 7) / 8;
	put_varint(b, (uint64_t)groups << 1 | 1);
	size_t nbytes = groups * (size_t)bw;
	uint8_t *bits = calloc(nbytes + 8, 1);
	uint64_t pos = 0;
	for (size_t i = 0; i < n; i++, pos += (uint64_t)bw)
		for (int k = 0; k < bw; k++)
			if (v[i] >> k & 1)
				bits[(pos + (uint64_t)k) / 8] |= (uint8_t)(1u << ((pos + (uint64_t)k) % 8));
	g_byte_array_append(b, bits, (guint)nbytes);
	free(bits);
}

static int64_t days_of(const char *s)
{
	struct tm tm = {0};
	if (!strptime(s, "%Y-%m-%d", &tm))
		die("bad date");
	return (int64_t)(timegm(&tm) / 86400);
}

static int64_t micros_of(const char *s)
{
	struct tm tm = {0};
	const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		rest = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
	if (!rest)
		die("bad timestamp");
	int64_t us = (int64_t)timegm(&tm) * 1000000;
	if (*rest == '.') {
		int64_t frac = 0, digits = 0;
		for (rest++; *rest >= '0' && *rest <= '9'; rest++, digits++)
			if (digits < 6)
				frac = frac * 10 + (*rest - '0');
		for (; digits < 6; digits++)
			frac *= 10;
		us += frac;
	}
	return us;
}

static PqType physical_of(enum ctype t)
{
	switch (t) {
	case C_STRING: return PQ_TYPE_BYTE_ARRAY;
	case C_INT32: case C_DATE: return PQ_TYPE_INT32;
	case C_INT64: case C_TIMESTAMP: return PQ_TYPE_INT64;
	case C_DOUBLE: return PQ_TYPE_DOUBLE;
	default: return PQ_TYPE_BOOLEAN;
	}
}

/* PLAIN bytes of one value. */
static void plain(GByteArray *b, enum ctype t, const char *v)
{
	switch (t) {
	case C_STRING: put32(b, (uint32_t)strlen(v)); g_byte_array_append(b, (const guint8 *)v, (guint)strlen(v)); break;
	case C_INT32: put32(b, (uint32_t)(int32_t)strtol(v, NULL, 10)); break;
	case C_DATE: put32(b, (uint32_t)(int32_t)days_of(v)); break;
	case C_INT64: case C_TIMESTAMP: {
		int64_t x = t == C_INT64 ? strtoll(v, NULL, 10) : micros_of(v);
		g_byte_array_append(b, (const guint8 *)&x, 8);
		break;
	}
	case C_DOUBLE: { double d = strtod(v, NULL); g_byte_array_append(b, (const guint8 *)&d, 8); break; }
	default: break;
	}
}

static GByteArray *compress_bytes(const uint8_t *src, size_t n)
{
	GByteArray *out = g_byte_array_new();
	if (codec == PQ_COMPRESSION_CODEC_SNAPPY) {
		size_t cap = snappy_max_compressed_length(n);
		g_byte_array_set_size(out, (guint)cap);
		if (snappy_compress((const char *)src, n, (char *)out->data, &cap) != SNAPPY_OK)
			die("snappy");
		g_byte_array_set_size(out, (guint)cap);
	} else if (codec == PQ_COMPRESSION_CODEC_ZSTD) {
		size_t cap = ZSTD_compressBound(n);
		g_byte_array_set_size(out, (guint)cap);
		size_t r = ZSTD_compress(out->data, cap, src, n, 3);
		if (ZSTD_isError(r))
			die("zstd");
		g_byte_array_set_size(out, (guint)r);
	} else if (codec == PQ_COMPRESSION_CODEC_GZIP) {
		z_stream z = {0};
		if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			die("zlib");
		size_t cap = deflateBound(&z, (uLong)n) + 32;
		g_byte_array_set_size(out, (guint)cap);
		z.next_in = (Bytef *)src;
		z.avail_in = (uInt)n;
		z.next_out = out->data;
		z.avail_out = (uInt)cap;
		if (deflate(&z, Z_FINISH) != Z_STREAM_END)
			die("deflate");
		g_byte_array_set_size(out, (guint)(cap - z.avail_out));
		deflateEnd(&z);
	} else {
		g_byte_array_append(out, src, (guint)n);
	}
	return out;
}

static int cmp_value(enum ctype t, const char *a, const char *b)
{
	switch (t) {
	case C_STRING: case C_DATE: case C_TIMESTAMP: return strcmp(a, b);
	case C_DOUBLE: { double x = strtod(a, NULL), y = strtod(b, NULL); return (x > y) - (x < y); }
	case C_BOOLEAN: return 0;
	default: { long long x = strtoll(a, NULL, 10), y = strtoll(b, NULL, 10); return (x > y) - (x < y); }
	}
}

static GByteArray *stat_bytes(enum ctype t, const char *v)
{
	GByteArray *b = g_byte_array_new();
	if (t == C_STRING)
		g_byte_array_append(b, (const guint8 *)v, (guint)strlen(v));
	else
		plain(b, t, v);
	return b;
}

/* Writes one column chunk of rows [from, to) at file offset *off; returns its metadata. */
static PqColumnChunk *write_chunk(FILE *out, uint64_t *off, struct col *c, size_t from, size_t to)
{
	size_t n = to - from;
	GByteArray *levels = g_byte_array_new(), *values = g_byte_array_new(), *dictpage = NULL;
	uint32_t *defs = calloc(n + 1, sizeof *defs), *idx = calloc(n + 1, sizeof *idx);
	size_t nn = 0, nulls = 0;
	const char *mn = NULL, *mx = NULL;
	char **dv = NULL;
	size_t ndv = 0;
	GHashTable *dict_index = g_hash_table_new(g_str_hash, g_str_equal);   /* value -> index + 1 */
	uint32_t *bools = calloc(n + 1, sizeof *bools);
	for (size_t i = from; i < to; i++) {
		const char *v = c->values[i];
		defs[i - from] = v != NULL;
		if (!v) {
			nulls++;
			continue;
		}
		if (!mn || cmp_value(c->type, v, mn) < 0) mn = v;
		if (!mx || cmp_value(c->type, v, mx) > 0) mx = v;
		if (c->type == C_BOOLEAN) {
			bools[nn++] = !strcasecmp(v, "true") || !strcmp(v, "1");
		} else if (dict && c->type == C_STRING) {
			size_t k = GPOINTER_TO_SIZE(g_hash_table_lookup(dict_index, v));
			if (!k) {
				dv = realloc(dv, (ndv + 1) * sizeof *dv);
				dv[ndv++] = (char *)v;
				k = ndv;
				g_hash_table_insert(dict_index, (gpointer)v, GSIZE_TO_POINTER(k));
			}
			idx[nn++] = (uint32_t)(k - 1);
		} else {
			plain(values, c->type, v);
			nn++;
		}
	}
	if (c->type == C_BOOLEAN) {
		/* PLAIN booleans: bit-packed, LSB first, no run header */
		size_t nbytes = (nn + 7) / 8;
		uint8_t *bits = calloc(nbytes + 1, 1);
		for (size_t i = 0; i < nn; i++)
			if (bools[i])
				bits[i / 8] |= (uint8_t)(1u << (i % 8));
		g_byte_array_append(values, bits, (guint)nbytes);
		free(bits);
	}
	bool use_dict = dict && c->type == C_STRING;
	if (use_dict) {
		dictpage = g_byte_array_new();
		for (size_t k = 0; k < ndv; k++)
			plain(dictpage, C_STRING, dv[k]);
		int bw = 0;
		while (ndv > 1 && (1u << bw) < ndv)
			bw++;
		uint8_t bwb = (uint8_t)bw;
		g_byte_array_append(values, &bwb, 1);
		if (nn)
			put_bitpacked(values, idx, nn, bw);
	}
	if (c->optional)
		put_bitpacked(levels, defs, n, 1);
	PqColumnChunk *cc = g_object_new(PQ_TYPE_COLUMN_CHUNK, NULL);
	PqColumnMetaData *md = cc->meta_data;
	cc->__isset_meta_data = TRUE;
	md->type = physical_of(c->type);
	PqEncoding e = PQ_ENCODING_PLAIN;
	g_array_append_val(md->encodings, e);
	e = PQ_ENCODING_RLE;
	g_array_append_val(md->encodings, e);
	if (use_dict) {
		e = PQ_ENCODING_RLE_DICTIONARY;
		g_array_append_val(md->encodings, e);
	}
	g_ptr_array_add(md->path_in_schema, g_strdup(c->name));
	md->codec = (PqCompressionCodec)codec;
	md->num_values = (gint64)n;
	uint64_t start = *off;
	int64_t total_u = 0;
	if (use_dict) {
		GByteArray *z = compress_bytes(dictpage->data, dictpage->len);
		PqPageHeader *ph = g_object_new(PQ_TYPE_PAGE_HEADER, NULL);
		ph->type = PQ_PAGE_TYPE_DICTIONARY_PAGE;
		ph->uncompressed_page_size = (gint32)dictpage->len;
		ph->compressed_page_size = (gint32)z->len;
		ph->__isset_dictionary_page_header = TRUE;
		ph->dictionary_page_header->num_values = (gint32)ndv;
		ph->dictionary_page_header->encoding = PQ_ENCODING_PLAIN;
		GByteArray *h = encode(THRIFT_STRUCT(ph));
		fwrite(h->data, 1, h->len, out);
		fwrite(z->data, 1, z->len, out);
		md->__isset_dictionary_page_offset = TRUE;
		md->dictionary_page_offset = (gint64)*off;
		*off += h->len + z->len;
		total_u += h->len + dictpage->len;
		g_byte_array_unref(h);
		g_byte_array_unref(z);
		g_object_unref(ph);
	}
	md->data_page_offset = (gint64)*off;
	PqPageHeader *ph = g_object_new(PQ_TYPE_PAGE_HEADER, NULL);
	GByteArray *body = g_byte_array_new();
	size_t usize;
	if (!v2) {
		GByteArray *raw = g_byte_array_new();
		if (c->optional) {
			put32(raw, levels->len);
			g_byte_array_append(raw, levels->data, levels->len);
		}
		g_byte_array_append(raw, values->data, values->len);
		GByteArray *z = compress_bytes(raw->data, raw->len);
		g_byte_array_append(body, z->data, z->len);
		usize = raw->len;
		g_byte_array_unref(raw);
		g_byte_array_unref(z);
		ph->type = PQ_PAGE_TYPE_DATA_PAGE;
		ph->__isset_data_page_header = TRUE;
		PqDataPageHeader *dh = ph->data_page_header;
		dh->num_values = (gint32)n;
		dh->encoding = use_dict ? PQ_ENCODING_RLE_DICTIONARY : PQ_ENCODING_PLAIN;
		dh->definition_level_encoding = PQ_ENCODING_RLE;
		dh->repetition_level_encoding = PQ_ENCODING_RLE;
	} else {
		GByteArray *z = compress_bytes(values->data, values->len);
		g_byte_array_append(body, levels->data, levels->len);
		g_byte_array_append(body, z->data, z->len);
		usize = levels->len + values->len;
		g_byte_array_unref(z);
		ph->type = PQ_PAGE_TYPE_DATA_PAGE_V2;
		ph->__isset_data_page_header_v2 = TRUE;
		PqDataPageHeaderV2 *dh = ph->data_page_header_v2;
		dh->num_values = (gint32)n;
		dh->num_nulls = (gint32)nulls;
		dh->num_rows = (gint32)n;
		dh->encoding = use_dict ? PQ_ENCODING_RLE_DICTIONARY : PQ_ENCODING_PLAIN;
		dh->definition_levels_byte_length = (gint32)levels->len;
		dh->repetition_levels_byte_length = 0;
	}
	ph->uncompressed_page_size = (gint32)usize;
	ph->compressed_page_size = (gint32)body->len;
	GByteArray *h = encode(THRIFT_STRUCT(ph));
	fwrite(h->data, 1, h->len, out);
	fwrite(body->data, 1, body->len, out);
	*off += h->len + body->len;
	total_u += (int64_t)(h->len + usize);
	md->total_compressed_size = (gint64)(*off - start);
	md->total_uncompressed_size = total_u;
	if (stats) {
		md->__isset_statistics = TRUE;
		md->statistics->__isset_null_count = TRUE;
		md->statistics->null_count = (gint64)nulls;
		if (mn && c->type != C_BOOLEAN) {
			md->statistics->__isset_min_value = md->statistics->__isset_max_value = TRUE;
			md->statistics->min_value = stat_bytes(c->type, mn);
			md->statistics->max_value = stat_bytes(c->type, mx);
		}
	}
	cc->file_offset = (gint64)start;
	g_byte_array_unref(h);
	g_byte_array_unref(body);
	g_object_unref(ph);
	g_byte_array_unref(levels);
	g_byte_array_unref(values);
	if (dictpage)
		g_byte_array_unref(dictpage);
	free(defs);
	free(idx);
	free(bools);
	free(dv);
	g_hash_table_destroy(dict_index);
	return cc;
}

static PqSchemaElement *schema_element(const struct col *c)
{
	PqSchemaElement *se = g_object_new(PQ_TYPE_SCHEMA_ELEMENT, NULL);
	se->name = g_strdup(c->name);
	se->__isset_type = TRUE;
	se->type = physical_of(c->type);
	se->__isset_repetition_type = TRUE;
	se->repetition_type = c->optional ? PQ_FIELD_REPETITION_TYPE_OPTIONAL : PQ_FIELD_REPETITION_TYPE_REQUIRED;
	PqLogicalType *lt = se->logicalType;
	switch (c->type) {
	case C_STRING:
		se->__isset_logicalType = lt->__isset_STRING = TRUE;
		se->__isset_converted_type = TRUE;
		se->converted_type = PQ_CONVERTED_TYPE_UTF8;
		break;
	case C_DATE:
		se->__isset_logicalType = lt->__isset_DATE = TRUE;
		se->__isset_converted_type = TRUE;
		se->converted_type = PQ_CONVERTED_TYPE_DATE;
		break;
	case C_TIMESTAMP:
		se->__isset_logicalType = lt->__isset_TIMESTAMP = TRUE;
		lt->TIMESTAMP->isAdjustedToUTC = TRUE;
		lt->TIMESTAMP->unit->__isset_MICROS = TRUE;
		se->__isset_converted_type = TRUE;
		se->converted_type = PQ_CONVERTED_TYPE_TIMESTAMP_MICROS;
		break;
	default:
		break;
	}
	return se;
}

int main(int argc, char **argv)
{
	size_t rows_per_group = 0;
	int i = 1;
	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--codec") && i + 1 < argc) {
			const char *c = argv[++i];
			codec = !strcmp(c, "snappy") ? PQ_COMPRESSION_CODEC_SNAPPY
			      : !strcmp(c, "gzip") ? PQ_COMPRESSION_CODEC_GZIP
			      : !strcmp(c, "zstd") ? PQ_COMPRESSION_CODEC_ZSTD
			      : !strcmp(c, "lz4") ? PQ_COMPRESSION_CODEC_LZ4_RAW   /* header only: for refusal tests */
			      : PQ_COMPRESSION_CODEC_UNCOMPRESSED;
		} else if (!strcmp(argv[i], "--dict")) {
			dict = true;
		} else if (!strcmp(argv[i], "--v2")) {
			v2 = true;
		} else if (!strcmp(argv[i], "--no-stats")) {
			stats = false;
		} else if (!strcmp(argv[i], "--rows") && i + 1 < argc) {
			rows_per_group = (size_t)strtoul(argv[++i], NULL, 10);
		} else {
			die("unknown option");
		}
	}
	if (argc - i != 3)
		die("usage: parquet_gen [--codec C] [--dict] [--v2] [--rows N] [--no-stats] IN.csv OUT.parquet TYPES");
	int fd = open(argv[i], O_RDONLY);
	if (fd < 0)
		die("cannot open the CSV");
	struct csv_reader *rd = csv_reader_fd(fd, argv[i], 0);
	struct csv_record rec;
	struct mesh_err err = {0};
	if (csv_next(rd, &rec, &err) != 1)
		die("no CSV header");
	size_t ncols = rec.n;
	struct col *cols = calloc(ncols, sizeof *cols);
	char *types = strdup(argv[i + 2]), *save = NULL;
	for (size_t k = 0; k < ncols; k++) {
		cols[k].name = strndup(rec.fields[k].ptr, rec.fields[k].len);
		char *t = strtok_r(k ? NULL : types, ",", &save);
		if (!t)
			die("fewer TYPES than columns");
		size_t tl = strlen(t);
		if (tl && t[tl - 1] == '?') {
			cols[k].optional = true;
			t[tl - 1] = '\0';
		}
		cols[k].type = !strcmp(t, "string") ? C_STRING : !strcmp(t, "int32") ? C_INT32
			     : !strcmp(t, "int64") ? C_INT64 : !strcmp(t, "double") ? C_DOUBLE
			     : !strcmp(t, "boolean") ? C_BOOLEAN : !strcmp(t, "date") ? C_DATE
			     : !strcmp(t, "timestamp") ? C_TIMESTAMP : (die("unknown type"), C_STRING);
	}
	size_t nrows = 0, cap = 0;
	int rc;
	while ((rc = csv_next(rd, &rec, &err)) == 1) {
		if (rec.n != ncols)
			die("ragged CSV");
		if (nrows == cap) {
			cap = cap ? cap * 2 : 64;
			for (size_t k = 0; k < ncols; k++)
				cols[k].values = realloc(cols[k].values, cap * sizeof(char *));
		}
		for (size_t k = 0; k < ncols; k++) {
			const struct csv_field *f = &rec.fields[k];
			if (!f->len && !cols[k].optional)
				die("empty value in a required column");
			cols[k].values[nrows] = f->len ? strndup(f->ptr, f->len) : NULL;
		}
		nrows++;
	}
	if (rc < 0)
		die(err.msg);
	csv_reader_free(rd);
	close(fd);
	FILE *out = fopen(argv[i + 1], "wb");
	if (!out)
		die("cannot write the output");
	fwrite("PAR1", 1, 4, out);
	uint64_t off = 4;
	PqFileMetaData *fm = g_object_new(PQ_TYPE_FILE_META_DATA, NULL);
	fm->version = 1;
	fm->num_rows = (gint64)nrows;
	fm->__isset_created_by = TRUE;
	fm->created_by = g_strdup("meshfs parquet_gen (tests)");
	PqSchemaElement *root = g_object_new(PQ_TYPE_SCHEMA_ELEMENT, NULL);
	root->name = g_strdup("schema");
	root->__isset_num_children = TRUE;
	root->num_children = (gint32)ncols;
	g_ptr_array_add(fm->schema, root);
	for (size_t k = 0; k < ncols; k++)
		g_ptr_array_add(fm->schema, schema_element(&cols[k]));
	if (!rows_per_group)
		rows_per_group = nrows ? nrows : 1;
	for (size_t from = 0; from < nrows || (from == 0 && nrows == 0); from += rows_per_group) {
		size_t to = from + rows_per_group < nrows ? from + rows_per_group : nrows;
		PqRowGroup *rg = g_object_new(PQ_TYPE_ROW_GROUP, NULL);
		rg->num_rows = (gint64)(to - from);
		for (size_t k = 0; k < ncols; k++) {
			PqColumnChunk *cc = write_chunk(out, &off, &cols[k], from, to);
			rg->total_byte_size += cc->meta_data->total_uncompressed_size;
			g_ptr_array_add(rg->columns, cc);
		}
		g_ptr_array_add(fm->row_groups, rg);
		if (nrows == 0)
			break;
	}
	GByteArray *footer = encode(THRIFT_STRUCT(fm));
	fwrite(footer->data, 1, footer->len, out);
	uint8_t len[4] = {footer->len & 0xff, (footer->len >> 8) & 0xff, (footer->len >> 16) & 0xff, footer->len >> 24};
	fwrite(len, 1, 4, out);
	fwrite("PAR1", 1, 4, out);
	if (fclose(out))
		die("write failed");
	g_byte_array_unref(footer);
	g_object_unref(fm);
	for (size_t k = 0; k < ncols; k++) {
		for (size_t r = 0; r < nrows; r++)
			free(cols[k].values[r]);
		free(cols[k].values);
		free(cols[k].name);
	}
	free(cols);
	free(types);
	return 0;
}
