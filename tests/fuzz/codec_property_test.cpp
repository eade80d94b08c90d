// Property tests of the wire codec, the part that reads untrusted bytes. Deterministic (fixed
// seeds) so a failure reproduces; run under AddressSanitizer and UBSan by the sanitizer presets.
//   1. Any bytes: decode never crashes or throws; what it accepts is an object without the
//      reserved key, with a context whose values respect the limits.
//   2. Any payload and context: encode then decode gives them back.
//   3. With events.context.traceparent: any document with any "traceparent" (and
//      "tracestate") never crashes the decoder nor changes its verdict on the message; the
//      value is ignored exactly when an independent reading of the W3C grammar says it is
//      invalid; and any context with W3C ids round-trips, flags and tracestate included.
#include "codec.h"
#include "random_json.h"
#include "traceparent.h"

#include <gtest/gtest.h>

#include <cctype>
#include <random>
#include <regex>

namespace athomic::detail {
namespace {

using nlohmann::json;

const std::vector<std::string> kSeeds = {
    R"({"id":"user-123","_nala_context":{"trace_id":"t","tenant_id":"acme"}})",
    R"({"a":[1,2,{"b":null}],"_nala_context":{"feature_flags":{"x":true}}})",
    R"({})",
    R"({"n":-1.5e300,"s":"caf\u00e9","_nala_context":{"user_id":"\ud83d\ude00"}})",
};

std::string mutate(std::string s, std::mt19937& rng) {
  std::uniform_int_distribution<int> op(0, 6), byte(0, 255);
  const int rounds = 1 + static_cast<int>(rng() % 4);
  for (int r = 0; r < rounds; ++r) {
    const std::size_t pos = s.empty() ? 0 : rng() % s.size();
    switch (op(rng)) {
      case 0: if (!s.empty()) s[pos] = static_cast<char>(byte(rng)); break;          // flip a byte
      case 1: s = s.substr(0, pos); break;                                            // truncate
      case 2: s.insert(pos, 1, static_cast<char>(byte(rng))); break;                 // insert junk
      case 3: if (!s.empty()) s.erase(pos, 1 + rng() % 8); break;                    // delete
      case 4: s.insert(pos, std::string(1 + rng() % 200, "[{"[rng() % 2])); break;    // nesting
      case 5: s.insert(pos, "\xff\xfe\xc0\x80"); break;                              // bad UTF-8
      case 6: s.insert(pos, R"("_nala_context":{"trace_id":)" + std::to_string(rng()) + "},"); break;
    }
  }
  return s;
}

TEST(CodecProperties, ArbitraryBytesNeverCrashAndAcceptedMessagesAreWellFormed) {
  std::mt19937 rng(20261126);
  int accepted = 0, rejected = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string body = mutate(kSeeds[i % kSeeds.size()], rng);
    DecodedEvent d;
    std::string error;
    if (decode_envelope(body, d, error)) {
      ++accepted;
      ASSERT_TRUE(d.payload && d.payload->is_object()) << body;
      ASSERT_FALSE(d.payload->contains(kContextKey)) << body;
      if (d.context) {
        for (std::size_t f = 0; f < kContextStringFieldCount; ++f) {
          if (auto v = d.context->get(static_cast<ContextField>(f))) {
            ASSERT_LE(v->size(), kMaxContextValueBytes) << body;
          }
        }
        ASSERT_LE(d.context->feature_flags().size(), kMaxFeatureFlags) << body;
      }
    } else {
      ++rejected;
      ASSERT_FALSE(error.empty()) << "rejected without a reason: " << body;
    }
  }
  // Both sides were exercised, or the mutations are not doing their job.
  EXPECT_GT(accepted, 100);
  EXPECT_GT(rejected, 1000);
}

std::string random_text(std::mt19937& rng, std::size_t max_len) {
  static const std::vector<std::string> pieces = {"a", "Z", "0", " ", "\"", "\\", "/", "\n",
                                                  "\t", "\xc3\xa9", "\xe2\x9c\x93", "\xf0\x9f\x9a\x80",
                                                  "_nala", "{", "}"};
  std::string s;
  const std::size_t n = rng() % (max_len + 1);
  while (s.size() < n) {
    const auto& p = pieces[rng() % pieces.size()];
    if (s.size() + p.size() > n) break;
    s += p;
  }
  return s;
}

TEST(CodecProperties, EncodeThenDecodeGivesBackPayloadAndContext) {
  std::mt19937 rng(4711);
  const auto text = [](std::mt19937& r) { return random_text(r, 40); };
  for (int i = 0; i < 3000; ++i) {
    json payload = json::object();
    for (unsigned k = rng() % 5; k > 0; --k) payload[random_text(rng, 10)] = test::random_json(rng, text);
    payload.erase(std::string(kContextKey));
    ExecutionContext::Builder b;
    for (std::size_t f = 0; f < kContextStringFieldCount; ++f) {
      if (rng() % 2) b.set(static_cast<ContextField>(f), random_text(rng, kMaxContextValueBytes));
    }
    if (rng() % 2) b.feature_flag(random_text(rng, 20), rng() % 2);
    const ContextPtr ctx = b.build();

    std::string wire;
    encode_envelope(payload, ctx.get(), wire);
    DecodedEvent d;
    std::string error;
    ASSERT_TRUE(decode_envelope(wire, d, error)) << error << "\n" << wire;
    ASSERT_EQ(*d.payload, payload) << wire;
    if (ctx->is_empty()) {
      ASSERT_EQ(d.context, nullptr);
    } else {
      ASSERT_TRUE(d.context);
      ASSERT_EQ(*d.context, *ctx) << wire;
    }
  }
}

// ---- W3C Trace Context (events.context.traceparent) ----

constexpr EnvelopeOptions kTraced{.traceparent = true};

// Seeds for the mutations with the W3C members in them.
const std::vector<std::string> kTracedSeeds = {
    R"({"id":1,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})",
    R"({"_nala_context":{"tenant_id":"acme","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"},)"
    R"("traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00","tracestate":"k=v"})",
    R"({"tracestate":"a=b,c=d","n":[1,{"traceparent":"x"}],"traceparent":"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-zz"})",
};

// The checks every accepted message passes, whatever the options.
void expect_well_formed(const DecodedEvent& d, const std::string& body, bool traced) {
  ASSERT_TRUE(d.payload && d.payload->is_object()) << body;
  ASSERT_FALSE(d.payload->contains(kContextKey)) << body;
  if (traced) {
    ASSERT_FALSE(d.payload->contains(kTraceParentKey)) << body;
    ASSERT_FALSE(d.payload->contains(kTraceStateKey)) << body;
  } else {
    ASSERT_TRUE(d.trace_problem.empty()) << body;
  }
  if (d.context) {
    for (std::size_t f = 0; f < kContextStringFieldCount; ++f) {
      if (auto v = d.context->get(static_cast<ContextField>(f))) {
        ASSERT_LE(v->size(), kMaxContextValueBytes) << body;
      }
    }
    ASSERT_LE(d.context->feature_flags().size(), kMaxFeatureFlags) << body;
    if (auto state = d.context->trace_state()) {
      ASSERT_EQ(check_tracestate(*state), nullptr) << body;
    }
  }
}

TEST(CodecProperties, WithTraceparentArbitraryBytesNeverCrashAndTheVerdictIsTheSame) {
  std::mt19937 rng(20261127);
  int accepted = 0, rejected = 0, problems = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string body = i % 2 ? mutate(kTracedSeeds[i / 2 % kTracedSeeds.size()], rng)
                                   : mutate(kSeeds[i / 2 % kSeeds.size()], rng);
    DecodedEvent on, off;
    std::string on_error, off_error;
    const bool on_ok = decode_envelope(body, on, on_error, kTraced);
    const bool off_ok = decode_envelope(body, off, off_error);
    // The W3C members never make a message malformed, nor a malformed one good.
    ASSERT_EQ(on_ok, off_ok) << body << "\non: " << on_error << "\noff: " << off_error;
    if (!on_ok) {
      ++rejected;
      ASSERT_EQ(on_error, off_error) << body;
      continue;
    }
    ++accepted;
    expect_well_formed(on, body, true);
    expect_well_formed(off, body, false);
    // The same payload, less the two members.
    nlohmann::json expected = *off.payload;
    expected.erase(std::string(kTraceParentKey));
    expected.erase(std::string(kTraceStateKey));
    ASSERT_EQ(*on.payload, expected) << body;
    if (!on.trace_problem.empty()) ++problems;
  }
  EXPECT_GT(accepted, 100);
  EXPECT_GT(rejected, 1000);
  EXPECT_GT(problems, 50);
}

