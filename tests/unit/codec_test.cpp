#include "codec.h"

#include <athomic/errors.h>

#include <gtest/gtest.h>

#include <optional>
#include <vector>

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

// ---- W3C Trace Context (events.context.traceparent) ----

constexpr EnvelopeOptions kTraced{.traceparent = true};
constexpr const char* kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr const char* kSpan = "00f067aa0ba902b7";
const std::string kParent = std::string("00-") + kTrace + "-" + kSpan + "-01";

std::string encode_traced(const json& payload, const ContextPtr& ctx) {
  std::string out;
  encode_envelope(payload, ctx.get(), out, kTraced);
  return out;
}

DecodedEvent decode_traced(const std::string& body) {
  DecodedEvent d;
  std::string error;
  EXPECT_TRUE(decode_envelope(body, d, error, kTraced)) << body << ": " << error;
  return d;
}

TEST(CodecTraceparent, OffTheEnvelopeIsTheSeedsEvenWithW3cIds) {
  // The same bytes as before the setting existed, whatever the ids look like.
  auto ctx = ExecutionContext::Builder()
                 .trace_id(kTrace)
                 .span_id(kSpan)
                 .tenant_id("acme")
                 .trace_flags(0x00)
                 .trace_state("a=b")
                 .build();
  const std::string seed = std::string(R"({"id":"user-123","_nala_context":{"span_id":")") + kSpan +
                           R"(","tenant_id":"acme","trace_id":")" + kTrace + R"("}})";
  EXPECT_EQ(encode(json{{"id", "user-123"}}, ctx), seed);
  std::string cached;
  encode_envelope(json{{"id", "user-123"}}, encode_context(*ctx), cached);
  EXPECT_EQ(cached, seed);
  // A payload member of that name is data, both ways.
  const std::string with_member = encode(json{{"traceparent", "x"}, {"tracestate", 1}}, nullptr);
  EXPECT_EQ(with_member, R"({"traceparent":"x","tracestate":1})");
  DecodedEvent d;
  std::string error;
  ASSERT_TRUE(decode_envelope(with_member, d, error)) << error;
  EXPECT_EQ(*d.payload, (json{{"traceparent", "x"}, {"tracestate", 1}}));
  EXPECT_EQ(d.context, nullptr);
  EXPECT_EQ(d.trace_problem, "");
}

TEST(CodecTraceparent, OnTheMembersFollowTheContext) {
  auto ctx = ExecutionContext::Builder().trace_id(kTrace).span_id(kSpan).tenant_id("acme").build();
  const std::string nala = std::string(R"("_nala_context":{"span_id":")") + kSpan +
                           R"(","tenant_id":"acme","trace_id":")" + kTrace + R"("})";
  EXPECT_EQ(encode_traced(json{{"id", "user-123"}}, ctx),
            R"({"id":"user-123",)" + nala + R"(,"traceparent":")" + kParent + "\"}");
  EXPECT_EQ(encode_traced(json::object(), ctx),
            "{" + nala + R"(,"traceparent":")" + kParent + "\"}");
  auto with_state = ExecutionContext::Builder(*ctx).trace_flags(0).trace_state("k=v").build();
  EXPECT_EQ(
      encode_traced(json::object(), with_state),
      "{" + nala + R"(,"traceparent":"00-)" + kTrace + "-" + kSpan + R"(-00","tracestate":"k=v"})");
  // Ids that are not W3C ids: only the seed's envelope.
  auto free_text = ExecutionContext::Builder().trace_id("trace-4711").span_id(kSpan).build();
  EXPECT_EQ(encode_traced(json{{"id", 1}}, free_text), encode(json{{"id", 1}}, free_text));
  EXPECT_EQ(encode_traced(json{{"id", 1}}, nullptr), R"({"id":1})");
}

