#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the dev build, then the same suites
# under AddressSanitizer+UndefinedBehaviorSanitizer and under ThreadSanitizer.
#   scripts/test.sh            everything
#   scripts/test.sh dev        one preset (dev, asan, tsan or release)
# Test fixtures start their own redis-server and nats-server on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(dev asan tsan)

status=0
for preset in "${presets[@]}"; do
  echo "=== ${preset}: configure and build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j2
  echo "=== ${preset}: test"
  if ! ctest --preset "$preset" -j2; then
    status=1
    echo "=== ${preset}: FAILED"
  fi
done
exit $status