// The W3C grammar of traceparent, written apart from parse_traceparent.
bool reference_valid(const std::string& s) {
  static const std::regex grammar(
      "([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})((-.*)?)", std::regex::ECMAScript);
  std::smatch m;
  if (!std::regex_match(s, m, grammar)) return false;
  if (m[1] == "ff" || m[2] == std::string(32, '0') || m[3] == std::string(16, '0')) return false;
  return m[1] != "00" || m[5].length() == 0;
}

std::string random_hex(std::mt19937& rng, std::size_t n) {
  static const char kHex[] = "0123456789abcdef";
  std::string s(n, '0');
  for (auto& c : s) c = kHex[rng() % 16];
  return s;
}

// Mostly near-valid traceparents, bent in the ways a sender gets them wrong.
std::string random_traceparent(std::mt19937& rng) {
  std::string s = random_hex(rng, 2) + "-" + random_hex(rng, 32) + "-" + random_hex(rng, 16) + "-" +
                  random_hex(rng, 2);
  if (rng() % 3 == 0) s.replace(0, 2, "00");
  for (unsigned edits = rng() % 3; edits > 0 && !s.empty(); --edits) {
    const std::size_t pos = rng() % s.size();
    const auto zeros = [&s](std::size_t at, std::size_t n) {
      if (s.size() >= at + n) s.replace(at, n, std::string(n, '0'));
    };
    switch (rng() % 9) {
      case 0:
        s[pos] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[pos])));
        break;
      case 1:
        s[pos] = "g-_ Z\x00\xff"[rng() % 8];
        break;
      case 2:
        s.erase(pos, 1);
        break;
      case 3:
        s.insert(pos, 1, "0a-"[rng() % 3]);
        break;
      case 4:
        zeros(3, 32);
        break;
      case 5:
        zeros(36, 16);
        break;
      case 6:
        if (s.size() >= 2) s.replace(0, 2, "ff");
        break;
      case 7:
        s += rng() % 2 ? "-" + random_hex(rng, rng() % 6) : random_hex(rng, 1);
        break;
      case 8:
        s = s.substr(0, pos);
        break;
    }
  }
  return s;
}

