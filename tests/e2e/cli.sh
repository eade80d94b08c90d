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

# config: every effective value, the provider's too, each with where it came from: file:line,
# the NALA_ variable, or default; secrets masked.
cat >"$work/origins.toml" <<'TOML'
[default.events]
max_payload_bytes = 4096

[default.events.executor]
workers = 3

[default.events.provider]
backend = "redis"
[default.events.provider.provider.provider]
uri = "redis://app:hunter2@cache:6379/0"
TOML
# setting KEY VALUE ORIGIN: the line of `config` for KEY is exactly that.
setting() {
  grep -Eq "^$(sed 's/[.[]/\\&/g' <<<"$1") += $(sed 's/[.[*]/\\&/g' <<<"$2") +# $(sed 's/[.[*]/\\&/g' <<<"$3")$" <<<"$out" \
    || fail "config does not show $1 = $2 from $3: $out"
}
out=$(NALA_EVENTS__EXECUTOR__WHEN_FULL=fail "$athomic" --settings origins.toml config 2>/dev/null)
setting events.max_payload_bytes 4096 origins.toml:2
setting events.executor.workers 3 origins.toml:5
setting events.executor.when_full '"fail"' "environment variable NALA_EVENTS__EXECUTOR__WHEN_FULL"
# In a table the file wrote, a key it did not is still a default.
setting events.executor.mode '"pool"' default
setting events.metrics.listen '""' default
setting environment '"development"' default
setting events.provider.backend '"redis"' origins.toml:8
setting events.provider.provider.provider.uri '"redis://app:***@cache:6379/0"' origins.toml:10
setting events.provider.reconnect_max_delay 5 default
grep -q hunter2 <<<"$out" && fail "config printed the password"
printf 'default:\n  events:\n    provider:\n      backend: redis\n      provider:\n        provider:\n          password: hunter2\n' >"$work/origins.yaml"
out=$(NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__HOST=cache.internal "$athomic" --env staging --settings origins.yaml config 2>/dev/null)
setting events.provider.provider.provider.password '"***"' origins.yaml:7
setting events.provider.provider.provider.host '"cache.internal"' "environment variable NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__HOST"
setting environment '"staging"' --env
grep -q hunter2 <<<"$out" && fail "config printed a password from a YAML file"
# A provider that declares no keys: what was set, as set.
out=$(NALA_EVENTS__PROVIDER__EXTRA__TOKEN=abc "$athomic" config 2>/dev/null)
setting events.provider.extra.token '"***"' "environment variable NALA_EVENTS__PROVIDER__EXTRA__TOKEN"
out=$(NALA_ENV=staging "$athomic" config --json 2>/dev/null)
[ "$(jq -r '.[] | select(.key == "environment") | .origin' <<<"$out")" = "environment variable NALA_ENV" ] \
  || fail "config --json: $out"
[ "$(jq -r '.[] | select(.key == "events.executor.workers") | "\(.value) \(.origin)"' <<<"$out")" = "4 default" ] \
  || fail "config --json: $out"

# A provider's declared keys: each with its value, where it came from and what it means;
# secrets masked.
out=$(NALA_EVENTS__PROVIDER__BACKEND=acknowledging NALA_EVENTS__PLUGINS_DIR="$test_plugins" \
      NALA_EVENTS__PROVIDER__MODE=safe NALA_EVENTS__PROVIDER__CREDENTIALS__TOKEN=s3cret-t0ken \
      "$athomic" config 2>/dev/null)
setting events.provider.mode '"safe"' "environment variable NALA_EVENTS__PROVIDER__MODE"
setting events.provider.limits.delay 0.5 default
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
grep -q "the payload is not valid JSON: parse error at column 3" <<<"$out" || fail "payload message: $out"
"$athomic" publish x.y '{"a":1}' --trace-id t >/dev/null || fail "a valid publish failed"


unset NO_COLOR  # the colour checks below set it where they need it

# run CMD...: runs it with its stdout in $out, its stderr in $err and its exit status in $rc.
run() {
  rc=0
  "$@" >"$work/stdout" 2>"$work/stderr" || rc=$?
  out=$(<"$work/stdout")
  err=$(<"$work/stderr")
}

