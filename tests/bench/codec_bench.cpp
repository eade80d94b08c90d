// The wire codec on a message the size of the end-to-end bench's, beside a baseline measured in
// the same run: decoding with nlohmann::json::parse, which the received-message path used before
// it had its own reader, and which it must agree with (tests/fuzz/json_reader_test.cpp).
#include "codec.h"

#include <benchmark/benchmark.h>

namespace {

using namespace athomic::detail;

const std::string kMessage =
    R"({"n":12345,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",)"
    R"("ts":123456789012345,"_nala_context":{"tenant_id":"bench","trace_id":"bench-trace"}})";

void BM_Decode_NlohmannParse(benchmark::State& state) {
  for (auto _ : state) {
    nlohmann::json j = nlohmann::json::parse(kMessage.begin(), kMessage.end(), nullptr, false);
    DecodedEvent d;
    std::string error;
    if (auto it = j.find(kContextKey); it != j.end()) {
      context_from_json(*it, d.context, error);
      j.erase(it);
    }
    d.payload = std::make_shared<const nlohmann::json>(std::move(j));
    benchmark::DoNotOptimize(d);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kMessage.size()));
}
BENCHMARK(BM_Decode_NlohmannParse);

void BM_Decode_Athomic(benchmark::State& state) {
  for (auto _ : state) {
    DecodedEvent d;
    std::string error;
    if (!decode_envelope(kMessage, d, error)) state.SkipWithError(error.c_str());
    benchmark::DoNotOptimize(d);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kMessage.size()));
}
BENCHMARK(BM_Decode_Athomic);

}  // namespace

BENCHMARK_MAIN();
