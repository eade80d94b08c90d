// W3C Trace Context as message headers (ABI 1.3, ATHOMIC_CAP_HEADERS), end to end through the
// loopback_headers provider: buses in one loopback group are services on one bus whose
// transport carries headers. Its `log_headers` setting shows what a consumer of another kind
// would read off the wire, its `add_headers` setting what a client of another kind may send.
#include <athomic/sdk/provider.h>

#include "log_capture.h"
#include "test_support.h"
#include "trace_seen.h"

#include <gmock/gmock.h>

#include <mutex>
#include <vector>

namespace athomic::test {
namespace {

using nlohmann::json;
using testing::HasSubstr;
using testing::Not;

// The provider's log lines (info), where log_headers writes.
class ProviderLog {
 public:
  explicit ProviderLog(const std::string& backend)
      : logger_(get_logger("athomic.provider." + backend)),
        level_(logger_->level()),
        capture_("athomic.provider." + backend) {
    logger_->set_level(spdlog::level::info);
  }
  ~ProviderLog() { logger_->set_level(level_); }
  std::string text() { return capture_.text(); }

 private:
  std::shared_ptr<spdlog::logger> logger_;
  spdlog::level::level_enum level_;
  LogCapture capture_;
};

class TraceHeaders : public testing::TestWithParam<DispatchMode> {
 protected:
  EventsSettings settings(const std::string& backend, bool traceparent,
                          const json& provider = json::object()) {
    EventsSettings s = backend_settings(backend, GetParam());
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    s.provider_config["group"] = std::string(info->test_suite_name()) + "." + info->name();
    s.provider_config.update(provider);
    s.traceparent = traceparent;
    return s;
  }
  // A receiving bus whose handler records into @p seen.
  std::shared_ptr<EventBus> receiver(Seen& seen, const std::string& backend, bool traceparent) {
    auto bus = started(settings(backend, traceparent));
    bus->subscribe("e", [&seen](const Event& e) { seen.record(e); });
    return bus;
  }
  static std::shared_ptr<const ExecutionContext> traced_context() {
    return ExecutionContext::Builder()
        .trace_id(kTrace)
        .span_id(kSpan)
        .trace_state("congo=t61rcWkgMzE")
        .tenant_id("acme")
        .build();
  }
};

TEST_P(TraceHeaders, OutTheTraceTravelsAsHeadersAndStaysInTheEnvelope) {
  ProviderLog wire("loopback_headers");
  Seen at_plain;
  auto plain = receiver(at_plain, "loopback_headers", false);
  auto traced = started(settings("loopback_headers", true, {{"log_headers", true}}));
  {
    ContextScope scope(traced_context());
    traced->publish("e", {{"id", 1}}).wait();
  }
  EXPECT_THAT(wire.text(), HasSubstr("publish 'e' headers:\ntraceparent: " + kParent +
                                     "\ntracestate: congo=t61rcWkgMzE\n"));
  // The envelope keeps its copy, for receivers that read the body alone.
  ASSERT_TRUE(at_plain.wait_for(1));
  EXPECT_EQ(at_plain.payload(0), (json{{"id", 1},
                                       {"traceparent", kParent},
                                       {"tracestate", "congo=t61rcWkgMzE"}}));
}

TEST_P(TraceHeaders, OutNoHeadersWithoutTheSettingOrWithoutATrace) {
  ProviderLog wire("loopback_headers");
  auto plain = started(settings("loopback_headers", false, {{"log_headers", true}}));
  auto traced = started(settings("loopback_headers", true, {{"log_headers", true}}));
  {
    ContextScope scope(traced_context());
    plain->publish("off", {}).wait();
  }
  {
    ContextScope scope(ExecutionContext::Builder().tenant_id("acme").build());
    traced->publish("untraced", {}).wait();
  }
  const std::string text = wire.text();
  EXPECT_THAT(text, HasSubstr("publish 'off' headers:\n"));
  EXPECT_THAT(text, HasSubstr("publish 'untraced' headers:\n"));
  EXPECT_THAT(text, Not(HasSubstr("traceparent"))) << text;
}

TEST_P(TraceHeaders, InATraceparentHeaderAloneFillsTheContext) {
  Seen at_traced, at_plain;
  auto traced = receiver(at_traced, "loopback_headers", true);
  auto plain = receiver(at_plain, "loopback_headers", false);
  // A publisher that puts the trace in headers only, as an OpenTelemetry-instrumented NATS
  // client does: its envelope's _nala_context has no trace ids. Header names are compared
  // without regard to case.
  auto foreign = started(settings("loopback_headers", false,
                                  {{"add_headers", "TraceParent: " + kParent + "\ntracestate: k=v"}}));
  {
    ContextScope scope(ExecutionContext::Builder().tenant_id("acme").build());
    foreign->publish("e", {{"id", 2}}).wait();
  }
  ASSERT_TRUE(at_traced.wait_for(1));
  EXPECT_EQ(at_traced.payload(0), (json{{"id", 2}}));
  expect_example_trace(at_traced.context(0), "k=v");
  EXPECT_EQ(traced->stats().invalid_traceparent, 0u);
  // Without the setting, headers are not read.
  ASSERT_TRUE(at_plain.wait_for(1));
  ASSERT_TRUE(at_plain.context(0));
  EXPECT_EQ(at_plain.context(0)->trace_id(), std::nullopt);
}

TEST_P(TraceHeaders, InTheEnvelopeWinsOverAHeader) {
  Seen at_traced;
  auto traced = receiver(at_traced, "loopback_headers", true);
  const std::string other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  auto sender = started(settings("loopback_headers", true, {{"add_headers", "traceparent: " + other}}));
  auto nala_only = started(settings("loopback_headers", false, {{"add_headers", "traceparent: " + other}}));
  {
    ContextScope scope(traced_context());
    sender->publish("e", {{"id", 3}}).wait();  // its envelope's traceparent
  }
  {
    ContextScope scope(ExecutionContext::Builder().trace_id("nala-trace").build());
    nala_only->publish("e", {{"id", 4}}).wait();  // _nala_context's trace_id
  }
  ASSERT_TRUE(at_traced.wait_for(2));
  EXPECT_EQ(at_traced.context(0)->trace_id(), kTrace);
  EXPECT_EQ(at_traced.context(0)->span_id(), kSpan);
  EXPECT_EQ(at_traced.context(1)->trace_id(), "nala-trace");
  EXPECT_EQ(at_traced.context(1)->span_id(), std::nullopt);
  EXPECT_EQ(traced->stats().invalid_traceparent, 0u);
}

TEST_P(TraceHeaders, InInvalidHeadersAreIgnoredCountedAndTheEventsDelivered) {
  test::LogCapture log("athomic.events");
  Seen at_traced;
  auto traced = receiver(at_traced, "loopback_headers", true);
  const std::vector<std::string> bad = {
      "traceparent: " + kParent.substr(0, 54),
      "traceparent: not-a-traceparent",
      "traceparent: " + kParent + "\ntraceparent: " + kParent,  // W3C: which one?
      "traceparent: " + kParent + "\ntracestate: a=\x01",       // the state alone is dropped
  };
  std::vector<std::shared_ptr<EventBus>> senders;
  for (const auto& lines : bad) {
    senders.push_back(started(settings("loopback_headers", false, {{"add_headers", lines}})));
  }
  ContextScope scope(ExecutionContext::Builder().tenant_id("acme").build());
  for (const auto& sender : senders) sender->publish("e", {{"id", 5}}).wait();
  const int n = static_cast<int>(bad.size());
  ASSERT_TRUE(at_traced.wait_for(n));
  EXPECT_TRUE(eventually([&] {
    return traced->stats().invalid_traceparent == static_cast<uint64_t>(n);
  })) << traced->stats().invalid_traceparent;
  expect_trace_ignored(at_traced, n, json{{"id", 5}});
  EXPECT_EQ(traced->stats().malformed_messages, 0u);
  EXPECT_THAT(log.text(), HasSubstr("ignored the trace context of a received 'e' event "
                                    "(delivered without it): 'traceparent' header "));
}

INSTANTIATE_TEST_SUITE_P(Modes, TraceHeaders,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

// Plugins built before ABI 1.3 know nothing of headers, and keep working.
TEST(TraceHeadersOlderPlugins, AnAbi12RemoteProviderCarriesTheTraceInTheEnvelope) {
  auto settings = [](bool traceparent) {
    EventsSettings s = backend_settings("loopback_abi_1_2", DispatchMode::pool);
    s.provider_config["group"] = "TraceHeadersOlderPlugins";
    s.traceparent = traceparent;
    return s;
  };
  Seen seen;
  auto receiver = started(settings(true));
  receiver->subscribe("e", [&](const Event& e) { seen.record(e); });
  auto sender = started(settings(true));
  EXPECT_EQ(sender->provider().abi_minor, 2);
  EXPECT_EQ(sender->provider().capabilities & ATHOMIC_CAP_HEADERS, 0u);
  {
    ContextScope scope(ExecutionContext::Builder().trace_id(kTrace).span_id(kSpan).build());
    ASSERT_TRUE(sender->publish("e", {{"id", 6}}).wait_for(kGenerous));
  }
  ASSERT_TRUE(seen.wait_for(1));
  EXPECT_EQ(seen.payload(0), (json{{"id", 6}}));
  EXPECT_EQ(seen.context(0)->trace_id(), kTrace);
  EXPECT_EQ(seen.context(0)->span_id(), kSpan);
}

TEST(TraceHeadersOlderPlugins, TheHeadersBitOfAnAbi10PluginIsNotActedOn) {
  // ABI 1.0 declared the bit (as "carries headers") with no host meaning.
  auto bus = started(backend_settings("abi_1_0_headers", DispatchMode::pool));
  EXPECT_EQ(bus->provider().abi_minor, 0);
  EXPECT_EQ(bus->provider().capabilities, uint64_t{ATHOMIC_CAP_IN_PROCESS});
}

}  // namespace
}  // namespace athomic::test
