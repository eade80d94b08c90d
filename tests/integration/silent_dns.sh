#!/usr/bin/env bash
# Runs the name-resolution tests (argument: their binary) in private mount and network
# namespaces: /etc/resolv.conf names a DNS server on 127.0.0.153, which the tests run and which
# never answers, the tests may rewrite /etc/hosts, and only a loopback interface exists (so
# nothing leaves the machine, and runs at the same time do not meet). Needs root.
set -euo pipefail
bin=$1
if ! unshare --mount --net --propagation private true 2>/dev/null; then
  echo "silent_dns.sh: 'unshare --mount --net' is not possible here (it needs root or" \
       "CAP_SYS_ADMIN); the name-resolution tests cannot run" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A resolver that would wait a minute for the silent server, far beyond the tests' timeouts.
printf 'nameserver 127.0.0.153\noptions timeout:30 attempts:2\n' > "$work/resolv.conf"
printf '127.0.0.1 localhost\n' > "$work/hosts"
unshare --mount --net --propagation private sh -c '
  ip link set lo up &&
  mount --bind "$1/resolv.conf" /etc/resolv.conf &&
  mount --bind "$1/hosts" /etc/hosts &&
  ATHOMIC_TEST_SILENT_DNS=127.0.0.153 ATHOMIC_TEST_HOSTS_FILE="$1/hosts" exec "$2"' \
  sh "$work" "$bin"
