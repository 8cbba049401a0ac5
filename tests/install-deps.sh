#!/bin/sh
# Installs the Debian 12 packages meshfs needs to build, test, fuzz and demo
# (make and the C compiler included: a fresh system has neither).
# Runs apt-get only when something is missing, and only as root; it does
# not build anything.  Called by `make deps` (and so by check, asan, bench,
# demo) and by ./mesh.sh.
#
# One package a line (a comment may say what needs it): add yours on a line
# of its own.
set -e
PKGS=$(sed 's/#.*//' <<'EOF'
make
build-essential        # cc, libc headers; gcc's ASan/UBSan runtimes (make asan)
pkg-config
libfuse3-dev
fuse3                  # fusermount3
libsqlite3-dev
sqlite3
libjansson-dev
libyaml-dev
libssl-dev
python3-pytest         # integration tests
python3-pandas         # integration tests, the demo
python3-yaml
attr                   # getfattr
clang                  # make fuzz
libclang-rt-14-dev     # libFuzzer and sanitizer runtimes for clang (not pulled in without recommends)
util-linux             # setpriv, runuser, mountpoint
passwd                 # useradd: test and demo users
fio                    # make bench
libthrift-c-glib-dev   # Parquet footers (compact protocol)
thrift-compiler        # generates the footer's C types from our IDL
libglib2.0-dev         # thrift_c_glib's GLib
libpcre2-dev           # ODCS patterns (PCRE2, JIT)
libsnappy-dev          # Parquet Snappy pages
libzstd-dev            # Parquet Zstandard pages
zlib1g-dev             # Parquet gzip pages
python3-jsonschema     # the ODCS JSON schema accepts what init writes
chromium               # the catalog page's tests (headless, driven by playwright-core)
graphviz               # lineage pictures (dot) in the catalog page
glusterfs-server       # the shared-filesystem suite (glusterfsd)
glusterfs-client       # ... and its client mounts
libsystemd-dev         # sd_notify (Type=notify)
libpq-dev              # the PostgreSQL usage sink
uuid-dev               # libuuid: RFC 4122 contract ids (meshctl init)
postgresql             # tests/integration/test_pgsink.py: a real server
systemd                # systemd-analyze security (unit test)
EOF
)
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# node and npm (the MCP tests drive `meshctl mcp` with the official TypeScript
# SDK client, npm-installed into a temporary directory): any node will do
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "install-deps: installing$missing (apt-get, a few minutes on a fresh system)"
cd / && TMPDIR=/var/tmp apt-get update -qq
cd / && TMPDIR=/var/tmp DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-deps: done"
