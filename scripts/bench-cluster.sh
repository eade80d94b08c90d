#!/usr/bin/env bash
# Redis Cluster throughput: PAIRS publisher processes, each with a subscriber process on an event
# name of its own, all at once, on one redis-server and on a cluster of three masters with
# sharded Pub/Sub, in the same run (alternating, ROUNDS times). The names are chosen so that the
# pairs spread over the shards. Aggregate events/s = all events received / the wall time from
# the publishers' start to the last subscriber done. Release build.
#   scripts/bench-cluster.sh        N=200000 events per pair, PAIRS=3, ROUNDS=3 (override any)
# On a machine with fewer cores than processes the figure is bounded by the cores, not by Redis:
# docs/BENCHMARKS.md reads it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__CLUSTER_NODES:-}" ]; then
  scripts/install-deps.sh
  cmake --preset release >/dev/null
  cmake --build --preset release -j2 --target athomic_e2e_bench athomic_provider_redis >/dev/null
  # Again inside a cluster of three masters without replicas (a replica would add the shard's
  # own replication traffic to the cluster's side only).
  MASTERS=3 REPLICAS=0 CLUSTER_PUBSUB=sharded exec tests/e2e/with_cluster.sh "$0" "$@"
fi

N=${N:-200000}
PAIRS=${PAIRS:-3}
ROUNDS=${ROUNDS:-3}
bin=$PWD/build/release/bin/athomic_e2e_bench
export ATHOMIC_LOG_LEVEL=warn
cluster_nodes=$NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__CLUSTER_NODES
prefix=$NALA_EVENTS__PROVIDER__PROVIDER__KEY_PREFIX
first_node=${cluster_nodes%%,*}
first_port=${first_node##*:}

source scripts/lib/redis.sh
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_redis
  rm -rf "$work"
}
trap cleanup EXIT
start_redis "$work"
single_port=$redis_port

# Throughput runs outpace subscribers on purpose: let the servers buffer rather than disconnect.
for node in ${cluster_nodes//,/ } "127.0.0.1:$single_port"; do
  redis-cli -p "${node##*:}" config set client-output-buffer-limit "pubsub 0 0 0" >/dev/null
done

# The master serving each event name's slot; names spread over the masters, round robin.
owner_of() {  # $1: event name
  local slot
  slot=$(redis-cli -p "$first_port" cluster keyslot "$prefix:$1")
  redis-cli -p "$first_port" cluster nodes |
    awk -v s="$slot" '$3 ~ /master/ {for (i = 9; i <= NF; i++) {split($i, r, "-");
      if (r[2] == "") r[2] = r[1]; if (s >= r[1] && s <= r[2]) {print $2}}}' | cut -d@ -f1
}
masters=($(redis-cli -p "$first_port" cluster nodes | awk '$3 ~ /master/ {print $2}' | cut -d@ -f1 | sort))
names=()
declare -A placed=()
for i in $(seq 0 999); do
  [ "${#names[@]}" -lt "$PAIRS" ] || break
  name="bench.p$i"
  owner=$(owner_of "$name")
  want=${masters[$(( ${#names[@]} % ${#masters[@]} ))]}
  if [ "$owner" = "$want" ] && [ -z "${placed[$name]:-}" ]; then
    names+=("$name")
    placed[$name]=1
  fi
done
[ "${#names[@]}" -eq "$PAIRS" ] || { echo "could not place $PAIRS names on the shards" >&2; exit 1; }
echo "names: ${names[*]} (on ${masters[*]} in turn)"

# CPU seconds (user + system) the redis-servers of $1 (single|cluster) have used so far.
server_cpu() {
  local nodes=$cluster_nodes
  [ "$1" = single ] && nodes="127.0.0.1:$single_port"
  for node in ${nodes//,/ }; do
    redis-cli -p "${node##*:}" info cpu | tr -d '\r' |
      awk -F: '/^used_cpu_(user|sys):/ {t += $2} END {print t}'
  done | awk '{t += $1} END {printf "%.3f\n", t}'
}

run() {  # $1: single|cluster; prints "events/s client-CPU-us/event server-CPU-us/event"
  local target=$1 j start end received=0 cpu_before cpu_after
  cpu_before=$(server_cpu "$target")
  (
    if [ "$target" = single ]; then
      unset NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__CLUSTER_NODES
      unset NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__CLUSTER_PUBSUB
      export NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__URI="redis://127.0.0.1:$single_port/0"
    fi
    local subs=()
    for j in $(seq 0 $((PAIRS - 1))); do
      "$bin" --role sub -n "$N" --event "${names[$j]}" --timeout 600 >"$work/sub$j" 2>&1 &
      subs+=($!)
    done
    for j in $(seq 0 $((PAIRS - 1))); do
      until grep -qs '^ready' "$work/sub$j"; do sleep 0.05; done
    done
    start=$(date +%s.%N)
    for j in $(seq 0 $((PAIRS - 1))); do
      "$bin" --role pub -n "$N" --event "${names[$j]}" >"$work/pub$j" 2>&1 &
    done
    local failed=0
    for p in "${subs[@]}"; do wait "$p" || failed=1; done
    end=$(date +%s.%N)
    wait
    for j in $(seq 0 $((PAIRS - 1))); do
      received=$((received + $(sed -nE 's/.*"received":([0-9]+).*/\1/p' "$work/sub$j")))
    done
    [ "$failed" = 0 ] || echo "note: a subscriber missed events ($received of $((N * PAIRS)))" >&2
    # The children's CPU: the second line of `times`, "1m2.5s 0m1.2s".
    # (Not in a pipeline: that would be another shell's children.)
    times >"$work/times"
    local clients
    clients=$(sed -n 2p "$work/times" | awk '{for (i = 1; i <= 2; i++) {split($i, a, "m");
      sub("s", "", a[2]); t += a[1] * 60 + a[2]}} END {print t}')
    echo "$received $start $end $clients"
  ) >"$work/run"
  cpu_after=$(server_cpu "$target")
  read -r received start end clients <"$work/run"
  awk -v n="$received" -v s="$start" -v e="$end" -v c="$clients" -v b="$cpu_before" -v a="$cpu_after" \
    'BEGIN {printf "%.0f %.2f %.2f\n", n / (e - s), 1e6 * c / n, 1e6 * (a - b) / n}'
}

echo "== $PAIRS publisher processes -> $PAIRS subscriber processes, $N events each, $(nproc) cores"
single_rates=()
cluster_rates=()
for r in $(seq "$ROUNDS"); do
  read -r s s_client s_server < <(run single)
  read -r c c_client c_server < <(run cluster)
  single_rates+=("$s")
  cluster_rates+=("$c")
  awk -v s="$s" -v c="$c" -v r="$r" \
    'BEGIN {printf "round %d: one redis-server %d events/s, cluster (3 shards, sharded) %d events/s: %.2fx\n", r, s, c, c / s}'
  echo "  CPU per event: one redis-server: clients ${s_client} us, server ${s_server} us; cluster: clients ${c_client} us, servers ${c_server} us"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
ms=$(median "${single_rates[@]}")
mc=$(median "${cluster_rates[@]}")
awk -v s="$ms" -v c="$mc" \
  'BEGIN {printf "median: one redis-server %d events/s, cluster %d events/s: %.2fx\n", s, c, c / s}'
echo "($(nproc) cores: wall time per event x cores is the CPU available per event; see docs/BENCHMARKS.md)"
