#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the dev build, then the same suites
# under AddressSanitizer+UndefinedBehaviorSanitizer and under ThreadSanitizer. Where a preset
# builds the micro-benchmarks, each runs once, briefly, for its work checks (not its timings).
#   scripts/test.sh            everything
#   scripts/test.sh dev        one preset (dev, asan, tsan or release)
# Test fixtures start their own redis-server and nats-server on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(dev asan tsan)

# Each benchmark checks that its handlers ran exactly as often as it published, and exits 1 if not.
bench_smoke() {
  local preset=$1 failed=0 bench log
  for bench in athomic_inline_bench athomic_pool_bench athomic_churn_bench athomic_primitives_bench \
               athomic_resp_bench \
               athomic_codec_bench; do
    log="build/${preset}/${bench}.smoke.log"
    if ATHOMIC_LOG_LEVEL=warn timeout 300 "build/${preset}/bin/${bench}" \
        --benchmark_min_time=0.01 --benchmark_repetitions=1 >"$log" 2>&1; then
      echo "${bench}: ok"
    else
      echo "${bench}: FAILED"
      cat "$log"
      failed=1
    fi
  done
  return $failed
}

status=0
for preset in "${presets[@]}"; do
  echo "=== ${preset}: configure and build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j2
  if grep -q '^ATHOMIC_BUILD_BENCHMARKS:BOOL=ON$' "build/${preset}/CMakeCache.txt"; then
    echo "=== ${preset}: benchmark smoke"
    if ! bench_smoke "$preset"; then
      status=1
      echo "=== ${preset}: benchmark smoke FAILED"
    fi
  fi
  echo "=== ${preset}: test"
  if ! ctest --preset "$preset" -j2; then
    status=1
    echo "=== ${preset}: FAILED"
  fi
done
exit $status
