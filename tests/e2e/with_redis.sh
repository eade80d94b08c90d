#!/usr/bin/env bash
# Runs a command with a fresh redis-server on a free loopback port and the NALA_ settings that
# select the redis backend on it; stops the server afterwards. Usage: with_redis.sh CMD [ARGS...]
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/redis.sh"
work=$(mktemp -d)
trap 'stop_redis; rm -rf "$work"' EXIT
start_redis "$work"
export NALA_EVENTS__PROVIDER__BACKEND=redis
export NALA_EVENTS__PROVIDER__PROVIDER__KEY_PREFIX=conformance
export NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__URI="redis://127.0.0.1:$redis_port/0"
"$@"