TEST(CodecTraceparent, OnThePayloadMayNotHoldTheMembers) {
  auto ctx = ExecutionContext::Builder().trace_id("free text").build();
  for (const char* key : {"traceparent", "tracestate"}) {
    try {
      encode_traced(json{{key, "x"}}, ctx);
      ADD_FAILURE() << key << " was accepted";
    } catch (const EventBusError& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("payload holds the key '") + key +
                                           "', which events.context.traceparent = true reserves"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(encode_traced(json{{"nested", {{"traceparent", "x"}}}}, nullptr),
            R"({"nested":{"traceparent":"x"}})");
}

TEST(CodecTraceparent, RoundTripKeepsIdsFlagsAndState) {
  auto ctx = ExecutionContext::Builder()
                 .trace_id(kTrace)
                 .span_id(kSpan)
                 .user_id("u")
                 .trace_flags(0x00)
                 .trace_state("congo=t61rcWkgMzE")
                 .build();
  const auto d = decode_traced(encode_traced(json{{"n", 1}}, ctx));
  EXPECT_EQ(*d.payload, (json{{"n", 1}}));
  ASSERT_TRUE(d.context);
  EXPECT_EQ(*d.context, *ctx);
  EXPECT_EQ(d.trace_problem, "");
}

TEST(CodecTraceparent, AReceivedTraceparentFillsWhatTheContextLacks) {
  // Another OpenTelemetry-instrumented publisher: no _nala_context at all.
  auto d = decode_traced(R"({"id":1,"traceparent":")" + kParent + R"(","tracestate":"k=v"})");
  EXPECT_EQ(*d.payload, (json{{"id", 1}}));
  ASSERT_TRUE(d.context);
  EXPECT_EQ(d.context->trace_id(), kTrace);
  EXPECT_EQ(d.context->span_id(), kSpan);
  EXPECT_EQ(d.context->trace_flags(), 0x01);
  EXPECT_EQ(d.context->trace_state(), "k=v");
  EXPECT_EQ(d.trace_problem, "");

  // A context without ids keeps its fields and gains the trace.
  d = decode_traced(R"({"_nala_context":{"tenant_id":"acme"},"traceparent":")" +
                    kParent.substr(0, 53) + "00\"}");
  EXPECT_EQ(d.context->tenant_id(), "acme");
  EXPECT_EQ(d.context->trace_id(), kTrace);
  EXPECT_EQ(d.context->span_id(), kSpan);
  EXPECT_EQ(d.context->trace_flags(), 0x00);

  // One of the two: the other is filled when the traceparent is of the same trace.
  d = decode_traced(std::string(R"({"_nala_context":{"trace_id":")") + kTrace +
                    R"("},"traceparent":")" + kParent + "\"}");
  EXPECT_EQ(d.context->span_id(), kSpan);
}

TEST(CodecTraceparent, EscapedCharactersAreReadAsTheyAreInJson) {
  // The same string value, spelt with escapes: valid.
  std::string escaped = kParent;
  escaped.replace(0, 2, "\\u0030\\u0030");
  auto d = decode_traced(R"({"traceparent":")" + escaped + "\"}");
  ASSERT_TRUE(d.context) << d.trace_problem;
  EXPECT_EQ(d.context->trace_id(), kTrace);
  // A NUL in it is a character like any other: invalid.
  std::string with_nul = kParent;
  with_nul.replace(3, 1, "\\u0000");
  d = decode_traced(R"({"traceparent":")" + with_nul + "\"}");
  EXPECT_EQ(d.context, nullptr);
  EXPECT_NE(d.trace_problem.find("trace-id is not 32 lowercase hex"), std::string::npos)
      << d.trace_problem;
}

TEST(CodecTraceparent, NalaContextWins) {
  // Another trace, or another span: the traceparent is not mixed in (nor counted: it is valid).
  for (const std::string& nala : std::vector<std::string>{
           R"({"trace_id":"nala-trace"})", R"({"span_id":"nala-span","tenant_id":"t"})",
           R"({"trace_id":"nala-trace","span_id":"nala-span"})",
           std::string(R"({"trace_id":")") + kTrace + R"(","span_id":"0000000000000001"})"}) {
    const auto d = decode_traced(R"({"_nala_context":)" + nala + R"(,"traceparent":")" + kParent +
                                 R"(","tracestate":"k=v"})");
    ASSERT_TRUE(d.context) << nala;
    std::string error;
    ContextPtr expected;
    ASSERT_TRUE(context_from_json(json::parse(nala), expected, error));
    EXPECT_EQ(*d.context, *expected) << nala;
    EXPECT_EQ(d.trace_problem, "") << nala;
    EXPECT_FALSE(d.payload->contains("traceparent"));
    EXPECT_FALSE(d.payload->contains("tracestate"));
  }
}

TEST(CodecTraceparent, TheSameIdsShareTheDecodedContext) {
  // Between athomic services the traceparent repeats what _nala_context says: the context
  // object is the decoder's cached one, not a copy per message.
  auto ctx = ExecutionContext::Builder().trace_id(kTrace).span_id(kSpan).build();
  const auto a = decode_traced(encode_traced(json{{"n", 1}}, ctx));
  const auto b = decode_traced(encode_traced(json{{"n", 2}}, ctx));
  EXPECT_EQ(a.context, b.context);
  EXPECT_EQ(*a.context, *ctx);
}

struct BadTrace {
  std::string name;
  std::string members;  // spliced after "id":1
  std::string why;
};

class CodecTraceparentInvalid : public testing::TestWithParam<BadTrace> {};

