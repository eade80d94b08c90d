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
//
// Then events.context.traceparent, each row with the setting off ("athomic", what every bus
// does by default) beside the same work with it on ("traceparent_on"):
//   encode/w3c, decode/w3c: the codec alone, one context with W3C ids (trace and span);
//   publish/remote: a whole publish on a remote transport (the loopback test provider, no
//   handler here so nothing is decoded): the thread's cached context, the envelope, the
//   provider's call;
//   round_trip/remote: the same with one inline handler: the loopback hands the message back,
//   the host decodes it and runs the handler in its context.
// The "athomic" variants use only what the codec had before the setting, so the same source
// built against the commit before it gives the before/after figures (docs/BENCHMARKS.md).
#include "bench_support.h"
#include "codec.h"

#include <athomic/athomic.h>

#include <cstdio>
#include <string>
#include <vector>

#if __has_include("traceparent.h")
#include "traceparent.h"
#define ATHOMIC_BENCH_TRACEPARENT 1
#endif

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

// ---- events.context.traceparent ----

athomic::ContextPtr w3c_context() {
  return athomic::ExecutionContext::Builder()
      .trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
      .span_id("00f067aa0ba902b7")
      .tenant_id("acme")
      .build();
}

struct W3cSet {
  athomic::ContextPtr context = w3c_context();
  std::string context_json = encode_context(*context);
  std::vector<nlohmann::json> payloads;
  std::vector<std::string> plain;   // the envelopes with the setting off
  std::vector<std::string> traced;  // ... and on (empty when this build has no setting)
  std::string members;              // the W3C members, encoded once as the bus does
};

const W3cSet& w3c_set() {
  static const W3cSet set = [] {
    W3cSet s;
#ifdef ATHOMIC_BENCH_TRACEPARENT
    s.members = trace_members(*s.context);
#endif
    for (std::size_t i = 0; i < kMessages; ++i) {
      s.payloads.push_back(payload(i));
      std::string out;
      encode_envelope(s.payloads.back(), s.context_json, out);
      s.plain.push_back(std::move(out));
#ifdef ATHOMIC_BENCH_TRACEPARENT
      out.clear();
      encode_traced_envelope(s.payloads.back(), s.context_json, s.members, out);
      s.traced.push_back(std::move(out));
#endif
    }
    return s;
  }();
  return set;
}

void w3c_encode(benchmark::State& state, bool traceparent) {
  const W3cSet& set = w3c_set();
  const std::vector<std::string>& expected = traceparent ? set.traced : set.plain;
  std::string out;
  std::size_t i = 0;
  Meter meter;
  for (auto _ : state) {
    out.clear();
#ifdef ATHOMIC_BENCH_TRACEPARENT
    if (traceparent) {
      encode_traced_envelope(set.payloads[i], set.context_json, set.members, out);
    } else {
      encode_envelope(set.payloads[i], set.context_json, out);
    }
#else
    encode_envelope(set.payloads[i], set.context_json, out);
#endif
    if (out.size() != expected[i].size()) {
      fail(state, "message " + std::to_string(i) + " encoded wrong: " + out);
      break;
    }
    benchmark::DoNotOptimize(out);
    i = (i + 1) % kMessages;
  }
  meter.report(state, static_cast<double>(state.iterations()), "op");
}

void w3c_decode(benchmark::State& state, bool traceparent) {
  const W3cSet& set = w3c_set();
  const std::vector<std::string>& messages = traceparent ? set.traced : set.plain;
  std::size_t i = 0;
  Meter meter;
  for (auto _ : state) {
    DecodedEvent d;
    std::string error;
#ifdef ATHOMIC_BENCH_TRACEPARENT
    const bool ok = decode_envelope(messages[i], d, error, EnvelopeOptions{traceparent});
#else
    const bool ok = decode_envelope(messages[i], d, error);
#endif
    if (!ok || d.payload->size() != 3 || !d.context ||
        d.context->span_id() != set.context->span_id()) {
      fail(state, "message " + std::to_string(i) + " decoded wrong: " + error);
      break;
    }
    benchmark::DoNotOptimize(d);
    i = (i + 1) % kMessages;
  }
  meter.report(state, static_cast<double>(state.iterations()), "op");
}

