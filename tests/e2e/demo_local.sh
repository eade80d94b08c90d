#!/usr/bin/env bash
# The README's demo, as a user runs it: the default settings (backend "local"), the audit line
# logged inside the publisher's context. Usage: demo_local.sh <athomic-demo> <source dir>
set -euo pipefail
demo=$1
cd "$2"
out=$("$demo" 2>&1) || { echo "$out"; echo "FAIL: the demo exited with $?"; exit 1; }
echo "$out"
grep -q "loaded provider 'local'" <<<"$out" || { echo "FAIL: the local plugin was not loaded"; exit 1; }
grep -qE "audit_service \[trace_id=trace-4711 tenant_id=acme\] Auditing creation of user user-123" <<<"$out" \
  || { echo "FAIL: no audit line carrying the publisher's trace id"; exit 1; }
echo "PASS"
