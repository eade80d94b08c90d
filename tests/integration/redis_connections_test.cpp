// The provider's two connections (publishing, subscribing) fail and come back each on its own,
// and idle ones are kept alive: what the server does to one must not cost the other anything.
#include "redis_support.h"

#include <csignal>
#include <map>
#include <mutex>
#include <thread>

namespace athomic::test {
namespace {

// Receives "stream" events and remembers how often each n came.
class StreamReceiver {
 public:
  explicit StreamReceiver(EventBus& bus) {
    bus.subscribe("stream", [this](const Event& e) {
      std::lock_guard lock(m_);
      ++received_[e.payload()["n"].get<int>()];
    });
  }
  bool wait_for_all(int count) {
    return eventually([&] {
      std::lock_guard lock(m_);
      return received_.size() == static_cast<std::size_t>(count);
    });
  }
  // Every n in [0, count) exactly once or, where a connection was lost, at least once: a
  // publish the server ran but whose answer was lost with the connection is sent again.
  void expect_each(int count, bool exactly_once) {
    std::lock_guard lock(m_);
    EXPECT_EQ(received_.size(), static_cast<std::size_t>(count));
    for (int n = 0; n < count; ++n) {
      if (exactly_once) {
        EXPECT_EQ(received_[n], 1) << "event " << n;
      } else {
        EXPECT_GE(received_[n], 1) << "event " << n;
      }
    }
  }

