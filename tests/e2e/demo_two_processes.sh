#!/usr/bin/env bash
# The demo across two processes on whatever remote backend the environment selects: the audit
# side waits for 3 user.created events, the users side publishes them, and every audit line
# must carry its publisher's trace id. Usage: demo_two_processes.sh <athomic-demo> <log dir>
set -euo pipefail
demo=$1
logs=$2
mkdir -p "$logs"
# Empty before the audit side starts: a log left by an earlier run already says "ready".
: >"$logs/audit.log"
: >"$logs/users.log"
"$demo" --role audit -n 3 >"$logs/audit.log" 2>&1 &
audit=$!
trap 'kill -9 $audit 2>/dev/null || true' EXIT
for _ in $(seq 200); do grep -q '^ready' "$logs/audit.log" && break; sleep 0.05; done
grep -q '^ready' "$logs/audit.log" || { cat "$logs/audit.log"; echo "FAIL: the audit side did not start"; exit 1; }
"$demo" --role users -n 3 >"$logs/users.log" 2>&1 || { cat "$logs/users.log"; echo "FAIL: users side"; exit 1; }
wait "$audit" || { cat "$logs/audit.log"; echo "FAIL: the audit side did not get 3 events"; exit 1; }
for i in 0 1 2; do
  grep -q "audit_service \[trace_id=trace-$((4711 + i)) tenant_id=acme\] Auditing creation of user user-$((123 + i))" \
    "$logs/audit.log" || { cat "$logs/audit.log"; echo "FAIL: audit line $i with its trace id"; exit 1; }
done
grep -o "loaded provider '[a-z_-]*'[^(]*" "$logs/audit.log" | head -1
echo "ok: 3 events across two processes, each audited in its publisher's context"
