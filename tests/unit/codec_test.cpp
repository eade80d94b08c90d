#include "codec.h"

#include <athomic/errors.h>

#include <gtest/gtest.h>

#include <optional>

namespace athomic::detail {
namespace {

using nlohmann::json;

std::string encode(const json& payload, const ContextPtr& ctx) {
  std::string out;
  encode_envelope(payload, ctx.get(), out);
  return out;
}

TEST(Codec, EncodesTheSeedsEnvelopeExactly) {
  auto ctx = ExecutionContext::Builder().trace_id("t-1").tenant_id("acme").build();
  EXPECT_EQ(encode(json{{"id", "user-123"}}, ctx),
            R"({"id":"user-123","_nala_context":{"tenant_id":"acme","trace_id":"t-1"}})");
  EXPECT_EQ(encode(json::object(), ctx), R"({"_nala_context":{"tenant_id":"acme","trace_id":"t-1"}})");
  EXPECT_EQ(encode(json{{"id", 1}}, nullptr), R"({"id":1})");
  EXPECT_EQ(encode(json{{"id", 1}}, ExecutionContext::Builder().build()), R"({"id":1})");
}

TEST(Codec, ConsecutiveMessagesEachGetTheirOwnContext) {
  // The decoder reuses the previous message's context when its text is the same; every
  // message must still get exactly the context it carries.
  struct Case {
    std::string body;
    std::optional<std::string> trace;  // nullopt: no context at all
  };
  const Case cases[] = {
      {R"({"n":1,"_nala_context":{"trace_id":"a"}})", "a"},
      {R"({"n":2,"_nala_context":{"trace_id":"a"}})", "a"},
      {R"({"n":3})", std::nullopt},
      {R"({"n":4,"_nala_context":{"trace_id":"a"}})", "a"},
      {R"({"n":5,"_nala_context":{"trace_id":"ab"}})", "ab"},
      {R"({"n":6,"_nala_context":{"trace_id":"a"},"_nala_context":null})", std::nullopt},
      {R"({"_nala_context":{"trace_id":"a"},"n":7})", "a"},
      {R"({"n":8,"_nala_context":{"tenant_id":"a"}})", ""},
  };
  ContextPtr first_a;
  for (const auto& c : cases) {
    DecodedEvent d;
    std::string error;
    ASSERT_TRUE(decode_envelope(c.body, d, error)) << c.body << ": " << error;
    EXPECT_FALSE(d.payload->contains(kContextKey)) << c.body;
    if (!c.trace) {
      EXPECT_EQ(d.context, nullptr) << c.body;
      continue;
    }
    ASSERT_NE(d.context, nullptr) << c.body;
    EXPECT_EQ(d.context->trace_id().value_or(""), *c.trace) << c.body;
    if (*c.trace == "a") {
      if (!first_a) first_a = d.context;
      EXPECT_EQ(*d.context, *first_a) << c.body;
    }
  }
}

TEST(Codec, RefusesPayloadWithTheReservedKey) {
  EXPECT_THROW(encode(json{{"_nala_context", json::object()}}, nullptr), EventBusError);
}

TEST(Codec, RoundTripsEveryFieldAndUnicode) {
  auto ctx = ExecutionContext::Builder()
                 .tenant_id("acme")
                 .request_id("r")
                 .trace_id("trace-\xe2\x9c\x93")
                 .span_id("s")
                 .user_id("\xe7\x94\xa8\xe6\x88\xb7")
                 .role("admin")
                 .locale("pt-BR")
                 .source_ip("10.1.2.3")
                 .session_id("sess")
                 .correlation_id(std::string(kMaxContextValueBytes, 'c'))
                 .feature_flags({{"beta", true}, {"dark", false}})
                 .build();
  const json payload = {{"name", "Zo\xc3\xab"}, {"n", 3}, {"nested", {{"a", json::array({1, 2})}}}};
  DecodedEvent d;
  std::string error;
  ASSERT_TRUE(decode_envelope(encode(payload, ctx), d, error)) << error;
  EXPECT_EQ(*d.payload, payload);  // "_nala_context" removed
  ASSERT_TRUE(d.context);
  EXPECT_EQ(*d.context, *ctx);
}

TEST(Codec, AcceptsAMessageFromAnotherClient) {
  // As a Python service would write it: nulls for unset fields, unknown extra fields.
  DecodedEvent d;
  std::string error;
  ASSERT_TRUE(decode_envelope(
      R"({"id":"u1","_nala_context":{"trace_id":"abc","tenant_id":null,"baggage":"x"}})", d,
      error))
      << error;
  EXPECT_EQ((*d.payload)["id"], "u1");
  EXPECT_EQ(d.context->trace_id(), "abc");
  EXPECT_EQ(d.context->fields(), field_bit(ContextField::trace_id));
}

TEST(Codec, MessageWithoutContextHasNone) {
  DecodedEvent d;
  std::string error;
  ASSERT_TRUE(decode_envelope(R"({"id":"u1"})", d, error));
  EXPECT_EQ(d.context, nullptr);
}

struct Malformed {
  const char* body;
  const char* why;
};

class CodecMalformed : public testing::TestWithParam<Malformed> {};

TEST_P(CodecMalformed, IsRejectedWithAReason) {
  DecodedEvent d;
  std::string error;
  EXPECT_FALSE(decode_envelope(GetParam().body, d, error));
  EXPECT_NE(error.find(GetParam().why), std::string::npos) << "error was: " << error;
}

INSTANTIATE_TEST_SUITE_P(
    Codec, CodecMalformed,
    testing::Values(Malformed{"{not json", "not valid JSON"}, Malformed{"", "not valid JSON"},
                    Malformed{"[1,2]", "must be a JSON object, got array"},
                    Malformed{"\"text\"", "got string"},
                    Malformed{R"({"_nala_context":[1]})", "must be an object"},
                    Malformed{R"({"_nala_context":{"trace_id":42}})", "trace_id' must be a string"},
                    Malformed{R"({"_nala_context":{"feature_flags":{"a":"yes"}}})",
                              "must be a boolean"},
                    Malformed{R"({"_nala_context":{"feature_flags":[true]}})",
                              "must be an object of booleans"}));

TEST(Codec, RejectsOversizedContextValues) {
  const std::string body = R"({"_nala_context":{"user_id":")" +
                           std::string(kMaxContextValueBytes + 1, 'u') + "\"}}";
  DecodedEvent d;
  std::string error;
  EXPECT_FALSE(decode_envelope(body, d, error));
  EXPECT_NE(error.find("user_id' is 1025 bytes"), std::string::npos) << error;
}

TEST(Codec, RejectsDeepNestingWithoutExhaustingTheStack) {
  std::string body = "{\"a\":";
  for (int i = 0; i < 100000; ++i) body += '[';
  DecodedEvent d;
  std::string error;
  EXPECT_FALSE(decode_envelope(body, d, error));
  EXPECT_FALSE(error.empty());
}

}  // namespace
}  // namespace athomic::detail
