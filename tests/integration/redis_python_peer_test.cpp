// C++ and Python share one bus: athomic and a Python peer written as the framework's
// RedisEventBus (python_peer.py, on Debian's python3-redis) exchange events both ways, with
// their execution context, through a real redis-server.
#include "redis_support.h"

namespace athomic::test {
namespace {

TEST(RedisPythonPeer, EventsAndTheirContextCrossInBothDirections) {
  RedisServer server;
  auto bus = started(redis_settings(server.uri()));
  Counter got;
  json received_payload;
  ContextPtr received_context;
  bus->subscribe("py.to.cpp", [&](const Event& e) {
    received_payload = e.payload();
    received_context = ExecutionContext::current_ptr();
    got.add();
  });
  // Debian's interpreter, where python3-redis installs.
  Process python({"/usr/bin/python3", ATHOMIC_SOURCE_DIR "/tests/integration/python_peer.py",
                  std::to_string(server.port()), "app_events"},
                 /*capture_stdout=*/true);
  const auto ready = python.read_line(kGenerous);
  ASSERT_EQ(ready.value_or("(no output)"), "ready");

  {
    ContextScope scope(ExecutionContext::Builder()
                           .trace_id("cpp-trace")
                           .tenant_id("acme")
                           .user_id("u-1")
                           .correlation_id("corr-9")
                           .feature_flag("dark_mode", true)
                           .build());
    bus->publish("cpp.to.py", {{"id", "user-123"}, {"name", "Ada"}}).wait();
  }
  const auto line = python.read_line(kGenerous);
  ASSERT_TRUE(line) << "the Python peer printed nothing";
  const json seen = json::parse(*line, nullptr, false);
  ASSERT_TRUE(seen.is_object()) << *line;
  EXPECT_EQ(seen["payload"], (json{{"id", "user-123"}, {"name", "Ada"}}));
  EXPECT_EQ(seen["context"], (json{{"trace_id", "cpp-trace"},
                                   {"tenant_id", "acme"},
                                   {"user_id", "u-1"},
                                   {"correlation_id", "corr-9"},
                                   {"feature_flags", {{"dark_mode", true}}}}));

  ASSERT_TRUE(got.wait_for_at_least(1));
  EXPECT_EQ(received_payload,
            (json{{"id", "py-1"}, {"echo", {{"id", "user-123"}, {"name", "Ada"}}}}));
  ASSERT_TRUE(received_context);
  EXPECT_EQ(received_context->trace_id(), "py-trace");
  EXPECT_EQ(received_context->tenant_id(), "py-tenant");
  EXPECT_EQ(received_context->user_id(), "py-user");
  EXPECT_EQ(received_context->locale(), "pt-BR");
  EXPECT_EQ(received_context->correlation_id(), "corr-9");
  EXPECT_EQ(received_context->feature_flags(),
            (ExecutionContext::FeatureFlags{{"new_checkout", true}}));
  EXPECT_EQ(python.wait(kGenerous), 0);
}

}  // namespace
}  // namespace athomic::test
