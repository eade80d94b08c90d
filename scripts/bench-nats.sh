#!/usr/bin/env bash
# NATS end to end: publisher process -> nats-server -> subscriber process with a handler, through
# athomic and its out-of-tree nats provider, against the NATS C client alone
# (tests/bench/nats/raw_nats_bench.cpp: publish loop -> subscriber callback) on the same server,
# with messages of the same size, in the same run; then publish->handler latency at a fixed
# 10,000 events/s, of both. Release build; the provider is built against the installed release, as a
# third party builds it.
#   scripts/bench-nats.sh      N=1000000 events, LAT_N=50000 for latency, ROUNDS=3 (override any)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ports.sh
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j2 >/dev/null

N=${N:-1000000}
LAT_N=${LAT_N:-50000}
ROUNDS=${ROUNDS:-3}
bin=$PWD/build/release/bin/athomic_e2e_bench
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "== the nats provider, built against the installed release"
cmake --install build/release --prefix "$work/stage" >/dev/null
cmake -S plugins/nats -B "$work/nats" -DCMAKE_PREFIX_PATH="$work/stage" \
      -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/nats" >/dev/null
mkdir -p "$work/plugins"
cp "$work/nats/athomic_provider_nats.so" "$work/plugins/"
raw="$work/raw_nats_bench"
g++ -std=c++17 -O2 -o "$raw" tests/bench/nats/raw_nats_bench.cpp $(pkg-config --cflags --libs libnats)

port=""
for _ in $(seq 20); do
  candidate=$(claim_port) || break
  nats-server -a 127.0.0.1 -p "$candidate" -l "$work/nats-server.log" &
  server=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null && { port=$candidate; break; }
    kill -0 "$server" 2>/dev/null || break
    sleep 0.05
  done
  if [ -n "$port" ]; then pids+=($server); break; fi
  kill "$server" 2>/dev/null || true
done
[ -n "$port" ] || { echo "could not start nats-server" >&2; exit 1; }
url="nats://127.0.0.1:$port"
nats-server --version

export ATHOMIC_PLUGIN_PATH="$work/plugins"
export NALA_EVENTS__PROVIDER__BACKEND=nats
export NALA_EVENTS__PROVIDER__URL="$url"
# A throughput run deliberately outpaces the subscriber: let its client queue everything, as
# the baseline's does, so that neither side drops.
export NALA_EVENTS__PROVIDER__PENDING_LIMIT_MESSAGES=$((N + 1))
export NALA_EVENTS__PROVIDER__PENDING_LIMIT_BYTES=1073741824
cd "$work"  # no settings file here: the environment is the configuration

# The size of the bench's envelopes on the wire ({"n","pad" of 64,"ts"} plus _nala_context),
# for the baseline.
body=$(printf '{"n":999999,"pad":"%064d","ts":1234567890123456,"_nala_context":{"tenant_id":"bench","trace_id":"bench-trace"}}' 0)
size=${#body}

rate_of() { sed -E 's/.*"events_per_s":([0-9.e+]+).*/\1/' <<<"$1"; }

# A coprocess's variables vanish once it exits: its output and pid are kept first.
run_raw() {  # $1: messages, $2: rate (0: as fast as it can)
  coproc RAW { "$raw" sub "$url" bench.raw "$1"; }
  local ready sub out pid=$RAW_PID
  exec {out}<&"${RAW[0]}"
  read -r ready <&"$out"
  [ "$ready" = ready ] || { echo "raw subscriber did not start" >&2; exit 1; }
  [ "$2" = 0 ] || sleep "${SETTLE:-1}"
  "$raw" pub "$url" bench.raw "$1" "$size" "$2" >&2
  read -r sub <&"$out"
  exec {out}<&-
  wait "$pid" || true
  echo "$sub"
}

run_pair() {  # $1: dispatch mode of the subscriber; prints the subscriber's JSON line
  coproc SUB { NALA_EVENTS__EXECUTOR__MODE="$1" "$bin" --role sub -n "$N" --timeout 300; }
  local ready sub out pid=$SUB_PID
  exec {out}<&"${SUB[0]}"
  read -r ready <&"$out"
  [ "$ready" = ready ] || { echo "subscriber did not start" >&2; exit 1; }
  "$bin" --role pub -n "$N" >&2
  read -r sub <&"$out"
  exec {out}<&-
  wait "$pid" || true
  echo "$sub"
}

for round in $(seq "$ROUNDS"); do
  echo "== round $round: raw NATS C client, publisher process -> subscriber process ($N messages of $size bytes)"
  raw_sub=$(run_raw "$N" 0)
  echo "raw subscriber: $raw_sub"
  base=$(rate_of "$raw_sub")
  for mode in pool inline; do
    echo "== round $round: athomic nats, publisher process -> subscriber process, $mode dispatch ($N events)"
    sub=$(run_pair "$mode")
    echo "subscriber: $sub"
    awk -v r="$(rate_of "$sub")" -v b="$base" 'BEGIN {
      printf "ratio: %.0f%% of the raw NATS C client (%.0f events/s against %.0f)\n", 100*r/b, r, b }'
  done
done

echo "== latency at 10,000 events/s ($LAT_N events): raw NATS C client"
echo "raw subscriber: $(run_raw "$LAT_N" 10000)"
echo "== latency at 10,000 events/s ($LAT_N events): athomic nats, pool dispatch"
coproc SUB2 { "$bin" --role sub -n "$LAT_N" --timeout 300; }
pid=$SUB2_PID
exec {out}<&"${SUB2[0]}"
read -r ready <&"$out"
sleep "${SETTLE:-1}"  # steady state, as in bench-redis.sh; SETTLE=0 measures the cold start
"$bin" --role pub -n "$LAT_N" --rate 10000 >/dev/null
read -r sub2 <&"$out"
wait "$pid" || true
echo "subscriber: $sub2"
