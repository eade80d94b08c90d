#!/usr/bin/env bash
# Runs a command against Redis Sentinel: a master, a replica of it and three sentinels (quorum 2)
# on free loopback ports, with the NALA_ settings that select the redis backend through the
# sentinels; stops them all afterwards. The sentinels run as `redis-server CONF --sentinel`
# (the same program Debian's redis-sentinel is). Usage: with_sentinel.sh CMD [ARGS...]
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/ports.sh"
work=$(mktemp -d)
ports=()
cleanup() {
  for p in "${ports[@]}"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# start NAME ARGS...: a daemonized redis-server (ARGS complete its command line) on a free port,
# answering PING; sets $port.
start() {
  local name=$1 candidate
  shift
  for _ in $(seq 20); do
    candidate=$(claim_port) || break
    if "$@" --port "$candidate" --bind 127.0.0.1 --daemonize yes --dir "$work" \
         --logfile "$work/$name-$candidate.log" --pidfile "$work/$name-$candidate.pid" 2>/dev/null; then
      for _ in $(seq 100); do redis-cli -p "$candidate" ping >/dev/null 2>&1 && break; sleep 0.05; done
      if redis-cli -p "$candidate" ping >/dev/null 2>&1; then
        port=$candidate
        ports+=("$port")
        return 0
      fi
    fi
  done
  echo "could not start $name" >&2
  return 1
}

master_name=conformance-master
start master redis-server --save '' --appendonly no
master=$port
start replica redis-server --save '' --appendonly no --replicaof 127.0.0.1 "$master"
sentinels=""
for i in 1 2 3; do
  conf="$work/sentinel-$i.conf"
  printf 'sentinel monitor %s 127.0.0.1 %s 2\nsentinel down-after-milliseconds %s 1000\n' \
    "$master_name" "$master" "$master_name" >"$conf"
  start "sentinel-$i" redis-server "$conf" --sentinel
  sentinels+="${sentinels:+,}127.0.0.1:$port"
  answer=$(redis-cli -p "$port" sentinel get-master-addr-by-name "$master_name" | tail -1)
  [ "$answer" = "$master" ] || { echo "sentinel on $port names '$answer', not $master" >&2; exit 1; }
done

export NALA_EVENTS__PROVIDER__BACKEND=redis
export NALA_EVENTS__PROVIDER__PROVIDER__KEY_PREFIX=conformance
export NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__SENTINELS="$sentinels"
export NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__MASTER_NAME="$master_name"
"$@"
