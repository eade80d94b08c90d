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
  Gate gate;
  std::atomic<int> ran{0};
  bus->subscribe("block", [&](const Event&) {
    gate.wait();
    ran++;
  });
  std::vector<Completion> pending;
  for (int i = 0; i < 10; ++i) pending.push_back(bus->publish("block", {}));
  ASSERT_TRUE(eventually([&] { return bus->stats().queued_events == 10; }));
  // close() returns while the first call still runs; the gate opens only afterwards.
  bus->close(std::chrono::milliseconds(50));
  EXPECT_EQ(bus->stats().running_at_close, 1u);
  gate.open();
  // The running call finishes; the nine queued behind it are dropped as it returns, and nobody
  // waits forever.
  ASSERT_TRUE(eventually([&] { return bus->stats().dropped_on_close == 9; }));
  EXPECT_EQ(ran, 1);
  for (auto& c : pending) EXPECT_TRUE(eventually([&] { return c.done(); }));
}

class BoundedClose : public testing::TestWithParam<std::tuple<std::string, DispatchMode>> {};

TEST_P(BoundedClose, ReturnsWhileAHandlerIsStuckAndTheHandlerFinishesLater) {
  auto s = backend_settings(std::get<0>(GetParam()), std::get<1>(GetParam()), 2);
  auto bus = started(s);
  Gate gate, entered;
  std::atomic<bool> finished{false};
  bus->subscribe("stuck", [&, payload_seen = std::make_shared<int>(0)](const Event& e) {
    entered.open();
    gate.wait();
    // What the handler uses is still alive after close returned.
    (*payload_seen) += e.payload()["n"].get<int>();
    EXPECT_EQ(e.name(), "stuck");
    finished = true;
  });
  // Inline dispatch runs the handler on the publishing thread: publish from another one.
  // The publishing thread holds its own reference, as any thread using a shared bus does.
  std::thread publisher([&, mine = bus]() mutable {
    try {
      mine->publish("stuck", {{"n", 1}});
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
    mine.reset();
  });
  ASSERT_TRUE(entered.wait());
  bus->close(std::chrono::milliseconds(100));  // returns: the gate is still shut
  EXPECT_FALSE(finished.load());
  EXPECT_THROW(bus->publish("stuck", {}), EventBusError);
  bus.reset();  // the last reference may go while the handler runs
  gate.open();
  publisher.join();
  EXPECT_TRUE(eventually([&] { return finished.load(); }));
}

INSTANTIATE_TEST_SUITE_P(
    Everywhere, BoundedClose,
    testing::Combine(testing::Values("local", "loopback"),
                     testing::Values(DispatchMode::pool, DispatchMode::inline_call)),
    [](const auto& info) {
      return std::get<0>(info.param) +
             (std::get<1>(info.param) == DispatchMode::pool ? "Pool" : "Inline");
    });

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