#ifdef ATHOMIC_TEST_PLUGIN_DIR
std::shared_ptr<athomic::EventBus> loopback_bus(benchmark::State& state, bool traceparent) {
  athomic::EventsSettings s;
  s.backend = "loopback";
  s.provider_config = {{"backend", "loopback"}};
  s.plugins_dir = ATHOMIC_TEST_PLUGIN_DIR;
  s.dispatch_mode = athomic::DispatchMode::inline_call;
#ifdef ATHOMIC_BENCH_TRACEPARENT
  s.traceparent = traceparent;
#else
  if (traceparent) return nullptr;
#endif
  try {
    auto bus = athomic::EventBus::create(s);
    bus->start();
    return bus;
  } catch (const std::exception& e) {
    skip(state, std::string("no loopback bus: ") + e.what());
    return nullptr;
  }
}

// One publish, with (@p handler) or without a handler for the event in this process.
void remote_publish(benchmark::State& state, bool traceparent, bool handler) {
  auto bus = loopback_bus(state, traceparent);
  if (!bus) return;
  const W3cSet& set = w3c_set();
  std::vector<athomic::Payload> payloads;
  for (const auto& p : set.payloads) payloads.push_back(std::make_shared<const nlohmann::json>(p));
  uint64_t handled = 0;
  bool context_right = false;
  if (handler) {
    bus->subscribe("bench.remote", [&](const athomic::Event& e) {
      ++handled;
      context_right = e.context().span_id() == set.context->span_id() && e.payload().size() == 3;
    });
  }
  athomic::ContextScope scope(set.context);
  std::size_t i = 0;
  Meter meter;
  for (auto _ : state) {
    bus->publish("bench.remote", payloads[i]);
    i = (i + 1) % kMessages;
  }
  meter.report(state, static_cast<double>(state.iterations()), "op");
  if (handler) {
    expect_equal(state, "handler calls", handled, state.iterations());
    if (!context_right) fail(state, "the handler did not see the event and its context");
  } else {
    expect_equal(state, "events received without a handler", bus->stats().undeliverable,
                 state.iterations());
  }
  bus->close();
}
#endif

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
  const Row w3c_encode_row{"encode/w3c",
                           "encode, one context with W3C ids encoded once; traceparent_on: "
                           "events.context.traceparent, its members encoded once too"};
  const Row w3c_decode_row{"decode/w3c",
                           "decode 64 messages in rotation, one context with W3C ids; "
                           "traceparent_on: the messages with traceparent, read with the setting"};
  add(w3c_encode_row, "athomic", [](auto& s) { w3c_encode(s, false); });
  add(w3c_decode_row, "athomic", [](auto& s) { w3c_decode(s, false); });
#ifdef ATHOMIC_BENCH_TRACEPARENT
  add(w3c_encode_row, "traceparent_on", [](auto& s) { w3c_encode(s, true); });
  add(w3c_decode_row, "traceparent_on", [](auto& s) { w3c_decode(s, true); });
#endif
#ifdef ATHOMIC_TEST_PLUGIN_DIR
  for (bool handler : {false, true}) {
    const Row row{handler ? "round_trip/remote" : "publish/remote",
                  handler ? "publish to one inline handler through the loopback provider: "
                            "encode, hand back, decode, run the handler in the context"
                          : "publish on the loopback provider, no handler here: the thread's "
                            "cached context, the envelope, the provider's call"};
    add(row, "athomic", [handler](auto& s) { remote_publish(s, false, handler); });
#ifdef ATHOMIC_BENCH_TRACEPARENT
    add(row, "traceparent_on", [handler](auto& s) { remote_publish(s, true, handler); });
#endif
  }
#endif
  return 0;
}
const int registered = register_all();

}  // namespace