 private:
  std::mutex m_;
  std::map<int, int> received_;
};

TEST(RedisConnections, KillingThePublishingConnectionLeavesTheSubscriptionAlone) {
  RedisServer server;
  RawClient admin(server.port());
  auto bus = started(redis_settings(server.uri()));
  StreamReceiver receiver(*bus);
  const BusClients before = bus_clients(admin);
  ASSERT_FALSE(before.publisher.empty());
  ASSERT_FALSE(before.subscriber.empty());
  // The bus publishes n in [0, 600), another client n in [600, 1200), interleaved: what the
  // other client publishes while the bus reconnects reaches the subscription only if it stayed.
  RawClient other(server.port());
  constexpr int kEach = 600;
  for (int n = 0; n < kEach; ++n) {
    if (n == kEach / 3) {
      EXPECT_EQ(admin.command({"CLIENT", "KILL", "ID", before.publisher}), 1);
    }
    bus->publish("stream", {{"n", n}});
    other.command({"PUBLISH", "app_events:stream", json{{"n", kEach + n}}.dump()});
    if (n % 4 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(receiver.wait_for_all(2 * kEach));
  receiver.expect_each(2 * kEach, /*exactly_once=*/false);
  const BusClients after = bus_clients(admin);
  EXPECT_EQ(after.subscriber, before.subscriber) << "the subscribing connection was replaced";
  EXPECT_NE(after.publisher, before.publisher);
  // One outage, over now.
  ASSERT_TRUE(eventually([&] { return bus->health().healthy(); })) << bus->health().detail;
  EXPECT_EQ(bus->health().outages, 1u);
}

TEST(RedisConnections, KillingTheSubscribingConnectionResubscribesAndLeavesThePublisherAlone) {
  RedisServer server;
  RawClient admin(server.port());
  auto bus = started(redis_settings(server.uri()));
  StreamReceiver receiver(*bus);
  bus->publish("stream", {{"n", 0}}).wait();
  ASSERT_TRUE(receiver.wait_for_all(1));
  const BusClients before = bus_clients(admin);
  EXPECT_EQ(admin.command({"CLIENT", "KILL", "ID", before.subscriber}), 1);
  BusClients after;
  ASSERT_TRUE(eventually([&] {
    after = bus_clients(admin);
    return !after.subscriber.empty() && after.subscriber != before.subscriber;
  })) << "the channel was not subscribed again";
  EXPECT_EQ(after.publisher, before.publisher) << "the publishing connection was replaced";
  EXPECT_EQ(pubsub_channels(server.port()), std::set<std::string>{"app_events:stream"});
  for (int n = 1; n < 100; ++n) bus->publish("stream", {{"n", n}});
  ASSERT_TRUE(receiver.wait_for_all(100));
  receiver.expect_each(100, /*exactly_once=*/true);
}

TEST(RedisConnections, AServerTimeoutForIdleClientsNeedsNoReconnect) {
  // The server closes clients idle for 2 s; a PING every 0.5 s keeps both connections, and a
  // slow stream (an event every 3 s) loses nothing.
  RedisServer server({"--timeout", "2"});
  RawClient admin(server.port());
  auto bus = started(redis_settings(server.uri(), {{"keepalive_interval", 0.5}}));
  StreamReceiver receiver(*bus);
  const int64_t connections = connections_received(admin);
  const BusClients before = bus_clients(admin);
  constexpr int kEvents = 4;
  for (int n = 0; n < kEvents; ++n) {
    for (int second = 0; second < 3; ++second) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      admin.command({"PING"});  // the test's own client stays busy: the timeout spares it
    }
    bus->publish("stream", {{"n", n}});
  }
  ASSERT_TRUE(receiver.wait_for_all(kEvents));
  receiver.expect_each(kEvents, /*exactly_once=*/true);
  EXPECT_EQ(connections_received(admin), connections) << "the bus had to reconnect";
  const BusClients after = bus_clients(admin);
  EXPECT_EQ(after.publisher, before.publisher);
  EXPECT_EQ(after.subscriber, before.subscriber);
}

TEST(RedisConnections, HealthFollowsTheServerThroughARestart) {
  RedisServer server;
  auto bus = started(redis_settings(server.uri()));
  BusHealth h = bus->health();
  EXPECT_TRUE(h.healthy());
  EXPECT_EQ(h.detail, "connected to " + server.uri());

  server.kill9();
  ASSERT_TRUE(
      eventually([&] { return bus->health().connection == BusHealth::Connection::reconnecting; }));
  h = bus->health();
  EXPECT_FALSE(h.healthy());
  EXPECT_THAT(h.detail, testing::HasSubstr("connection to " + server.uri() + ": "));
  EXPECT_THAT(h.detail, testing::AnyOf(testing::HasSubstr("the server closed the connection"),
                                       testing::HasSubstr("reset by peer")));
  EXPECT_EQ(h.outages, 1u);
  EXPECT_EQ(bus->stats().outages, 1u);

  server.start();
  ASSERT_TRUE(eventually([&] { return bus->health().healthy(); })) << bus->health().detail;
  h = bus->health();
  EXPECT_EQ(h.detail, "reconnected to " + server.uri());
  EXPECT_EQ(h.outages, 1u);  // both connections were lost: still one outage
  bus->close();
  h = bus->health();
  EXPECT_EQ(h.connection, BusHealth::Connection::down);
  EXPECT_EQ(h.detail, "stopped");
}

TEST(RedisConnections, AStartThatFailsSaysWhyInTheHealth) {
  const int port = free_port();  // nothing listens here
  auto bus = EventBus::create(redis_settings("redis://127.0.0.1:" + std::to_string(port) + "/0"));
  EXPECT_THROW(bus->start(), EventBusError);
  const BusHealth h = bus->health();
  EXPECT_EQ(h.connection, BusHealth::Connection::down);
  EXPECT_THAT(h.detail, testing::HasSubstr(
                            "cannot connect to redis://127.0.0.1:" + std::to_string(port) + "/0"));
  EXPECT_EQ(h.outages, 0u);
}

TEST(RedisConnections, KeepaliveIsValidated) {
  try {
    EventBus::create(redis_settings("redis://127.0.0.1:6379/0", {{"keepalive_interval", -1}}));
    FAIL() << "a negative keepalive_interval was accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("events.provider.keepalive_interval = -1 is invalid: "
                                             "expected seconds from 0 to 3600"));
  }
}

}  // namespace
}  // namespace athomic::test

