// The W3C traceparent codec: what is valid, every way it is not, and the way back.
#include "traceparent.h"

#include <athomic/errors.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace athomic::detail {
namespace {

using testing::HasSubstr;

constexpr std::string_view kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kSpan = "00f067aa0ba902b7";
const std::string kValid = "00-" + std::string(kTrace) + "-" + std::string(kSpan) + "-01";

TEST(TraceParent, TheSpecsExampleIsValid) {
  TraceParent tp;
  ASSERT_EQ(parse_traceparent(kValid, tp), nullptr);
  EXPECT_EQ(tp.trace_id, kTrace);
  EXPECT_EQ(tp.parent_id, kSpan);
  EXPECT_EQ(tp.flags, 0x01);
}

TEST(TraceParent, FlagsAreReadAsAByte) {
  for (const auto& [text, flags] : std::vector<std::pair<std::string, int>>{
           {"00", 0x00}, {"01", 0x01}, {"02", 0x02}, {"0f", 0x0f}, {"a0", 0xa0}, {"ff", 0xff}}) {
    TraceParent tp;
    ASSERT_EQ(parse_traceparent(kValid.substr(0, 53) + text, tp), nullptr) << text;
    EXPECT_EQ(tp.flags, flags) << text;
  }
}

TEST(TraceParent, ALaterVersionIsReadByItsFirstFourParts) {
  // The spec: a version above 00 is parsed as 00 is, and may go on after a '-'.
  TraceParent tp;
  const std::string v01 = "01" + kValid.substr(2);
  EXPECT_EQ(parse_traceparent(v01, tp), nullptr);
  EXPECT_EQ(parse_traceparent("cc" + kValid.substr(2), tp), nullptr);
  const std::string longer = v01 + "-what-comes-next";
  EXPECT_EQ(parse_traceparent(longer, tp), nullptr);
  EXPECT_EQ(tp.trace_id, kTrace);
  EXPECT_THAT(parse_traceparent(v01 + "x", tp), HasSubstr("no '-' after the trace-flags"));
}

struct Invalid {
  std::string name;
  std::string text;
  std::string why;
};

std::string with(std::size_t pos, std::string_view replacement) {
  std::string s = kValid;
  s.replace(pos, replacement.size(), replacement);
  return s;
}

class TraceParentInvalid : public testing::TestWithParam<Invalid> {};

TEST_P(TraceParentInvalid, IsRefusedSayingWhy) {
  TraceParent tp;
  tp.flags = 0x7a;
  const char* why = parse_traceparent(GetParam().text, tp);
  ASSERT_NE(why, nullptr) << GetParam().text;
  EXPECT_THAT(why, HasSubstr(GetParam().why));
  EXPECT_EQ(tp.flags, 0x7a) << "an invalid value must leave the output alone";
  EXPECT_TRUE(tp.trace_id.empty());
}

INSTANTIATE_TEST_SUITE_P(
    EveryRule, TraceParentInvalid,
    testing::Values(
        Invalid{"Empty", "", "shorter"}, Invalid{"OneShort", kValid.substr(0, 54), "shorter"},
        Invalid{"OneLongVersion00", kValid + "0", "longer than the 55 characters of version 00"},
        Invalid{"Version00WithMoreParts", kValid + "-00", "longer than the 55"},
        Invalid{"Padded", " " + kValid.substr(0, 54) + " ", "version"},
        Invalid{"VersionFf", with(0, "ff"), "version ff is invalid"},
        Invalid{"VersionUppercase", with(0, "0A"), "version is not two lowercase hex"},
        Invalid{"VersionNotHex", with(0, "0x"), "version is not two lowercase hex"},
        Invalid{"TraceIdUppercase", with(3, "4BF92F"), "trace-id is not 32 lowercase hex"},
        Invalid{"TraceIdNotHex", with(10, "g"), "trace-id is not 32 lowercase hex"},
        Invalid{"TraceIdAllZeros", with(3, std::string(32, '0')), "trace-id is all zeros"},
        Invalid{"ParentIdUppercase", with(36, "00F067AA"), "parent-id is not 16 lowercase hex"},
        Invalid{"ParentIdNotHex", with(40, "-"), "parent-id is not 16 lowercase hex"},
        Invalid{"ParentIdAllZeros", with(36, std::string(16, '0')), "parent-id is all zeros"},
        Invalid{"FlagsUppercase", with(53, "0A"), "trace-flags are not two lowercase hex"},
        Invalid{"FlagsNotHex", with(53, "0g"), "trace-flags are not two lowercase hex"},
        Invalid{"FlagsOneDigit", kValid.substr(0, 54) + "-", "trace-flags are not two"},
        Invalid{"WrongSeparator", with(2, "_"), "separated by '-'"},
        Invalid{"SeparatorMoved",
                "00-" + std::string(kTrace).substr(1) + "-0" + std::string(kSpan) + "-01",
                "separated by '-'"},
        Invalid{"UppercaseEverything", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
                "trace-id"}),
    [](const testing::TestParamInfo<Invalid>& info) { return info.param.name; });

TEST(TraceParent, IdsAreW3cOnlyAsLowercaseHexOfTheirLengthNotAllZeros) {
  EXPECT_TRUE(is_w3c_id(kTrace, kTraceIdChars));
  EXPECT_TRUE(is_w3c_id(kSpan, kParentIdChars));
  EXPECT_FALSE(is_w3c_id(kSpan, kTraceIdChars));
  EXPECT_FALSE(is_w3c_id(kTrace, kParentIdChars));
  EXPECT_FALSE(is_w3c_id(std::string(32, '0'), kTraceIdChars));
  EXPECT_FALSE(is_w3c_id("4BF92F3577B34DA6A3CE929D0E0E4736", kTraceIdChars));
  EXPECT_FALSE(is_w3c_id("4bf92f35-77b3-4da6-a3ce-929d0e0e4736", kTraceIdChars));  // a UUID
  EXPECT_FALSE(is_w3c_id("", kParentIdChars));
}

ContextPtr context(std::string_view trace, std::string_view span, uint8_t flags = 0x01,
                   std::string state = "") {
  ExecutionContext::Builder b;
  if (!trace.empty()) b.trace_id(std::string(trace));
  if (!span.empty()) b.span_id(std::string(span));
  return b.trace_flags(flags).trace_state(std::move(state)).tenant_id("acme").build();
}

TEST(TraceParent, AContextWithW3cIdsGivesItsMembers) {
  EXPECT_EQ(trace_members(*context(kTrace, kSpan)), "\"traceparent\":\"" + kValid + "\"");
  EXPECT_EQ(trace_members(*context(kTrace, kSpan, 0x00)),
            "\"traceparent\":\"" + kValid.substr(0, 53) + "00\"");
  EXPECT_EQ(trace_members(*context(kTrace, kSpan, 0x01, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")),
            "\"traceparent\":\"" + kValid +
                "\",\"tracestate\":\"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7\"");
  // A quote or a backslash in a tracestate value is escaped.
  EXPECT_EQ(trace_members(*context(kTrace, kSpan, 0x01, R"(a="x\y")")),
            "\"traceparent\":\"" + kValid + R"(","tracestate":"a=\"x\\y\"")");
}

TEST(TraceParent, AContextWithoutW3cIdsGivesNone) {
  // Free-text ids are not translated into W3C ones: no traceparent rather than a made-up one.
  const std::string upper = "4BF92F3577B34DA6A3CE929D0E0E4736";
  for (const auto& [trace, span] : std::vector<std::pair<std::string, std::string>>{
           {"", ""},
           {std::string(kTrace), ""},
           {"", std::string(kSpan)},
           {"trace-4711", std::string(kSpan)},
           {std::string(kTrace), "span-1"},
           {upper, std::string(kSpan)},
           {"4bf92f35-77b3-4da6-a3ce-929d0e0e4736", std::string(kSpan)},
           {std::string(32, '0'), std::string(kSpan)},
           {std::string(kTrace), std::string(16, '0')},
           {std::string(kTrace) + "0", std::string(kSpan)},
           {std::string(kSpan), std::string(kTrace)}}) {
    EXPECT_EQ(trace_members(*context(trace, span, 0x01, "k=v")), "") << trace << " / " << span;
  }
}

TEST(TraceParent, WhatIsWrittenReadsBackTheSame) {
  for (int flags = 0; flags < 256; ++flags) {
    std::string text;
    append_traceparent(kTrace, kSpan, static_cast<uint8_t>(flags), text);
    TraceParent tp;
    ASSERT_EQ(parse_traceparent(text, tp), nullptr) << text;
    EXPECT_EQ(tp.trace_id, kTrace);
    EXPECT_EQ(tp.parent_id, kSpan);
    EXPECT_EQ(tp.flags, flags);
  }
}

TEST(TraceState, PrintableAsciiUpToTheContextLimitTravels) {
  EXPECT_EQ(check_tracestate(""), nullptr);
  EXPECT_EQ(check_tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"), nullptr);
  EXPECT_EQ(check_tracestate(std::string(kMaxContextValueBytes, 'a')), nullptr);
  EXPECT_THAT(check_tracestate(std::string(kMaxContextValueBytes + 1, 'a')), HasSubstr("longer"));
  EXPECT_THAT(check_tracestate("a=b\n"), HasSubstr("printable ASCII"));
  EXPECT_THAT(check_tracestate("a=\xc3\xa9"), HasSubstr("printable ASCII"));
  EXPECT_THAT(check_tracestate(std::string("a=\0", 3)), HasSubstr("printable ASCII"));
}

TEST(TraceState, TheContextRefusesWhatCannotTravel) {
  EXPECT_THROW(ExecutionContext::Builder().trace_state("a=b\r\n"), EventBusError);
  EXPECT_THROW(ExecutionContext::Builder().trace_state(std::string(kMaxContextValueBytes + 1, 'a')),
               EventBusError);
  EXPECT_EQ(ExecutionContext::Builder().trace_state("a=b").build()->trace_state(), "a=b");
  EXPECT_EQ(ExecutionContext::Builder().trace_state("").build()->trace_state(), std::nullopt);
}

// Headers as a provider hands them over (ABI 1.3).
athomic_header header(std::string_view name, std::string_view value) {
  return athomic_header{{name.data(), name.size()}, {value.data(), value.size()}};
}

TEST(TraceHeaders, AreFoundByNameWithoutRegardToCase) {
  const std::vector<athomic_header> h = {header("Content-Type", "json"),
                                         header("TRACEPARENT", kValid), header("TraceState", "k=v")};
  const TraceHeaders t = find_trace_headers(h.data(), h.size());
  EXPECT_TRUE(t.has_parent);
  EXPECT_EQ(t.parent, kValid);
  EXPECT_TRUE(t.has_state);
  EXPECT_EQ(t.state, "k=v");
  EXPECT_EQ(t.problem, nullptr);
}

TEST(TraceHeaders, NoneIsEmpty) {
  EXPECT_TRUE(find_trace_headers(nullptr, 3).empty());
  const std::vector<athomic_header> h = {header("traceparentx", kValid), header("x", "y")};
  EXPECT_TRUE(find_trace_headers(h.data(), h.size()).empty());
}

TEST(TraceHeaders, TwoTraceparentsAreAProblemTheFirstTracestateIsKept) {
  const std::vector<athomic_header> h = {header("traceparent", kValid), header("tracestate", "a=1"),
                                         header("traceparent", kValid), header("tracestate", "b=2")};
  const TraceHeaders t = find_trace_headers(h.data(), h.size());
  ASSERT_NE(t.problem, nullptr);
  EXPECT_THAT(t.problem, HasSubstr("more than one 'traceparent' header"));
  EXPECT_EQ(t.state, "a=1");
}

TEST(TraceHeaders, AnOversizedTracestateIsCutSoThatItIsStillRefused) {
  const std::string big(1 << 20, 'a');
  const std::vector<athomic_header> h = {header("traceparent", kValid), header("tracestate", big)};
  const TraceHeaders t = find_trace_headers(h.data(), h.size());
  EXPECT_EQ(t.state.size(), kMaxContextValueBytes + 1);
  EXPECT_NE(check_tracestate(t.state), nullptr);
}

}  // namespace
}  // namespace athomic::detail
