// Tracked subscriptions: a member function called on an object held by std::weak_ptr. Once
// the object is gone the call is skipped and the subscription removes itself, from inside its
// handler, without waiting; the object may die while an event is being dispatched to it.
#include <gmock/gmock.h>

#include "test_support.h"

namespace athomic::test {
namespace {

struct Ping {
  static constexpr std::string_view event_name = "ping";
  int n = 0;
};
ATHOMIC_EVENT_FIELDS(Ping, n)

// What the test sees of an Auditor, alive or not.
struct Probe {
  std::atomic<int> calls{0};
  std::atomic<int> running{0};
  std::atomic<bool> destroyed{false};
  std::atomic<int> calls_after_destruction{0};
  std::atomic<bool> destroyed_on_a_handler_thread{false};
  std::thread::id test_thread = std::this_thread::get_id();
  Gate* hold_first_call = nullptr;  // when set, the first call waits here
  Counter entered;
};

class Auditor {
 public:
  explicit Auditor(Probe& probe) : probe_(probe) {}
  ~Auditor() {
    // A call in progress keeps the object alive: none may be running now.
    if (probe_.running.load() != 0) probe_.calls_after_destruction.fetch_add(1);
    probe_.destroyed_on_a_handler_thread = std::this_thread::get_id() != probe_.test_thread;
    probe_.destroyed = true;
  }
  void on_event(const Event&) { call(); }
  void on_payload(const nlohmann::json&) const { probe_.calls.fetch_add(1); }
  void on_ping(const Ping& p, const Event&) { probe_.calls.fetch_add(p.n); }
  void on_named_ping(const Ping& p) { probe_.calls.fetch_add(p.n); }

