# Sourced by scripts that start test servers.
#
# claim_port [LOW SPAN]: prints a loopback port from [LOW, LOW+SPAN) (default 20000-31999: below
# the kernel's ephemeral range, where no outgoing connection can hold it) that is free now and
# that no other test process has claimed, and claims it for this script's process until that
# process exits. The claim is a file named after the port in $ATHOMIC_PORT_CLAIMS (shared with
# tests/support/process.cpp's free_port()) holding the claimant's pid: a server stopped and
# started again on its port must find it still free, whatever other tests ran meanwhile.
athomic_port_claims=${ATHOMIC_PORT_CLAIMS:-${TMPDIR:-/tmp}/athomic-test-ports}

claim_port() {
  local low=${1:-20000} span=${2:-12000} port file owner
  mkdir -p "$athomic_port_claims" 2>/dev/null && chmod 1777 "$athomic_port_claims" 2>/dev/null || true
  for _ in $(seq 200); do
    port=$((low + RANDOM % span))
    file="$athomic_port_claims/$port"
    if (set -o noclobber; echo "$$" >"$file") 2>/dev/null; then
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi  # in use, keep it claimed
      echo "$port"
      return 0
    fi
    owner=$(cat "$file" 2>/dev/null || true)
    # A claim whose process is gone is stale: freed for a later round.
    if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null; then rm -f "$file"; fi
  done
  echo "claim_port: no free port in $low-$((low + span - 1))" >&2
  return 1
}
