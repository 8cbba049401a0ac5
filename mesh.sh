#!/bin/sh
# mesh.sh - the first command on a fresh Debian 12 machine: installs what
# meshfs needs (make, the compiler, the libraries and test tools of
# tests/install-deps.sh; apt-get, as root, only what is missing), then runs
# `make TARGET...` with one job per core.  It builds and tests nothing
# itself; the Makefile does.
#
#   sh ./mesh.sh demo      the demo mesh in use as three users (README, "First contact")
#   sh ./mesh.sh check     every test: unit, fuzzers, integration (what CI runs)
#   sh ./mesh.sh help      the make targets (installs nothing)
set -eu
cd "$(dirname "$0")"
case "${1:-}" in
'' | help | -h | --help)
	echo "usage: sh ./mesh.sh TARGET...   installs the packages meshfs needs (as root), then runs make TARGET..."
	echo "targets (of the Makefile):"
	sed -n 's/^#   /  /p' Makefile
	exit 0 ;;
esac
# The demo and the tests act as other users: they must reach the programs.
# A Debian system's / is 755; a chroot made in a mktemp -d directory (as
# ../shared/tools/fresh-machine makes them) is 700: fixed there, refused elsewhere.
if [ -z "$(find / -maxdepth 0 -perm -o=x 2>/dev/null)" ]; then
	if [ "$(id -u)" = 0 ] && ischroot 2>/dev/null; then
		echo "mesh.sh: this chroot's / has mode $(stat -c %a /); giving it the usual 755 so other users reach programs"
		chmod 755 /
	else
		echo "mesh.sh: / is closed to other users (mode $(stat -c %a /)), so the demo's and the tests' users can run nothing; a Debian system has 755 (chmod 755 /)" >&2
		exit 1
	fi
fi
sh tests/install-deps.sh
exec make -j"$(nproc 2>/dev/null || echo 2)" --no-print-directory "$@"
