# Sourced by scripts that need a throwaway redis-server.
# start_redis DIR: starts redis-server on a free loopback port, logging into DIR; sets $redis_port.
# stop_redis: stops it (safe to call when none was started).
source "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

start_redis() {
  local dir=$1 candidate
  redis_port=""
  for _ in $(seq 20); do
    candidate=$(claim_port) || break
    if redis-server --port "$candidate" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
         --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" 2>/dev/null; then
      for _ in $(seq 100); do redis-cli -p "$candidate" ping >/dev/null 2>&1 && break; sleep 0.05; done
      if redis-cli -p "$candidate" ping >/dev/null 2>&1; then
        redis_port=$candidate
        return 0
      fi
    fi
  done
  echo "could not start redis-server" >&2
  return 1
}

stop_redis() {
  if [ -n "${redis_port:-}" ]; then redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true; fi
}
