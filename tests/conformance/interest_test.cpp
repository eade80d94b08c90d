// Interest: the provider receives a name exactly while the host has handlers for it — from the
// moment subscribe() returns (confirmed by the transport) until the last handler unsubscribed
// (interest_remove honoured) — and events cross processes with their context.
//
// The cross-process checks use a fence: the peer publishes the events under test and then one
// event on a name this process subscribed to long before. Once the fence has arrived, whatever
// the events were going to do has been done.
#include <signal.h>

#include <thread>

#include "conformance.h"

namespace athomic::conformance {
namespace {

using test::eventually;

TEST_P(Conformance, InterestFollowsHandlers) {
  auto bus = make_bus();
  const auto ev = name("interest");
  Inbox first, second;
  auto sub = bus->subscribe(ev, [&](const Event& e) { first.add(e.payload()["i"].dump()); });
  bus->publish(ev, {{"i", 1}});
  ASSERT_TRUE(eventually([&] { return first.total() == 1; }));
  ASSERT_TRUE(bus->unsubscribe(sub));
  EXPECT_EQ(bus->handler_count(ev), 0u);
  bus->publish(ev, {{"i", 2}});  // nobody listens: accepted, delivered nowhere
  bus->subscribe(ev, [&](const Event& e) { second.add(e.payload()["i"].dump()); });
  bus->publish(ev, {{"i", 3}});
  ASSERT_TRUE(eventually([&] { return second.count("3") == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(first.total(), 1u);
  EXPECT_EQ(second.count("2"), 0);
}

TEST_P(Conformance, SubscriptionIsConfirmedBeforeSubscribeReturns) {
  auto bus = make_bus();
  const auto ev = name("confirmed");
  Inbox got;
  if (!has(ATHOMIC_CAP_REMOTE)) {
    // In process: an event published right after subscribe() returns, from another thread.
    bus->subscribe(ev, [&](const Event&) { got.add("x"); });
    on_threads(1, [&](int) { bus->publish(ev, {}); });
    EXPECT_TRUE(eventually([&] { return got.total() == 1; }, std::chrono::seconds(5)))
        << "an event published right after subscribe() returned never arrived";
    return;
  }
  const auto fence = name("fence");
  Fences fences;
  bus->subscribe(fence, [&](const Event& e) { fences.add(e.payload()["batch"].get<int>()); });
  Peer peer("publisher", GetParam(),
            {"--peer-event", ev, "--peer-fence", fence, "--peer-count", "1"});
  ASSERT_TRUE(peer.ready());
  ASSERT_TRUE(fence_flows(peer, fences))
      << "events another process published on a subscribed name never arrived";

  bus->subscribe(ev, [&](const Event&) { got.add("x"); });
  const auto batch = peer.request(SIGUSR1);  // the peer publishes the moment subscribe returned
  ASSERT_TRUE(batch) << "the peer did not answer";
  ASSERT_TRUE(fences.wait_for(*batch, kPatience))
      << "the fence the peer published after the event never arrived";
  // The event and the fence have different names: the event may come a little after.
  const bool arrived = eventually([&] { return got.total() >= 1; }, std::chrono::seconds(2));
  EXPECT_TRUE(arrived)
      << who() << ": an event another process published right after subscribe() returned never "
      << "arrived (the one it published next, on a name subscribed earlier, did). subscribe() "
      << "returned before the subscription was in place: interest_add must return only once "
      << "the transport has confirmed the subscription (docs/WRITING_A_PROVIDER.md, Threads)";
  EXPECT_EQ(peer.finish(), 0);
}

TEST_P(Conformance, InterestRemoveIsHonoured) {
  if (!has(ATHOMIC_CAP_REMOTE)) {
    GTEST_SKIP() << "in-process provider (no ATHOMIC_CAP_REMOTE): no other process can publish "
                    "to it, and the host itself stops dispatching a name without handlers";
  }
  constexpr int kAfter = 20;
  auto bus = make_bus();
  const auto ev = name("removed"), fence = name("fence");
  Inbox got;
  Fences fences;
  bus->subscribe(fence, [&](const Event& e) { fences.add(e.payload()["batch"].get<int>()); });
  auto sub = bus->subscribe(
      ev, [&](const Event& e) { got.add(std::to_string(e.payload().value("batch", -1))); });
  Peer peer("publisher", GetParam(),
            {"--peer-event", ev, "--peer-fence", fence, "--peer-count", std::to_string(kAfter)});
  ASSERT_TRUE(peer.ready());
  // Events flow from the other process while this one listens: a whole batch arrived, so no
  // event published before it is still on its way (the peer sends them in order on one
  // connection; the fence may travel another, a cluster's other shard).
  bool flowing = false;
  for (int round = 0; round < 60 && !flowing; ++round) {
    const auto batch = peer.request(SIGUSR1);
    ASSERT_TRUE(batch) << "the peer did not answer";
    flowing = fences.wait_for(*batch, std::chrono::milliseconds(500)) &&
              eventually([&] { return got.count(std::to_string(*batch)) == kAfter; },
                         std::chrono::milliseconds(500));
  }
  ASSERT_TRUE(flowing) << "events another process published never arrived, even while subscribed";

  ASSERT_TRUE(bus->unsubscribe(sub));
  // One round trip through the provider after the unsubscribe, for transports that apply it
  // asynchronously but in order.
  bus->publish(fence, {{"batch", -1}});
  ASSERT_TRUE(fences.wait_for(-1, kPatience)) << "an event this process published never arrived";
  const uint64_t before = bus->stats().undeliverable;
  const std::size_t handled = got.total();

  const auto batch = peer.request(SIGUSR1);
  ASSERT_TRUE(batch) << "the peer did not answer";
  ASSERT_TRUE(fences.wait_for(*batch, kPatience))
      << "the fence the peer published after the events never arrived";
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the events' names differ
  const uint64_t grew = bus->stats().undeliverable - before;
  EXPECT_EQ(grew, 0u)
      << who() << " still receives '" << ev << "' after its last handler unsubscribed: " << grew
      << " of the " << kAfter << " events another process published afterwards reached this "
      << "process, where the host dropped them as undeliverable (BusStats::undeliverable grew by "
      << grew << "). interest_remove was not honoured: after it returns the provider must stop "
      << "receiving that name";
  EXPECT_EQ(got.total(), handled) << "the unsubscribed handler was called again";
  EXPECT_EQ(peer.finish(), 0);
}

TEST_P(Conformance, TwoProcessesExchangeEventsWithContext) {
  if (!has(ATHOMIC_CAP_REMOTE))
    GTEST_SKIP() << "provider is in-process only (no ATHOMIC_CAP_REMOTE)";
  constexpr int kPings = 20;
  const auto prefix = name("two");
  Peer peer("pong", GetParam(), {"--peer-event", prefix, "--peer-count", std::to_string(kPings)});
  ASSERT_TRUE(peer.ready());
  auto bus = make_bus();
  std::mutex m;
  std::map<int, std::string> pongs;  // n -> trace seen by the peer's handler
  std::map<int, std::string> contexts;
  bus->subscribe(prefix + ".pong", [&](const Event& e) {
    std::lock_guard lock(m);
    const int n = e.payload()["n"].get<int>();
    pongs[n] = e.payload()["seen_trace"].get<std::string>();
    contexts[n] = std::string(e.context().trace_id().value_or(""));
  });
  for (int n = 0; n < kPings; ++n) {
    ContextScope scope(ExecutionContext::Builder().trace_id("x-" + std::to_string(n)).build());
    bus->publish(prefix + ".ping", {{"n", n}});
  }
  auto received = [&] {
    std::lock_guard lock(m);
    return pongs.size();
  };
  ASSERT_TRUE(settle([&] { return received() == kPings; }, received))
      << "received " << received() << " of " << kPings << " answers from the other process";
  for (int n = 0; n < kPings; ++n) {
    EXPECT_EQ(pongs[n], "x-" + std::to_string(n));
    EXPECT_EQ(contexts[n], "x-" + std::to_string(n));
  }
  EXPECT_EQ(peer.finish(), 0);
}

}  // namespace
}  // namespace athomic::conformance
