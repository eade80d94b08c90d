#!/usr/bin/env bash
# The slow-consumer run (docs/BENCHMARKS.md): a handler that takes 1 ms per event, a publisher
# that runs flat out for SECONDS (default 10), on `local` (one process) and on `redis` (publisher
# and subscriber processes, 10 KiB events). Prints each side's JSON line: peak RSS, publishes
# accepted and refused, events handled, and the bus's counters of what was dropped and why.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j2 --target athomic_slow_consumer athomic_provider_local \
  athomic_provider_redis >/dev/null
SECONDS_TO_RUN=${SECONDS_TO_RUN:-10}
bin=build/release/bin/athomic_slow_consumer

echo "== local, pool dispatch, default bounds (65,536 events / 64 MiB), when_full = fail"
NALA_EVENTS__EXECUTOR__WHEN_FULL=fail "$bin" --role local --seconds "$SECONDS_TO_RUN"
echo "== local, 10 KiB payloads"
NALA_EVENTS__EXECUTOR__WHEN_FULL=fail "$bin" --role local --seconds "$SECONDS_TO_RUN" --payload-bytes 10240

source scripts/lib/redis.sh
work=$(mktemp -d)
cleanup() { stop_redis; rm -rf "$work"; }
trap cleanup EXIT
start_redis "$work"
cat > "$work/settings.toml" <<TOML
[default.events.provider]
backend = "redis"
[default.events.provider.provider]
key_prefix = "slow"
[default.events.provider.provider.provider]
uri = "redis://127.0.0.1:$redis_port/0"
TOML
export NALA_SETTINGS_FILES="$work/settings.toml"
echo "== redis: publisher process -> redis-server -> slow subscriber process, 10 KiB events"
coproc SUB { "$bin" --role sub --seconds $((SECONDS_TO_RUN + 2)); }
read -r ready <&"${SUB[0]}"
[ "$ready" = ready ] || { echo "subscriber did not start" >&2; exit 1; }
"$bin" --role pub --seconds "$SECONDS_TO_RUN" --payload-bytes 10240
read -r sub <&"${SUB[0]}"
wait "$SUB_PID" || true
echo "$sub"
echo "redis-server: $(redis-cli -p "$redis_port" info clients | grep -E 'connected_clients|client_recent_max_output_buffer' | tr -d '\r' | tr '\n' ' ')"
