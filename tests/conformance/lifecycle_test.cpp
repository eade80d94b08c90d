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

// Publish a burst and close at once: every publish the bus accepted has an outcome when close
// returns — delivered, or failed with a reason. None vanished.
TEST_P(Conformance, CloseWithPublishesInFlightCompletesEveryPublish) {
  const bool acknowledges = has(ATHOMIC_CAP_REMOTE) && has(ATHOMIC_CAP_ACKNOWLEDGE);
  auto bus = make_bus();
  const auto ev = name("burst");
  bus->subscribe(ev, [](const Event&) {});
  std::vector<Completion> burst;
  std::string refused;
  const std::string pad(1024, 'p');
  // At least 1000; then on until the last one is still in flight (at most 20000).
  for (int i = 0; i < 20000; ++i) {
    try {
      burst.push_back(bus->publish(ev, {{"i", i}, {"pad", pad}}));
    } catch (const EventBusError& e) {
      refused = e.what();  // the provider's buffer is full: what it took is the burst
      break;
    }
    if (i >= 1000 && !burst.back().done()) break;
  }
  const std::size_t in_flight =
      std::count_if(burst.begin(), burst.end(), [](const Completion& c) { return !c.done(); });
  bus->close();

  std::size_t vanished = 0, failed = 0, failed_silently = 0;
  for (const auto& c : burst) {
    if (!c.done()) {
      ++vanished;
    } else if (!c.delivered()) {
      ++failed;
      if (c.error().empty()) ++failed_silently;
    }
  }
  RecordProperty("published", static_cast<int>(burst.size()));
  RecordProperty("in_flight_at_close", static_cast<int>(in_flight));
  RecordProperty("failed", static_cast<int>(failed));
  if (!refused.empty()) RecordProperty("refused", refused);
  if (acknowledges) {
    EXPECT_EQ(vanished, 0u)
        << who() << " declares ATHOMIC_CAP_ACKNOWLEDGE, yet " << vanished << " of the "
        << burst.size() << " publishes it accepted before close() (" << in_flight
        << " still in flight when close began) were never completed: stop() returned without "
        << "answering them with publish_done, so they vanished. ABI 1.2: every accepted publish "
        << "is completed — delivered, or failed with a reason — at the latest before stop returns";
    EXPECT_EQ(failed_silently, 0u) << failed_silently << " publishes failed without a reason";
  } else {
    // Without acknowledgements, a remote publish is done once the provider took it, and an
    // in-process one once its handlers ran or close dropped them.
    EXPECT_EQ(vanished, 0u) << vanished << " of " << burst.size()
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
