#!/usr/bin/env bash
# The third-party proof, as an outsider would do it:
#   1. install athomic to a staging prefix;
#   2. build the NATS provider (plugins/nats, its own CMake project) against that prefix alone;
#   3. package it (athomic-provider-nats, CPack in plugins/nats), extract the package, and use
#      the plugins folder it installs (ATHOMIC_PLUGIN_PATH);
#   4. run the *installed* demo and `athomic` tool with backend = "nats" in two processes, against
#      a real nats-server on a loopback port: events flow with their context;
#   5. kill -9 nats-server mid-stream, restart it on the same port: delivery resumes.
# Usage: nats_out_of_tree.sh <athomic build dir> <source dir>
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
source "$src/scripts/lib/ports.sh"
work="$build/e2e-nats"
rm -rf "$work"
mkdir -p "$work/root"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$work"/*.log; do echo "--- $f"; tail -20 "$f"; done; exit 1; }

echo "== install to $work/stage"
cmake --install "$build" --prefix "$work/stage" >/dev/null
echo "== build plugins/nats against the staged SDK only"
cmake -S "$src/plugins/nats" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/stage" \
      -DCMAKE_BUILD_TYPE=Release >"$work/configure.log" 2>&1 || fail "configure"
cmake --build "$work/build" >"$work/build.log" 2>&1 || fail "build"
echo "== package it and install the package into an empty root"
(cd "$work/build" && cpack -B "$work/pkgs") >"$work/cpack.log" 2>&1 || fail "cpack"
deb=$(ls "$work"/pkgs/athomic-provider-nats_*.deb) || fail "no athomic-provider-nats package"
deps=$(dpkg-deb -f "$deb" Depends)
files=$(dpkg-deb -c "$deb")
echo "athomic-provider-nats: $deps"
grep -q 'libnats' <<<"$deps" || fail "the package does not depend on the NATS C client: $deps"
grep -q 'libathomic0 (>= ' <<<"$deps" || fail "the package does not depend on a host: $deps"
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
# Next to libathomic, in the multiarch folder.
grep -q "usr/lib/$triplet/athomic/plugins/athomic_provider_nats.so$" <<<"$files" || fail "no plugin in the package: $files"
dpkg -x "$deb" "$work/root"
plugins="$work/root/usr/lib/$triplet/athomic/plugins"

start_nats() {
  nats-server -a 127.0.0.1 -p "$port" >>"$work/nats-server.log" 2>&1 &
  nats_pid=$!
  pids+=($nats_pid)
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    kill -0 "$nats_pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
for _ in $(seq 20); do
  port=$(claim_port) || break
  start_nats && break
done

export ATHOMIC_PLUGIN_PATH="$plugins"
export NALA_EVENTS__PROVIDER__BACKEND=nats
export NALA_EVENTS__PROVIDER__URL="nats://127.0.0.1:$port"
export NALA_EVENTS__PROVIDER__RECONNECT_WAIT=0.1
cd "$work"   # no config/settings.toml here: the environment is the configuration

echo "== installed demo, two processes"
"$src/tests/e2e/demo_two_processes.sh" "$work/stage/bin/athomic-demo" "$work/demo" || fail "demo"
grep -q "loaded provider 'nats'.*$plugins/athomic_provider_nats.so" "$work/demo/audit.log" || fail "nats plugin not loaded"

echo "== kill -9 nats-server mid-stream and restart it"
"$work/stage/bin/athomic" listen stream.tick --timeout 20 -n 60 >"$work/listen.out" 2>"$work/listen.log" &
listener=$!
pids+=($listener)
# Readiness is on stderr: stdout holds only the events' JSON lines.
for _ in $(seq 200); do grep -q 'athomic listen: ready' "$work/listen.log" && break; sleep 0.05; done
"$work/stage/bin/athomic" publish stream.tick '{"k":1}' -n 20 --interval-ms 20 --trace-id t-stream \
  --tenant-id acme >"$work/pub1.log" 2>&1 || fail "first publisher"
# Core NATS confirms each publish without a count of receivers.
[ "$(grep -c '^stream.tick: acknowledged$' "$work/pub1.log")" = 20 ] || fail "publish did not say acknowledged"
kill -9 "$nats_pid"
wait "$nats_pid" 2>/dev/null || true
sleep 0.3
start_nats || fail "nats-server restart"
for _ in $(seq 200); do grep -q 'subscribing connection reconnected' "$work/listen.log" && break; sleep 0.05; done
grep -q 'subscribing connection reconnected' "$work/listen.log" || fail "the listener did not reconnect"
"$work/stage/bin/athomic" publish stream.tick '{"k":2}' -n 40 --interval-ms 5 --trace-id t-stream \
  --tenant-id acme >"$work/pub2.log" 2>&1 || fail "second publisher"
wait "$listener" || fail "listener did not receive 60 events"
lines=$(grep -c '"event":"stream.tick"' "$work/listen.out")
with_ctx=$(grep -c '"context":{"tenant_id":"acme","trace_id":"t-stream"}' "$work/listen.out")
[ "$lines" -eq 60 ] && [ "$with_ctx" -eq 60 ] || fail "expected 60 events with context, got $lines ($with_ctx with context)"
echo "ok: 20 events before the kill, 40 after the restart, all with their context, no re-subscribe by hand"
echo "== clear errors at start() and for bad settings"
dead=$((port + 1))
out=$(NALA_EVENTS__PROVIDER__URL="nats://127.0.0.1:$dead" NALA_EVENTS__PROVIDER__CONNECT_TIMEOUT=1 \
      "$work/stage/bin/athomic" publish x.y '{}' 2>&1) && fail "publish to a dead server succeeded"
grep -q "provider 'nats' failed to start: cannot connect to nats://127.0.0.1:$dead" <<<"$out" || fail "start error: $out"
out=$(NALA_EVENTS__PROVIDER__URLL=x "$work/stage/bin/athomic" publish x.y '{}' 2>&1) && fail "a misspelt key was accepted"
grep -q "unknown setting events.provider.urll" <<<"$out" || fail "settings error: $out"
out=$(NALA_EVENTS__PROVIDER__URL="nats://app:s3cret@127.0.0.1:$dead" NALA_EVENTS__PROVIDER__CONNECT_TIMEOUT=1 \
      "$work/stage/bin/athomic" publish x.y '{}' 2>&1) && fail "publish to a dead server succeeded"
grep -q "s3cret" <<<"$out" && fail "the password was printed: $out"
echo "ok: unreachable server, misspelt key and masked password reported as expected"

echo "== the installed conformance suite against the third-party provider"
"$work/stage/bin/athomic-conformance" >"$work/conformance.log" 2>&1 || fail "conformance suite for nats"
grep -E "^\[  (PASSED|SKIPPED|FAILED)" "$work/conformance.log"
echo "PASS"
