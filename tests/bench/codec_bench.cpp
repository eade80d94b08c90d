// The wire codec on messages the size of the end-to-end bench's (three payload fields, a trace
// id and a tenant id), beside nlohmann::json doing the same work on the same messages:
//   decode 64 messages in rotation, each with its own context (its own trace id), so that the
//   decoder's reuse of the previous message's context never applies; then the same payloads
//   all with one context, where it always does;
//   encode a payload and a context that changes on every event (64 in rotation), so that the
//   publish path's per-thread cache of the encoded context never applies; then with one
//   context, which both sides convert once, outside the loop.
// nlohmann::json::parse and dump() are what the received-message and publish paths used before
// the codec had its own reader and writer, which must agree with them (tests/fuzz/).
#include "bench_support.h"
#include "codec.h"

#include <cstdio>
#include <string>
#include <vector>

namespace {

using namespace athomic::bench;
using namespace athomic::detail;
using athomic::ContextPtr;

constexpr std::size_t kMessages = 64;

struct MessageSet {
  std::vector<nlohmann::json> payloads;
  std::vector<ContextPtr> contexts;
  std::vector<std::string> encoded;  // what athomic puts on the wire for payloads[i], contexts[i]
};

nlohmann::json payload(std::size_t i) {
  return {{"n", 12345 + i},
          {"pad", std::string(64, static_cast<char>('a' + i % 26))},
          {"ts", 123456789012345 + i}};
}

ContextPtr context(std::size_t i) {
  char trace[33];
  std::snprintf(trace, sizeof trace, "%016llx%016llx",
                static_cast<unsigned long long>(0x9e3779b97f4a7c15ull * (i + 1)),
                static_cast<unsigned long long>(i));
  return athomic::ExecutionContext::Builder()
      .trace_id(trace)
      .tenant_id("tenant-" + std::to_string(i % 4))
      .build();
}

MessageSet make_set(bool one_context) {
  MessageSet set;
  for (std::size_t i = 0; i < kMessages; ++i) {
    set.payloads.push_back(payload(i));
    set.contexts.push_back(one_context && i > 0 ? set.contexts.front() : context(i));
    std::string out;
    encode_envelope(set.payloads.back(), set.contexts.back().get(), out);
    set.encoded.push_back(std::move(out));
  }
  return set;
}

const MessageSet& message_set(bool one_context) {
  static const MessageSet rotating = make_set(false);
  static const MessageSet single = make_set(true);
  return one_context ? single : rotating;
}

// What both decoders must produce: the three payload fields and the message's trace id.
bool decoded_right(const DecodedEvent& d, const athomic::ExecutionContext& expected) {
  return d.payload && d.payload->size() == 3 && d.context &&
         d.context->trace_id() == expected.trace_id();
}

void athomic_decode(benchmark::State& state, bool one_context) {
  const MessageSet& set = message_set(one_context);
  std::size_t i = 0;
  int64_t bytes = 0;
  Meter meter;
  for (auto _ : state) {
    DecodedEvent d;
    std::string error;
    if (!decode_envelope(set.encoded[i], d, error) || !decoded_right(d, *set.contexts[i])) {
      fail(state, "message " + std::to_string(i) + " decoded wrong: " + error);
      break;
    }
    benchmark::DoNotOptimize(d);
    bytes += static_cast<int64_t>(set.encoded[i].size());
    i = (i + 1) % kMessages;
  }
  meter.report(state, static_cast<double>(state.iterations()), "op");
  state.SetBytesProcessed(bytes);
}

void nlohmann_decode(benchmark::State& state, bool one_context) {
  const MessageSet& set = message_set(one_context);
  std::size_t i = 0;
  int64_t bytes = 0;
  Meter meter;
  for (auto _ : state) {
    const std::string& m = set.encoded[i];
    nlohmann::json j = nlohmann::json::parse(m.begin(), m.end(), nullptr, false);
    DecodedEvent d;
    std::string error;
    if (auto it = j.find(kContextKey); it != j.end()) {
      context_from_json(*it, d.context, error);
      j.erase(it);
    }
    d.payload = std::make_shared<const nlohmann::json>(std::move(j));
    if (!decoded_right(d, *set.contexts[i])) {
      fail(state, "message " + std::to_string(i) + " decoded wrong: " + error);
      break;
    }
    benchmark::DoNotOptimize(d);
    bytes += static_cast<int64_t>(m.size());
    i = (i + 1) % kMessages;
  }
  meter.report(state, static_cast<double>(state.iterations()), "op");
  state.SetBytesProcessed(bytes);
}

// Both encoders write the same members, so the same number of bytes.
bool encoded_right(benchmark::State& state, const MessageSet& set, std::size_t i,
                   const std::string& out) {
  if (out.size() == set.encoded[i].size()) return true;
  fail(state, "message " + std::to_string(i) + " encoded to " + std::to_string(out.size()) +
                  " bytes, expected " + std::to_string(set.encoded[i].size()));
  return false;
}

void athomic_encode(benchmark::State& state, bool one_context) {
  const MessageSet& set = message_set(one_context);
  // With one context the bus encodes it once per publishing thread.
  const std::string shared_context = encode_context(*set.contexts.front());
  std::string out;
  std::size_t i = 0;
  Meter meter;
  for (auto _ : state) {
    out.clear();
    if (one_context) {
      encode_envelope(set.payloads[i], shared_context, out);
    } else {
      encode_envelope(set.payloads[i], encode_context(*set.contexts[i]), out);
    }
    if (!encoded_right(state, set, i, out)) break;
    benchmark::DoNotOptimize(out);
    i = (i + 1) % kMessages;
  }
  meter.report(state, static_cast<double>(state.iterations()), "op");
}

void nlohmann_encode(benchmark::State& state, bool one_context) {
  const MessageSet& set = message_set(one_context);
  const nlohmann::json shared_context = context_to_json(*set.contexts.front());
  const std::string key(kContextKey);
  std::size_t i = 0;
  Meter meter;
  for (auto _ : state) {
    nlohmann::json envelope = set.payloads[i];
    envelope[key] = one_context ? shared_context : context_to_json(*set.contexts[i]);
    const std::string out = envelope.dump();
    if (!encoded_right(state, set, i, out)) break;
    benchmark::DoNotOptimize(out);
    i = (i + 1) % kMessages;
  }
  meter.report(state, static_cast<double>(state.iterations()), "op");
}

int register_all() {
  for (bool one : {false, true}) {
    const Row decode{one ? "decode/1_context" : "decode/64_contexts",
                     one ? "the same 64 payloads all with one context (the decoder reuses the "
                           "previous message's context)"
                         : "decode one of 64 messages in rotation, each with its own context: "
                           "bytes -> payload object + context"};
    add(decode, "athomic", [one](auto& s) { athomic_decode(s, one); });
    add(decode, "nlohmann", [one](auto& s) { nlohmann_decode(s, one); });
  }
  for (bool one : {false, true}) {
    const Row encode{one ? "encode/1_context" : "encode/64_contexts",
                     one ? "the same with one context for every event, converted once outside "
                           "the loop on both sides"
                         : "encode payload + context -> bytes, the context changing on every "
                           "event (64 in rotation)"};
    add(encode, "athomic", [one](auto& s) { athomic_encode(s, one); });
    add(encode, "nlohmann", [one](auto& s) { nlohmann_encode(s, one); });
  }
  return 0;
}
const int registered = register_all();

}  // namespace
