// ScopedSubscription: a subscription that unsubscribes when it is destroyed, with the
// unsubscribe guarantee, and that outlives its bus safely.
#include "test_support.h"

#include <gmock/gmock.h>

namespace athomic::test {
namespace {

struct Ping {
  static constexpr std::string_view event_name = "ping";
  int n = 0;
};
ATHOMIC_EVENT_FIELDS(Ping, n)

static_assert(!std::is_copy_constructible_v<ScopedSubscription>);
static_assert(std::is_nothrow_move_constructible_v<ScopedSubscription>);

class Scoped : public testing::TestWithParam<DispatchMode> {
 protected:
  std::shared_ptr<EventBus> bus = started(local_settings(GetParam()));
};

TEST_P(Scoped, DestructionUnsubscribes) {
  std::atomic<int> calls{0};
  {
    ScopedSubscription sub = bus->subscribe_scoped("x", [&](const Event&) { calls++; });
    EXPECT_TRUE(sub);
    EXPECT_EQ(sub.get().event_name(), "x");
    EXPECT_EQ(bus->handler_count("x"), 1u);
    bus->publish("x", {}).wait();
  }
  EXPECT_EQ(bus->handler_count("x"), 0u);
  bus->publish("x", {}).wait();
  EXPECT_EQ(calls, 1);
}

TEST_P(Scoped, EveryFormOfSubscribeHasAScopedOne) {
  Counter got;
  {
    auto a = bus->subscribe_scoped("ping", [&](const nlohmann::json&) { got.add(); });
    auto b = bus->subscribe_scoped(
        "ping", [&](const Event&) { got.add(); }, SubscribeOptions{.max_concurrency = 2});
    auto c = bus->subscribe_scoped<Ping>("ping", [&](const Ping& p) { got.add(p.n); });
    auto d = bus->subscribe_scoped<Ping>([&](const Ping& p, const Event&) { got.add(p.n); });
    EXPECT_EQ(bus->handler_count("ping"), 4u);
    bus->publish(Ping{10}).wait();
    EXPECT_EQ(got.value(), 22);
  }
  EXPECT_EQ(bus->handler_count("ping"), 0u);
}

TEST_P(Scoped, AdoptsASubscriptionMadeBefore) {
  {
    ScopedSubscription sub(*bus, bus->subscribe<Ping>([](const Ping&) {}));
    EXPECT_EQ(bus->handler_count("ping"), 1u);
  }
  EXPECT_EQ(bus->handler_count("ping"), 0u);
}

TEST_P(Scoped, MovingTransfersTheSubscriptionAndAssigningDropsTheOldOne) {
  ScopedSubscription a = bus->subscribe_scoped("a", [](const Event&) {});
  ScopedSubscription moved(std::move(a));
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_TRUE(moved);
  EXPECT_EQ(bus->handler_count("a"), 1u);
  moved = bus->subscribe_scoped("b", [](const Event&) {});
  EXPECT_EQ(bus->handler_count("a"), 0u);
  EXPECT_EQ(bus->handler_count("b"), 1u);
  ScopedSubscription empty;
  EXPECT_FALSE(empty);
  empty = std::move(moved);
  EXPECT_EQ(bus->handler_count("b"), 1u);
  empty = ScopedSubscription();
  EXPECT_EQ(bus->handler_count("b"), 0u);
}

TEST_P(Scoped, ReleaseKeepsTheSubscriptionResetEndsItNow) {
  Subscription kept;
  {
    ScopedSubscription sub = bus->subscribe_scoped("kept", [](const Event&) {});
    kept = sub.release();
    EXPECT_FALSE(sub);
    EXPECT_FALSE(sub.reset());
  }
  EXPECT_EQ(bus->handler_count("kept"), 1u);
  EXPECT_TRUE(bus->unsubscribe(kept));

  ScopedSubscription sub = bus->subscribe_scoped("reset", [](const Event&) {});
  EXPECT_TRUE(sub.reset());
  EXPECT_FALSE(sub);
  EXPECT_EQ(bus->handler_count("reset"), 0u);
  EXPECT_FALSE(sub.reset());
}

TEST_P(Scoped, AfterDestructionTheHandlerIsNeverRunningOrCalled) {
  constexpr int kRounds = 40;
  std::atomic<bool> stop{false};
  std::vector<std::thread> publishers;
  for (int p = 0; p < 3; ++p) {
    publishers.emplace_back([&] {
      while (!stop.load()) bus->publish("race", {});
    });
  }
  int violations = 0;
  int rounds_that_ran = 0;
  for (int round = 0; round < kRounds; ++round) {
    auto running = std::make_shared<std::atomic<int>>(0);
    auto calls = std::make_shared<std::atomic<int>>(0);
    auto destroyed = std::make_shared<std::atomic<bool>>(false);
    auto late = std::make_shared<std::atomic<int>>(0);
    {
      ScopedSubscription sub = bus->subscribe_scoped("race", [=](const Event&) {
        running->fetch_add(1);
        if (destroyed->load()) late->fetch_add(1);
        calls->fetch_add(1);
        std::this_thread::yield();
        running->fetch_sub(1);
      });
      eventually([&] { return calls->load() > 0; }, std::chrono::seconds(5));
    }
    destroyed->store(true);
    if (running->load() != 0) ++violations;  // still running on another thread
    const int calls_at_return = calls->load();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (calls->load() != calls_at_return || late->load() != 0) ++violations;  // called again
    if (calls_at_return > 0) ++rounds_that_ran;
  }
  stop = true;
  for (auto& t : publishers) t.join();
  EXPECT_EQ(violations, 0);
  EXPECT_GT(rounds_that_ran, kRounds / 2);  // the race was really exercised
}

TEST_P(Scoped, ResetFromInsideItsOwnHandlerDoesNotWaitForItself) {
  auto sub = std::make_shared<ScopedSubscription>();
  std::mutex m;
  Counter calls;
  {
    std::lock_guard lock(m);  // the handler sees the subscription assigned
    *sub = bus->subscribe_scoped("once", [&, sub](const Event&) {
      std::lock_guard inner(m);
      calls.add();
      sub->reset();
    });
  }
  bus->publish("once", {}).wait();
  bus->publish("once", {}).wait();
  EXPECT_EQ(calls.value(), 1);
  EXPECT_EQ(bus->handler_count("once"), 0u);
}

TEST_P(Scoped, TheBusMayGoFirst) {
  std::atomic<int> calls{0};
  ScopedSubscription sub = bus->subscribe_scoped("x", [&](const Event&) { calls++; });
  bus->publish("x", {}).wait();
  bus.reset();  // the last reference: the bus closes and is destroyed
  EXPECT_TRUE(sub);
  EXPECT_FALSE(sub.reset());  // nothing left to unsubscribe from, and no crash
  EXPECT_EQ(calls, 1);
}

TEST_P(Scoped, ADisabledBusGivesAnEmptyOne) {
  EventsSettings s = local_settings(GetParam());
  s.enabled = false;
  auto disabled = EventBus::create(s);
  ScopedSubscription sub = disabled->subscribe_scoped("x", [](const Event&) {});
  EXPECT_FALSE(sub);
}

INSTANTIATE_TEST_SUITE_P(Modes, Scoped,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

TEST(ScopedOnTheProcessBus, GetEventBusGivesScopedSubscriptionsToo) {
  ScopedEnv files("NALA_SETTINGS_FILES", ATHOMIC_SOURCE_DIR "/config/settings.toml");
  EventBus& bus = get_event_bus();
  Counter got;
  {
    auto sub = bus.subscribe_scoped("scoped.process.bus", [&](const Event&) { got.add(); });
    bus.publish("scoped.process.bus", {}).wait();
    EXPECT_EQ(bus.handler_count("scoped.process.bus"), 1u);
  }
  EXPECT_EQ(got.value(), 1);
  EXPECT_EQ(bus.handler_count("scoped.process.bus"), 0u);
}

}  // namespace
}  // namespace athomic::test
