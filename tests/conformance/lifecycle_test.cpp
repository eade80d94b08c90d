// Lifecycle: what the provider says it is, start and close over and over, and close with work in
// flight — handler calls queued, publishes not yet acknowledged — after which nothing has
// vanished and nothing more happens.
#include <algorithm>
#include <atomic>
#include <thread>

#include "conformance.h"

namespace athomic::conformance {
namespace {

using test::eventually;

TEST_P(Conformance, DescribesItself) {
  auto bus = make_bus();
  const auto p = bus->provider();
  EXPECT_EQ(p.name, backend());
  EXPECT_FALSE(p.version.empty());
  EXPECT_EQ(p.abi_major, ATHOMIC_ABI_VERSION_MAJOR);
  EXPECT_LE(p.abi_minor, ATHOMIC_ABI_VERSION_MINOR);
  EXPECT_TRUE(p.capabilities & (ATHOMIC_CAP_IN_PROCESS | ATHOMIC_CAP_REMOTE));
}

TEST_P(Conformance, StartAndCloseRepeatedly) {
  for (int round = 0; round < 5; ++round) {
    auto bus = make_bus();
    const auto ev = name("round." + std::to_string(round));
    Inbox inbox;
    bus->subscribe(ev, [&](const Event&) { inbox.add("x"); });
    bus->publish(ev, {});
    ASSERT_TRUE(eventually([&] { return inbox.total() == 1; })) << "round " << round;
    bus->close();
  }
}

TEST_P(Conformance, CloseWithEventsInFlight) {
  auto bus = make_bus();
  const auto ev = name("inflight");
  std::atomic<int> handled{0};
  bus->subscribe(ev, [&](const Event&) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    handled++;
  });
  std::vector<Completion> pending;
  for (int i = 0; i < 500; ++i) pending.push_back(publish_patiently(*bus, ev, {{"i", i}}));
  bus->close();
  for (auto& c : pending) EXPECT_TRUE(c.done());
  const int after_close = handled.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(handled.load(), after_close) << "a handler ran after close() returned";
}

// Publish a burst and close in the middle of it: every publish the bus accepted has an outcome
// when close returns — delivered, or failed with a reason. None vanished.
TEST_P(Conformance, CloseWithPublishesInFlightCompletesEveryPublish) {
  const bool acknowledges = has(ATHOMIC_CAP_REMOTE) && has(ATHOMIC_CAP_ACKNOWLEDGE);
  auto bus = make_bus();
  // Nobody listens, so close() has no handler calls to wait for: it stops the provider while
  // the transport still holds what the publishers, still going, gave it.
  const auto ev = name("burst");
  constexpr int kPublishers = 4;
  std::vector<std::vector<Completion>> burst(kPublishers);
  std::atomic<int> accepted{0}, refused{0};
  std::atomic<bool> closed{false};
  std::thread closer([&] {
    // Once the burst is well under way (or after a while, for a slow provider).
    test::eventually([&] { return accepted >= 2000; }, std::chrono::seconds(5));
    bus->close();
    closed = true;
  });
  on_threads(kPublishers, [&](int t) {
    const std::string pad(4096, 'p');
    for (int i = 0; !closed; ++i) {
      try {
        burst[t].push_back(bus->publish(ev, {{"t", t}, {"i", i}, {"pad", pad}}));
        accepted++;
      } catch (const EventBusError& e) {
        if (std::string(e.what()).find("closed") != std::string::npos) break;
        refused++;  // the provider's buffer is full: it refused, and kept nothing
        std::this_thread::yield();
      }
    }
  });
  closer.join();

  std::size_t total = 0, vanished = 0, failed = 0, failed_silently = 0;
  for (const auto& mine : burst) {
    for (const auto& c : mine) {
      ++total;
      if (!c.done()) {
        ++vanished;
      } else if (!c.delivered()) {
        ++failed;
        if (c.error().empty()) ++failed_silently;
      }
    }
  }
  RecordProperty("accepted", static_cast<int>(total));
  RecordProperty("refused", refused.load());
  RecordProperty("failed", static_cast<int>(failed));
  if (acknowledges) {
    EXPECT_EQ(vanished, 0u)
        << who() << " declares ATHOMIC_CAP_ACKNOWLEDGE, yet " << vanished << " of the " << total
        << " publishes it accepted before close() were never completed: stop() returned without "
        << "answering them with publish_done, so they vanished. ABI 1.2: every accepted publish "
        << "is completed — delivered, or failed with a reason — at the latest before stop returns";
    EXPECT_EQ(failed_silently, 0u) << failed_silently << " publishes failed without a reason";
  } else {
    // Without acknowledgements, a remote publish is done once the provider took it, and an
    // in-process one once its handlers ran or close dropped them.
    EXPECT_EQ(vanished, 0u) << vanished << " of " << total
                            << " Completions were not done after close() returned";
  }
  try {
    bus->publish(ev, {});
    ADD_FAILURE() << "publish after close was accepted";
  } catch (const EventBusError& e) {
    EXPECT_NE(std::string(e.what()).find("closed"), std::string::npos) << e.what();
  }
}

TEST_P(Conformance, PublishAfterCloseFailsClearly) {
  auto bus = make_bus();
  bus->close();
  try {
    bus->publish(name("closed"), {});
    FAIL() << "publish after close was accepted";
  } catch (const EventBusError& e) {
    EXPECT_NE(std::string(e.what()).find("closed"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace athomic::conformance
