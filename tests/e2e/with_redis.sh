#!/usr/bin/env bash
# Runs a command with a fresh redis-server on a free loopback port and the NALA_ settings that
# select the redis backend on it; stops the server afterwards. Usage: with_redis.sh CMD [ARGS...]
set -euo pipefail
work=$(mktemp -d)
port=""
cleanup() {
  [ -n "$port" ] && redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 20); do
  candidate=$((20000 + RANDOM % 20000))
  if redis-server --port "$candidate" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
       --logfile "$work/redis.log" --pidfile "$work/redis.pid" 2>/dev/null; then
    for _ in $(seq 100); do redis-cli -p "$candidate" ping >/dev/null 2>&1 && break; sleep 0.05; done
    if redis-cli -p "$candidate" ping >/dev/null 2>&1; then port=$candidate; break; fi
  fi
done
[ -n "$port" ] || { echo "could not start redis-server"; exit 1; }
export NALA_EVENTS__PROVIDER__BACKEND=redis
export NALA_EVENTS__PROVIDER__PROVIDER__KEY_PREFIX=conformance
export NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__URI="redis://127.0.0.1:$port/0"
"$@"
