#!/usr/bin/env bash
# examples/asio_coroutines as a user runs it: default settings (backend "local"), every order
# placed and audited, the audit lines logged on the strand inside each publisher's context.
# Usage: asio_demo.sh <athomic-asio-demo> <source dir>
set -euo pipefail
demo=$1
cd "$2"
rc=0
out=$("$demo" -n 5 2>&1) || rc=$?
[ "$rc" -eq 0 ] || { echo "$out"; echo "FAIL: the demo exited with $rc"; exit 1; }
echo "$out"
grep -q "5 order(s) placed, 5 audited" <<<"$out" || { echo "FAIL: not every order was placed and audited"; exit 1; }
for i in 0 1 2 3 4; do
  grep -qE "audit_service \[trace_id=trace-$((4711 + i)) tenant_id=acme\] Auditing order-$i \($((10 * (i + 1))) EUR\)" <<<"$out" \
    || { echo "FAIL: no audit line for order-$i carrying its publisher's trace id"; exit 1; }
  grep -qE "order_service \[trace_id=trace-$((4711 + i)) tenant_id=acme\] order-$i placed" <<<"$out" \
    || { echo "FAIL: order-$i was not placed"; exit 1; }
done
echo "PASS"