 private:
  void call() {
    probe_.running.fetch_add(1);
    if (probe_.destroyed.load()) probe_.calls_after_destruction.fetch_add(1);
    if (probe_.calls.fetch_add(1) == 0 && probe_.hold_first_call) {
      probe_.entered.add();
      probe_.hold_first_call->wait();
    }
    probe_.entered.add();
    // No pause here: in inline dispatch, calls overlapping on several publishers keep the
    // object alive together (each holds it), so long overlapping calls would delay its end.
    probe_.running.fetch_sub(1);
  }
  Probe& probe_;
};

// Publishes until @p stop. A publish refused because a held handler let the queue fill up is
// not what these tests look at.
void publish_until(EventBus& bus, const std::atomic<bool>& stop) {
  while (!stop.load()) {
    try {
      bus.publish("audit", {});
    } catch (const EventBusError&) {
    }
  }
}

class Tracked : public testing::TestWithParam<DispatchMode> {
 protected:
  // One worker in pool dispatch: a subscription that waited for itself would hang.
  std::shared_ptr<EventBus> bus = started(local_settings(GetParam(), 1));
};

TEST_P(Tracked, TheMethodIsCalledWhileTheObjectLives) {
  Probe probe;
  auto auditor = std::make_shared<Auditor>(probe);
  std::weak_ptr<Auditor> weak = auditor;
  bus->subscribe("audit", weak, &Auditor::on_event);
  bus->subscribe("audit", weak, &Auditor::on_payload);
  bus->subscribe<Ping>("ping", weak, &Auditor::on_ping);
  bus->subscribe<Ping>(weak, &Auditor::on_named_ping);
  bus->publish("audit", {}).wait();
  bus->publish(Ping{10}).wait();
  EXPECT_EQ(probe.calls, 22);
  EXPECT_EQ(bus->handler_count("audit"), 2u);
  EXPECT_EQ(bus->handler_count("ping"), 2u);
}

TEST_P(Tracked, OnceTheObjectIsGoneTheCallIsSkippedAndTheSubscriptionRemoved) {
  Probe probe;
  auto auditor = std::make_shared<Auditor>(probe);
  bus->subscribe("audit", std::weak_ptr(auditor), &Auditor::on_event);
  bus->subscribe<Ping>(std::weak_ptr(auditor), &Auditor::on_named_ping);
  Counter others;
  bus->subscribe("audit", [&](const Event&) { others.add(); });
  auditor.reset();
  EXPECT_TRUE(probe.destroyed);
  // Removed at the next event for it: the handler is the only place that looks at the object.
  EXPECT_EQ(bus->handler_count("audit"), 2u);
  auto done = bus->publish("audit", {});
  done.wait();
  EXPECT_EQ(done.failed_handlers(), 0u);
  bus->publish(Ping{1}).wait();
  EXPECT_EQ(bus->handler_count("audit"), 1u);
  EXPECT_EQ(bus->handler_count("ping"), 0u);
  EXPECT_EQ(probe.calls, 0);
  EXPECT_EQ(others.value(), 1);
  EXPECT_EQ(bus->stats().handler_failures, 0u);
}

TEST_P(Tracked, ASharedPtrIsHeldOnlyWeakly) {
  Probe probe;
  auto auditor = std::make_shared<Auditor>(probe);
  const Subscription sub = bus->subscribe("audit", auditor, &Auditor::on_event);
  auditor.reset();
  EXPECT_TRUE(probe.destroyed);
  EXPECT_TRUE(bus->unsubscribe(sub));  // the token forms work on it too
}

// The README's pattern: a service subscribes itself.
class PingService : public std::enable_shared_from_this<PingService> {
 public:
  void listen(EventBus& bus) { bus.subscribe<Ping>(weak_from_this(), &PingService::on_ping); }
  void on_ping(const Ping& p) { got.add(p.n); }
  Counter got;
};

TEST_P(Tracked, AnObjectSubscribesItselfWithWeakFromThis) {
  auto service = std::make_shared<PingService>();
  service->listen(*bus);
  bus->publish(Ping{3}).wait();
  EXPECT_EQ(service->got.value(), 3);
  service.reset();
  bus->publish(Ping{3}).wait();
  EXPECT_EQ(bus->handler_count("ping"), 0u);
}

TEST_P(Tracked, AScopedTrackedSubscriptionEndsWithItsOwnerOrItsObject) {
  Probe probe;
  auto auditor = std::make_shared<Auditor>(probe);
  {
    ScopedSubscription sub = bus->subscribe_scoped("audit", auditor, &Auditor::on_event);
    EXPECT_EQ(bus->handler_count("audit"), 1u);
  }
  EXPECT_EQ(bus->handler_count("audit"), 0u);
  ScopedSubscription sub = bus->subscribe_scoped<Ping>(auditor, &Auditor::on_named_ping);
  auditor.reset();
  bus->publish(Ping{1}).wait();
  EXPECT_EQ(bus->handler_count("ping"), 0u);
  EXPECT_FALSE(sub.reset());  // removed already, when its object went
  EXPECT_EQ(probe.calls, 0);
}

TEST_P(Tracked, UnsubscribeFindsTheSubscriptionByNameObjectAndMethod) {
  Probe probe, other_probe;
  auto auditor = std::make_shared<Auditor>(probe);
  auto other = std::make_shared<Auditor>(other_probe);
  bus->subscribe("audit", auditor, &Auditor::on_event);
  bus->subscribe("audit", auditor, &Auditor::on_payload);
  bus->subscribe("audit", other, &Auditor::on_event);
  bus->subscribe<Ping>(auditor, &Auditor::on_named_ping);
  // Another name, another method, another object: none of them is this one.
  EXPECT_EQ(bus->unsubscribe("other", auditor, &Auditor::on_event), 0u);
  EXPECT_EQ(bus->unsubscribe("audit", auditor, &Auditor::on_ping), 0u);
  EXPECT_EQ(bus->unsubscribe("audit", std::make_shared<Auditor>(probe), &Auditor::on_event), 0u);
  EXPECT_EQ(bus->unsubscribe("audit", std::weak_ptr(auditor), &Auditor::on_event), 1u);
  EXPECT_EQ(bus->unsubscribe("audit", auditor, &Auditor::on_event), 0u);  // gone already
  EXPECT_EQ(bus->handler_count("audit"), 2u);
  bus->publish("audit", {}).wait();
  EXPECT_EQ(probe.calls, 1);  // on_payload only
  EXPECT_EQ(other_probe.calls, 1);
  EXPECT_EQ(bus->unsubscribe<Ping>(auditor, &Auditor::on_named_ping), 1u);
  EXPECT_EQ(bus->handler_count("ping"), 0u);
}

TEST_P(Tracked, UnsubscribeAllRemovesEveryTrackedSubscriptionOfTheObject) {
  Probe probe, other_probe;
  auto auditor = std::make_shared<Auditor>(probe);
  auto other = std::make_shared<Auditor>(other_probe);
  bus->subscribe("audit", auditor, &Auditor::on_event);
  bus->subscribe("audit", auditor, &Auditor::on_event);  // twice: removed twice
  bus->subscribe<Ping>(auditor, &Auditor::on_named_ping);
  bus->subscribe("audit", other, &Auditor::on_event);
  Counter untracked;
  bus->subscribe("audit", [&](const Event&) { untracked.add(); });
  EXPECT_EQ(bus->unsubscribe_all(auditor), 3u);
  EXPECT_EQ(bus->unsubscribe_all(auditor), 0u);
  EXPECT_EQ(bus->handler_count("audit"), 2u);
  EXPECT_EQ(bus->handler_count("ping"), 0u);
  bus->publish("audit", {}).wait();
  EXPECT_EQ(probe.calls, 0);
  EXPECT_EQ(other_probe.calls, 1);
  EXPECT_EQ(untracked.value(), 1);
  // The object may be gone first: it is found by its owner, not by its address.
  other.reset();
  EXPECT_EQ(bus->unsubscribe_all(std::weak_ptr<Auditor>()), 0u);
}

// Slow is the method that runs while the test unsubscribes.
class Slow {
 public:
  void on_event(const Event&) {
    entered = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    finished = true;
  }
  std::atomic<bool> entered{false}, finished{false};
};

TEST_P(Tracked, UnsubscribeByObjectWaitsForTheRunningCallLikeUnsubscribe) {
  for (const bool all : {false, true}) {
    auto slow = std::make_shared<Slow>();
    bus->subscribe("slow", slow, &Slow::on_event);
    // Inline dispatch runs it on the publisher's thread: publish from another one.
    std::thread publisher([&] { bus->publish("slow", {}); });
    ASSERT_TRUE(eventually([&] { return slow->entered.load(); }));
    const std::size_t removed =
        all ? bus->unsubscribe_all(slow) : bus->unsubscribe("slow", slow, &Slow::on_event);
    EXPECT_EQ(removed, 1u);
    EXPECT_TRUE(slow->finished) << (all ? "unsubscribe_all" : "unsubscribe");
    publisher.join();
  }
}

// An object that owns its subscription (a ScopedSubscription of itself) and whose last owner
// lets go inside its own handler: it dies on the handler's thread, inside the handler, and its
// ScopedSubscription unsubscribes from inside its own handler — which must not wait for itself.
class SelfOwned : public std::enable_shared_from_this<SelfOwned> {
 public:
  SelfOwned(EventBus& bus, std::shared_ptr<SelfOwned>& owner, Probe& probe)
      : bus_(bus), owner_(owner), probe_(probe) {}
  ~SelfOwned() {
    probe_.destroyed_on_a_handler_thread = std::this_thread::get_id() != probe_.test_thread;
    probe_.destroyed = true;
  }
  void listen() { sub_ = bus_.subscribe_scoped("audit", weak_from_this(), &SelfOwned::on_event); }
  void listen_and_leave_with_unsubscribe_all() {
    bus_.subscribe("audit", weak_from_this(), &SelfOwned::leave);
  }
  void on_event(const Event&) {
    probe_.calls.fetch_add(1);
    owner_.reset();           // the last owner: this call's own reference keeps us until it returns
    probe_.running.store(1);  // still alive here
  }
  void leave(const Event&) {
    probe_.calls.fetch_add(1);
    EXPECT_EQ(bus_.unsubscribe_all(weak_from_this()), 1u);
  }

