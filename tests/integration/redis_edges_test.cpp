// The edges of the redis provider under the host's guarantees: calls from inside handlers that
// run on the provider's own thread, and a close that does not wait for a stuck handler.
#include "servers.h"
#include "test_support.h"

#include <gmock/gmock.h>

namespace athomic::test {
namespace {

using nlohmann::json;
using testing::HasSubstr;

EventsSettings redis_edge_settings(const RedisServer& server, DispatchMode mode) {
  auto s = local_settings(mode, 2);
  s.backend = "redis";
  s.provider_config = {{"backend", "redis"},
                       {"provider",
                        {{"key_prefix", "edges"},
                         {"provider", {{"uri", server.uri()}, {"socket_connect_timeout", 2}}}}}};
  return s;
}

class RedisEdges : public testing::TestWithParam<DispatchMode> {};

TEST_P(RedisEdges, CloseFromInsideAHandlerIsRefusedNotAnAbort) {
  RedisServer server;
  auto bus = started(redis_edge_settings(server, GetParam()));
  Counter calls;
  std::string error;
  bus->subscribe("edge.close", [&](const Event&) {
    try {
      bus->close();
    } catch (const EventBusError& e) {
      error = e.what();
    }
    calls.add();
  });
  bus->publish("edge.close", {});
  ASSERT_TRUE(calls.wait_for_at_least(1));
  EXPECT_THAT(error, HasSubstr("close() called from inside a handler of the same bus"));
  bus->publish("edge.close", {});  // the bus still works
  ASSERT_TRUE(calls.wait_for_at_least(2));
  bus->close();
}

TEST_P(RedisEdges, CloseReturnsWhileAHandlerOnTheProvidersThreadIsStuck) {
  RedisServer server;
  auto bus = started(redis_edge_settings(server, GetParam()));
  Gate gate, entered;
  std::atomic<bool> finished{false};
  bus->subscribe("edge.stuck", [&](const Event& e) {
    entered.open();
    gate.wait();
    EXPECT_EQ(e.payload()["n"], 7);
    finished = true;
  });
  bus->publish("edge.stuck", {{"n", 7}});
  ASSERT_TRUE(entered.wait());
  bus->close(std::chrono::milliseconds(200));  // returns; the gate opens only afterwards
  EXPECT_FALSE(finished.load());
  bus.reset();
  gate.open();
  EXPECT_TRUE(eventually([&] { return finished.load(); }));
}

INSTANTIATE_TEST_SUITE_P(Modes, RedisEdges,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

}  // namespace
}  // namespace athomic::test
