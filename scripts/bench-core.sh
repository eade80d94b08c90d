#!/usr/bin/env bash
# Core micro-benchmarks (Google Benchmark), Release build, each row beside its baselines from
# the same run: inline dispatch, the hand-off to workers in three CPU placements, subscription
# churn, then the wire codec. Every binary parks a second thread before timing, runs its
# benchmarks interleaved in random order and repeated, and ends with the table of medians.
#   scripts/bench-core.sh                    everything, 5 repetitions
#   scripts/bench-core.sh --benchmark_filter=handoff --benchmark_repetitions=9
#                                            any Google Benchmark flag, given to every binary
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
benches=(athomic_inline_bench athomic_pool_bench athomic_churn_bench athomic_primitives_bench
         athomic_codec_bench)
cmake --build --preset release -j2 --target "${benches[@]}" athomic_provider_local >/dev/null
status=0
for bench in "${benches[@]}"; do
  echo "=== ${bench}"
  ATHOMIC_LOG_LEVEL=warn "build/release/bin/${bench}" --benchmark_enable_random_interleaving=true \
    --benchmark_repetitions=5 "$@" || status=1
done
exit $status
