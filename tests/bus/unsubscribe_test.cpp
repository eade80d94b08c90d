// The unsubscribe guarantee: once unsubscribe returns, the handler is not running anywhere and
// is never called again.
#include "test_support.h"

namespace athomic::test {
namespace {

class Unsubscribe : public testing::TestWithParam<DispatchMode> {};

TEST_P(Unsubscribe, AfterItReturnsTheHandlerIsNeverRunningOrCalled) {
  auto bus = started(local_settings(GetParam(), 4));
  constexpr int kPublishers = 3;
  constexpr int kRounds = 60;
  std::atomic<bool> stop{false};
  std::vector<std::thread> publishers;
  for (int p = 0; p < kPublishers; ++p) {
    publishers.emplace_back([&] {
      while (!stop.load()) bus->publish("race", {});
    });
  }
  int violations = 0;
  int rounds_that_ran = 0;
  for (int round = 0; round < kRounds; ++round) {
    // Shared with the handler: kept alive past unsubscribe only by the test's own scope.
    auto running = std::make_shared<std::atomic<int>>(0);
    auto calls = std::make_shared<std::atomic<int>>(0);
    auto returned = std::make_shared<std::atomic<bool>>(false);
    auto late = std::make_shared<std::atomic<int>>(0);
    auto sub = bus->subscribe("race", [=](const Event&) {
      running->fetch_add(1);
      if (returned->load()) late->fetch_add(1);
      calls->fetch_add(1);
      std::this_thread::yield();
      running->fetch_sub(1);
    });
    eventually([&] { return calls->load() > 0; }, std::chrono::seconds(5));
    ASSERT_TRUE(bus->unsubscribe(sub));
    returned->store(true);
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

TEST_P(Unsubscribe, FromInsideTheHandlerItselfDoesNotDeadlock) {
  auto bus = started(local_settings(GetParam()));
  std::atomic<int> calls{0};
  Subscription self;
  std::atomic<bool> result{false};
  std::mutex m;
  self = bus->subscribe("once", [&](const Event&) {
    calls++;
    std::lock_guard lock(m);
    result = bus->unsubscribe(self);
  });
  {
    std::lock_guard lock(m);  // `self` is assigned before the handler can read it
  }
  bus->publish("once", {}).wait();
  bus->publish("once", {}).wait();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(result);
  EXPECT_EQ(bus->handler_count("once"), 0u);
}

TEST_P(Unsubscribe, UnknownOrRepeatedUnsubscribeReturnsFalse) {
  auto bus = started(local_settings(GetParam()));
  auto sub = bus->subscribe("x", [](const Event&) {});
  EXPECT_TRUE(bus->unsubscribe(sub));
  EXPECT_FALSE(bus->unsubscribe(sub));
  EXPECT_FALSE(bus->unsubscribe(Subscription(999999, "x")));
}

TEST_P(Unsubscribe, OnlyThatHandlerIsRemoved) {
  auto bus = started(local_settings(GetParam()));
  std::atomic<int> a{0}, b{0};
  auto sa = bus->subscribe("x", [&](const Event&) { a++; });
  bus->subscribe("x", [&](const Event&) { b++; });
  EXPECT_EQ(bus->handler_count("x"), 2u);
  bus->publish("x", {}).wait();
  bus->unsubscribe(sa);
  bus->publish("x", {}).wait();
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 2);
  EXPECT_EQ(bus->handler_count("x"), 1u);
}

TEST(UnsubscribeInline, AHandlerRemovedByAnEarlierOneIsNotCalledInTheSameDispatch) {
  auto bus = started(local_settings(DispatchMode::inline_call));
  Subscription second;
  bool second_called = false;
  bus->subscribe("x", [&](const Event&) { bus->unsubscribe(second); });
  second = bus->subscribe("x", [&](const Event&) { second_called = true; });
  bus->publish("x", {});
  EXPECT_FALSE(second_called);
}

TEST(UnsubscribePool, WaitsForTheRunningCall) {
  auto bus = started(local_settings(DispatchMode::pool, 2));
  std::atomic<bool> entered{false}, finished{false};
  auto sub = bus->subscribe("slow", [&](const Event&) {
    entered = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    finished = true;
  });
  bus->publish("slow", {});
  ASSERT_TRUE(eventually([&] { return entered.load(); }));
  bus->unsubscribe(sub);
  EXPECT_TRUE(finished);
}

INSTANTIATE_TEST_SUITE_P(Modes, Unsubscribe,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

}  // namespace
}  // namespace athomic::test
