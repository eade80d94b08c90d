// The redis provider against a real redis-server, started by each test on a free port.
#include <algorithm>
#include "redis_support.h"

#include <future>

namespace athomic::test {
namespace {

using testing::HasSubstr;
using testing::Not;

TEST(Redis, DeliversWithContextInProcess) {
  RedisServer server;
  auto bus = started(redis_settings(server.uri()));
  EXPECT_EQ(bus->provider().name, "redis");
  Counter got;
  std::string trace, id;
  bus->subscribe("user.created", [&](const Event& e) {
    trace = std::string(ExecutionContext::current().trace_id().value_or(""));
    id = e.payload()["id"];
    got.add();
  });
  ContextScope scope(ExecutionContext::Builder().trace_id("t-redis").tenant_id("acme").build());
  bus->publish("user.created", {{"id", "user-123"}}).wait();
  ASSERT_TRUE(got.wait_for_at_least(1));
  EXPECT_EQ(trace, "t-redis");
  EXPECT_EQ(id, "user-123");
}

TEST(Redis, PublishedMessagesHaveTheSeedsShapeOnTheWire) {
  RedisServer server;
  RawClient sub(server.port());
  sub.command({"SUBSCRIBE", "app_events:user.created"});
  auto bus = started(redis_settings(server.uri()));
  {
    ContextScope scope(ExecutionContext::Builder()
                           .trace_id("t-1")
                           .tenant_id("acme")
                           .source_ip("192.0.2.1")  // not propagated
                           .build());
    bus->publish("user.created", {{"id", "user-123"}, {"name", "Ada"}}).wait();
  }
  const auto body = sub.next_message();
  ASSERT_TRUE(body);
  EXPECT_EQ(
      *body,
      R"({"id":"user-123","name":"Ada","_nala_context":{"tenant_id":"acme","trace_id":"t-1"}})");
}

TEST(Redis, AMessageFromAnotherClientIsDeliveredWithItsContext) {
  RedisServer server;
  auto bus = started(redis_settings(server.uri()));
  Counter got;
  json payload;
  ContextPtr ctx;
  bus->subscribe("user.created", [&](const Event& e) {
    payload = e.payload();
    ctx = ExecutionContext::current_ptr();
    got.add();
  });
  RawClient pub(server.port());
  pub.command(
      {"PUBLISH", "app_events:user.created",
       R"({"id":"u-9","_nala_context":{"trace_id":"py-trace","tenant_id":"acme","user_id":null}})"});
  ASSERT_TRUE(got.wait_for_at_least(1));
  EXPECT_EQ(payload, (json{{"id", "u-9"}}));
  ASSERT_TRUE(ctx);
  EXPECT_EQ(ctx->trace_id(), "py-trace");
  EXPECT_EQ(ctx->tenant_id(), "acme");
  EXPECT_FALSE(ctx->user_id().has_value());
}

TEST(Redis, ChannelsFollowTheHandlers) {
  RedisServer server;
  auto bus = started(redis_settings(server.uri()));
  EXPECT_TRUE(pubsub_channels(server.port()).empty());
  auto a = bus->subscribe("order.paid", [](const Event&) {});
  auto b = bus->subscribe("order.paid", [](const Event&) {});
  bus->subscribe("order.shipped", [](const Event&) {});
  EXPECT_EQ(pubsub_channels(server.port()),
            (std::set<std::string>{"app_events:order.paid", "app_events:order.shipped"}));
  bus->unsubscribe(a);
  EXPECT_EQ(pubsub_channels(server.port()).count("app_events:order.paid"), 1u);
  bus->unsubscribe(b);
  EXPECT_TRUE(eventually(
      [&] { return pubsub_channels(server.port()).count("app_events:order.paid") == 0; }));
  EXPECT_EQ(pubsub_channels(server.port()).count("app_events:order.shipped"), 1u);
}

TEST(Redis, SubscriptionChangesTakeEffectInTheOrderOfPublishes) {
  // Publishes and subscription changes travel on two connections; the server must still see
  // them in the order this process made them, or an event published while nobody listened
  // could reach a handler subscribed after it. MONITOR shows the order the server ran them in.
  RedisServer server;
  RawClient monitor(server.port());
  ASSERT_EQ(monitor.command({"MONITOR"}), "OK");
  auto bus = started(redis_settings(server.uri()));
  Counter delivered;
  constexpr int kRounds = 30;
  const std::string noise(1000, 'x');
  std::vector<std::string> expected;
  for (int r = 0; r < kRounds; ++r) {
    auto sub = bus->subscribe("flip", [&](const Event&) { delivered.add(); });
    bus->publish("flip", {{"n", 2 * r}});  // for this round's handler
    ASSERT_TRUE(delivered.wait_for_at_least(r + 1)) << "round " << r;
    // A backlog on the publishing connection, so that the subscribing one could overtake it.
    for (int i = 0; i < 1000; ++i) bus->publish("noise", {{"pad", noise}});
    ASSERT_TRUE(bus->unsubscribe(sub));
    bus->publish("flip", {{"n", 2 * r + 1}});  // for nobody
    expected.insert(expected.end(), {"SUBSCRIBE", "PUBLISH " + std::to_string(2 * r), "UNSUBSCRIBE",
                                     "PUBLISH " + std::to_string(2 * r + 1)});
  }
  bus->publish("flip", {{"n", -1}});
  std::vector<std::string> seen;
  while (seen.empty() || seen.back() != "PUBLISH -1") {
    const auto line = monitor.next_status();
    ASSERT_TRUE(line) << "the monitor stream ended after " << seen.size() << " commands";
    if (line->find("\"app_events:flip\"") == std::string::npos) continue;
    if (line->find("\"SUBSCRIBE\"") != std::string::npos) {
      seen.push_back("SUBSCRIBE");
    } else if (line->find("\"UNSUBSCRIBE\"") != std::string::npos) {
      seen.push_back("UNSUBSCRIBE");
    } else if (const auto at = line->find("\\\"n\\\":"); at != std::string::npos) {
      seen.push_back("PUBLISH " + std::to_string(std::stoi(line->substr(at + 6))));
    }
  }
  seen.pop_back();
  EXPECT_EQ(seen, expected);
}

TEST(Redis, AHandlerMaySubscribeWhileAnotherThreadIsSubscribing) {
  // Inline dispatch: handlers run on the provider's thread, which another thread's subscribe()
  // waits for (the server's confirmation). A handler that subscribes meanwhile must not wait
  // for that thread, nor that thread for it.
  RedisServer server;
  auto s = redis_settings(server.uri(), json::object(), DispatchMode::inline_call);
  s.provider_config["provider"]["provider"]["socket_connect_timeout"] = 60;
  auto bus = started(s);
  std::promise<void> in_handler;
  std::atomic<bool> subscribed_from_handler{false};
  Counter b_events, c_events;
  bus->subscribe("a", [&](const Event&) {
    in_handler.set_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the test is in subscribe("c")
    bus->subscribe("b", [&](const Event&) { b_events.add(); });
    subscribed_from_handler = true;
  });
  bus->publish("a", {});
  in_handler.get_future().wait();
  const auto before = std::chrono::steady_clock::now();
  bus->subscribe("c", [&](const Event&) { c_events.add(); });
  // Not a measure of speed: only that it did not wait out the 60 s confirmation limit.
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(30));
  ASSERT_TRUE(eventually([&] { return subscribed_from_handler.load(); }));
  ASSERT_TRUE(eventually([&] {
    const auto channels = pubsub_channels(server.port());
    return channels.count("app_events:b") == 1 && channels.count("app_events:c") == 1;
  }));
  bus->publish("b", {});
  bus->publish("c", {});
  EXPECT_TRUE(b_events.wait_for_at_least(1));
  EXPECT_TRUE(c_events.wait_for_at_least(1));
}

TEST(Redis, ASlowHandlerDoesNotStallReading) {
  RedisServer server;
  auto bus = started(redis_settings(server.uri()));  // pool dispatch, 4 workers
  std::atomic<bool> release{false};
  std::atomic<bool> slow_entered{false};
  Counter fast;
  bus->subscribe("slow.job", [&](const Event&) {
    slow_entered = true;
    eventually([&] { return release.load(); });  // blocks one worker until the end
  });
  bus->subscribe("fast.job", [&](const Event&) { fast.add(); });
  bus->publish("slow.job", {});
  ASSERT_TRUE(eventually([&] { return slow_entered.load(); }));
  for (int i = 0; i < 50; ++i) bus->publish("fast.job", {{"i", i}});
  // The slow handler cannot return before `release`, set only below: all 50 arriving first
  // means reading went on while it ran.
  EXPECT_TRUE(fast.wait_for_at_least(50));
  release = true;
}

TEST(Redis, SubscriptionsMadeBeforeStartAreSubscribedOnStart) {
  RedisServer server;
  auto bus = EventBus::create(redis_settings(server.uri()));
  Counter got;
  bus->subscribe("early.bird", [&](const Event&) { got.add(); });
  bus->start();
  EXPECT_EQ(pubsub_channels(server.port()).count("app_events:early.bird"), 1u);
  bus->publish("early.bird", {});
  EXPECT_TRUE(got.wait_for_at_least(1));
}

TEST(Redis, MalformedMessagesAreCountedAndSkipped) {
  RedisServer server;
  auto s = redis_settings(server.uri());
  s.max_payload_bytes = 4096;
  auto bus = started(s);
  Counter good;
  bus->subscribe("x", [&](const Event& e) {
    EXPECT_EQ(e.payload()["ok"], true);
    good.add();
  });
  RawClient pub(server.port());
  for (const std::string& bad :
       {std::string("not json at all"), std::string("[1,2,3]"), std::string("\"a string\""),
        std::string(R"({"_nala_context":{"trace_id":5}})"),
        std::string(R"({"_nala_context":"not an object"})"),
        "{\"big\":\"" + std::string(5000, 'x') + "\"}"}) {
    pub.command({"PUBLISH", "app_events:x", bad});
  }
  pub.command({"PUBLISH", "app_events:x", R"({"ok":true})"});
  ASSERT_TRUE(good.wait_for_at_least(1));
  EXPECT_TRUE(eventually([&] { return bus->stats().malformed_messages == 6; }));
  EXPECT_EQ(good.value(), 1);
  // The metrics say the same, under the event's name (a pool worker counts its call once the
  // handler has returned).
  athomic::MetricsSnapshot m;
  auto x = m.events.end();
  EXPECT_TRUE(eventually([&] {
    m = bus->metrics();
    x = std::find_if(m.events.begin(), m.events.end(),
                     [](const athomic::EventMetrics& e) { return e.event == "x"; });
    return x != m.events.end() && x->delivered == 1;
  }));
  ASSERT_NE(x, m.events.end());
  EXPECT_EQ(x->received, 7u);
  EXPECT_EQ(x->dropped[static_cast<std::size_t>(athomic::DropReason::malformed)], 6u);
  EXPECT_EQ(m.connection, "up");
}

TEST(Redis, PasswordsRightAndWrong) {
  RedisServer server({"--requirepass", "s3cret-pw"});
  {
    auto bus = started(redis_settings(server.uri(":s3cret-pw")));
    Counter got;
    bus->subscribe("auth.ok", [&](const Event&) { got.add(); });
    bus->publish("auth.ok", {});
    EXPECT_TRUE(got.wait_for_at_least(1));
  }
  const auto wrong = start_error(redis_settings(server.uri(":wrong-pw")));
  EXPECT_THAT(wrong, HasSubstr("authentication failed at redis://:***@127.0.0.1:"));
  EXPECT_THAT(wrong, Not(HasSubstr("wrong-pw")));
  const auto none = start_error(redis_settings(server.uri()));
  EXPECT_THAT(none, HasSubstr("NOAUTH"));
}

TEST(Redis, SeparateFieldsWithUserAndPassword) {
  RedisServer server({"--user", "app", "on", ">app-pw", "~*", "&*", "+@all"});
  auto s = redis_settings("");
  s.provider_config["provider"]["provider"] = {{"backend", "redis"},
                                               {"host", "127.0.0.1"},
                                               {"port", server.port()},
                                               {"user", "app"},
                                               {"password", "app-pw"}};
  auto bus = started(s);
  Counter got;
  bus->subscribe("acl.ok", [&](const Event&) { got.add(); });
  bus->publish("acl.ok", {});
  EXPECT_TRUE(got.wait_for_at_least(1));
}

TEST(Redis, ConnectionRefusedAtStart) {
  const int port = free_port();  // nothing listens here
  const auto msg = start_error(redis_settings("redis://127.0.0.1:" + std::to_string(port) + "/0"));
  EXPECT_THAT(msg,
              HasSubstr("provider 'redis' failed to start: cannot connect to redis://127.0.0.1:" +
                        std::to_string(port) + "/0"));
  EXPECT_THAT(msg, HasSubstr("refused"));
}

std::string start_error_with_a_short_timeout(const SilentListener& silent) {
  auto s = redis_settings(silent.uri());
  s.provider_config["provider"]["provider"]["socket_connect_timeout"] = 0.3;
  return start_error(s);
}

TEST(Redis, ConnectTimeoutAtStart) {
  SilentListener silent(0, /*drop_connections=*/true);
  const auto msg = start_error_with_a_short_timeout(silent);
  EXPECT_THAT(msg, HasSubstr("cannot connect to " + silent.uri()));
  EXPECT_THAT(msg, HasSubstr("timed out"));
  EXPECT_THAT(msg, HasSubstr("socket_connect_timeout"));
}

TEST(Redis, AServerThatNeverAnswersIsATimeoutAtStart) {
  SilentListener silent(0, /*drop_connections=*/false);
  const auto msg = start_error_with_a_short_timeout(silent);
  EXPECT_THAT(msg, HasSubstr("no answer from " + silent.uri()));
  EXPECT_THAT(msg, HasSubstr("timed out waiting for PING"));
}

TEST(Redis, BadSettingsAreNamed) {
  RedisServer server;
  auto s = redis_settings(server.uri());
  s.provider_config["provider"]["provider"]["prot"] = 1;
  try {
    EventBus::create(s);
    FAIL();
  } catch (const ConfigError& e) {  // the host's check of the keys the provider declares
    EXPECT_THAT(e.what(), HasSubstr("unknown setting events.provider.provider.provider.prot. Did "
                                    "you mean 'events.provider.provider.provider.port'?"));
  }
  s = redis_settings("http://localhost");
  try {
    EventBus::create(s);
    FAIL();
  } catch (const PluginError& e) {  // the provider's own
    EXPECT_THAT(e.what(), HasSubstr("events.provider.provider.provider.uri = \"http://localhost\" "
                                    "is invalid: expected redis://"));
  }
}

// Publishes "stream" events n = 0..count-1, one a millisecond; the server is SIGKILLed at the
// first third and started again on the same port at the second.
void publish_through_a_restart(EventBus& bus, RedisServer& server, int count) {
  for (int n = 0; n < count; ++n) {
    if (n == count / 3) server.kill9();
    if (n == 2 * count / 3) server.start();
    bus.publish("stream", {{"n", n}});
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

TEST(Redis, ServerKilledAndRestartedMidStream) {
  RedisServer server;
  auto bus = started(redis_settings(server.uri()));
  std::mutex m;
  std::map<int, int> received;  // n -> times
  bus->subscribe("stream", [&](const Event& e) {
    std::lock_guard lock(m);
    received[e.payload()["n"].get<int>()]++;
  });
  constexpr int kEvents = 300;
  publish_through_a_restart(*bus, server, kEvents);
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(m);
    return received.size() == static_cast<std::size_t>(kEvents);
  }));
  std::lock_guard lock(m);
  for (int n = 0; n < kEvents; ++n) EXPECT_EQ(received[n], 1) << "event " << n;
  // The subscription came back without the application doing anything.
  EXPECT_EQ(pubsub_channels(server.port()).count("app_events:stream"), 1u);
}

