# Sourced by scripts that start test servers.
#
# claim_port [LOW SPAN]: prints a loopback port from [LOW, LOW+SPAN) (default 20000-31999: below
# the kernel's ephemeral range, where no outgoing connection can hold it) that is free now and
# that no other test process has claimed, and claims it for this script's process until that
# process exits. A claim is a file named after the port in $ATHOMIC_PORT_CLAIMS (shared with
# tests/support/process.cpp's free_port()) holding the claimant's pid and start time — a pid
# alone may be reused — written under a lock, so two claimants never both take a port: a server
# stopped and started again on its port must find it still free, whatever other tests ran.
athomic_port_claims=${ATHOMIC_PORT_CLAIMS:-${TMPDIR:-/tmp}/athomic-test-ports}

# "PID STARTTIME" of process $1 (field 22 of /proc/PID/stat, after the parenthesised name), or
# nothing when it is gone.
athomic_process_identity() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  set -- "$1" ${stat##*) }
  echo "$1 ${21}"
}

claim_port() {
  local low=${1:-20000} span=${2:-12000} port file me lock
  mkdir -p "$athomic_port_claims" 2>/dev/null && chmod 1777 "$athomic_port_claims" 2>/dev/null || true
  if ! : 2>/dev/null >>"$athomic_port_claims/.lock"; then
    echo "claim_port: cannot write in $athomic_port_claims (ATHOMIC_PORT_CLAIMS): ports are not claimed" >&2
    athomic_port_claims=""
  fi
  me=$(athomic_process_identity $$)
  for _ in $(seq 200); do
    port=$((low + RANDOM % span))
    if [ -n "$athomic_port_claims" ]; then
      file="$athomic_port_claims/$port"
      exec {lock}>>"$athomic_port_claims/.lock"
      flock -w 10 "$lock" || { exec {lock}>&-; continue; }
      # Free when unclaimed, or claimed by a process that is gone (or by a writer killed mid-way).
      local owner=""
      owner=$(cat "$file" 2>/dev/null || true)
      if [ -n "$owner" ] && [ "$(athomic_process_identity "${owner%% *}")" = "$owner" ]; then
        exec {lock}>&-
        continue
      fi
      echo "$me" >"$file"
      exec {lock}>&-
    fi
    # In use all the same (a server not started by a claimant: it answers, or hangs with a full
    # backlog): keep it claimed, try another. Free when the connection is refused.
    local rc=0
    timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null || rc=$?
    [ "$rc" = 1 ] || continue
    echo "$port"
    return 0
  done
  echo "claim_port: no free port in $low-$((low + span - 1))" >&2
  return 1
}