# --version, --help and the exit codes: 0 done, 1 the bus did not do it, 2 usage or settings.
run "$athomic" --version
[ "$rc" = 0 ] && grep -Eq '^athomic [0-9]+\.[0-9]+\.[0-9]+ \(provider ABI 1\.[0-9]+\)$' <<<"$out" \
  || fail "--version: $rc $out $err"
run "$athomic" --help
[ "$rc" = 0 ] && grep -q "^Exit status: 0 done; 1 the bus did not do it" <<<"$out" \
  || fail "--help does not give the exit codes: $out"
run "$athomic"
[ "$rc" = 2 ] && grep -q "^athomic: a command is required: backends, config, publish, listen, doctor" <<<"$err" \
  || fail "no command: $rc $err"
run "$athomic" publsh x.y '{}'
[ "$rc" = 2 ] && grep -q "^athomic: unknown command 'publsh'. Did you mean 'publish'?" <<<"$err" \
  || fail "misspelt command: $rc $err"
run "$athomic" lsiten x.y
[ "$rc" = 2 ] && grep -q "Did you mean 'listen'?" <<<"$err" || fail "swapped letters: $rc $err"
run "$athomic" publish x.y '{}' --trace_id t
[ "$rc" = 2 ] && grep -q "^athomic publish: unknown option --trace_id. Did you mean --trace-id?" <<<"$err" \
  || fail "option with an underscore: $rc $err"
run "$athomic" listen x.y --cuont 2
[ "$rc" = 2 ] && grep -q "^athomic listen: unknown option --cuont. Did you mean --count?" <<<"$err" \
  || fail "misspelt option: $rc $err"
run "$athomic" --setings a.toml config
[ "$rc" = 2 ] && grep -q "^athomic: unknown option --setings. Did you mean --settings?" <<<"$err" \
  || fail "misspelt global option: $rc $err"
run "$athomic" publish
[ "$rc" = 2 ] && grep -q "^athomic publish: name is required" <<<"$err" || fail "no event name: $rc $err"
run "$athomic" publish "bad name" '{}'
[ "$rc" = 2 ] || fail "an invalid event name exits $rc"
run "$athomic" publish x.y '{not json'
[ "$rc" = 2 ] || fail "invalid JSON exits $rc"
run env NALA_EVENTS__EXECUTOR__WORKERS=lots "$athomic" publish x.y '{}'
[ "$rc" = 2 ] || fail "invalid settings exit $rc"
run "${ack[@]}" "$athomic" publish refused.event '{}'
[ "$rc" = 1 ] && grep -q "^refused.event: not delivered: the server refused it" <<<"$out" \
  || fail "a refused publish: $rc $out"

# publish says how far each event got: handlers in this process, or the transport's count.
run "$athomic" publish x.y '{"a":1}'
[ "$rc" = 0 ] && [ "$out" = "x.y: 0 handlers in this process" ] || fail "local publish: $rc $out"
grep -q "athomic publish: backend 'local' is in-process only: events reach handlers in this process alone, and this one has none, so no other process will see them." <<<"$err" \
  || fail "local publish does not say it stays in process: $err"
run "${ack[@]}" "$athomic" publish delivered.event '{}' -n 2
[ "$rc" = 0 ] && [ "$out" = $'delivered.event: 1 receiver\ndelivered.event: 1 receiver' ] \
  || fail "acknowledged publish: $rc $out"
grep -q "in-process only" <<<"$err" && fail "a remote backend called in-process: $err"
run "${ack[@]}" NALA_EVENTS__PROVIDER__HOLD_PREFIX=held. "$athomic" publish held.event '{}'
[ "$rc" = 1 ] && grep -q "^held.event: not delivered: stopped before it was sent" <<<"$out" \
  || fail "a publish never sent: $rc $out"

# No JSON argument: each JSON line of stdin is one event; a bad line stops it, with its number.
printf '{"a":1}\n\n{"a":2}\n' >"$work/lines"
run "${ack[@]}" "$athomic" publish delivered.event <"$work/lines"
[ "$rc" = 0 ] && [ "$out" = $'delivered.event: 1 receiver\ndelivered.event: 1 receiver' ] \
  || fail "publish from stdin: $rc $out $err"
