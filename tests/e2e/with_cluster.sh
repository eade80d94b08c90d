#!/usr/bin/env bash
# Runs a command against a Redis Cluster: three masters with one replica each, on free loopback
# ports (client and cluster-bus ports both picked here), a quick node timeout (1 s) so that a
# failover takes seconds, no persistence; with the NALA_ settings that select the redis backend
# through the cluster's seed nodes; stops them all afterwards.
# Usage: [CLUSTER_PUBSUB=sharded|classic] [MASTERS=3] [REPLICAS=1] with_cluster.sh CMD [ARGS...]
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/ports.sh"
masters=${MASTERS:-3}
replicas=${REPLICAS:-1}
work=$(mktemp -d)
ports=()
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do while kill -0 "$pid" 2>/dev/null; do sleep 0.02; done; done
  rm -rf "$work"
}
trap cleanup EXIT

# start_node: a daemonized cluster-enabled redis-server on a free port (its bus on another),
# with a directory of its own, answering PING; appends its port to ports and its pid to pids.
start_node() {
  local candidate bus dir
  for _ in $(seq 20); do
    candidate=$(claim_port) && bus=$(claim_port) || break
    dir="$work/node-$candidate"
    mkdir -p "$dir"
    if redis-server --port "$candidate" --cluster-port "$bus" --bind 127.0.0.1 \
         --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
         --cluster-node-timeout 1000 --save '' --appendonly no --repl-diskless-sync-delay 0 --protected-mode no \
         --daemonize yes --dir "$dir" --logfile "$dir/redis.log" \
         --pidfile "$dir/redis.pid" 2>/dev/null; then
      for _ in $(seq 100); do redis-cli -p "$candidate" ping >/dev/null 2>&1 && break; sleep 0.05; done
      if redis-cli -p "$candidate" ping >/dev/null 2>&1; then
        ports+=("$candidate")
        pids+=("$(cat "$dir/redis.pid")")
        return 0
      fi
      # It did not come up (a port taken meanwhile): make sure it is gone.
      [ -f "$dir/redis.pid" ] && kill -9 "$(cat "$dir/redis.pid")" 2>/dev/null || true
    fi
    rm -rf "$dir"
  done
  echo "could not start a cluster node" >&2
  return 1
}

for _ in $(seq $((masters * (1 + replicas)))); do start_node; done
nodes=()
for p in "${ports[@]}"; do nodes+=("127.0.0.1:$p"); done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas "$replicas" --cluster-yes >"$work/create.log" 2>&1 \
  || { cat "$work/create.log" >&2; exit 1; }

# Every node says cluster_state:ok, every replica is in sync, and redis-cli finds them all agreeing on the slot map.
ready() {
  local p
  for p in "${ports[@]}"; do
    redis-cli -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
    # A replica is in sync with its master (so that it can take over).
    if redis-cli -p "$p" info replication 2>/dev/null | grep -q '^role:slave'; then
      redis-cli -p "$p" info replication | grep -q '^master_link_status:up' || return 1
    fi
  done
  local check
  check=$(redis-cli --cluster check "127.0.0.1:${ports[0]}" 2>&1) || return 1
  grep -q 'All nodes agree about slots configuration' <<<"$check" &&
    grep -q 'All 16384 slots covered' <<<"$check"
}
for _ in $(seq 200); do ready && break; sleep 0.1; done
ready || { echo "the cluster did not become ready" >&2; redis-cli --cluster check "127.0.0.1:${ports[0]}" >&2; exit 1; }

seeds=$(IFS=,; echo "${nodes[*]}")
export NALA_EVENTS__PROVIDER__BACKEND=redis
export NALA_EVENTS__PROVIDER__PROVIDER__KEY_PREFIX=conformance
export NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__CLUSTER_NODES="$seeds"
export NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__CLUSTER_PUBSUB="${CLUSTER_PUBSUB:-sharded}"
"$@"
