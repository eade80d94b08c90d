#!/usr/bin/env bash
# The nats provider's own tests, built as an outsider builds them:
#   1. install athomic to a staging prefix;
#   2. build plugins/nats against it;
#   3. build tests/integration/nats (a project of its own on the installed runtime);
#   4. run them.
# Two variants, by how <athomic build dir> was built (its ATHOMIC_SANITIZE):
#   * unsanitised: the tests run with the plugin as shipped, then again with an AddressSanitizer
#     build of the plugin (its runtime preloaded into the uninstrumented host), so that memory
#     the client library's threads touch after it was freed is caught; and the lifecycle tests
#     once more under valgrind, where it is installed.
#   * thread (the tsan preset): the installed runtime is instrumented, and the plugin and the
#     tests are built with -fsanitize=thread too (ThreadSanitizer sees only what is instrumented:
#     an uninstrumented host gives false reports). The tests, then the installed conformance
#     suite against the plugin, run under TSAN_OPTIONS (the tsan test preset's, with
#     tests/tsan.supp).
# Each test starts its own nats-server on a free loopback port.
# Usage: nats_provider.sh <athomic build dir> <source dir>
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
source "$src/scripts/lib/ports.sh"
work="$build/e2e-nats-provider"
rm -rf "$work"
mkdir -p "$work/plugins" "$work/plugins-asan"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$work"/*.log; do echo "--- $f"; tail -30 "$f"; done; exit 1; }
sanitize=$(sed -n 's/^ATHOMIC_SANITIZE:STRING=//p' "$build/CMakeCache.txt")
case "$sanitize" in
  "") variant=plain ;;
  thread) variant=tsan ;;
  *) echo "nats_provider.sh: no variant for ATHOMIC_SANITIZE=$sanitize (expected none or thread)"
     exit 1 ;;
esac

echo "== install to $work/stage"
cmake --install "$build" --prefix "$work/stage" >/dev/null
if [ "$variant" = tsan ]; then
  flags="-fsanitize=thread -fno-omit-frame-pointer -g"
  plugin_flags=(-DCMAKE_CXX_FLAGS="$flags" -DCMAKE_MODULE_LINKER_FLAGS="-fsanitize=thread")
  test_flags=(-DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread")
else
  plugin_flags=()
  test_flags=()
fi
echo "== build plugins/nats against the staged SDK ($variant)"
cmake -S "$src/plugins/nats" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/stage" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo "${plugin_flags[@]}" >"$work/configure.log" 2>&1 || fail "configure"
cmake --build "$work/build" >"$work/build.log" 2>&1 || fail "build"
cp "$work/build/athomic_provider_nats.so" "$work/plugins/"
echo "== build tests/integration/nats against the staged runtime ($variant)"
cmake -S "$src/tests/integration/nats" -B "$work/tests" -DCMAKE_PREFIX_PATH="$work/stage" \
      -DCMAKE_BUILD_TYPE=Debug "${test_flags[@]}" >"$work/tests-configure.log" 2>&1 || fail "configure the tests"
cmake --build "$work/tests" >"$work/tests-build.log" 2>&1 || fail "build the tests"

cd "$work"
status=0
if [ "$variant" = tsan ]; then
  # The tsan test preset sets TSAN_OPTIONS; run by hand, the same.
  export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$src/tests/tsan.supp}"
  echo "== the tests under ThreadSanitizer (TSAN_OPTIONS=$TSAN_OPTIONS)"
  ATHOMIC_LOG_LEVEL=warn ATHOMIC_PLUGIN_PATH="$work/plugins" "$work/tests/athomic_nats_tests" || status=1

  echo "== the installed conformance suite against the plugin, under ThreadSanitizer"
  port=""
  for _ in $(seq 20); do
    candidate=$(claim_port) || break
    nats-server -a 127.0.0.1 -p "$candidate" -l "$work/nats-server.log" &
    nats_pid=$!
    pids+=($nats_pid)
    for _ in $(seq 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
      kill -0 "$nats_pid" 2>/dev/null || break
      sleep 0.05
    done
    [ -n "$port" ] && break
  done
  [ -n "$port" ] || fail "nats-server did not start"
  ATHOMIC_PLUGIN_PATH="$work/plugins" NALA_EVENTS__PROVIDER__BACKEND=nats \
    NALA_EVENTS__PROVIDER__URL="nats://127.0.0.1:$port" NALA_EVENTS__PROVIDER__RECONNECT_WAIT=0.1 \
    "$work/stage/bin/athomic-conformance" >"$work/conformance.log" 2>&1 || status=1
  grep -E "^\[  (PASSED|SKIPPED|FAILED)|ThreadSanitizer|SUMMARY" "$work/conformance.log" || true
  [ $status -eq 0 ] && echo "PASS" || { tail -60 "$work/conformance.log"; echo "FAIL"; }
  exit $status
fi

echo "== the tests, plugin as shipped"
ATHOMIC_LOG_LEVEL=warn ATHOMIC_PLUGIN_PATH="$work/plugins" "$work/tests/athomic_nats_tests" || status=1

echo "== build plugins/nats with AddressSanitizer"
asan_flags="-fsanitize=address -fno-omit-frame-pointer"
cmake -S "$src/plugins/nats" -B "$work/build-asan" -DCMAKE_PREFIX_PATH="$work/stage" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS="$asan_flags" \
      -DCMAKE_MODULE_LINKER_FLAGS="-fsanitize=address" >"$work/configure-asan.log" 2>&1 || fail "configure (asan)"
cmake --build "$work/build-asan" >"$work/build-asan.log" 2>&1 || fail "build (asan)"
cp "$work/build-asan/athomic_provider_nats.so" "$work/plugins-asan/"
echo "== the tests, AddressSanitizer build of the plugin"
libasan=$(g++ -print-file-name=libasan.so)
# Leaks are not checked: the host and the client library are not instrumented.
LD_PRELOAD="$libasan" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 ATHOMIC_LOG_LEVEL=warn \
  ATHOMIC_PLUGIN_PATH="$work/plugins-asan" "$work/tests/athomic_nats_tests" || status=1
echo "== the lifecycle tests under valgrind, plugin as shipped"
if command -v valgrind >/dev/null; then
  ATHOMIC_LOG_LEVEL=warn ATHOMIC_PLUGIN_PATH="$work/plugins" \
    valgrind -q --error-exitcode=9 --errors-for-leak-kinds=none "$work/tests/athomic_nats_tests" \
    --gtest_filter='*InlineHandlerUnsubscribingItself*:*EventsFlow*:*UnconfirmedAtClose*' || status=1
else
  echo "valgrind is not installed: skipped (the AddressSanitizer run above covers the same)"
fi
[ $status -eq 0 ] && echo "PASS" || echo "FAIL"
exit $status