printf '{"a":1}\n{bad\n{"a":3}\n' >"$work/bad"
run "${ack[@]}" "$athomic" publish delivered.event <"$work/bad"
[ "$rc" = 2 ] && [ "$out" = "delivered.event: 1 receiver" ] || fail "a bad stdin line: $rc $out"
grep -q "athomic publish: stdin line 2 is not valid JSON: parse error at column 2: .*; published the 1 event before it, read nothing after it" <<<"$err" \
  || fail "bad stdin line message: $err"
run "$athomic" publish x.y <<<'[1,2]'
[ "$rc" = 2 ] && grep -q "stdin line 1 must be a JSON object, not array: \[1,2\]" <<<"$err" \
  || fail "a stdin line that is not an object: $rc $err"
run "$athomic" publish x.y </dev/null
[ "$rc" = 2 ] && grep -q "no JSON line on stdin, nothing published" <<<"$err" || fail "empty stdin: $rc $err"
run "$athomic" publish x.y -n 2 <"$work/lines"
[ "$rc" = 2 ] && grep -q -- "--count repeats the JSON argument" <<<"$err" || fail "--count with stdin: $rc $err"
# On a terminal, no argument means an empty payload.
out=$(script -qec "'$athomic' publish x.y" /dev/null)
grep -q "x.y: 0 handlers in this process" <<<"$out" || fail "publish on a terminal: $out"

# listen on local: said to see nothing from other processes; ends at --timeout, or when
# interrupted, with 0; 1 when --count events did not come in time.
run "$athomic" listen x.y 'x.*' --timeout 0.2
[ "$rc" = 0 ] && [ -z "$out" ] || fail "listen with a timeout: $rc $out"
grep -q "athomic listen: backend 'local' is in-process only: events other processes publish never arrive here" <<<"$err" \
  || fail "local listen does not say it sees nothing: $err"
grep -q "athomic listen: ready: x.y, x.\* on backend 'local'" <<<"$err" || fail "listen readiness: $err"
run "$athomic" listen 'orders.>.created' --timeout 0.2
[ "$rc" = 2 ] && grep -q "athomic listen: invalid pattern \"orders.>.created\": '>' matches the rest of a name" <<<"$err" \
  || fail "an invalid pattern: $rc $err"
run "$athomic" listen x.y --count 1 --timeout 0.2
[ "$rc" = 1 ] && grep -q "athomic listen: 0 of 1 event(s) arrived within 0.2 s" <<<"$err" \
  || fail "listen --count with too few events: $rc $err"
for sig in INT TERM; do
  set -m  # its own process group: a background job of a script would ignore SIGINT
  "$athomic" listen x.y >"$work/listen-$sig.out" 2>"$work/listen-$sig.err" &
  pid=$!
  set +m
  # Its own file: a signal before the listener is ready would find it unprepared.
  for _ in $(seq 100); do grep -q "ready" "$work/listen-$sig.err" 2>/dev/null && break; sleep 0.05; done
  grep -q "ready" "$work/listen-$sig.err" || fail "listen did not become ready"
  kill -"$sig" "$pid"
  rc=0; wait "$pid" || rc=$?
  [ "$rc" = 0 ] || fail "listen stopped by SIG$sig exited $rc: $(cat "$work/listen-$sig.err")"
done

# --settings (repeatable, instead of NALA_SETTINGS_FILES) and --env (as NALA_ENV), before or
# after the command.
cat >"$work/a.toml" <<TOML
[default.events.executor]
workers = 3
[staging.events.executor]
workers = 7
TOML
cat >"$work/b.toml" <<TOML
[default.events]
plugins_dir = "$test_plugins"
[default.events.provider]
backend = "acknowledging"
TOML
run "$athomic" config --settings a.toml
[ "$rc" = 0 ] && grep -Eq '^events.executor.workers += 3 +# a.toml:2$' <<<"$out" \
  && grep -Eq '^environment += "development" +# default$' <<<"$out" || fail "--settings: $rc $out $err"