TEST(CodecProperties, RandomTraceparentsAreReadExactlyWhenTheGrammarAllows) {
  std::mt19937 rng(5501);
  const auto text = [](std::mt19937& r) { return random_text(r, 12); };
  int valid = 0, invalid = 0;
  for (int i = 0; i < 20000; ++i) {
    nlohmann::json doc = nlohmann::json::object();
    for (unsigned k = rng() % 4; k > 0; --k)
      doc[random_text(rng, 8)] = test::random_json(rng, text);
    doc.erase(std::string(kContextKey));
    doc.erase(std::string(kTraceStateKey));
    const bool is_string = rng() % 8 != 0;
    const std::string candidate = random_traceparent(rng);
    doc[std::string(kTraceParentKey)] =
        is_string ? nlohmann::json(candidate) : test::random_json(rng, text);
    if (doc[std::string(kTraceParentKey)].is_null()) continue;  // null is absent
    const std::string body = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    DecodedEvent d;
    std::string error;
    ASSERT_TRUE(decode_envelope(body, d, error, kTraced)) << error << "\n" << body;
    expect_well_formed(d, body, true);
    const auto& value = doc[std::string(kTraceParentKey)];
    const bool expected_valid = value.is_string() && reference_valid(value.get<std::string>());
    ASSERT_EQ(d.trace_problem.empty(), expected_valid) << body << "\n" << d.trace_problem;
    if (expected_valid) {
      ++valid;
      const std::string& tp = value.get_ref<const std::string&>();
      ASSERT_TRUE(d.context) << body;
      ASSERT_EQ(d.context->trace_id(), tp.substr(3, 32)) << body;
      ASSERT_EQ(d.context->span_id(), tp.substr(36, 16)) << body;
      ASSERT_EQ(d.context->trace_flags(), std::stoi(tp.substr(53, 2), nullptr, 16)) << body;
    } else {
      ++invalid;
      ASSERT_EQ(d.context, nullptr) << body;
    }
  }
  EXPECT_GT(valid, 2000);
  EXPECT_GT(invalid, 2000);
}

