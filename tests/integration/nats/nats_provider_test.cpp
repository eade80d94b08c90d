// The `nats` provider against a real nats-server, through the real plugin loader: the plugin is
// found on ATHOMIC_PLUGIN_PATH (tests/e2e/nats_provider.sh builds it out of tree and sets it).
// Publisher and subscriber are separate buses, as two processes would be. Waits are deadlock
// guards, never performance assertions.
#include <gmock/gmock.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

#include "nats_server.h"
#include "test_support.h"

namespace athomic::test {
namespace {

using nlohmann::json;
using testing::HasSubstr;

EventsSettings nats_settings(const NatsServer& server, DispatchMode mode = DispatchMode::pool,
                             const json& provider = json::object()) {
  EventsSettings s = local_settings(mode);
  s.backend = "nats";
  s.provider_config = {{"backend", "nats"}, {"url", server.url()}, {"reconnect_wait", 0.05}};
  s.provider_config.update(provider);
  return s;
}

// A Subscription a handler can read while the test thread writes it.
class SharedSubscription {
 public:
  void set(Subscription s) {
    std::lock_guard lock(mutex_);
    sub_ = std::move(s);
  }
  Subscription get() const {
    std::lock_guard lock(mutex_);
    return sub_;
  }

 private:
  mutable std::mutex mutex_;
  Subscription sub_;
};

TEST(NatsProvider, EventsFlowAndPublishesAreConfirmedByTheServer) {
  NatsServer server;
  auto sub = started(nats_settings(server));
  auto pub = started(nats_settings(server));
  Counter got;
  sub->subscribe("flow.tick", [&](const Event& e) {
    EXPECT_EQ(e.payload()["n"], 1);
    got.add();
  });
  Completion done = pub->publish("flow.tick", {{"n", 1}});
  ASSERT_TRUE(done.wait_for(kGenerous));
  EXPECT_TRUE(done.delivered()) << done.error();
  EXPECT_TRUE(got.wait_for_at_least(1));
  EXPECT_EQ(pub->stats().publish_failures, 0u);
}

// Finding 1: in inline dispatch a handler runs on the subscription's delivery thread; when it
// removes the last handler of its own event, the provider must not wait there for that thread,
// nor leave anything the client library touches later to be freed.
TEST(NatsProvider, InlineHandlerUnsubscribingItselfReturnsAtOnce) {
  NatsServer server;
  auto sub = started(nats_settings(server, DispatchMode::inline_call));
  auto pub = started(nats_settings(server));
  std::atomic<int> calls{0};
  Gate unsubscribed;
  SharedSubscription self;
  self.set(sub->subscribe("self.remove", [&](const Event&) {
    if (calls.fetch_add(1) == 0) {
      EXPECT_TRUE(sub->unsubscribe(self.get()));
      unsubscribed.open();
    }
  }));
  pub->publish("self.remove", {{"n", 0}});
  // A deadlock guard: the call returns at once; it used to wait 10 s for its own thread.
  std::mutex m;
  std::condition_variable cv;
  bool returned = false;
  std::thread guard([&] {
    const bool opened = unsubscribed.wait();
    std::lock_guard lock(m);
    returned = opened;
    cv.notify_all();
  });
  {
    std::unique_lock lock(m);
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return returned; }))
        << "unsubscribe() from inside the handler did not return";
  }
  guard.join();
  // Confirmed by the server before the fence below subscribes: they are not for the fence.
  for (int i = 1; i <= 10; ++i)
    ASSERT_TRUE(pub->publish("self.remove", {{"n", i}}).wait_for(kGenerous));

  // A fence: a new handler on the same event receives what is published after it subscribed.
  Counter fence;
  sub->subscribe("self.remove", [&](const Event& e) {
    if (e.payload().contains("fence")) fence.add();
  });
  pub->publish("self.remove", {{"fence", true}});
  ASSERT_TRUE(fence.wait_for_at_least(1));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(sub->stats().undeliverable, 0u) << "delivered after interest_remove";
  sub->close();
  pub->close();
}

