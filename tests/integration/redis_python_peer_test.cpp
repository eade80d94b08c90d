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

// events.context.traceparent, on a real server: the exact bytes with the setting off (the
// seed's envelope, as before the setting existed) and on (the same with "traceparent" last),
// read by a plain Redis client.
TEST(RedisWire, TheEnvelopeIsTheSeedsUnlessTraceparentIsOn) {
  RedisServer server;
  RawClient watcher(server.port());
  watcher.command({"SUBSCRIBE", "app_events:cpp.wire"});
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736", span = "00f067aa0ba902b7";
  const std::string seed = R"({"id":"user-123","name":"Ada","_nala_context":{"span_id":")" + span +
                           R"(","tenant_id":"acme","trace_id":")" + trace + R"("}})";
  for (const bool traceparent : {false, true}) {
    auto settings = redis_settings(server.uri());
    settings.traceparent = traceparent;
    auto bus = started(settings);
    ContextScope scope(
        ExecutionContext::Builder().trace_id(trace).span_id(span).tenant_id("acme").build());
    bus->publish("cpp.wire", {{"id", "user-123"}, {"name", "Ada"}}).wait();
    const auto body = watcher.next_message();
    ASSERT_TRUE(body) << "traceparent " << traceparent;
    if (traceparent) {
      EXPECT_EQ(*body, seed.substr(0, seed.size() - 1) + R"(,"traceparent":"00-)" + trace + "-" +
                           span + "-01\"}");
    } else {
      EXPECT_EQ(*body, seed);
    }
  }
}

// A Python service on the bus of an athomic service that sends traceparent: it reads the event
// as before, with "traceparent" among the payload's members (the framework takes only
// "_nala_context" out); and what it sends, without one, reaches athomic as before.
TEST(RedisPythonPeer, APythonServiceToleratesTraceparentAndSendsWithoutIt) {
  RedisServer server;
  auto settings = redis_settings(server.uri());
  settings.traceparent = true;
  auto bus = started(settings);
  Counter got;
  json received_payload;
  ContextPtr received_context;
  bus->subscribe("py.to.cpp", [&](const Event& e) {
    received_payload = e.payload();
    received_context = ExecutionContext::current_ptr();
    got.add();
  });
  Process python({"/usr/bin/python3", ATHOMIC_SOURCE_DIR "/tests/integration/python_peer.py",
                  std::to_string(server.port()), "app_events"},
                 /*capture_stdout=*/true);
  ASSERT_EQ(python.read_line(kGenerous).value_or("(no output)"), "ready");

  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736", span = "00f067aa0ba902b7";
  {
    ContextScope scope(ExecutionContext::Builder()
                           .trace_id(trace)
                           .span_id(span)
                           .tenant_id("acme")
                           .correlation_id("corr-9")
                           .build());
    bus->publish("cpp.to.py", {{"id", "user-123"}}).wait();
  }
  const auto line = python.read_line(kGenerous);
  ASSERT_TRUE(line) << "the Python peer printed nothing";
  const json seen = json::parse(*line, nullptr, false);
  ASSERT_TRUE(seen.is_object()) << *line;
  EXPECT_EQ(seen["payload"],
            (json{{"id", "user-123"}, {"traceparent", "00-" + trace + "-" + span + "-01"}}));
  EXPECT_EQ(seen["context"], (json{{"trace_id", trace},
                                   {"span_id", span},
                                   {"tenant_id", "acme"},
                                   {"correlation_id", "corr-9"}}));

  ASSERT_TRUE(got.wait_for_at_least(1));
  // The peer echoes the payload it got: "traceparent" there is its data now, nested.
  EXPECT_EQ(
      received_payload,
      (json{{"id", "py-1"},
            {"echo", {{"id", "user-123"}, {"traceparent", "00-" + trace + "-" + span + "-01"}}}}));
  ASSERT_TRUE(received_context);
  EXPECT_EQ(received_context->trace_id(), "py-trace");
  EXPECT_FALSE(received_context->has(ContextField::span_id));
  EXPECT_EQ(received_context->correlation_id(), "corr-9");
  EXPECT_EQ(bus->stats().invalid_traceparent, 0u);
  EXPECT_EQ(python.wait(kGenerous), 0);
}

}  // namespace
}  // namespace athomic::test