run "$athomic" --settings a.toml --env staging config
grep -Eq '^events.executor.workers += 7 +# a.toml:4$' <<<"$out" \
  && grep -Eq '^environment += "staging" +# --env$' <<<"$out" || fail "--env: $out $err"
run "$athomic" --settings a.toml --settings b.toml config
grep -Eq '^events.executor.workers += 3 ' <<<"$out" \
  && grep -Eq '^events.provider.backend += "acknowledging" +# b.toml:4$' <<<"$out" || fail "two --settings: $out $err"
run env NALA_SETTINGS_FILES=b.toml "$athomic" --settings a.toml config
grep -Eq '^events.provider.backend += "local" +# default$' <<<"$out" || fail "--settings does not replace NALA_SETTINGS_FILES: $out"
run "$athomic" --settings missing.toml config
[ "$rc" = 2 ] && grep -q "missing.toml" <<<"$err" || fail "a missing --settings file: $rc $err"
run "$athomic" --settings a.toml --env prodution config
grep -q "NALA_ENV=prodution: no settings file defines the environment 'prodution'" <<<"$err" \
  || fail "--env of an undefined environment: $err"
# --no-color reaches athomic's log lines as NO_COLOR does (on a terminal they are coloured).
out=$(script -qec "'$athomic' config" /dev/null)
grep -q $'\e\\[' <<<"$out" || fail "log lines on a terminal are not coloured: $out"
out=$(script -qec "'$athomic' --no-color config" /dev/null)
grep -q $'\e' <<<"$out" && fail "log lines coloured with --no-color: $out"

# doctor: one line per step, a fix for the one that failed, the exit code of its kind.
run "$athomic" doctor
[ "$rc" = 0 ] || fail "doctor on local exited $rc: $out $err"
grep -q "^✓ settings: environment development, backend local (built-in defaults)$" <<<"$out" \
  && grep -q "^✓ plugin: provider 'local' .*athomic_provider_local.so)$" <<<"$out" \
  && grep -q "^✓ start: started (in process)$" <<<"$out" \
  && grep -Eq "^✓ round trip: published athomic\.doctor\.[0-9.]+ and received it in [0-9.]+ ms \(in process only" <<<"$out" \
  || fail "doctor on local: $out"
grep -q $'\e' <<<"$out" && fail "doctor coloured output that is not a terminal"
run "$athomic" --settings b.toml doctor
[ "$rc" = 0 ] && grep -q "^✓ start: ready$" <<<"$out" && grep -q "^✓ round trip: published" <<<"$out" \
  || fail "doctor on a remote backend: $rc $out $err"
run env NALA_EVENTS__EXECUTOR__WORKERS=lots "$athomic" doctor
[ "$rc" = 2 ] && grep -q "^✗ settings: environment variable NALA_EVENTS__EXECUTOR__WORKERS" <<<"$out" \
  && grep -q "^    fix: " <<<"$out" && grep -q "^- round trip: skipped: no settings$" <<<"$out" \
  || fail "doctor with bad settings: $rc $out"
run env NALA_EVENTS__PROVIDER__BACKEND=nosuch "$athomic" doctor
[ "$rc" = 2 ] && grep -q "^✗ plugin: .*nosuch" <<<"$out" && grep -q "^    fix: \`athomic backends\`" <<<"$out" \
  || fail "doctor with a missing backend: $rc $out"
# A provider that refuses its settings: the fix is in the settings, not in finding the plugin.
run env NALA_EVENTS__PROVIDER__BACKEND=init_fails NALA_EVENTS__PLUGINS_DIR="$test_plugins" "$athomic" doctor
[ "$rc" = 2 ] && grep -q "^✗ plugin: .*failed to initialise: setting 'shards' is required" <<<"$out" \
  && grep -q "^    fix: correct the setting named above; \`athomic config\` shows" <<<"$out" \
  || fail "doctor with a provider that refuses its settings: $rc $out"
