#!/usr/bin/env bash
# Core micro-benchmarks (Google Benchmark), Release build, each beside its baseline: dispatch
# (athomic_core_bench), then the wire codec (athomic_codec_bench).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j2 --target athomic_core_bench athomic_codec_bench \
  athomic_provider_local >/dev/null
ATHOMIC_LOG_LEVEL=warn build/release/bin/athomic_core_bench --benchmark_min_time=0.5 "$@"
build/release/bin/athomic_codec_bench --benchmark_min_time=0.5 "$@"
