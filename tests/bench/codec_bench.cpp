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

// Encoding: the straightforward way (copy the payload, insert the context object, dump) against
// what the publish path does (serialize the payload in place, splice in the context's text, which
// a thread encodes once per context rather than once per event).
const nlohmann::json kPayload = {{"n", 12345}, {"pad", std::string(64, 'x')}, {"ts", 123456789012345}};
const athomic::ContextPtr kContext =
    athomic::ExecutionContext::Builder().trace_id("bench-trace").tenant_id("bench").build();

void BM_Encode_CopyInsertDump(benchmark::State& state) {
  for (auto _ : state) {
    nlohmann::json envelope = kPayload;
    envelope[std::string(kContextKey)] = context_to_json(*kContext);
    std::string out = envelope.dump();
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_Encode_CopyInsertDump);

void BM_Encode_Athomic(benchmark::State& state) {
  const std::string context_json = encode_context(*kContext);
  std::string out;
  for (auto _ : state) {
    out.clear();
    encode_envelope(kPayload, context_json, out);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_Encode_Athomic);

}  // namespace

BENCHMARK_MAIN();