run env NALA_EVENTS__PROVIDER__BACKEND=loopback NALA_EVENTS__PROVIDER__GRUOP=a NALA_EVENTS__PLUGINS_DIR="$test_plugins" "$athomic" doctor
[ "$rc" = 2 ] && grep -q "^✗ plugin: .*unknown setting events.provider.gruop" <<<"$out" \
  && grep -q "^    fix: correct the setting named above; \`athomic config\` shows" <<<"$out" \
  || fail "doctor with a provider setting the provider does not declare: $rc $out"
run env NALA_EVENTS__PROVIDER__BACKEND=start_fails NALA_EVENTS__PLUGINS_DIR="$test_plugins" "$athomic" doctor
[ "$rc" = 1 ] && grep -q "^✗ start: .*cannot reach broker at 127.0.0.1:1: connection refused" <<<"$out" \
  && grep -q "^- round trip: skipped: the bus did not start$" <<<"$out" \
  || fail "doctor with a backend that does not start: $rc $out"
# Colours on a terminal only, and not with NO_COLOR or --no-color.
out=$(script -qec "'$athomic' doctor" /dev/null)
grep -q $'\e\\[32m✓' <<<"$out" || fail "doctor on a terminal is not coloured: $out"
out=$(NO_COLOR=1 script -qec "'$athomic' doctor" /dev/null)
grep -q $'\e' <<<"$out" && fail "doctor coloured with NO_COLOR: $out"
out=$(script -qec "'$athomic' doctor --no-color" /dev/null)
grep -q $'\e' <<<"$out" && fail "doctor coloured with --no-color: $out"
# stats without an endpoint: the metrics of a short run of this process's own bus.
run "$athomic" stats -n 20
[ "$rc" = 0 ] && grep -q "^metrics of a run of 20 event(s) published and received by this process$" <<<"$out" \
  && grep -q "^backend local, connection up, outages 0, queue [0-9]*/65536 events" <<<"$out" \
  && grep -q "^event  *published  received  delivered  failures  dropped  latency p50 p90 p99  handler p50 p90 p99$" <<<"$out" \
  && grep -Eq "^athomic\.stats\.[0-9]+  +20  +0  +20  +0  +0  +[0-9.]+(us|ms) [0-9.]+(us|ms) [0-9.]+(us|ms)  +[0-9.]+(us|ms) " <<<"$out" \
  || fail "stats of a short run: $rc $out $err"
run "$athomic" stats --endpoint 127.0.0.1:1
[ "$rc" = 1 ] && grep -q "^athomic stats: cannot connect to 127.0.0.1:1: Connection refused$" <<<"$err" \
  || fail "stats of an endpoint that is not there: $rc $out $err"
run "$athomic" stats --endpoint nocolon
[ "$rc" = 2 ] && grep -q "expected HOST:PORT" <<<"$err" || fail "stats --endpoint without a port: $rc $err"
for bad in http://127.0.0.1:9464/metrics 127.0.0.1:99999 127.0.0.1:0; do
  run "$athomic" stats --endpoint "$bad"
  [ "$rc" = 2 ] && grep -q "port from 1 to 65535" <<<"$err" || fail "stats --endpoint $bad: $rc $err"
done
run "$athomic" stats --endpoint ""
[ "$rc" = 2 ] && grep -q "an empty HOST:PORT" <<<"$err" || fail "stats --endpoint '': $rc $out $err"
# bench on local: within the process, said so; the counts and the shape of the figures (their
# values are the machine's). A progress display on a terminal only.
run "$athomic" bench -n 500 --size 200
[ "$rc" = 0 ] && [ "$(sed -n 1p <<<"$out")" = "bench: 500 events of 200 bytes on backend 'local', published and received in this process" ] \
  && grep -Eq "^published 500 of 500 in [0-9.]+ s: [0-9]+ events/s$" <<<"$out" \
  && grep -Eq "^received  500 of 500 in [0-9.]+ s: [0-9]+ events/s$" <<<"$out" \
  && grep -Eq "^latency   p50 [0-9.]+ ms, p90 [0-9.]+ ms, p99 [0-9.]+ ms, max [0-9.]+ ms \(publish to handler\)$" <<<"$out" \
  && [ "$(wc -l <<<"$out")" = 4 ] || fail "bench on local: $rc $out $err"
