// Property tests of the wire codec, the part that reads untrusted bytes. Deterministic (fixed
// seeds) so a failure reproduces; run under AddressSanitizer and UBSan by the sanitizer presets.
//   1. Any bytes: decode never crashes or throws; what it accepts is an object without the
//      reserved key, with a context whose values respect the limits.
//   2. Any payload and context: encode then decode gives them back.
#include "codec.h"
#include "random_json.h"

#include <gtest/gtest.h>

#include <random>

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

}  // namespace
}  // namespace athomic::detail
