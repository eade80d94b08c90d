#!/usr/bin/env bash
# Runs a command with a fresh relay broker (tests/plugins/relay) on a free loopback port and the
# NALA_ settings that select the relay provider BACKEND on it. For the conformance suite's
# overload check, ATHOMIC_CONFORMANCE_SERVER_STOP kills the broker and
# ATHOMIC_CONFORMANCE_SERVER_START starts it again on the same port (claimed for this script:
# no other test takes it meanwhile).
# Usage: with_relay.sh BROKER PLUGIN_DIR BACKEND CMD [ARGS...]
set -euo pipefail
source "$(dirname "$0")/../../scripts/lib/ports.sh"
broker=$1 plugins=$2 backend=$3
shift 3
work=$(mktemp -d)
trap 'kill -9 "$(cat "$work/broker.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT
claim_port >"$work/port"

cat >"$work/start" <<SCRIPT
#!/usr/bin/env bash
# Starts the broker on the claimed port and waits until it listens. The previous run's output
# goes first: read before the new broker truncates it, it would say "listening" too soon.
port=\$(cat "$work/port")
rm -f "$work/broker.out"
"$broker" --port "\$port" >"$work/broker.out" 2>&1 &
echo \$! >"$work/broker.pid"
for _ in \$(seq 500); do
  grep -qx "port \$port" "$work/broker.out" 2>/dev/null && exit 0
  kill -0 \$! 2>/dev/null || break
  sleep 0.01
done
echo "the relay broker did not start: \$(cat "$work/broker.out")" >&2
exit 1
SCRIPT
cat >"$work/stop" <<SCRIPT
#!/usr/bin/env bash
# Kills the broker and waits until its port refuses connections.
kill -9 "\$(cat "$work/broker.pid")"
for _ in \$(seq 500); do
  (exec 3<>"/dev/tcp/127.0.0.1/\$(cat "$work/port")") 2>/dev/null || exit 0
  sleep 0.01
done
exit 1
SCRIPT
chmod +x "$work/start" "$work/stop"
"$work/start"

export ATHOMIC_PLUGIN_PATH="$plugins"
export NALA_EVENTS__PROVIDER__BACKEND="$backend"
export NALA_EVENTS__PROVIDER__PORT="$(cat "$work/port")"
export ATHOMIC_CONFORMANCE_SERVER_STOP="$work/stop"
export ATHOMIC_CONFORMANCE_SERVER_START="$work/start"
"$@"
