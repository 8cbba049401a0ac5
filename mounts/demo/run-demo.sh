#!/bin/sh
# The demo: what meshfs is for, in about a minute and two screens.  It
# publishes the sample mesh of mounts/demo/releases into a scratch store,
# mounts it, and then, as two Unix users it creates for the occasion,
#   - an analyst holding a grant reads sales/orders with the e-mail masked,
#   - an outsider is refused, files an access request, the owner (root)
#     approves it, and the outsider reads,
# and ends with `meshctl usage`: who read what, and who was refused.
# It unmounts and removes its users at the end, also when a step fails.
# It does not install packages or build (`make demo` and mesh.sh do).
#
#   sh mounts/demo/run-demo.sh BUILD_DIR        (as root; run by `make demo`)
#
# Store and mount live under $MESHFS_DEMO_DIR (default /var/tmp/meshfs-demo),
# not under the checkout: the demo users must reach them, and a checkout in
# /root is closed to them.  Every meshctl command, the users' included, names
# the store the same way (MESH_STORE=STORE), so the script reads the same
# whether meshctl opens the store itself or asks the daemon for the caller.
set -eu
umask 022     # the demo users must reach the copies of the programs and the store
[ "$(id -u)" = 0 ] || { echo "run-demo: run as root (it mounts with allow_other and creates two demo users)" >&2; exit 2; }
BUILD=$(cd "${1:-build}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
DEMO=${MESHFS_DEMO_DIR:-/var/tmp/meshfs-demo}
STORE=$DEMO/store
MNT=$DEMO/mesh
ANALYST=demo_ana
OUTSIDER=demo_otto
MARK="meshfs demo user"       # the comment field of the users this script creates
ORDERS=sales/orders/latest/orders.csv

if [ -t 1 ]; then B=$(printf '\033[1m'); N=$(printf '\033[0m'); else B=; N=; fi
say() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
# show USER CMD...: the command line with the user's prompt, arguments quoted as a shell would need
show() {
	u=$1; shift
	line=
	for a in "$@"; do
		case $a in
		*[\"\$\`\\]*) a="'$(printf '%s' "$a" | sed "s/'/'\\\\''/g")'" ;;
		*\'*) a="\"$a\"" ;;
		*[!A-Za-z0-9_./:@=+,-]*|'') a="'$a'" ;;
		esac
		line="$line${line:+ }$a"
	done
	if [ "$u" = root ]; then printf '%sroot# %s%s\n' "$B" "$line" "$N"; else printf '%s%s$ %s%s\n' "$B" "$u" "$line" "$N"; fi
}
# as USER CMD...: show it, and run it as that user (runuser: with the user's groups) in the mount
as() {
	show "$@"
	u=$1; shift
	if [ "$u" = root ]; then (cd "$MNT" && "$@"); else (cd "$MNT" && runuser -u "$u" -- "$@"); fi
}
# as, but a refusal is what the step shows: print the exit status instead of stopping
as_refused() {
	if as "$@"; then echo "(expected a refusal)" >&2; return 1; else echo "(exit status $?)"; fi
}
# wait (up to 10 s) until the daemon's usage writer has stored an open by PROGRAM
wait_usage() {
	i=0
	while ! meshctl usage sales/orders --by program --format csv 2>/dev/null | grep -q "^$1,"; do
		i=$((i + 1)); [ $i -lt 100 ] || { echo "run-demo: usage of $1 not recorded after 10 s" >&2; return 1; }
		sleep 0.1
	done
}
# publish quietly: one line per release, everything when it fails
publish() {
	if out=$(meshctl publish "$1" 2>&1); then printf '%s\n' "$out" | tail -n 1
	else printf '%s\n' "$out" >&2; return 1; fi
}

user_ours() { getent passwd "$1" | cut -d: -f5 | grep -qx "$MARK"; }
add_user() {
	if getent passwd "$1" >/dev/null; then
		user_ours "$1" || { echo "run-demo: a user $1 exists and is not the demo's; not touching it" >&2; exit 1; }
	else
		useradd --no-create-home --home-dir / --shell /usr/sbin/nologin --comment "$MARK" "$1"
	fi
}
cleanup() {
	cd /
	if mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
	fi
	for u in $ANALYST $OUTSIDER; do
		if user_ours "$u"; then userdel "$u" 2>/dev/null || true; fi
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cleanup
rm -rf "$STORE" "$DEMO/bin"
mkdir -p "$MNT" "$DEMO/bin"
chmod 0755 "$DEMO" "$MNT"
# the users run meshctl too: a copy they can reach (a checkout in /root is closed to them)
cp "$BUILD/meshfs" "$BUILD/meshctl" "$DEMO/bin/"
PATH=$DEMO/bin:$PATH
MESH_STORE=$STORE
export PATH MESH_STORE
add_user $ANALYST
add_user $OUTSIDER
runuser -u $ANALYST -- meshctl --help >/dev/null ||
	{ echo "run-demo: user $ANALYST cannot run $DEMO/bin/meshctl (is a directory above it, / included, closed to others?)" >&2; exit 1; }

say "The sales team (root, in this demo) publishes its products: validated, then installed atomically"
show root export MESH_STORE=$STORE
meshctl init
for domain in sales customer product; do
	meshctl domain create $domain --owner user:root
done
show root meshctl publish mounts/demo/releases/sales-orders-1.0.0/
meshctl publish "$HERE/releases/sales-orders-1.0.0/"
echo "# and the other releases of mounts/demo/releases (the last line of each):"
for rel in "$HERE"/releases/*/; do
	case $rel in */sales-orders-1.0.0/) continue ;; esac
	publish "$rel"
done
show root meshfs "$STORE" "$MNT" -o allow_other
meshfs "$STORE" "$MNT" -o allow_other
show root cd "$MNT"
as root ls -l sales/orders
as root head -n 3 $ORDERS

say "Governance: $ANALYST holds a grant; customer_email is classified pii, so she reads it masked"
as root meshctl grant sales/orders user:$ANALYST --reason "demand planning"
as $ANALYST head -n 3 $ORDERS
as $ANALYST meshctl access sales/orders/1.1.0/orders.csv

say "$OUTSIDER has no grant: refused, he asks the owners"
as_refused $OUTSIDER head -n 3 $ORDERS
as $OUTSIDER meshctl access sales/orders/1.1.0/orders.csv
out=$(as $OUTSIDER meshctl request sales/orders --reason "Q3 churn analysis")
printf '%s\n' "$out"
id=$(printf '%s\n' "$out" | sed -n 's/^request \([0-9][0-9]*\) filed.*/\1/p')
[ -n "$id" ] || { echo "run-demo: no request id in meshctl's answer" >&2; exit 1; }

say "The owner sees the request and approves it for a month; $OUTSIDER reads (masked, like $ANALYST)"
as root meshctl requests --domain sales
as root meshctl approve "$id" --until "$(date -u -d '+30 days' +%Y-%m-%d)"
as $OUTSIDER head -n 3 $ORDERS
step_py="import pandas; df = pandas.read_csv('$ORDERS'); print(df.shape, df.customer_email.iloc[0])"
as $ANALYST python3 -c "$step_py"

say "Usage: every open is recorded, refused ones too"
wait_usage python3
as root meshctl usage sales/orders --by consumer

cd /
fusermount3 -u "$MNT"
cleanup
echo
echo "demo done: unmounted, users $ANALYST and $OUTSIDER removed; the store stays in $STORE"
