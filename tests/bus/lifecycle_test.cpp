// start, close, and the disabled bus.
#include "test_support.h"

#include <gmock/gmock.h>

namespace athomic::test {
namespace {

using testing::HasSubstr;

TEST(Lifecycle, PublishBeforeStartFailsClearly) {
  auto bus = EventBus::create(local_settings());
  try {
    bus->publish("early", {});
    FAIL() << "expected EventBusError";
  } catch (const EventBusError& e) {
    EXPECT_THAT(e.what(), HasSubstr("not started; call start()"));
  }
}

TEST(Lifecycle, SubscriptionsMadeBeforeStartReceiveEvents) {
  auto bus = EventBus::create(local_settings());
  Counter got;
  bus->subscribe("x", [&](const Event&) { got.add(); });
  bus->start();
  bus->start();  // idempotent
  bus->publish("x", {}).wait();
  EXPECT_EQ(got.value(), 1);
}

TEST(Lifecycle, CloseWaitsForRunningHandlers) {
  auto bus = started(local_settings(DispatchMode::pool, 2));
  std::atomic<bool> entered{false}, finished{false};
  bus->subscribe("slow", [&](const Event&) {
    entered = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    finished = true;
  });
  bus->publish("slow", {});
  ASSERT_TRUE(eventually([&] { return entered.load(); }));
  bus->close();
  EXPECT_TRUE(finished);
}

TEST(Lifecycle, CloseRunsQueuedHandlersWithinTheTimeout) {
  auto bus = started(local_settings(DispatchMode::pool, 1));
  std::atomic<int> ran{0};
  bus->subscribe("q", [&](const Event&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ran++;
  });
  for (int i = 0; i < 20; ++i) bus->publish("q", {});
  bus->close(std::chrono::seconds(30));
  EXPECT_EQ(ran, 20);
  EXPECT_EQ(bus->stats().dropped_on_close, 0u);
}

TEST(Lifecycle, PublishAfterCloseFailsClearly) {
  auto bus = started(local_settings());
  Counter got;
  bus->subscribe("x", [&](const Event&) { got.add(); });
  bus->close();
  bus->close();  // idempotent
  try {
    bus->publish("x", {});
    FAIL() << "expected EventBusError";
  } catch (const EventBusError& e) {
    EXPECT_THAT(e.what(), HasSubstr("publish('x'): the event bus is closed"));
  }
  EXPECT_THROW(bus->subscribe("y", [](const Event&) {}), EventBusError);
  EXPECT_THROW(bus->start(), EventBusError);
  EXPECT_EQ(got.value(), 0);
}

TEST(Lifecycle, CloseTimeoutDropsQueuedCallsAndCountsThem) {
  auto bus = started(local_settings(DispatchMode::pool, 1));
  std::atomic<bool> release{false};
  std::atomic<int> ran{0};
  bus->subscribe("block", [&](const Event&) {
    eventually([&] { return release.load(); });
    ran++;
  });
  std::vector<Completion> pending;
  for (int i = 0; i < 10; ++i) pending.push_back(bus->publish("block", {}));
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    release = true;
  });
  bus->close(std::chrono::milliseconds(50));
  releaser.join();
  // The running call finished; the nine queued ones were dropped, and nobody waits forever.
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(bus->stats().dropped_on_close, 9u);
  for (auto& c : pending) EXPECT_TRUE(c.done());
}

TEST(Lifecycle, CloseFromInsideAHandlerIsRefused) {
  auto bus = started(local_settings(DispatchMode::pool, 2));
  std::string error;
  bus->subscribe("x", [&](const Event&) {
    try {
      bus->close();
    } catch (const EventBusError& e) {
      error = e.what();
    }
  });
  bus->publish("x", {}).wait();
  EXPECT_THAT(error, HasSubstr("close() called from inside a handler"));
}

TEST(Lifecycle, ACompletionMayOutliveItsBus) {
  Completion c;
  {
    auto bus = started(local_settings(DispatchMode::pool, 1));
    bus->subscribe("x", [](const Event&) {});
    c = bus->publish("x", {});
  }
  EXPECT_TRUE(c.done());
}

TEST(DisabledBus, AcceptsCallsAndDoesNothing) {
  auto settings = local_settings();
  settings.enabled = false;
  settings.backend = "does-not-exist";  // never loaded
  auto bus = EventBus::create(settings);
  EXPECT_FALSE(bus->enabled());
  bus->start();
  bool called = false;
  auto sub = bus->subscribe("x", [&](const Event&) { called = true; });
  EXPECT_FALSE(sub);
  EXPECT_TRUE(bus->publish("x", {{"a", 1}}).done());
  EXPECT_FALSE(called);
  EXPECT_FALSE(bus->unsubscribe(sub));
  EXPECT_EQ(bus->handler_count("x"), 0u);
  EXPECT_THROW(bus->publish("bad name", {}), EventBusError);  // still validates
  bus->close();
}

TEST(DisabledBus, FromSettingsFile) {
  auto s = Settings::from_toml("[default.events]\nenabled = false\n", "settings.toml");
  auto bus = EventBus::create(s);
  EXPECT_FALSE(bus->enabled());
}

}  // namespace
}  // namespace athomic::test
