#!/usr/bin/env bash
# Checks of the conformance suite itself (registered in CMakeLists.txt):
#
#   check_suite.sh expect-failure SUITE FILTER REGEX
#       The suite must FAIL against the provider the environment selects (a deliberately faulty
#       one): first only the checks FILTER names, whose failure message must match REGEX (it
#       names the fault); then the whole suite.
#   check_suite.sh server-down SUITE
#       With a server that is down (the relay provider on a port nobody listens on), every check
#       fails with the one start-up error, and the peer exits with one line, not a crash.
#   check_suite.sh options SUITE
#       --backend (repeated and with =) selects the backends, in both dispatch modes; --help
#       documents it and ATHOMIC_CONFORMANCE_BACKENDS.
set -uo pipefail
mode=$1 suite=$2
shift 2
fail() { echo "FAIL: $*"; exit 1; }
# The checks that failed, once each, without gtest's parameter note.
# A failing check is what is expected, never a crash or a sanitizer's report (a leak aside: the
# publishes a faulty provider never completes are leaked, and LeakSanitizer says so).
crashed() {
  if grep -qE "WARNING: ThreadSanitizer|ERROR: AddressSanitizer|runtime error:|terminate called" <<<"$1"; then
    echo "$1" | tail -60
    fail "the suite crashed or a sanitizer reported an error"
  fi
}
failed_checks() { grep -E '^\[  FAILED  \] .*(\(|GetParam)' | sed -E 's/^\[  FAILED  \] //; s/(, where| \().*//' | awk '!seen[$0]++'; }

case $mode in
expect-failure)
  filter=$1 regex=$2
  echo "== only $filter, against provider '$NALA_EVENTS__PROVIDER__BACKEND'"
  out=$("$suite" --gtest_filter="$filter" 2>&1)
  status=$?
  [ "$status" -ne 0 ] || { echo "$out"; fail "the suite passed $filter against a faulty provider"; }
  grep -q '^\[ RUN      \]' <<<"$out" || { echo "$out"; fail "no check matched $filter"; }
  grep -qE "$regex" <<<"$out" || { echo "$out"; fail "the failure does not name the fault (/$regex/)"; }
  crashed "$out"
  failed=$(failed_checks <<<"$out")
  grep -q '_pool$' <<<"$failed" && grep -q '_inline$' <<<"$failed" \
    || { echo "$out"; fail "$filter did not fail in both dispatch modes"; }
  echo "exit status $status; failed:"
  echo "$failed"
  echo "the failure names the fault:"
  grep -E "$regex" <<<"$out" | head -3
  echo "== the whole suite"
  out=$("$suite" 2>&1)
  status=$?
  [ "$status" -ne 0 ] || { echo "$out" | tail -40; fail "the whole suite passed against a faulty provider"; }
  grep -qE "$regex" <<<"$out" || { echo "$out" | tail -40; fail "the whole suite's failures do not name the fault"; }
  crashed "$out"
  echo "exit status $status; failed:"
  failed_checks <<<"$out"
  echo "PASS: the suite catches provider '$NALA_EVENTS__PROVIDER__BACKEND'"
  ;;
server-down)
  export NALA_EVENTS__PROVIDER__BACKEND=relay NALA_EVENTS__PROVIDER__PORT=1
  out=$("$suite" 2>&1)
  status=$?
  [ "$status" -eq 1 ] || { echo "$out"; fail "expected exit status 1, got $status"; }
  tests=$(grep -c '^\[ RUN      \]' <<<"$out")
  cause="could not be created and started, so this check cannot run: provider 'relay' failed to start: cannot connect to the relay broker at 127.0.0.1:1"
  same=$(grep -cF "$cause" <<<"$out")
  [ "$tests" -gt 10 ] && [ "$same" -eq "$tests" ] || { echo "$out"; fail "$tests checks ran, $same failed with the start-up error"; }
  [ "$(grep -c "cannot be tested, every check of it fails" <<<"$out")" -eq 1 ] || { echo "$out"; fail "the cause is not stated once up front"; }
  grep -qiE "terminate called|uncaught|stack trace|Aborted" <<<"$out" && { echo "$out"; fail "a crash"; }
  echo "ok: $tests checks, each failed with: $cause"
  peer=$("$suite" --peer publisher --peer-backend relay --peer-mode pool --peer-event a --peer-fence b 2>&1)
  status=$?
  [ "$status" -eq 3 ] || { echo "$peer"; fail "the peer: expected exit status 3, got $status"; }
  [ "$(wc -l <<<"$peer")" -eq 1 ] && grep -q "^athomic-conformance --peer: provider 'relay' failed to start: cannot connect" <<<"$peer" \
    || { echo "$peer"; fail "the peer did not say why in one line"; }
  echo "ok: the peer says: $peer"
  ;;
options)
  list=$("$suite" --backend alpha --backend=beta --gtest_list_tests 2>&1) || { echo "$list"; fail "--gtest_list_tests"; }
  for name in alpha_pool alpha_inline beta_pool beta_inline; do
    grep -qE "/$name( |$)" <<<"$list" || { echo "$list"; fail "no checks for $name"; }
  done
  list=$(ATHOMIC_CONFORMANCE_BACKENDS=gamma "$suite" --gtest_list_tests 2>&1)
  grep -qE "/gamma_inline( |$)" <<<"$list" || { echo "$list"; fail "ATHOMIC_CONFORMANCE_BACKENDS"; }
  list=$(ATHOMIC_CONFORMANCE_BACKENDS=gamma "$suite" --backend delta --gtest_list_tests 2>&1)
  grep -q "/gamma_" <<<"$list" && fail "--backend does not take precedence over ATHOMIC_CONFORMANCE_BACKENDS"
  help=$("$suite" --help 2>&1)
  for word in "--backend NAME" ATHOMIC_CONFORMANCE_BACKENDS ATHOMIC_LOG_LEVEL ATHOMIC_CONFORMANCE_SERVER_STOP --gtest_filter; do
    grep -q -- "$word" <<<"$help" || { echo "$help"; fail "--help does not mention $word"; }
  done
  echo "ok: --backend, ATHOMIC_CONFORMANCE_BACKENDS and --help"
  ;;
*) fail "unknown mode $mode" ;;
esac
