#!/bin/sh
# The demo: publish the sample mesh in mounts/demo/releases into a store under
# the repository, mount it, use it with shell tools and pandas, unmount.
#   sh mounts/demo/run-demo.sh BUILD_DIR        (run by `make demo`, as root)
set -eu
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STORE=$REPO/demo-store
MNT=$REPO/demo-store.mnt
MESHCTL="$BUILD/meshctl --store $STORE"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { step "$*"; "$@"; }

cleanup() {
	if mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
	fi
}
trap cleanup EXIT INT TERM

cleanup
rm -rf "$STORE"
mkdir -p "$MNT"

run $MESHCTL init
for domain in sales customer product; do
	run $MESHCTL domain create $domain --owner user:root
done
for rel in "$HERE"/releases/*/; do
	run $MESHCTL publish "$rel"
done
run $MESHCTL list

run "$BUILD/meshfs" "$STORE" "$MNT" -o allow_other
run ls "$MNT"
run ls -l "$MNT/sales/orders"
run ls "$MNT/sales/orders/latest"
run head -n 5 "$MNT/sales/orders/latest/orders.csv"
run wc -l "$MNT/sales/orders/1.0.0/orders.csv" "$MNT/sales/orders/latest/orders.csv"
run grep -c ',DE,' "$MNT/sales/orders/latest/orders.csv"
run head -c 300 "$MNT/sales/orders/latest/contract.yaml"
echo
run getfattr -d "$MNT/sales/orders/1.0.0"
step "python3 -c 'import pandas; ...read_csv(latest/orders.csv)...'"
/usr/bin/python3 - "$MNT" <<'PY'
import sys, pandas
mnt = sys.argv[1]
df = pandas.read_csv(f"{mnt}/sales/orders/latest/orders.csv")
print(df.shape, "rows x columns")
print(df.head(3).to_string())
PY
run $MESHCTL search orders
run $MESHCTL status
step "fusermount3 -u $MNT"
fusermount3 -u "$MNT"
echo
echo "demo done: the store is in $STORE (remove it with rm -rf $STORE)"