// The two connections are served in no particular order: a subscription must not overtake the
// events its own process published before it.
TEST(NatsProvider, ASubscriptionDoesNotSeeEventsPublishedBeforeIt) {
  NatsServer server;
  auto bus = started(nats_settings(server));
  // While the server is frozen the publishes wait in the provider (the first one in the
  // client); the subscription is made meanwhile, and the server reads again afterwards.
  server.freeze();
  for (int i = 0; i < 1000; ++i) bus->publish("before.subscribe", {{"n", i}});
  std::atomic<int> early{0};
  Counter after;
  std::thread subscriber([&] {
    bus->subscribe("before.subscribe", [&](const Event& e) {
      if (e.payload().contains("n")) {
        early++;
      } else {
        after.add();
      }
    });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // into subscribe()
  server.thaw();
  subscriber.join();
  bus->publish("before.subscribe", {{"after", true}});
  ASSERT_TRUE(after.wait_for_at_least(1));
  EXPECT_EQ(early.load(), 0);
}

// Names a handler saw, in order, safely from any thread.
class Names {
 public:
  Handler handler() {
    return [this](const Event& e) {
      std::lock_guard lock(m_);
      names_.emplace_back(e.name());
      traces_.emplace_back(e.context().trace_id().value_or(""));
    };
  }
  std::vector<std::string> names() const {
    std::lock_guard lock(m_);
    return names_;
  }
  std::vector<std::string> traces() const {
    std::lock_guard lock(m_);
    return traces_;
  }
  bool saw(const std::string& name) const {
    std::lock_guard lock(m_);
    return std::find(names_.begin(), names_.end(), name) != names_.end();
  }

 private:
  mutable std::mutex m_;
  std::vector<std::string> names_, traces_;
};

class NatsPatterns : public testing::TestWithParam<DispatchMode> {};

// Patterns are NATS subjects with wildcards: the server matches them, so another process's
// events on names this one never subscribed to arrive, each once per subscription.
TEST_P(NatsPatterns, TheServerMatchesWildcardsAndEachSubscriptionGetsAnEventOnce) {
  NatsServer server;
  auto sub = started(nats_settings(server, GetParam()));
  auto pub = started(nats_settings(server));
  Names exact, star, rest;
  sub->subscribe("orders.eu.created", exact.handler());
  sub->subscribe("orders.*.created", star.handler());
  sub->subscribe("orders.>", rest.handler());
  for (const char* name : {"orders.eu.created", "orders.eu.x.created", "orders.created",
                           "orders.us.created", "orders", "shipments.eu.created"}) {
    ContextScope scope(ExecutionContext::Builder().trace_id(std::string("t-") + name).build());
    pub->publish(name, {});
  }
  // One publisher, one connection: once a subscription has the last event, it has every
  // earlier one. The exact subscription never gets the fence, and in pool dispatch runs apart
  // from the others: it is waited for by its own event.
  pub->publish("orders.fence.created", {});
  ASSERT_TRUE(eventually(
      [&] { return star.saw("orders.fence.created") && rest.saw("orders.fence.created"); }));
  ASSERT_TRUE(eventually([&] { return exact.saw("orders.eu.created"); }));
  EXPECT_THAT(exact.names(), testing::ElementsAre("orders.eu.created"));
  EXPECT_THAT(star.names(), testing::ElementsAre("orders.eu.created", "orders.us.created",
                                                 "orders.fence.created"));
  EXPECT_THAT(rest.names(),
              testing::ElementsAre("orders.eu.created", "orders.eu.x.created", "orders.created",
                                   "orders.us.created", "orders.fence.created"));
  EXPECT_THAT(star.traces(),
              testing::ElementsAre("t-orders.eu.created", "t-orders.us.created", ""));
  EXPECT_EQ(sub->stats().undeliverable, 0u);
}

TEST_P(NatsPatterns, AnUnsubscribedPatternIsNoLongerReceived) {
  NatsServer server;
  auto sub = started(nats_settings(server, GetParam()));
  auto pub = started(nats_settings(server));
  Names gone, fence;
  auto s = sub->subscribe("gone.*", gone.handler());
  sub->subscribe("fence.>", fence.handler());
  pub->publish("gone.a", {});
  ASSERT_TRUE(eventually([&] { return gone.saw("gone.a"); }));
  ASSERT_TRUE(sub->unsubscribe(s));
  for (int i = 0; i < 20; ++i) pub->publish("gone.b", {});
  pub->publish("fence.x", {});
  ASSERT_TRUE(eventually([&] { return fence.saw("fence.x"); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the names differ
  EXPECT_THAT(gone.names(), testing::ElementsAre("gone.a"));
  // The provider let go of the subscription: nothing reached the host to be dropped there.
  EXPECT_EQ(sub->stats().undeliverable, 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, NatsPatterns,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

// Finding 2, the host's side: when the dispatch queue is full the host answers
// ATHOMIC_ERR_BACKPRESSURE and the provider keeps the message and delivers it again later.
TEST(NatsProvider, FullDispatchQueueIsRetriedNotDropped) {
  NatsServer server;
  EventsSettings s = nats_settings(server);
  s.workers = 1;
  s.max_queued_events = 8;
  auto sub = started(s);
  auto pub = started(nats_settings(server));
  Gate release;
  std::mutex m;
  std::vector<int> seen;
  sub->subscribe("queue.full", [&](const Event& e) {
    if (!release.is_open()) release.wait();
    std::lock_guard lock(m);
    seen.push_back(e.payload()["n"].get<int>());
  });
  constexpr int kEvents = 1000;
  std::vector<Completion> done;
  for (int i = 0; i < kEvents; ++i) done.push_back(pub->publish("queue.full", {{"n", i}}));
  for (auto& c : done) ASSERT_TRUE(c.wait_for(kGenerous));
  // Everything reached the subscriber's client while the one worker is held: the queue is full.
  ASSERT_TRUE(eventually([&] { return sub->stats().receive_refusals > 0; }));
  release.open();
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(m);
    return seen.size() >= static_cast<std::size_t>(kEvents);
  })) << "received "
      << seen.size() << " of " << kEvents;
  std::lock_guard lock(m);
  for (int i = 0; i < kEvents; ++i) ASSERT_EQ(seen[static_cast<std::size_t>(i)], i);
  const BusStats st = sub->stats();
  EXPECT_EQ(st.dropped_queue_full, 0u);
  EXPECT_EQ(st.dropped_by_transport, 0u);
}

// Finding 2, the client's side: handlers that fall behind make the client library drop
// messages past its pending limit. Each one is reported to the host, even while the handler
// is still stuck.
TEST(NatsProvider, SlowConsumerDropsAreReported) {
  NatsServer server;
  auto sub = started(nats_settings(server, DispatchMode::inline_call));
  // Room for every publish at once, however slowly the writer runs on a busy machine.
  auto pub =
      started(nats_settings(server, DispatchMode::pool, {{"reconnect_buffer_bytes", 64 << 20}}));
  Gate release;
  std::atomic<int> received{0};
  sub->subscribe("slow.consumer", [&](const Event&) {
    if (!release.is_open()) release.wait();
    received++;
  });
  // The client's default pending limit is 65,536 messages; one more is in the handler.
  constexpr int kEvents = 70'000;
  constexpr uint64_t kDropped = kEvents - 65'536 - 1;
  Completion last;
  for (int i = 0; i < kEvents; ++i) last = pub->publish("slow.consumer", {{"n", i}});
  ASSERT_TRUE(last.wait_for(kGenerous));
  EXPECT_TRUE(eventually([&] { return sub->stats().dropped_by_transport >= kDropped; }))
      << "reported " << sub->stats().dropped_by_transport << " dropped, expected " << kDropped;
  release.open();
  EXPECT_TRUE(eventually([&] {
    return received.load() + sub->stats().dropped_by_transport >= static_cast<uint64_t>(kEvents);
  }));
  sub->close();
  EXPECT_EQ(received.load() + sub->stats().dropped_by_transport, static_cast<uint64_t>(kEvents));
  EXPECT_EQ(sub->stats().dropped_by_transport, kDropped);
}

// Finding 2, the publishing side: a server that stops reading must not stall publish(); the
// provider's buffer fills and publish fails with backpressure. What it accepted is sent, and
// confirmed, once the server reads again.
TEST(NatsProvider, PublishDoesNotBlockWhileTheServerIsFrozen) {
  NatsServer server;
  auto sub = started(nats_settings(server));
  auto pub =
      started(nats_settings(server, DispatchMode::pool, {{"reconnect_buffer_bytes", 65536}}));
  Counter got;
  sub->subscribe("frozen.server", [&](const Event&) { got.add(); });
  server.freeze();

  const std::string pad(1024, 'x');
  std::vector<Completion> accepted;
  std::string refusal;
  std::atomic<bool> finished{false};
  std::thread publisher([&] {
    for (int i = 0; i < 200'000 && refusal.empty(); ++i) {
      try {
        accepted.push_back(pub->publish("frozen.server", {{"n", i}, {"pad", pad}}));
      } catch (const EventBusError& e) {
        refusal = e.what();
      }
    }
    finished = true;
  });
  const bool returned = eventually([&] { return finished.load(); }, std::chrono::seconds(20));
  server.thaw();  // (unblocks a stuck publisher too)
  publisher.join();
  ASSERT_TRUE(returned) << "publish() blocked on a server that does not read";
  EXPECT_THAT(refusal, HasSubstr("reconnect_buffer_bytes"));
  EXPECT_EQ(pub->stats().publish_failures, 1u);

  for (auto& c : accepted) {
    ASSERT_TRUE(c.wait_for(kGenerous));
    EXPECT_TRUE(c.delivered()) << c.error();
  }
  EXPECT_TRUE(got.wait_for_at_least(static_cast<int>(accepted.size())));
  EXPECT_EQ(got.value(), static_cast<int>(accepted.size()));
}

// A message the buffer could never hold is refused as such, not as a momentary backpressure.
TEST(NatsProvider, AMessageLargerThanTheBufferIsRefusedClearly) {
  NatsServer server;
  auto pub = started(nats_settings(server, DispatchMode::pool, {{"reconnect_buffer_bytes", 1024}}));
  try {
    pub->publish("too.large", {{"pad", std::string(2048, 'x')}});
    FAIL() << "a message larger than the buffer was accepted";
  } catch (const EventBusError& e) {
    EXPECT_THAT(e.what(), HasSubstr("reconnect_buffer_bytes = 1024 cannot hold it"));
  }
  Completion ok = pub->publish("small.enough", {{"n", 1}});
  ASSERT_TRUE(ok.wait_for(kGenerous));
  EXPECT_TRUE(ok.delivered()) << ok.error();
}

// Publishes the server has not confirmed when the bus closes are failed, not forgotten.
TEST(NatsProvider, PublishesUnconfirmedAtCloseAreReportedAsFailures) {
  NatsServer server;
  auto pub = started(nats_settings(server));
  server.freeze();
  std::vector<Completion> pending;
  for (int i = 0; i < 5; ++i) pending.push_back(pub->publish("never.confirmed", {{"n", i}}));
  pub->close();
  server.thaw();
  for (auto& c : pending) {
    ASSERT_TRUE(c.done());
    EXPECT_FALSE(c.delivered());
    EXPECT_THAT(c.error(), HasSubstr("stopped"));
  }
  EXPECT_EQ(pub->stats().publish_failures, 5u);
}

// The connection's state reaches the bus's health: up, reconnecting while the server is
// gone, up again once it is back.
TEST(NatsProvider, ConnectionStateIsReported) {
  NatsServer server;
  auto bus = started(nats_settings(server));
  EXPECT_EQ(bus->health().connection, BusHealth::Connection::up);
  server.kill9();
  EXPECT_TRUE(
      eventually([&] { return bus->health().connection == BusHealth::Connection::reconnecting; }));
  EXPECT_THAT(bus->health().detail, HasSubstr(server.url()));
  EXPECT_EQ(bus->stats().outages, 1u);
  server.start();
  EXPECT_TRUE(eventually([&] { return bus->health().connection == BusHealth::Connection::up; }));
  Completion c = bus->publish("after.reconnect", {});
  ASSERT_TRUE(c.wait_for(kGenerous));
  EXPECT_TRUE(c.delivered()) << c.error();
}

// Once the client gives up reconnecting, the state is down and publishes fail at once.
TEST(NatsProvider, GivingUpReconnectingIsReportedAndPublishesFail) {
  NatsServer server;
  auto bus = started(nats_settings(server, DispatchMode::pool, {{"max_reconnect", 1}}));
  server.kill9();
  EXPECT_TRUE(eventually([&] { return bus->health().connection == BusHealth::Connection::down; }));
  // (Each connection gives up on its own: the publishing one may follow a moment later.)
  std::string refusal;
  EXPECT_TRUE(eventually([&] {
    try {
      bus->publish("after.give.up", {});
      return false;
    } catch (const EventBusError& e) {
      refusal = e.what();
      return true;
    }
  }));
  EXPECT_THAT(refusal, HasSubstr("max_reconnect"));
}

// The provider declares its settings: the host validates them, names the key and what is
// allowed, and masks the secrets.
TEST(NatsProvider, SettingsAreDeclaredAndValidatedByTheHost) {
  NatsServer server;
  try {
    EventBus::create(nats_settings(server, DispatchMode::pool, {{"max_reconnect", "often"}}));
    FAIL() << "a string was accepted for max_reconnect";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("events.provider.max_reconnect"));
    EXPECT_THAT(e.what(), HasSubstr("an integer from -1 to 1000000"));
  }
  try {
    EventBus::create(nats_settings(server, DispatchMode::pool, {{"password", 1234567}}));
    FAIL() << "a number was accepted for password";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("events.provider.password = \"***\""));
    EXPECT_THAT(e.what(), testing::Not(HasSubstr("1234567")));
  }
}


// ---- Clusters: three routed nats-servers; the subscribing bus's server is killed.

EventsSettings cluster_settings(const std::string& urls) {
  EventsSettings s = local_settings();
  s.backend = "nats";
  // In the order given, so that the test knows which server each client is on.
  s.provider_config = {
      {"backend", "nats"}, {"url", urls}, {"randomize", false}, {"reconnect_wait", 0.05}};
  return s;
}

// The numbers a handler received, each with when.
class Stream {
 public:
  using Clock = std::chrono::steady_clock;
  Handler handler() {
    return [this](const Event& e) {
      std::lock_guard lock(m_);
      got_.emplace_back(e.payload()["n"].get<int>(), Clock::now());
    };
  }
  std::vector<std::pair<int, Clock::time_point>> got() const {
    std::lock_guard lock(m_);
    return got_;
  }
  bool has_at_least(int n) const {
    std::lock_guard lock(m_);
    return std::any_of(got_.begin(), got_.end(), [&](const auto& g) { return g.first >= n; });
  }
  std::size_t size() const {
    std::lock_guard lock(m_);
    return got_.size();
  }

 private:
  mutable std::mutex m_;
  std::vector<std::pair<int, Clock::time_point>> got_;
};

// Publishes a numbered stream from a bus on server 2 to one whose client is on server 0 (the
// first of @p subscriber_urls), kills server 0 mid-stream, and checks that delivery resumes
// through another server without a restart, without duplicates, and that the outage is
// reported. Prints the failover figures.
void subscriber_fails_over(const std::string& what, const std::string& subscriber_urls,
                           NatsCluster& cluster) {
  auto sub = started(cluster_settings(subscriber_urls));
  auto pub = started(cluster_settings(cluster.urls({2})));
  Stream stream;
  sub->subscribe("cluster.stream", stream.handler());
  std::atomic<bool> stop{false};
  std::atomic<int> next{0};
  std::vector<Completion> done;
  std::thread publisher([&] {
    while (!stop) {
      done.push_back(pub->publish("cluster.stream", {{"n", next.load()}}));
      next++;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  // Interest reaches server 2 over the route a moment after subscribe(): the first events may
  // precede it. Counted from the first one received.
  const bool flowing = eventually([&] { return stream.size() >= 200; });
  const auto killed = Stream::Clock::now();
  if (flowing) cluster[0].kill9();
  // Published once the server was gone (kill9() returns when it has exited).
  const int killed_at = next.load();
  const bool resumed = flowing && eventually([&] { return stream.has_at_least(killed_at); });
  const int resumed_by = next.load();
  if (resumed) eventually([&] { return stream.has_at_least(resumed_by + 200); });
  stop = true;
  publisher.join();
  ASSERT_TRUE(flowing) << "events did not flow across the cluster";
  ASSERT_TRUE(resumed) << "delivery did not resume after server 0 was killed";
  const int last = next.load() - 1;
  ASSERT_TRUE(eventually([&] { return stream.has_at_least(last); })) << "the last event is missing";

  int publish_failed = 0;
  for (auto& c : done) {
    ASSERT_TRUE(c.wait_for(kGenerous));
    if (!c.delivered()) publish_failed++;
  }
  const auto got = stream.got();
  std::set<int> seen;
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(seen.insert(got[i].first).second) << "event " << got[i].first << " twice";
    if (i > 0) EXPECT_LT(got[i - 1].first, got[i].first) << "out of order";
  }
  const int first = got.front().first;
  const int lost = (last - first + 1) - static_cast<int>(seen.size());
  const auto resumed_at = std::find_if(got.begin(), got.end(),
                                       [&](const auto& g) { return g.first >= killed_at; });
  const auto window =
      std::chrono::duration_cast<std::chrono::milliseconds>(resumed_at->second - killed);

  // The outage reached the bus's connection state, and it names the server it went to.
  EXPECT_GE(sub->stats().outages, 1u);
  EXPECT_EQ(sub->health().connection, BusHealth::Connection::up);
  EXPECT_THAT(sub->health().detail, HasSubstr("reconnected to"));
  EXPECT_THAT(sub->health().detail, testing::Not(HasSubstr(cluster[0].url())));
  EXPECT_EQ(pub->stats().outages, 0u);
  std::printf("figure: NATS server kill (%s): delivery resumed %lld ms after SIGKILL; %d of %d "
              "events lost; the publisher was told of %d failure(s) (%llu counted in its stats)\n",
              what.c_str(), static_cast<long long>(window.count()), lost, last - first + 1,
              publish_failed, static_cast<unsigned long long>(pub->stats().publish_failures));
}

TEST(NatsCluster, DeliveryResumesThroughAnotherServerWhenTheSubscribersServerIsKilled) {
  NatsCluster cluster;
  subscriber_fails_over("client given all three URLs", cluster.urls({0, 1, 2}), cluster);
}

// One seed URL is enough: the client learns the cluster's other servers from the server it is
// on, and fails over to them.
TEST(NatsCluster, AClientGivenOneSeedURLFailsOverToADiscoveredServer) {
  NatsCluster cluster;
  subscriber_fails_over("client given one seed URL", cluster.urls({0}), cluster);
}

// config/nats-cluster.toml as shipped, its URLs replaced by the environment's as a deployment
// would: every key is one the plugin declares, in range, and the bus runs on the cluster.
TEST(NatsCluster, TheShippedClusterSettingsFileRuns) {
  NatsCluster cluster;
  std::ifstream file(ATHOMIC_CONFIG_DIR "/nats-cluster.toml");
  ASSERT_TRUE(file) << ATHOMIC_CONFIG_DIR "/nats-cluster.toml";
  const std::string toml((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const EventsSettings s =
      Settings::from_toml(toml, "nats-cluster.toml", "development",
                          {{"NALA_EVENTS__PROVIDER__URL", cluster.urls({0, 1, 2})}})
          .events();
  auto sub = started(s);
  auto pub = started(s);
  Counter got;
  sub->subscribe("shipped.file", [&](const Event&) { got.add(); });
  // Interest crosses the routes a moment after subscribe() when the two are on different
  // servers: publish until one arrives.
  EXPECT_TRUE(eventually([&] {
    pub->publish("shipped.file", {});
    return got.wait_for_at_least(1, std::chrono::milliseconds(50));
  }));
}

TEST(NatsCluster, AnEmptyURLInTheListIsRefusedByName) {
  NatsServer server;
  try {
    started(cluster_settings(server.url() + ", ,nats://app:s3cret@127.0.0.1:1"));
    FAIL() << "an empty URL in the list was accepted";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), HasSubstr("events.provider.url"));
    EXPECT_THAT(e.what(), HasSubstr("URL 2 is empty"));
    EXPECT_THAT(e.what(), testing::Not(HasSubstr("s3cret")));
  }
}

}  // namespace
}  // namespace athomic::test