TEST_P(CodecTraceparentInvalid, IsIgnoredAndSaidTheEventIsKept) {
  const std::string body =
      R"({"id":1,"_nala_context":{"tenant_id":"acme"},)" + GetParam().members + "}";
  const auto d = decode_traced(body);
  EXPECT_EQ(*d.payload, (json{{"id", 1}})) << body;
  EXPECT_NE(d.trace_problem.find(GetParam().why), std::string::npos)
      << body << "\nproblem: " << d.trace_problem;
  ASSERT_TRUE(d.context);
  EXPECT_EQ(d.context->tenant_id(), "acme");
  if (GetParam().why.rfind("'tracestate'", 0) == 0) {
    // A bad tracestate alone: the traceparent still counts.
    EXPECT_EQ(d.context->trace_id(), kTrace);
    EXPECT_EQ(d.context->trace_state(), std::nullopt);
  } else {
    EXPECT_FALSE(d.context->has(ContextField::trace_id));
    EXPECT_FALSE(d.context->has(ContextField::span_id));
  }
}

std::string tp_member(const std::string& value) { return R"("traceparent":")" + value + "\""; }
std::string tp_with(std::size_t pos, const std::string& part) {
  std::string s = kParent;
  s.replace(pos, part.size(), part);
  return tp_member(s);
}

INSTANTIATE_TEST_SUITE_P(
    Codec, CodecTraceparentInvalid,
    testing::Values(
        BadTrace{"TooShort", tp_member(kParent.substr(0, 54)), "shorter"},
        BadTrace{"TooLong", tp_member(kParent + "1"), "longer"},
        BadTrace{"Uppercase", tp_with(3, "4BF9"), "trace-id is not 32 lowercase hex"},
        BadTrace{"TraceIdZeros", tp_with(3, std::string(32, '0')), "trace-id is all zeros"},
        BadTrace{"ParentIdZeros", tp_with(36, std::string(16, '0')), "parent-id is all zeros"},
        BadTrace{"VersionFf", tp_with(0, "ff"), "version ff"},
        BadTrace{"BadFlags", tp_with(53, "x1"), "trace-flags"},
        BadTrace{"Number", R"("traceparent":42)", "'traceparent' must be a string, got number"},
        BadTrace{"Object", R"("traceparent":{"v":"00"})", "must be a string, got object"},
        BadTrace{"Array", R"("traceparent":[])", "must be a string, got array"},
        BadTrace{"Bool", R"("traceparent":true)", "must be a string, got boolean"},
        BadTrace{"Empty", R"("traceparent":"")", "shorter"},
        BadTrace{"LastOneWins", tp_member(kParent) + "," + R"("traceparent":"junk")", "shorter"},
        BadTrace{"StateNotAString", tp_member(kParent) + R"(,"tracestate":7)",
                 "'tracestate' must be a string, got number"},
        BadTrace{"StateControlByte", tp_member(kParent) + R"(,"tracestate":"a=\n")",
                 "'tracestate' \"a=\\n\": holds a byte outside printable ASCII"}),
    [](const testing::TestParamInfo<BadTrace>& info) { return info.param.name; });

TEST(CodecTraceparent, AProblemShowsTheValueCutShort) {
  const auto d = decode_traced(R"({"traceparent":")" + std::string(5000, 'a') + "\"}");
  EXPECT_LT(d.trace_problem.size(), 200u) << d.trace_problem;
  EXPECT_EQ(d.context, nullptr);
  EXPECT_EQ(*d.payload, json::object());
}

TEST(CodecTraceparent, NullOrATracestateAloneIsNothing) {
  for (const char* body : {R"({"traceparent":null})", R"({"tracestate":"k=v"})",
                           R"({"traceparent":null,"tracestate":"k=v"})"}) {
    const auto d = decode_traced(body);
    EXPECT_EQ(*d.payload, json::object()) << body;
    EXPECT_EQ(d.context, nullptr) << body;
    EXPECT_EQ(d.trace_problem, "") << body;
  }
}

TEST(CodecTraceparent, AMessageWithoutTheMembersDecodesAsBefore) {
  // What a Python service writes: only _nala_context.
  const std::string body =
      R"({"id":"u1","_nala_context":{"trace_id":"py-trace","tenant_id":"acme","feature_flags":{"x":true}}})";
  DecodedEvent off;
  std::string error;
  ASSERT_TRUE(decode_envelope(body, off, error)) << error;
  const auto on = decode_traced(body);
  EXPECT_EQ(*on.payload, *off.payload);
  ASSERT_TRUE(on.context);
  EXPECT_EQ(*on.context, *off.context);
  EXPECT_EQ(on.trace_problem, "");
}

}  // namespace
}  // namespace athomic::detail