std::string random_tracestate(std::mt19937& rng) {
  std::string s(rng() % 2 ? rng() % 40 : rng() % (kMaxContextValueBytes + 1), ' ');
  for (auto& c : s) c = static_cast<char>(0x20 + rng() % 95);  // printable ASCII, " and \ too
  return s;
}

TEST(CodecProperties, WithTraceparentEncodeThenDecodeGivesBackPayloadAndContext) {
  std::mt19937 rng(4712);
  const auto text = [](std::mt19937& r) { return random_text(r, 40); };
  int with_members = 0;
  for (int i = 0; i < 3000; ++i) {
    json payload = json::object();
    for (unsigned k = rng() % 5; k > 0; --k)
      payload[random_text(rng, 10)] = test::random_json(rng, text);
    for (const auto key : {kContextKey, kTraceParentKey, kTraceStateKey})
      payload.erase(std::string(key));
    ExecutionContext::Builder b;
    for (std::size_t f = 0; f < kContextStringFieldCount; ++f) {
      if (rng() % 2) b.set(static_cast<ContextField>(f), random_text(rng, 60));
    }
    // Mostly W3C ids, sometimes all zeros or free text.
    if (rng() % 8) b.trace_id(rng() % 50 ? random_hex(rng, 32) : std::string(32, '0'));
    if (rng() % 8) b.span_id(rng() % 50 ? random_hex(rng, 16) : std::string(16, '0'));
    b.trace_flags(static_cast<uint8_t>(rng()));
    if (rng() % 2) b.trace_state(random_tracestate(rng));
    const ContextPtr ctx = b.build();

    std::string wire;
    encode_envelope(payload, ctx.get(), wire, kTraced);
    DecodedEvent d;
    std::string error;
    ASSERT_TRUE(decode_envelope(wire, d, error, kTraced)) << error << "\n" << wire;
    ASSERT_EQ(*d.payload, payload) << wire;
    ASSERT_EQ(d.trace_problem, "") << wire;
    const bool w3c = !trace_members(*ctx).empty();
    if (ctx->is_empty()) {
      ASSERT_EQ(d.context, nullptr) << wire;
      continue;
    }
    ASSERT_TRUE(d.context) << wire;
    if (w3c) {
      ++with_members;
      ASSERT_EQ(*d.context, *ctx) << wire;
    } else {
      // Without W3C ids only _nala_context travels: flags and tracestate stay behind.
      ASSERT_EQ(
          *d.context,
          *ExecutionContext::Builder(*ctx).trace_flags(kDefaultTraceFlags).trace_state("").build())
          << wire;
    }
  }
  EXPECT_GT(with_members, 1000);
}

}  // namespace
}  // namespace athomic::detail
