#!/bin/sh
# Installs the Debian packages meshfs needs to build, test, fuzz and demo.
# Runs apt-get only when something is missing (and only as root).
set -e
PKGS="build-essential pkg-config libfuse3-dev fuse3 libsqlite3-dev sqlite3 libjansson-dev
libyaml-dev libssl-dev python3-pytest python3-pandas python3-yaml attr clang util-linux fio
libsystemd-dev libpq-dev postgresql systemd"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
cd / && TMPDIR=/var/tmp apt-get update -qq
cd / && TMPDIR=/var/tmp DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
