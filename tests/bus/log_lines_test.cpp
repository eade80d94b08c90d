// What the bus logs about the messages it receives: a flood of malformed messages is reported
// in full — the first line, then the count of the rest within about a second, with no further
// message needed to carry it — and JSON lines name the event, trace and tenant. Malformed
// bytes are handed to the bus as its provider would (BusCore::deliver_message).
#include "bus_core.h"
#include "log_capture.h"
#include "test_support.h"

#include <gmock/gmock.h>
#include <nlohmann/json.hpp>

#include <regex>
#include <stdexcept>

namespace athomic::test {
namespace {

using detail::BusAccess;
using nlohmann::json;

// How many malformed messages the lines so far account for: one per line logged for one, plus
// the counts reported for those that were only counted.
uint64_t accounted_for(const std::vector<std::string>& lines) {
  static const std::regex one("^warning skipped a malformed message for 'flood': .*");
  static const std::regex with_count("\\((\\d+) more since the last report\\)$");
  static const std::regex alone(
      "^warning (\\d+) more malformed message\\(s\\) skipped in the last second$");
  uint64_t n = 0;
  std::smatch m;
  for (const auto& l : lines) {
    if (std::regex_match(l, one)) {
      ++n;
      if (std::regex_search(l, m, with_count)) n += std::stoull(m[1]);
    } else if (std::regex_match(l, m, alone)) {
      n += std::stoull(m[1]);
    }
  }
  return n;
}

class MalformedFlood : public testing::TestWithParam<DispatchMode> {};

TEST_P(MalformedFlood, TheCountOfTheSkippedIsReportedWithoutAFurtherMessage) {
  auto sink = std::make_shared<LineSink>();
  SinkScope scope(sink);
  auto bus = started(backend_settings("loopback", GetParam(), 2));
  bus->subscribe("flood", [](const Event&) {});
  constexpr uint64_t kFlood = 20'000;
  for (uint64_t i = 0; i < kFlood; ++i) {
    // The pool may refuse when its queue is full; a provider would deliver the message again.
    while (BusAccess::core(*bus)->deliver_message("flood", "not json") ==
           ATHOMIC_ERR_BACKPRESSURE) {
      std::this_thread::yield();
    }
  }
  ASSERT_TRUE(eventually([&] { return bus->stats().malformed_messages == kFlood; }));
  // Nothing else arrives: the last of the count must come out on its own, about a second
  // after the line before it. The bound is a deadlock guard, not a timing.
  EXPECT_TRUE(
      eventually([&] { return accounted_for(sink->lines()) == kFlood; }, std::chrono::seconds(10)))
      << accounted_for(sink->lines()) << " of " << kFlood << " accounted for in:\n"
      << testing::PrintToString(sink->lines());
  const auto lines = sink->lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_THAT(lines.back(),
              testing::MatchesRegex(
                  "warning [0-9]+ more malformed message\\(s\\) skipped in the last second"));
  // Reported once: no line repeats the count afterwards, not even when the bus closes.
  bus->close();
  bus.reset();
  EXPECT_EQ(accounted_for(sink->lines()), kFlood);
}

INSTANTIATE_TEST_SUITE_P(Modes, MalformedFlood,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call),
                         [](const auto& info) {
                           return info.param == DispatchMode::pool ? "pool" : "inline";
                         });

// The first line whose message contains @p text, once one has come (or null); every line so
// far must be JSON.
json json_line_with(LineSink& sink, const std::string& text) {
  json found;
  eventually([&] {
    for (const auto& l : sink.lines()) {
      const json j = json::parse(l);  // throws if not JSON
      if (j.value("message", "").find(text) != std::string::npos) {
        found = j;
        return true;
      }
    }
    return false;
  });
  return found;
}

TEST(JsonLines, AMalformedMessageNamesItsEvent) {
  auto sink = std::make_shared<LineSink>();
  sink->set_formatter(make_log_formatter(LogFormat::json));
  SinkScope scope(sink);
  auto bus = started(backend_settings("loopback", DispatchMode::pool, 2));
  bus->subscribe("orders.\"odd\"", [](const Event&) {});
  ASSERT_EQ(BusAccess::core(*bus)->deliver_message("orders.\"odd\"", "{not json"), ATHOMIC_OK);
  ASSERT_TRUE(eventually([&] { return bus->stats().malformed_messages == 1; }));
  const json line = json_line_with(*sink, "skipped a malformed message");
  ASSERT_FALSE(line.is_null()) << testing::PrintToString(sink->lines());
  EXPECT_EQ(line["event"], "orders.\"odd\"");
  EXPECT_EQ(line["level"], "warning");
  EXPECT_EQ(line["logger"], "athomic.events");
}

TEST(JsonLines, AHandlersFailureCarriesTraceTenantAndEvent) {
  auto sink = std::make_shared<LineSink>();
  sink->set_formatter(make_log_formatter(LogFormat::json));
  SinkScope scope(sink);
  Counter ran;  // outlives the bus, whose worker counts on it
  auto bus = started(backend_settings("loopback", DispatchMode::pool, 2));
  bus->subscribe("billing.failed", [&](const Event&) {
    ran.add();
    throw std::runtime_error("card \"declined\"\n\tcode=51");
  });
  {
    ContextScope ctx(ExecutionContext::Builder().trace_id("trace-7").tenant_id("acme").build());
    bus->publish("billing.failed", {{"amount", 3}}).wait();
  }
  ASSERT_TRUE(ran.wait_for_at_least(1));
  const json line = json_line_with(*sink, "threw");
  ASSERT_FALSE(line.is_null()) << testing::PrintToString(sink->lines());
  EXPECT_EQ(line["trace_id"], "trace-7");
  EXPECT_EQ(line["tenant_id"], "acme");
  EXPECT_EQ(line["event"], "billing.failed");
  EXPECT_EQ(line["level"], "error");
  EXPECT_THAT(line["message"].get<std::string>(),
              testing::HasSubstr("threw: card \"declined\"\n\tcode=51"));
}

}  // namespace
}  // namespace athomic::test