TEST(Redis, SubscribingWhileItReconnectsDoesNotHoldPublishesBack) {
  // After a reconnect, publishes wait until the channels are subscribed again; a subscription
  // made meanwhile must not keep them waiting.
  RedisServer server;
  auto bus = started(redis_settings(server.uri()));
  std::mutex m;
  std::set<int> received;
  bus->subscribe("stream", [&](const Event& e) {
    std::lock_guard lock(m);
    received.insert(e.payload()["n"].get<int>());
  });
  std::atomic<bool> done{false};
  std::thread subscriber([&] {
    for (int i = 0; i < 3000 && !done; ++i) {
      bus->subscribe("other." + std::to_string(i), [](const Event&) {});
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  constexpr int kEvents = 300;
  publish_through_a_restart(*bus, server, kEvents);
  const bool all = eventually([&] {
    std::lock_guard lock(m);
    return received.size() == static_cast<std::size_t>(kEvents);
  });
  done = true;
  subscriber.join();
  std::lock_guard lock(m);
  EXPECT_TRUE(all) << received.size() << " of " << kEvents << " events arrived";
}

TEST(Redis, AFullBufferIsReportedToTheCaller) {
  RedisServer server;
  auto bus = started(redis_settings(server.uri(), {{"max_buffered_events", 5}}));
  server.kill9();
  int accepted = 0;
  std::string error;
  for (int i = 0; i < 20 && error.empty(); ++i) {
    try {
      bus->publish("buffered", {{"i", i}});
      ++accepted;
    } catch (const EventBusError& e) {
      error = e.what();
    }
  }
  EXPECT_EQ(accepted, 5);
  EXPECT_THAT(error, HasSubstr("max_buffered_events is 5"));
  EXPECT_EQ(bus->stats().publish_failures, 1u);
}

TEST(Redis, BufferedEventsAreSentAfterReconnect) {
  RedisServer server;
  auto bus = started(redis_settings(server.uri()));
  Counter got;
  bus->subscribe("later", [&](const Event&) { got.add(); });
  server.kill9();
  for (int i = 0; i < 10; ++i) bus->publish("later", {{"i", i}});
  server.start();
  EXPECT_TRUE(got.wait_for_at_least(10));
}

TEST(Redis, CloseWhileDisconnectedReturns) {
  RedisServer server;
  auto bus = started(redis_settings(server.uri()));
  bus->subscribe("x", [](const Event&) {});
  server.kill9();
  bus->publish("x", {});
  bus->close();  // the test's timeout is the only limit: it must come back by itself
  EXPECT_THROW(bus->publish("x", {}), EventBusError);
}

// close() while a reconnect attempt hangs, in the TCP connect or in the AUTH/PING that follows.
void close_during_a_hanging_reconnect(bool server_accepts) {
  RedisServer server;
  auto s = redis_settings(server.uri());
  s.provider_config["provider"]["provider"]["socket_connect_timeout"] = 60;
  auto bus = started(s);
  const auto port = static_cast<uint16_t>(server.port());
  server.kill9();
  SilentListener silent(port, /*drop_connections=*/!server_accepts);
  bus->publish("x", {});                                        // buffered meanwhile
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // an attempt is under way
  const auto before = std::chrono::steady_clock::now();
  bus->close();
  // Not a measure of speed: only that close() did not wait out the 60 s attempt.
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(30));
  EXPECT_THROW(bus->publish("x", {}), EventBusError);
}

TEST(Redis, CloseDuringAReconnectToAnAddressThatDoesNotAnswerReturns) {
  close_during_a_hanging_reconnect(/*server_accepts=*/false);
}

TEST(Redis, CloseDuringAReconnectToAServerThatNeverAnswersReturns) {
  close_during_a_hanging_reconnect(/*server_accepts=*/true);
}

}  // namespace
}  // namespace athomic::test
