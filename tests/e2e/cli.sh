#!/usr/bin/env bash
# The `athomic` tool as a user runs it. Usage: cli.sh <athomic binary>
set -euo pipefail
athomic=$1
cd "$(mktemp -d)"   # no settings file: defaults and the environment only
fail() { echo "FAIL: $*"; exit 1; }

out=$("$athomic" backends)
grep -q "^Backends: .*local" <<<"$out" || fail "backends: $out"
grep -q "^Configured: local$" <<<"$out" || fail "backends: $out"

err=$("$athomic" config 2>&1 >/dev/null)
grep -q "no settings file found (looked for config/settings.toml in $PWD); using defaults: backend local" <<<"$err" \
  || fail "config does not say it runs on defaults: $err"

out=$(NALA_EVENTS__PROVIDER__BACKEND=redis \
      NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__URI=redis://app:hunter2@cache:6379/0 "$athomic" config)
grep -q '"backend": "redis"' <<<"$out" || fail "config: $out"
grep -q 'redis://app:\*\*\*@cache:6379/0' <<<"$out" || fail "config does not show the masked uri: $out"
grep -q hunter2 <<<"$out" && fail "config printed the password"

out=$(NALA_EVENTS__EXECUTOR__WORKERS=lots "$athomic" config 2>&1) && fail "bad setting accepted"
grep -q "environment variable NALA_EVENTS__EXECUTOR__WORKERS: events.executor.workers = \"lots\" is invalid" <<<"$out" \
  || fail "bad setting message: $out"

out=$("$athomic" publish "bad name" 2>&1) && fail "invalid event name accepted"
grep -q 'invalid event name "bad name"' <<<"$out" || fail "event name message: $out"
out=$("$athomic" publish x.y '{not json' 2>&1) && fail "invalid JSON accepted"
grep -q "the payload is not valid JSON" <<<"$out" || fail "payload message: $out"
"$athomic" publish x.y '{"a":1}' --trace-id t >/dev/null || fail "a valid publish failed"
echo "PASS"