grep -q "athomic bench: backend 'local' is in-process only: publishing and receiving in this process." <<<"$err" \
  || fail "bench on local does not say it stays in process: $err"
grep -q "published [0-9]*/500" <<<"$err" && fail "bench shows progress when stderr is not a terminal: $err"
out=$(script -qec "'$athomic' bench -n 300 --rate 3000" /dev/null)
grep -q "published [0-9]*/300  received [0-9]*/300" <<<"$out" && grep -q "^received  300 of 300 in" <<<"$out" \
  || fail "bench on a terminal shows no progress: $out"
run "$athomic" bench -n 0
[ "$rc" = 2 ] && grep -q "expected a count of 1 or more, not 0" <<<"$err" || fail "bench -n 0: $rc $err"
# Across processes on a transport that never delivers back: counted, and exit 1.
run "${ack[@]}" "$athomic" bench -n 20
[ "$rc" = 1 ] && grep -q "published by this process, received by another" <<<"$out" \
  && grep -q "^received  0 of 20 in" <<<"$out" \
  && grep -q "athomic bench: 20 of 20 event(s) did not arrive (none for 5 s)" <<<"$err" \
  || fail "bench with nothing received: $rc $out $err"
# Answers every connection with the bytes of the file named on its command line, then closes.
cat >"$work/answer.py" <<'PY'
import socket, sys
answer = open(sys.argv[1], "rb").read()
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(8)
print(server.getsockname()[1], flush=True)
while True:
    c, _ = server.accept()
    c.recv(65536)
    c.sendall(answer)
    c.close()
PY
# stats_of FILE: `athomic stats --endpoint` against a server answering FILE's bytes.
stats_of() {
  coproc answering { exec python3 "$work/answer.py" "$1"; }
  local port
  read -r port <&"${answering[0]}"
  run "$athomic" stats --endpoint "127.0.0.1:$port"
  kill "$answering_PID" 2>/dev/null || true
  wait "$answering_PID" 2>/dev/null || true
}
# Another program's metrics, even with an `event` label, are not a bus's: said so, not printed.
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n# TYPE app_events_processed_total counter\napp_events_processed_total{event="order.created"} 1532\nprocess_cpu_seconds_total 3.5\n' >"$work/other_app"
stats_of "$work/other_app"
[ "$rc" = 1 ] && [ -z "$out" ] && grep -q "answered, but with no athomic metrics: is that a service with events.metrics.listen?" <<<"$err" \
  || fail "stats of another program's metrics: $rc $out $err"
# A bus's metrics as other servers may send them: a status line without a reason phrase, chunked
# although asked with HTTP/1.0, CRLF line ends, timestamps; NaN and +Inf samples are no counts.
body=$(printf 'athomic_connection_state{backend="redis",state="up"} 1 1764212345000\r\nathomic_events_published_total{event="a.b"} 7 1764212345000\r\nathomic_events_received_total{event="a.b"} NaN\r\nathomic_handler_calls_total{event="a.b"} +Inf\r\nathomic_queue_events 3\r\n')
{ printf 'HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n'
  printf '%x\r\n%s\r\n' 64 "${body:0:64}"
  printf '%x\r\n%s\r\n0\r\n\r\n' "$(( ${#body} - 64 ))" "${body:64}"; } >"$work/chunked"
stats_of "$work/chunked"
[ "$rc" = 0 ] && grep -q "^backend redis, connection up, outages 0, queue 3/? events" <<<"$out" \
  && grep -Eq "^a\.b +7 +0 +0 +0 +0 " <<<"$out" || fail "stats of a chunked, CRLF, timestamped answer: $rc $out $err"
run env NALA_EVENTS__METRICS__LISTEN=127.0.0.1:1 "$athomic" stats
[ "$rc" = 1 ] && grep -q "cannot connect to 127.0.0.1:1: Connection refused (events.metrics.listen, environment variable NALA_EVENTS__METRICS__LISTEN)" <<<"$err" \
  || fail "stats reads events.metrics.listen: $rc $out $err"
echo "PASS"
