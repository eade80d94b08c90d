#!/usr/bin/env bash
# ATHOMIC_CONFORMANCE_SERVER_STOP/START for the redis-server tests/e2e/with_redis.sh started:
# "redis_server.sh stop" shuts it down, "redis_server.sh start" starts it again on the same port
# (read from NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__URI); with_redis.sh stops it at the end.
set -euo pipefail
uri=${NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__URI:?not set: run under tests/e2e/with_redis.sh}
port=${uri##*:}
port=${port%%/*}
case ${1:-} in
  stop)
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    for _ in $(seq 200); do redis-cli -p "$port" ping >/dev/null 2>&1 || exit 0; sleep 0.01; done
    exit 1 ;;
  start)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
                 --logfile /dev/null >/dev/null
    for _ in $(seq 200); do redis-cli -p "$port" ping >/dev/null 2>&1 && exit 0; sleep 0.01; done
    exit 1 ;;
  *) echo "usage: $0 stop|start" >&2; exit 2 ;;
esac
