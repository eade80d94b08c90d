#!/usr/bin/env bash
# The nats provider's own tests, built as an outsider builds them:
#   1. install athomic to a staging prefix;
#   2. build plugins/nats against it, twice: as shipped, and with AddressSanitizer;
#   3. build tests/integration/nats (a project of its own on the installed runtime);
#   4. run them with the plugin as shipped, then again with the AddressSanitizer build of the
#      plugin (its runtime preloaded into the uninstrumented host), so that memory the client
#      library's threads touch after it was freed is caught; and the lifecycle tests once more
#      under valgrind, where it is installed.
# Each test starts its own nats-server on a free loopback port.
# Usage: nats_provider.sh <athomic build dir> <source dir>
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
work="$build/e2e-nats-provider"
rm -rf "$work"
mkdir -p "$work/plugins" "$work/plugins-asan"
fail() { echo "FAIL: $*"; for f in "$work"/*.log; do echo "--- $f"; tail -30 "$f"; done; exit 1; }

echo "== install to $work/stage"
cmake --install "$build" --prefix "$work/stage" >/dev/null
echo "== build plugins/nats against the staged SDK, plain and with AddressSanitizer"
cmake -S "$src/plugins/nats" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/stage" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/configure.log" 2>&1 || fail "configure"
cmake --build "$work/build" >"$work/build.log" 2>&1 || fail "build"
cp "$work/build/athomic_provider_nats.so" "$work/plugins/"
asan_flags="-fsanitize=address -fno-omit-frame-pointer"
cmake -S "$src/plugins/nats" -B "$work/build-asan" -DCMAKE_PREFIX_PATH="$work/stage" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS="$asan_flags" \
      -DCMAKE_MODULE_LINKER_FLAGS="-fsanitize=address" >"$work/configure-asan.log" 2>&1 || fail "configure (asan)"
cmake --build "$work/build-asan" >"$work/build-asan.log" 2>&1 || fail "build (asan)"
cp "$work/build-asan/athomic_provider_nats.so" "$work/plugins-asan/"
echo "== build tests/integration/nats against the staged runtime"
cmake -S "$src/tests/integration/nats" -B "$work/tests" -DCMAKE_PREFIX_PATH="$work/stage" \
      -DCMAKE_BUILD_TYPE=Debug >"$work/tests-configure.log" 2>&1 || fail "configure the tests"
cmake --build "$work/tests" >"$work/tests-build.log" 2>&1 || fail "build the tests"

cd "$work"
status=0
echo "== the tests, plugin as shipped"
ATHOMIC_LOG_LEVEL=warn ATHOMIC_PLUGIN_PATH="$work/plugins" "$work/tests/athomic_nats_tests" || status=1

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
