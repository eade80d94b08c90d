#!/usr/bin/env bash
# The `athomic` tool as a user runs it. Usage: cli.sh <athomic binary> <test plugins folder>
set -euo pipefail
athomic=$1
test_plugins=$2
work=$(mktemp -d)   # mode 0700: a safe place for plugin folders
trap 'rm -rf "$work"' EXIT
cd "$work"          # no settings file: defaults and the environment only
fail() { echo "FAIL: $*"; exit 1; }

out=$("$athomic" backends)
grep -q "^Backends: .*local" <<<"$out" || fail "backends: $out"
grep -q "^Configured: local$" <<<"$out" || fail "backends: $out"
grep -Eq "/athomic_provider_local.so: provider 'local' .*, ABI 1\.[0-9]+: loads$" <<<"$out" \
  || fail "backends does not describe the local plugin: $out"

# Each file with what it declares and whether it would load, and why not.
out=$(NALA_EVENTS__PLUGINS_DIR="$test_plugins" "$athomic" backends 2>/dev/null)
grep -q "athomic_provider_abi_major.so: ABI 2\.0: does not load: .*built for ABI 2\.0" <<<"$out" \
  || fail "backends does not explain a wrong ABI: $out"
grep -q "athomic_provider_not_elf.so: does not load, not opened: .*not a shared object" <<<"$out" \
  || fail "backends does not explain a file that is not a plugin: $out"

# A file that fails the permission check is listed with the reason, and none of its code runs.
mkdir -m 0777 open
cp "$test_plugins/athomic_provider_canary.so" open/ && chmod 0755 open/athomic_provider_canary.so
out=$(ATHOMIC_TEST_CANARY="$work/ran" NALA_EVENTS__PLUGINS_DIR="$work/open" "$athomic" backends 2>/dev/null)
grep -q "open/athomic_provider_canary.so: does not load, not opened: .*refusing to load it: the folder $work/open is writable by its group and other users" <<<"$out" \
  || fail "backends does not give the permission problem: $out"
[ ! -e "$work/ran" ] || fail "backends ran code of a plugin that fails the permission check"

# The same file in a safe folder, under another name: it loads (its code runs), and the names
# that disagree are pointed out.
mkdir -m 0755 safe
cp "$test_plugins/athomic_provider_canary.so" safe/athomic_provider_songbird.so
out=$(ATHOMIC_TEST_CANARY="$work/ran" NALA_EVENTS__PLUGINS_DIR="$work/safe" "$athomic" backends 2>&1)
grep -q "safe/athomic_provider_songbird.so: provider 'canary' 0.0.1, ABI 1\.[0-9]*: loads (its file name says 'songbird')" <<<"$out" \
  || fail "backends does not describe a loadable plugin: $out"
[ -e "$work/ran" ] || fail "the canary plugin leaves no mark when it runs: the check above proves nothing"

err=$("$athomic" config 2>&1 >/dev/null)
grep -q "no settings file found (looked for config/settings.toml in $PWD); using defaults: backend local" <<<"$err" \
  || fail "config does not say it runs on defaults: $err"

out=$(NALA_EVENTS__PROVIDER__BACKEND=redis \
      NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__URI=redis://app:hunter2@cache:6379/0 "$athomic" config)
grep -q '"backend": "redis"' <<<"$out" || fail "config: $out"
grep -q 'redis://app:\*\*\*@cache:6379/0' <<<"$out" || fail "config does not show the masked uri: $out"
grep -q hunter2 <<<"$out" && fail "config printed the password"

# A provider's declared keys: each with its value, where it came from and what it means;
# secrets masked.
out=$(NALA_EVENTS__PROVIDER__BACKEND=acknowledging NALA_EVENTS__PLUGINS_DIR="$test_plugins" \
      NALA_EVENTS__PROVIDER__MODE=safe NALA_EVENTS__PROVIDER__CREDENTIALS__TOKEN=s3cret-t0ken \
      "$athomic" config 2>/dev/null)
grep -A3 '"key": "events.provider.mode"' <<<"$out" | grep -q '"origin": "environment variable NALA_EVENTS__PROVIDER__MODE"' \
  || fail "config does not give a provider key's origin: $out"
grep -A3 '"key": "events.provider.limits.delay"' <<<"$out" | grep -q '"value": 0.5' \
  || fail "config does not show a provider key's default: $out"
grep -q s3cret-t0ken <<<"$out" && fail "config printed a provider secret"
out=$(NALA_EVENTS__PROVIDER__BACKEND=acknowledging NALA_EVENTS__PLUGINS_DIR="$test_plugins" \
      NALA_EVENTS__PROVIDER__HODL=true "$athomic" config 2>&1) && fail "an unknown provider key was accepted"
grep -q "unknown setting events.provider.hodl. Did you mean 'events.provider.hold'?" <<<"$out" \
  || fail "unknown provider key message: $out"

# publish says so, and fails, when the transport did not deliver.
ack=(env NALA_EVENTS__PROVIDER__BACKEND=acknowledging NALA_EVENTS__PLUGINS_DIR="$test_plugins")
"${ack[@]}" "$athomic" publish delivered.event '{"a":1}' >/dev/null 2>&1 || fail "a delivered publish failed"
out=$("${ack[@]}" "$athomic" publish refused.event '{"a":1}' --count 3 2>&1) && fail "an undelivered publish exited 0"
grep -q "3 of 3 event(s) were not delivered: the server refused it" <<<"$out" \
  || fail "undelivered publish message: $out"

out=$(NALA_EVENTS__EXECUTOR__WORKERS=lots "$athomic" config 2>&1) && fail "bad setting accepted"
grep -q "environment variable NALA_EVENTS__EXECUTOR__WORKERS: events.executor.workers = \"lots\" is invalid" <<<"$out" \
  || fail "bad setting message: $out"

out=$("$athomic" publish "bad name" 2>&1) && fail "invalid event name accepted"
grep -q 'invalid event name "bad name"' <<<"$out" || fail "event name message: $out"
out=$("$athomic" publish x.y '{not json' 2>&1) && fail "invalid JSON accepted"
grep -q "the payload is not valid JSON" <<<"$out" || fail "payload message: $out"
"$athomic" publish x.y '{"a":1}' --trace-id t >/dev/null || fail "a valid publish failed"
echo "PASS"
