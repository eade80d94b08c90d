#!/usr/bin/env bash
# The `athomic` tool across processes on a real Redis: listen's stdout read by jq, patterns,
# receivers as the server counts them, a publish the server refuses, doctor, an unreachable
# server. Run by with_redis.sh. Usage: cli_redis.sh <athomic binary>
set -euo pipefail
athomic=$1
uri=$NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__URI  # redis://127.0.0.1:PORT/0
port=${uri##*:}
port=${port%%/*}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
fail() { echo "FAIL: $*"; exit 1; }

# run CMD...: runs it with its stdout in $out, its stderr in $err and its exit status in $rc.
run() {
  rc=0
  "$@" >"$work/stdout" 2>"$work/stderr" || rc=$?
  out=$(<"$work/stdout")
  err=$(<"$work/stderr")
}

# listen_bg NAME ARGS...: `athomic listen ARGS` in the background, stdout in NAME.out, stderr in
# NAME.err; returns once it says it is ready, with its process id in $pid.
listen_bg() {
  local name=$1
  shift
  set -m  # its own process group: a background job of a script would ignore SIGINT
  "$athomic" listen "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pid=$!
  set +m
  pids+=("$pid")
  for _ in $(seq 200); do
    grep -q "ready" "$work/$name.err" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  fail "listen $* did not become ready: $(cat "$work/$name.err")"
}

# wait_lines FILE N: waits up to 10 s for FILE to have N lines.
wait_lines() {
  for _ in $(seq 200); do
    [ "$(wc -l <"$1")" -ge "$2" ] && return 0
    sleep 0.05
  done
  fail "$1 has $(wc -l <"$1") lines, expected $2: $(cat "$1")"
}

# Names and patterns in one listen; its stdout is JSON lines only, so jq reads all of it.
listen_bg all 'user.*' 'orders.>' exact.name
grep -q "athomic listen: ready: user.\*, orders.>, exact.name on backend 'redis'" "$work/all.err" \
  || fail "listen readiness: $(cat "$work/all.err")"
grep -q "in-process only" "$work/all.err" && fail "redis called in-process: $(cat "$work/all.err")"
run "$athomic" publish user.created '{"id":1}' --trace-id t-1 --tenant-id acme
[ "$rc" = 0 ] && [ "$out" = "user.created: 1 receiver" ] || fail "publish to a pattern: $rc $out $err"
run "$athomic" publish orders.eu.created '{"id":2}'
[ "$out" = "orders.eu.created: 1 receiver" ] || fail "publish to a > pattern: $out $err"
run "$athomic" publish exact.name '{"id":3}'
[ "$out" = "exact.name: 1 receiver" ] || fail "publish to a name: $out $err"
# Redis's glob matches user.* to this and counts a receiver; the listener drops it (below).
run "$athomic" publish user.created.twice '{}'
[ "$rc" = 0 ] && [ "$out" = "user.created.twice: 1 receiver" ] || fail "publish user.created.twice: $rc $out $err"
wait_lines "$work/all.out" 3
kill -INT "$pid"
rc=0; wait "$pid" || rc=$?
[ "$rc" = 0 ] || fail "listen stopped by SIGINT exited $rc: $(cat "$work/all.err")"
jq -e . "$work/all.out" >/dev/null || fail "listen's stdout is not JSON lines: $(cat "$work/all.out")"
[ "$(jq -r .event "$work/all.out" | sort | tr '\n' ' ')" = "exact.name orders.eu.created user.created " ] \
  || fail "listen received: $(cat "$work/all.out")"
[ "$(jq -r 'select(.event == "user.created") | "\(.payload.id) \(.context.trace_id) \(.context.tenant_id)"' "$work/all.out")" = "1 t-1 acme" ] \
  || fail "an event's payload and context: $(cat "$work/all.out")"
[ "$(redis-cli -p "$port" pubsub numpat)" = 0 ] || fail "listen left its patterns subscribed"

# As in the issue: `athomic listen NAME | jq`, events published from stdin; --count ends it.
( "$athomic" listen pipe.test --count 2 --timeout 20 2>"$work/pipe.err" | jq -c .payload >"$work/pipe.out" ) &
pipe=$!
pids+=("$pipe")
for _ in $(seq 200); do grep -q "ready" "$work/pipe.err" && break; sleep 0.05; done
printf '{"n":1}\n{"n":2}\n' >"$work/lines"
run "$athomic" publish pipe.test <"$work/lines"
[ "$rc" = 0 ] && [ "$out" = $'pipe.test: 1 receiver\npipe.test: 1 receiver' ] || fail "publish from stdin: $rc $out $err"
wait "$pipe" || fail "listen | jq failed: $(cat "$work/pipe.err")"
[ "$(cat "$work/pipe.out")" = $'{"n":1}\n{"n":2}' ] || fail "listen | jq gave: $(cat "$work/pipe.out")"

# --raw: the payload alone. SIGTERM ends listen cleanly too.
listen_bg raw raw.test --raw
run "$athomic" publish raw.test '{"k":"v"}'
wait_lines "$work/raw.out" 1
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
[ "$rc" = 0 ] || fail "listen stopped by SIGTERM exited $rc"
[ "$(cat "$work/raw.out")" = '{"k":"v"}' ] || fail "listen --raw: $(cat "$work/raw.out")"
run "$athomic" listen quiet.test --timeout 0.3
[ "$rc" = 0 ] && [ -z "$out" ] || fail "listen --timeout: $rc $out $err"

# A publish the server refuses (an ACL user without rights on the channel) is not delivered.
redis-cli -p "$port" acl setuser limited on '>pw' '+@all' '~*' resetchannels '&conformance:allowed.*' >/dev/null
limited=(env NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__URI="redis://limited:pw@127.0.0.1:$port/0")
run "${limited[@]}" "$athomic" publish allowed.x '{}'
[ "$rc" = 0 ] && [ "$out" = "allowed.x: 0 receivers" ] || fail "a permitted publish: $rc $out $err"
run "${limited[@]}" "$athomic" publish denied.x '{}'
[ "$rc" = 1 ] && grep -q "^denied.x: not delivered: .*NOPERM" <<<"$out" \
  && grep -q "1 of 1 event(s) were not delivered" <<<"$err" || fail "a refused publish: $rc $out $err"

# doctor: every step passes on a running server.
run "$athomic" doctor
[ "$rc" = 0 ] && grep -q "^✓ start: connected to redis://127.0.0.1:$port/0$" <<<"$out" \
  && grep -Eq "^✓ round trip: published athomic\.doctor\.[0-9.]+ and received it in [0-9.]+ ms$" <<<"$out" \
  || fail "doctor on redis: $rc $out $err"

# stats of a running service: a listener with its metrics endpoint on (port 0: a free one, which
# its log names), after three events reached it and one event nobody subscribes to.
NALA_EVENTS__METRICS__LISTEN=127.0.0.1:0 listen_bg served stats.seen
endpoint=$(grep -o "metrics at http://[^/]*/metrics" "$work/served.err" | sed 's|metrics at http://||; s|/metrics||')
[ -n "$endpoint" ] || fail "the listener does not say where its metrics are: $(cat "$work/served.err")"
for i in 1 2 3; do run "$athomic" publish stats.seen "{\"i\":$i}"; done
wait_lines "$work/served.out" 3
run "$athomic" stats --endpoint "$endpoint"
[ "$rc" = 0 ] && grep -q "^metrics of http://$endpoint/metrics$" <<<"$out" \
  && grep -q "^backend redis, connection up, outages 0, queue [0-9]*/65536 events" <<<"$out" \
  && grep -Eq "^stats\.seen  +0  +3  +3  +0  +0  " <<<"$out" || fail "stats of a running listener: $rc $out $err"
# The same service found through events.metrics.listen.
run env NALA_EVENTS__METRICS__LISTEN="$endpoint" "$athomic" stats
[ "$rc" = 0 ] && grep -Eq "^stats\.seen  +0  +3  +3  " <<<"$out" || fail "stats through events.metrics.listen: $rc $out $err"
kill -TERM "$pid"
wait "$pid" || fail "the listener with an endpoint exited $?"
# A short run across the server.
run "$athomic" stats -n 5
[ "$rc" = 0 ] && grep -Eq "^athomic\.stats\.[0-9]+  +5  +5  +5  +0  +0  " <<<"$out" || fail "stats of a short run on redis: $rc $out $err"

# bench across processes: every event counted by the receiving process.
run "$athomic" bench -n 300 --size 64 --rate 5000
[ "$rc" = 0 ] && [ "$(sed -n 1p <<<"$out")" = "bench: 300 events of 64 bytes on backend 'redis', published by this process, received by another, at most 5000 events/s" ] \
  && grep -Eq "^published 300 of 300 in [0-9.]+ s: [0-9]+ events/s$" <<<"$out" \
  && grep -Eq "^received  300 of 300 in [0-9.]+ s: [0-9]+ events/s$" <<<"$out" \
  && grep -Eq "^latency   p50 [0-9.]+ ms, p90 [0-9.]+ ms, p99 [0-9.]+ ms, max [0-9.]+ ms \(publish to handler\)$" <<<"$out" \
  || fail "bench on redis: $rc $out $err"
grep -q "in-process only" <<<"$err" && fail "bench called redis in-process: $err"

# The same settings from a file, given with --settings instead of NALA_ variables.
cat >"$work/redis.toml" <<TOML
[default.events.provider]
backend = "redis"
[default.events.provider.provider]
key_prefix = "conformance"
[default.events.provider.provider.provider]
uri = "$uri"
TOML
run env -u NALA_EVENTS__PROVIDER__BACKEND -u NALA_EVENTS__PROVIDER__PROVIDER__KEY_PREFIX \
  -u NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__URI "$athomic" --settings redis.toml doctor
[ "$rc" = 0 ] && grep -q "^✓ settings: environment development, backend redis (redis.toml" <<<"$out" \
  || fail "doctor with --settings: $rc $out $err"

# config shows the settings, and says when the provider refuses them (as a bus would): exit 2.
run env NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__URI="redis://127.0.0.1:notaport/0" "$athomic" config
[ "$rc" = 2 ] && grep -q '^events.provider.provider.provider.uri *= "redis://127.0.0.1:notaport/0"' <<<"$out" \
  && grep -q "^athomic config: these settings are refused: .*the port in the uri must be 1 to 65535, got 'notaport'" <<<"$err" \
  || fail "config with a uri the provider refuses: $rc $out $err"
run "$athomic" config
[ "$rc" = 0 ] && [ -z "$(grep -v ' info ' <<<"$err")" ] || fail "config with good settings: $rc $err"

# No server: 1 for every command, and doctor says which step failed and what to check.
down=(env NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__URI=redis://127.0.0.1:1/0)
run "${down[@]}" "$athomic" doctor
[ "$rc" = 1 ] && grep -q "^✗ start: .*127.0.0.1:1" <<<"$out" \
  && grep -q "^    fix: check that the server is running" <<<"$out" || fail "doctor without a server: $rc $out"
run "${down[@]}" "$athomic" publish x.y '{}'
[ "$rc" = 1 ] && grep -q "^athomic: .*127.0.0.1:1" <<<"$err" || fail "publish without a server: $rc $err"
run "${down[@]}" "$athomic" bench -n 10
[ "$rc" = 1 ] && grep -q "^athomic: .*127.0.0.1:1" <<<"$err" || fail "bench without a server: $rc $err"
run "${down[@]}" "$athomic" listen x.y --timeout 1
[ "$rc" = 1 ] && grep -q "^athomic: .*127.0.0.1:1" <<<"$err" || fail "listen without a server: $rc $err"
echo "PASS"
