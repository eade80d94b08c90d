#!/usr/bin/env bash
# Core dispatch micro-benchmarks (Google Benchmark), Release build, each beside its baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j2 --target athomic_core_bench athomic_provider_local >/dev/null
ATHOMIC_LOG_LEVEL=warn exec build/release/bin/athomic_core_bench --benchmark_min_time=0.5 "$@"
