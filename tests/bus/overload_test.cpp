// The pool's queue is bounded, by events and by bytes: a slow handler makes publishers wait or
// fail, never the process grow; received messages are refused to the provider, never dropped
// silently.
#include "test_support.h"

#include <gmock/gmock.h>

namespace athomic::test {
namespace {

using testing::HasSubstr;

EventsSettings bounded(const std::string& backend, uint64_t events, WhenFull when_full) {
  EventsSettings s = backend_settings(backend, DispatchMode::pool, 1);
  s.max_queued_events = events;
  s.when_full = when_full;
  return s;
}

TEST(Overload, ASlowHandlerFillsTheQueueToItsBoundAndThenPublishFails) {
  auto bus = started(bounded("local", 100, WhenFull::fail));
  Gate gate;
  std::atomic<int> handled{0};
  bus->subscribe("slow", [&](const Event&) {
    gate.wait();
    handled++;
  });
  int accepted = 0, refused = 0;
  std::string error;
  for (int i = 0; i < 1000; ++i) {
    try {
      bus->publish("slow", {{"i", i}});
      ++accepted;
    } catch (const EventBusError& e) {
      ++refused;
      error = e.what();
    }
    EXPECT_LE(bus->stats().queued_events, 100u);
  }
  EXPECT_EQ(accepted, 100);  // one running, 99 waiting: the bound counts both
  EXPECT_EQ(refused, 900);
  EXPECT_THAT(error, HasSubstr("publish('slow'): the dispatch queue is full"));
  EXPECT_THAT(error, HasSubstr("events.executor.max_queued_events = 100"));
  EXPECT_THAT(error, HasSubstr("when_full is \"fail\""));
  EXPECT_EQ(bus->stats().queue_full, 900u);
  gate.open();
  ASSERT_TRUE(eventually([&] { return handled.load() == accepted; }));
  ASSERT_TRUE(eventually([&] { return bus->stats().queued_events == 0; }));
  // Room again: publishing works.
  EXPECT_NO_THROW(bus->publish("slow", {}).wait());
}

TEST(Overload, TheByteBoundHoldsForLargePayloads) {
  auto s = bounded("local", 100000, WhenFull::fail);
  s.max_queued_bytes = 256 * 1024;
  auto bus = started(s);
  Gate gate;
  bus->subscribe("big", [&](const Event&) { gate.wait(); });
  const nlohmann::json payload = {{"blob", std::string(20 * 1024, 'x')}};
  int accepted = 0;
  for (int i = 0; i < 100; ++i) {
    try {
      bus->publish("big", payload);
      ++accepted;
    } catch (const EventBusError&) {
    }
    EXPECT_LE(bus->stats().queued_bytes, 256u * 1024);
  }
  EXPECT_GE(accepted, 5);   // 20 KiB each, with the record and the tree's overhead
  EXPECT_LE(accepted, 12);
  gate.open();
}

TEST(Overload, AnEventLargerThanTheWholeQueueIsRefusedAtOnce) {
  auto s = bounded("local", 100, WhenFull::block);
  s.max_queued_bytes = 4096;
  auto bus = started(s);
  bus->subscribe("big", [](const Event&) {});
  try {
    bus->publish("big", {{"blob", std::string(8192, 'x')}});
    FAIL() << "expected EventBusError";
  } catch (const EventBusError& e) {
    EXPECT_THAT(e.what(), HasSubstr("more than the whole queue may"));
    EXPECT_THAT(e.what(), HasSubstr("max_queued_bytes = 4096"));
  }
}

TEST(Overload, BlockWaitsForRoomAndThenSucceeds) {
  auto s = bounded("local", 10, WhenFull::block);
  s.publish_timeout = std::chrono::seconds(60);
  auto bus = started(s);
  Gate gate;
  std::atomic<int> handled{0};
  bus->subscribe("q", [&](const Event&) {
    gate.wait();
    handled++;
  });
  for (int i = 0; i < 10; ++i) bus->publish("q", {});
  std::atomic<bool> published{false};
  std::thread publisher([&] {
    bus->publish("q", {});  // waits for room
    published = true;
  });
  // It is waiting: nothing lets it through before the gate opens.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(published.load());
  gate.open();
  publisher.join();
  EXPECT_TRUE(published.load());
  ASSERT_TRUE(eventually([&] { return handled.load() == 11; }));
}

TEST(Overload, BlockGivesUpAfterThePublishTimeout) {
  auto s = bounded("local", 5, WhenFull::block);
  s.publish_timeout = std::chrono::milliseconds(100);
  auto bus = started(s);
  Gate gate;
  bus->subscribe("q", [&](const Event&) { gate.wait(); });
  for (int i = 0; i < 5; ++i) bus->publish("q", {});
  try {
    bus->publish("q", {});
    FAIL() << "expected EventBusError";
  } catch (const EventBusError& e) {
    EXPECT_THAT(e.what(), HasSubstr("the dispatch queue is full"));
    EXPECT_THAT(e.what(), HasSubstr("for events.executor.publish_timeout (100 ms)"));
  }
  EXPECT_EQ(bus->stats().queue_full, 1u);
  gate.open();
}

TEST(Overload, ClosingReleasesPublishersWaitingForRoom) {
  auto s = bounded("local", 2, WhenFull::block);
  s.publish_timeout = std::chrono::seconds(60);
  auto bus = started(s);
  Gate gate;
  bus->subscribe("q", [&](const Event&) { gate.wait(); });
  bus->publish("q", {});
  bus->publish("q", {});
  std::string error;
  std::thread publisher([&] {
    try {
      bus->publish("q", {});
    } catch (const EventBusError& e) {
      error = e.what();
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::thread opener([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    gate.open();
  });
  bus->close(std::chrono::seconds(30));
  publisher.join();
  opener.join();
  EXPECT_THAT(error, HasSubstr("the event bus is closed"));
}

TEST(Overload, AHandlersOwnPublishDoesNotWaitForTheQueueItDrains) {
  // One worker and a queue of 10: a handler that fans out 50 events would wait for itself.
  auto s = bounded("local", 10, WhenFull::block);
  s.publish_timeout = std::chrono::seconds(600);
  auto bus = started(s);
  std::atomic<int> accepted{0}, refused{0};
  std::string error;
  bus->subscribe("fan.in", [&](const Event&) {
    for (int i = 0; i < 50; ++i) {
      try {
        bus->publish("fan.out", {});
        accepted++;
      } catch (const EventBusError& e) {
        if (refused++ == 0) error = e.what();
      }
    }
  });
  bus->subscribe("fan.out", [](const Event&) {});
  bus->publish("fan.in", {}).wait();
  EXPECT_EQ(accepted + refused, 50);
  EXPECT_GT(refused.load(), 0);
  EXPECT_THAT(error, HasSubstr("a handler's publish does not wait for room"));
}

TEST(Overload, ReceivedMessagesAreRefusedToTheProviderNotDropped) {
  // loopback delivers inside publish: a refusal from the host comes back to the publisher.
  auto bus = started(bounded("loopback", 10, WhenFull::block));
  Gate gate;
  std::atomic<int> handled{0};
  bus->subscribe("wire", [&](const Event&) {
    gate.wait();
    handled++;
  });
  int accepted = 0, refused = 0;
  for (int i = 0; i < 50; ++i) {
    try {
      bus->publish("wire", {{"i", i}});
      ++accepted;
    } catch (const EventBusError& e) {
      EXPECT_THAT(e.what(), HasSubstr("queue is full"));
      ++refused;
    }
  }
  EXPECT_EQ(accepted, 10);
  EXPECT_EQ(refused, 40);
  EXPECT_EQ(bus->stats().receive_refusals, 40u);
  EXPECT_EQ(bus->stats().malformed_messages, 0u);
  gate.open();
  ASSERT_TRUE(eventually([&] { return handled.load() == 10; }));
}

}  // namespace
}  // namespace athomic::test
