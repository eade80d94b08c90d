// What the bus logs about the messages it receives: JSON lines name the event, trace and
// tenant. Malformed bytes are handed to the bus as its provider would
// (BusCore::deliver_message).
#include "bus_core.h"
#include "log_capture.h"
#include "test_support.h"

#include <gmock/gmock.h>
#include <nlohmann/json.hpp>

#include <stdexcept>

namespace athomic::test {
namespace {

using detail::BusAccess;
using nlohmann::json;

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