namespace athomic::test {
namespace {

// A server that hangs (SIGSTOP: its sockets stay open, nothing is answered) is noticed within
// reply_timeout, in both dispatch modes, and joined again once it answers.
TEST(RedisReplyTimeout, AServerThatHangsIsLeftAndJoinedAgainWhenItAnswers) {
  for (const DispatchMode mode : {DispatchMode::pool, DispatchMode::inline_call}) {
    SCOPED_TRACE(mode == DispatchMode::pool ? "pool" : "inline");
    RedisServer server;
    auto bus = started(redis_settings(
        server.uri(), {{"reply_timeout", 0.5}, {"keepalive_interval", 0.2}}, mode));
    std::atomic<int> got{0};
    auto sub = bus->subscribe("hang.x", [&](const Event&) { ++got; });
    ASSERT_TRUE(bus->publish("hang.x", {}).wait_for(kGenerous));
    ASSERT_TRUE(eventually([&] { return got == 1; }));

    // Idle: the keepalive PING goes unanswered.
    server.signal(SIGSTOP);
    const auto stopped_at = std::chrono::steady_clock::now();
    EXPECT_TRUE(eventually([&] { return !bus->health().healthy(); }, std::chrono::seconds(10)));
    EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, std::chrono::seconds(5));
    EXPECT_THAT(bus->health().detail, testing::HasSubstr("no answer from the server for 0.5 s (events.provider.reply_timeout)"));
    Completion during = bus->publish("hang.x", {});
    server.signal(SIGCONT);
    EXPECT_TRUE(eventually([&] { return bus->health().healthy(); }, std::chrono::seconds(20)))
        << bus->health().detail;
    ASSERT_TRUE(during.wait_for(kGenerous));
    EXPECT_TRUE(during.delivered()) << during.error();
    EXPECT_TRUE(eventually([&] { return got >= 2; }));
    EXPECT_GE(bus->health().outages, 1u);
  }
}

// The publishes written to a server that then hung are in its socket: it runs them when it
// resumes. Given up by reply_timeout, they are failed, not written again (each would reach
// the subscribers twice); the publishes made meanwhile are sent once it answers.
TEST(RedisReplyTimeout, WhatAHungServerWasSentIsNotPublishedTwice) {
  RedisServer server;
  // The subscriber keeps its connection through the hang.
  auto subscriber =
      started(redis_settings(server.uri(), {{"reply_timeout", 0}, {"keepalive_interval", 0}}));
  std::mutex mutex;
  std::map<int, int> seen;
  auto sub = subscriber->subscribe("hung.twice", [&](const Event& e) {
    std::lock_guard lock(mutex);
    ++seen[e.payload().at("n").get<int>()];
  });
  auto publisher =
      started(redis_settings(server.uri(), {{"reply_timeout", 0.3}, {"keepalive_interval", 0}}));
  std::vector<Completion> sent;
  server.signal(SIGSTOP);
  for (int n = 0; n < 5; ++n) sent.push_back(publisher->publish("hung.twice", {{"n", n}}));
  EXPECT_TRUE(eventually([&] { return !publisher->health().healthy(); }, std::chrono::seconds(10)));
  for (int n = 5; n < 10; ++n) sent.push_back(publisher->publish("hung.twice", {{"n", n}}));
  server.signal(SIGCONT);
  for (auto& c : sent) ASSERT_TRUE(c.wait_for(kGenerous));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::lock_guard lock(mutex);
  for (int n = 0; n < 10; ++n) {
    SCOPED_TRACE(n);
    EXPECT_LE(seen[n], 1) << "received twice";
    if (!sent[n].delivered()) {
      EXPECT_THAT(sent[n].error(), testing::HasSubstr("not sent again"));
    }
  }
  for (int n = 5; n < 10; ++n) EXPECT_TRUE(sent[n].delivered()) << n << ": " << sent[n].error();
}

// A 0 keeps waiting: nothing is given up on a server that is only slow.
TEST(RedisReplyTimeout, ZeroWaitsForEver) {
  RedisServer server;
  auto bus = started(redis_settings(server.uri(), {{"reply_timeout", 0}, {"keepalive_interval", 0.1}}));
  server.signal(SIGSTOP);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  EXPECT_TRUE(bus->health().healthy()) << bus->health().detail;
  server.signal(SIGCONT);
}

}  // namespace
}  // namespace athomic::test
