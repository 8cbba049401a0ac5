#!/bin/sh
# Generate the C (GLib) types of the Parquet footer IDL and mend two bugs of
# thrift-compiler 0.17's c_glib generator in what it wrote.  Used by the main
# Makefile and tests/fuzz/Makefile, so both builds compile the same code.
#
#   thrift-gen.sh THRIFT IDL OUTDIR
#
# 1. The finalizers never chain up to GObject's, which leaks every struct's
#    qdata: the chain-up is added at the end of each *_finalize function.
# 2. Reading a list of enums allocates each element on the heap and leaks it
#    when a read fails: the element becomes a variable on the stack instead
#    (no free to miss), and its g_free goes.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 THRIFT IDL OUTDIR" >&2; exit 2; }
thrift=$1 idl=$2 out=$3
mkdir -p "$out"
"$thrift" --gen c_glib -out "$out" "$idl"
types="$out/pq_parquet_footer_types.c"
[ -f "$types" ] || { echo "$0: $thrift wrote no $types" >&2; exit 1; }
sed -i '/_finalize (GObject \*object)$/,/^}$/ s/^}$/  G_OBJECT_CLASS (g_type_class_peek_parent (G_OBJECT_GET_CLASS (object)))->finalize (object);\n}/' "$types"
sed -i -e 's/^\( *\)\(Pq[A-Za-z]*\)\* \(_elem[0-9]*\) = g_new (\2, 1);$/\1\2 \3_value;\n\1\2* \3 = \&\3_value;/' \
	-e '/^ *g_free (_elem[0-9]*);$/d' "$types"
# both mends must have happened: a generator that writes other code fails the build
grep -q 'g_type_class_peek_parent' "$types" || { echo "$0: finalizer chain-up not applied to $types" >&2; exit 1; }
