#!/usr/bin/env bash
# The README's Redis walk-through, run as written: the block after the marker line, with the
# build folder in place of build/release and a free port in place of 6380.
# Usage: readme_redis.sh <build folder> <source folder>
set -euo pipefail
build=$1
src=$2
source "$src/scripts/lib/ports.sh"
work=$(mktemp -d)
port=""
cleanup() {
  if [ -n "$port" ]; then redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

block=$(awk '/^<!-- tests\/e2e\/readme_redis.sh runs this block as written -->$/ {found=1; next}
             found && /^```sh$/ {inside=1; next}
             inside && /^```$/ {exit}
             inside {print}' "$src/README.md")
[ -n "$block" ] || fail "no walk-through block in README.md"
grep -q "6380" <<<"$block" || fail "the walk-through no longer uses port 6380: $block"
# 32000-32699: no other test script picks from it (they stay below 32000), and the walk-through
# cannot retry a server that finds its port taken.
port=$(claim_port 32000 700) || fail "no free port"
block=${block//build\/release/$build}
block=${block//6380/$port}

# Its relative paths (config/redis.toml) as from the repository root; its files land here.
cp -r "$src/config" "$work/config"
cd "$work"
rc=0
timeout 120 bash -euo pipefail -c "$block" >"$work/out" 2>&1 || rc=$?
out=$(cat "$work/out")
[ "$rc" = 0 ] || fail "the walk-through exited $rc: $out"
grep -q "^✓ round trip: published" <<<"$out" || fail "doctor in the walk-through: $out"
for i in 0 1 2; do
  grep -q "audit_service \[trace_id=trace-$((4711 + i)) tenant_id=acme\] Auditing creation of user user-$((123 + i))" <<<"$out" \
    || fail "audit line $i with its trace id: $out"
done
grep -q "^received  1000 of 1000 in" <<<"$out" || fail "bench in the walk-through: $out"
redis-cli -p "$port" ping >/dev/null 2>&1 && fail "the walk-through left its server running"
port=""
echo "PASS"