 private:
  EventBus& bus_;
  std::shared_ptr<SelfOwned>& owner_;
  Probe& probe_;
  ScopedSubscription sub_;
};

TEST_P(Tracked, TheObjectMayDieInsideItsOwnHandlerHoldingItsOwnScopedSubscription) {
  Probe probe;
  std::shared_ptr<SelfOwned> owner;
  owner = std::make_shared<SelfOwned>(*bus, owner, probe);
  owner->listen();
  EXPECT_EQ(bus->handler_count("audit"), 1u);
  auto done = bus->publish("audit", {});
  ASSERT_TRUE(done.wait_for(kGenerous));  // no deadlock, no abort
  EXPECT_EQ(done.failed_handlers(), 0u);
  EXPECT_EQ(probe.running, 1);  // the method ran to its end after the owner let go
  EXPECT_TRUE(probe.destroyed);
  EXPECT_EQ(probe.destroyed_on_a_handler_thread, GetParam() == DispatchMode::pool);
  EXPECT_EQ(bus->handler_count("audit"), 0u);  // removed by the ScopedSubscription at once
  bus->publish("audit", {}).wait();
  EXPECT_EQ(probe.calls, 1);
}

TEST_P(Tracked, UnsubscribeAllFromInsideItsOwnHandlerDoesNotWaitForItself) {
  Probe probe;
  std::shared_ptr<SelfOwned> owner;
  owner = std::make_shared<SelfOwned>(*bus, owner, probe);
  owner->listen_and_leave_with_unsubscribe_all();
  auto done = bus->publish("audit", {});
  ASSERT_TRUE(done.wait_for(kGenerous));
  bus->publish("audit", {}).wait();
  EXPECT_EQ(probe.calls, 1);
  EXPECT_EQ(bus->handler_count("audit"), 0u);
  EXPECT_EQ(bus->stats().handler_failures, 0u);
}

TEST_P(Tracked, SubscriptionsOfObjectsGoneOnAnEventThatNeverComesDoNotPileUp) {
  Probe probe;
  auto stays = std::make_shared<Auditor>(probe);
  bus->subscribe("rare", stays, &Auditor::on_event);
  for (int i = 0; i < 2000; ++i) {
    Probe gone_probe;
    bus->subscribe("rare", std::make_shared<Auditor>(gone_probe), &Auditor::on_event);
  }
  // Later tracked subscribes removed most of them; without that, all 2,001 would wait for
  // an event of their own.
  EXPECT_LT(bus->handler_count("rare"), 200u);
  bus->publish("rare", {}).wait();
  EXPECT_EQ(bus->handler_count("rare"), 1u);
  EXPECT_EQ(probe.calls, 1);
}

TEST_P(Tracked, TheObjectMayDieWhileAnEventIsDispatchedToIt) {
  Probe probe;
  Gate gate;
  probe.hold_first_call = &gate;
  auto auditor = std::make_shared<Auditor>(probe);
  bus->subscribe("audit", std::weak_ptr(auditor), &Auditor::on_event);
  std::atomic<bool> stop{false};
  std::vector<std::thread> publishers;
  for (int p = 0; p < 4; ++p) {
    publishers.emplace_back([&] { publish_until(*bus, stop); });
  }
  ASSERT_TRUE(probe.entered.wait_for_at_least(1));  // a call holds the object
  auditor.reset();
  EXPECT_FALSE(probe.destroyed);
  gate.open();
  EXPECT_TRUE(eventually([&] { return bus->handler_count("audit") == 0; }));
  stop = true;
  for (auto& t : publishers) t.join();
  EXPECT_TRUE(probe.destroyed);
  EXPECT_TRUE(probe.destroyed_on_a_handler_thread);  // by the call that held it last
  EXPECT_EQ(probe.calls_after_destruction, 0);
  EXPECT_EQ(bus->stats().handler_failures, 0u);
}

TEST_P(Tracked, ObjectsComeAndGoWhileManyThreadsPublish) {
  constexpr int kRounds = 30;
  std::atomic<bool> stop{false};
  std::vector<std::thread> publishers;
  for (int p = 0; p < 3; ++p) {
    publishers.emplace_back([&] { publish_until(*bus, stop); });
  }
  int rounds_that_ran = 0;
  for (int round = 0; round < kRounds; ++round) {
    Probe probe;
    auto auditor = std::make_shared<Auditor>(probe);
    bus->subscribe("audit", std::weak_ptr(auditor), &Auditor::on_event);
    eventually([&] { return probe.calls.load() > 0; }, std::chrono::seconds(5));
    auditor.reset();  // races with the calls in flight
    ASSERT_TRUE(eventually([&] { return bus->handler_count("audit") == 0; }));
    // Removed from inside its handler, which promises "never called again" but does not wait:
    // wait for the destruction the last call may still be doing before the probe goes.
    ASSERT_TRUE(eventually([&] { return probe.destroyed.load(); }));
    EXPECT_EQ(probe.calls_after_destruction, 0);
    if (probe.calls > 0) ++rounds_that_ran;
  }
  stop = true;
  for (auto& t : publishers) t.join();
  EXPECT_GT(rounds_that_ran, kRounds / 2);
  EXPECT_EQ(bus->stats().handler_failures, 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, Tracked,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

}  // namespace
}  // namespace athomic::test
