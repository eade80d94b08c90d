// W3C Trace Context on a remote transport (events.context.traceparent), end to end through the
// loopback provider: two buses in one loopback group are two services on one bus, `plain` as
// every service is by default and `traced` with the setting on. What `plain` publishes is
// what a publisher without the setting (a Python service, an older athomic) sends; what it
// receives shows the envelope the other one sent, member by member.
#include "log_capture.h"
#include "test_support.h"
#include "trace_seen.h"

#include <gmock/gmock.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <vector>

namespace athomic::test {
namespace {

using nlohmann::json;
using testing::HasSubstr;

class Traceparent : public testing::TestWithParam<DispatchMode> {
 protected:
  EventsSettings settings(bool traceparent) {
    EventsSettings s = backend_settings("loopback", GetParam());
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    s.provider_config["group"] = std::string(info->test_suite_name()) + "." + info->name();
    s.traceparent = traceparent;
    return s;
  }

  // Declared before the buses, so that the buses (and their handlers) are gone first.
  Seen at_plain, at_traced;
  std::shared_ptr<EventBus> plain = started(settings(false));
  std::shared_ptr<EventBus> traced = started(settings(true));

  void SetUp() override {
    plain->subscribe("e", [this](const Event& e) { at_plain.record(e); });
    traced->subscribe("e", [this](const Event& e) { at_traced.record(e); });
  }
};

TEST_P(Traceparent, OutTheEnvelopeCarriesItBesideNalaContext) {
  const auto ctx = ExecutionContext::Builder()
                       .trace_id(kTrace)
                       .span_id(kSpan)
                       .tenant_id("acme")
                       .session_id("not propagated")
                       .build();
  {
    ContextScope scope(ctx);
    traced->publish("e", {{"id", 1}}).wait();
  }
  ASSERT_TRUE(at_plain.wait_for(1));
  ASSERT_TRUE(at_traced.wait_for(1));
  // Without the setting the members are payload: exactly what went on the wire.
  EXPECT_EQ(at_plain.payload(0), (json{{"id", 1}, {"traceparent", kParent}}));
  const auto expected = ExecutionContext::restrict(ctx, kDefaultPropagatedFields);
  ASSERT_TRUE(at_plain.context(0));
  EXPECT_EQ(*at_plain.context(0), *expected);
  // With it, the publisher's own payload and context come back.
  EXPECT_EQ(at_traced.payload(0), (json{{"id", 1}}));
  ASSERT_TRUE(at_traced.context(0));
  EXPECT_EQ(*at_traced.context(0), *expected);
  EXPECT_EQ(traced->stats().invalid_traceparent, 0u);
}

TEST_P(Traceparent, FlagsAndStateTravelWithTheTrace) {
  const auto ctx = ExecutionContext::Builder()
                       .trace_id(kTrace)
                       .span_id(kSpan)
                       .trace_flags(0x00)
                       .trace_state("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
                       .build();
  {
    ContextScope scope(ctx);
    traced->publish("e", {}).wait();
  }
  ASSERT_TRUE(at_plain.wait_for(1));
  ASSERT_TRUE(at_traced.wait_for(1));
  EXPECT_EQ(at_plain.payload(0),
            (json{{"traceparent", std::string("00-") + kTrace + "-" + kSpan + "-00"},
                  {"tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"}}));
  // _nala_context knows nothing of them: the plain side has the ids alone.
  EXPECT_EQ(at_plain.context(0)->trace_flags(), kDefaultTraceFlags);
  EXPECT_EQ(at_plain.context(0)->trace_state(), std::nullopt);
  ASSERT_TRUE(at_traced.context(0));
  EXPECT_EQ(*at_traced.context(0), *ctx);
}

TEST_P(Traceparent, InAReceivedTraceparentFillsTheContext) {
  // A publisher that speaks W3C only, like an OpenTelemetry-instrumented one: no _nala_context.
  plain->publish("e", {{"id", 2}, {"traceparent", kParent}, {"tracestate", "k=v"}}).wait();
  ASSERT_TRUE(at_traced.wait_for(1));
  EXPECT_EQ(at_traced.payload(0), (json{{"id", 2}}));
  const auto ctx = at_traced.context(0);
  ASSERT_TRUE(ctx);
  EXPECT_EQ(ctx->trace_id(), kTrace);
  EXPECT_EQ(ctx->span_id(), kSpan);
  EXPECT_EQ(ctx->trace_flags(), 0x01);
  EXPECT_EQ(ctx->trace_state(), "k=v");
  EXPECT_EQ(ctx->fields(), field_bit(ContextField::trace_id) | field_bit(ContextField::span_id));
  EXPECT_EQ(traced->stats().invalid_traceparent, 0u);

  // And goes on from there: a handler's publish carries the same trace.
  Seen onward;
  plain->subscribe("e.next", [&](const Event& e) { onward.record(e); });
  {
    ContextScope scope(ctx);
    traced->publish("e.next", {}).wait();
  }
  ASSERT_TRUE(onward.wait_for(1));
  EXPECT_EQ(onward.payload(0), (json{{"traceparent", kParent}, {"tracestate", "k=v"}}));
}

TEST_P(Traceparent, InNalaContextWins) {
  {
    ContextScope scope(
        ExecutionContext::Builder().trace_id("nala-trace").tenant_id("acme").build());
    plain->publish("e", {{"traceparent", kParent}}).wait();
  }
  ASSERT_TRUE(at_traced.wait_for(1));
  EXPECT_EQ(at_traced.payload(0), json::object());
  const auto ctx = at_traced.context(0);
  ASSERT_TRUE(ctx);
  EXPECT_EQ(*ctx, *ExecutionContext::Builder().trace_id("nala-trace").tenant_id("acme").build());
  EXPECT_EQ(traced->stats().invalid_traceparent, 0u);
}

TEST_P(Traceparent, InvalidOnesAreIgnoredCountedAndTheEventsDelivered) {
  test::LogCapture log("athomic.events");
  std::string upper = kParent, zeros = kParent, ff = kParent, flags = kParent;
  for (std::size_t i = 3; i < 35; ++i) upper[i] = static_cast<char>(std::toupper(upper[i]));
  zeros.replace(36, 16, std::string(16, '0'));
  ff.replace(0, 2, "ff");
  flags.replace(53, 2, "0g");
  const std::vector<json> bad = {
      kParent.substr(0, 54), kParent + "0",          upper, zeros, ff, flags, 42,
      json::object(),        json::array({kParent}), true,  ""};
  ContextScope scope(ExecutionContext::Builder().tenant_id("acme").build());
  for (const auto& value : bad) plain->publish("e", {{"id", 3}, {"traceparent", value}}).wait();
  // A valid traceparent with a tracestate that cannot travel: the state alone is dropped.
  plain->publish("e", {{"id", 3}, {"traceparent", kParent}, {"tracestate", "a=\x01"}}).wait();
  const int n = static_cast<int>(bad.size()) + 1;
  ASSERT_TRUE(at_traced.wait_for(n));
  EXPECT_TRUE(eventually([&] {
    return traced->stats().invalid_traceparent == static_cast<uint64_t>(n);
  })) << traced->stats().invalid_traceparent;
  expect_trace_ignored(at_traced, n, json{{"id", 3}});
  EXPECT_EQ(traced->stats().malformed_messages, 0u);
  // The same count in the metrics, where an operator scrapes it.
  EXPECT_EQ(traced->metrics().invalid_traceparent, static_cast<uint64_t>(n));
  EXPECT_THAT(prometheus_text(traced->metrics()),
              HasSubstr("athomic_invalid_traceparent_total{backend=\"loopback\"} " +
                        std::to_string(n) + "\n"));
  // The bus without the setting took each as payload data, counting nothing.
  ASSERT_TRUE(at_plain.wait_for(n));
  EXPECT_EQ(at_plain.payload(6)["traceparent"], 42);
  EXPECT_EQ(plain->stats().invalid_traceparent, 0u);
  // Logged, at most once a second.
  const std::string text = log.text();
  EXPECT_THAT(text, HasSubstr("ignored the trace context of a received 'e' event (delivered "
                              "without it): 'traceparent' "));
  EXPECT_LE(std::count(text.begin(), text.end(), '\n'), 3) << text;
}

TEST_P(Traceparent, APythonFormatMessageDecodesAsBefore) {
  // What the Python framework publishes: the payload and _nala_context, nothing else.
  const auto ctx = ExecutionContext::Builder()
                       .trace_id("py-trace")
                       .span_id("py-span")
                       .tenant_id("py-tenant")
                       .feature_flag("new_checkout", true)
                       .build();
  {
    ContextScope scope(ctx);
    plain->publish("e", {{"id", "py-1"}}).wait();
  }
  ASSERT_TRUE(at_traced.wait_for(1));
  ASSERT_TRUE(at_plain.wait_for(1));
  EXPECT_EQ(at_traced.payload(0), at_plain.payload(0));
  EXPECT_EQ(at_traced.payload(0), (json{{"id", "py-1"}}));
  ASSERT_TRUE(at_traced.context(0));
  EXPECT_EQ(*at_traced.context(0), *ctx);
  EXPECT_EQ(traced->stats().invalid_traceparent, 0u);
}

TEST_P(Traceparent, IdsThatAreNotW3cSendNoTraceparentAndSaySoOnce) {
  test::LogCapture log("athomic.events");
  for (const char* trace : {"trace-4711", "trace-4712"}) {
    ContextScope scope(ExecutionContext::Builder().trace_id(trace).span_id("span-1").build());
    traced->publish("e", {{"id", 4}}).wait();
  }
  ASSERT_TRUE(at_plain.wait_for(2));
  EXPECT_EQ(at_plain.payload(0), (json{{"id", 4}}));
  EXPECT_EQ(at_plain.payload(1), (json{{"id", 4}}));
  EXPECT_EQ(at_plain.context(1)->trace_id(), "trace-4712");
  const std::string text = log.text();
  EXPECT_THAT(text, HasSubstr("events.context.traceparent is on, but a context's trace_id "
                              "(\"trace-4711\") and span_id (\"span-1\") are not both W3C ids"));
  EXPECT_EQ(text.find("trace-4712"), std::string::npos) << text;
}

TEST_P(Traceparent, APayloadMayNotHoldTheMembersWhenOn) {
  for (const char* key : {"traceparent", "tracestate"}) {
    try {
      traced->publish("e", {{key, "mine"}});
      ADD_FAILURE() << key << " was published";
    } catch (const EventBusError& e) {
      EXPECT_THAT(e.what(), HasSubstr(std::string("publish('e'): payload holds the key '") + key +
                                      "', which events.context.traceparent = true reserves"));
    }
  }
  EXPECT_EQ(traced->stats().publish_failures, 0u);
  // Without the setting they are data like any other key.
  plain->publish("e", {{"tracestate", "mine"}}).wait();
  ASSERT_TRUE(at_plain.wait_for(1));
  EXPECT_EQ(at_plain.payload(0), (json{{"tracestate", "mine"}}));
}

INSTANTIATE_TEST_SUITE_P(Modes, Traceparent,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

}  // namespace
}  // namespace athomic::test
