// athomic::asio::subscribe: handlers run on an Asio executor of the application's choosing,
// inside the publisher's execution context — serialised and in order on a strand; what
// unsubscribe covers (calls already queued too); failures isolated; calls outliving the bus.
#include "asio_support.h"
#include "log_capture.h"

#include <gmock/gmock.h>

#include <chrono>
#include <mutex>
#include <thread>

namespace athomic::test {
namespace {

using testing::HasSubstr;

// Polls @p io (restarted: a poll that finds nothing to do stops it) until @p pred holds.
template <class Pred>
bool poll_until(net::io_context& io, Pred pred) {
  return eventually([&] {
    io.restart();
    io.poll();
    return pred();
  });
}

class OnExecutor : public testing::TestWithParam<Backend> {
 protected:
  std::shared_ptr<EventBus> bus = started(backend_settings(GetParam().name, GetParam().mode));
};

TEST_P(OnExecutor, AStrandRunsTheCallsOneAtATimeInOrderInsideThePublishersContext) {
  constexpr int kEvents = 300;
  net::io_context io;
  auto strand = net::make_strand(io);
  IoThreads running(io, 3);  // several threads: only the strand serialises
  std::mutex mutex;
  std::vector<int> order;
  std::atomic<int> in_flight{0}, overlaps{0}, off_strand{0}, wrong_context{0};
  Counter got;
  athomic::asio::subscribe(*bus, "order.paid", strand, [&](const Event& e) {
    if (in_flight.fetch_add(1) != 0) overlaps++;
    if (!strand.running_in_this_thread()) off_strand++;
    const int n = e.payload()["n"];
    const std::string expected = "trace-" + std::to_string(n);
    if (current_trace() != expected || e.context().trace_id() != expected ||
        e.context().tenant_id() != "acme" || e.name() != "order.paid") {
      wrong_context++;
    }
    {
      std::lock_guard lock(mutex);
      order.push_back(n);
    }
    in_flight.fetch_sub(1);
    got.add();
  });
  for (int i = 0; i < kEvents; ++i) {
    publish_in(*bus, trace("trace-" + std::to_string(i)), "order.paid", {{"n", i}});
  }
  ASSERT_TRUE(got.wait_for_at_least(kEvents));
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(off_strand.load(), 0);
  EXPECT_EQ(wrong_context.load(), 0);
  std::lock_guard lock(mutex);
  ASSERT_EQ(order.size(), static_cast<std::size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) ASSERT_EQ(order[i], i);
}

TEST_P(OnExecutor, TheContextIsRestoredAfterwards) {
  net::io_context io;
  auto strand = net::make_strand(io);
  std::string inside, after = "unset";
  athomic::asio::subscribe(*bus, "ping", strand, [&](const Event&) {
    inside = current_trace();
    net::post(strand, [&] { after = current_trace(); });
  });
  publish_in(*bus, trace("trace-1"), "ping", {}).wait();
  ASSERT_TRUE(poll_until(io, [&] { return after != "unset"; }));
  EXPECT_EQ(inside, "trace-1");
  EXPECT_EQ(after, "<none>");
}

TEST_P(OnExecutor, BindExecutorAndPayloadOnlyHandlers) {
  net::io_context io;
  auto strand = net::make_strand(io);
  int sum = 0;
  bool on_strand = true;
  athomic::asio::subscribe(*bus, "add", net::bind_executor(strand, [&](const nlohmann::json& p) {
    sum += p["n"].get<int>();
    on_strand = on_strand && strand.running_in_this_thread();
  }));
  for (int i = 1; i <= 4; ++i) bus->publish("add", {{"n", i}}).wait();
  ASSERT_TRUE(poll_until(io, [&] { return sum == 10; }));
  EXPECT_TRUE(on_strand);
}

TEST_P(OnExecutor, AfterUnsubscribeCallsAlreadyQueuedAreSkipped) {
  // The io_context is not running: calls pile up in its queue.
  net::io_context io;
  auto state = std::make_shared<int>(0);
  std::weak_ptr<int> watch = state;
  std::atomic<int> calls{0};
  athomic::asio::ExecutorSubscription sub =
      athomic::asio::subscribe(*bus, "tick", io.get_executor(),
                               [&calls, state = std::move(state)](const Event&) { calls++; });
  for (int i = 0; i < 5; ++i) bus->publish("tick", {}).wait();
  // Remote pool dispatch: the publish is done once sent; the bus's handler posts later.
  ASSERT_TRUE(eventually([&] { return bus->stats().queued_events == 0; }));
  EXPECT_TRUE(athomic::asio::unsubscribe(*bus, sub));
  EXPECT_FALSE(athomic::asio::unsubscribe(*bus, sub));
  for (int i = 0; i < 5; ++i) bus->publish("tick", {}).wait();
  io.run();
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(bus->handler_count("tick"), 0u);
  // The skipped calls held the handler until their turn; the bus's copy goes with the bus.
  bus.reset();
  EXPECT_TRUE(watch.expired());
}

TEST_P(OnExecutor, UnsubscribeWaitsForARunningCall) {
  net::io_context io;
  IoThreads running(io, 1);
  std::atomic<bool> entered{false}, release{false}, returned{false};
  auto sub = athomic::asio::subscribe(*bus, "slow", io.get_executor(), [&](const Event&) {
    entered = true;
    while (!release) std::this_thread::yield();
    returned = true;
  });
  bus->publish("slow", {});
  ASSERT_TRUE(eventually([&] { return entered.load(); }));
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    release = true;
  });
  EXPECT_TRUE(athomic::asio::unsubscribe(*bus, sub));
  EXPECT_TRUE(returned.load());  // not running any more when unsubscribe returned
  releaser.join();
}

TEST_P(OnExecutor, AHandlerMayUnsubscribeItselfAndTheOtherWay) {
  net::io_context io;
  auto strand = net::make_strand(io);
  std::atomic<int> a_calls{0}, b_after_a{0};
  std::atomic<bool> a_ran{false};
  athomic::asio::ExecutorSubscription a, b;
  a = athomic::asio::subscribe(*bus, "pair", strand, [&](const Event&) {
    a_calls++;
    a_ran = true;
    athomic::asio::unsubscribe(*bus, a);  // itself: must not wait for itself
    athomic::asio::unsubscribe(*bus, b);  // its neighbour, queued behind it on the strand
  });
  b = athomic::asio::subscribe(*bus, "pair", strand, [&](const Event&) {
    if (a_ran) b_after_a++;
  });
  for (int i = 0; i < 3; ++i) bus->publish("pair", {}).wait();
  ASSERT_TRUE(eventually([&] { return bus->stats().queued_events == 0; }));
  io.run();
  EXPECT_EQ(a_calls.load(), 1);
  EXPECT_EQ(b_after_a.load(), 0);  // a's first call closed b, whatever was queued behind it
}

TEST_P(OnExecutor, AHandlerThatThrowsIsLoggedAndTheExecutorCarriesOn) {
  LogCapture log("athomic.events");
  net::io_context io;
  std::atomic<int> calls{0};
  athomic::asio::subscribe(*bus, "boom", io.get_executor(), [&](const Event& e) {
    calls++;
    if (e.payload()["n"] == 1) throw std::runtime_error("nope");
  });
  for (int i = 0; i < 3; ++i) bus->publish("boom", {{"n", i}}).wait();
  ASSERT_TRUE(poll_until(io, [&] { return calls.load() == 3; }));
  EXPECT_THAT(log.text(), HasSubstr("handler on an executor for 'boom' threw: nope"));
}

TEST_P(OnExecutor, QueuedCallsOutliveTheBus) {
  net::io_context io;
  std::string seen;
  {
    auto own = started(backend_settings(GetParam().name, GetParam().mode));
    athomic::asio::subscribe(*own, "late", io.get_executor(), [&](const Event& e) {
      seen =
          std::string(e.name()) + " " + e.payload()["v"].get<std::string>() + " " + current_trace();
    });
    publish_in(*own, trace("trace-9"), "late", {{"v", "kept"}}).wait();
    ASSERT_TRUE(eventually([&] { return own->stats().queued_events == 0; }));
  }  // the bus is gone; its call waits in the io_context
  io.run();
  EXPECT_EQ(seen, "late kept trace-9");
}

TEST_P(OnExecutor, AnIoContextDestroyedFirstTakesTheHandlerAndLaterEventsAreDropped) {
  LogCapture log("athomic.events");
  auto state = std::make_shared<int>(0);
  std::weak_ptr<int> watch = state;
  bool called = false;
  athomic::asio::ExecutorSubscription sub;
  {
    net::io_context io;
    auto strand = net::make_strand(io);
    sub = athomic::asio::subscribe(
        *bus, "never", strand,
        [&called, state = std::move(state)](const Event&) { called = true; });
    bus->publish("never", {{"big", std::string(1000, 'x')}}).wait();
    ASSERT_TRUE(eventually([&] { return bus->stats().queued_events == 0; }));
    EXPECT_FALSE(watch.expired());
  }
  // The queued call was destroyed uncalled, and the subscription let go of the handler and of
  // the strand (whose destruction after its io_context would be undefined).
  EXPECT_FALSE(called);
  EXPECT_TRUE(watch.expired());
  bus->publish("never", {}).wait();
  bus->publish("never", {}).wait();
  ASSERT_TRUE(eventually([&] { return bus->stats().queued_events == 0; }));
  EXPECT_EQ(bus->handler_count("never"), 1u);
  EXPECT_THAT(log.text(), HasSubstr("events for 'never' are dropped: the execution context of "
                                    "the executor their handler runs on has shut down"));
  EXPECT_TRUE(athomic::asio::unsubscribe(*bus, sub));
}

INSTANTIATE_TEST_SUITE_P(Backends, OnExecutor, kBackends, backend_name);

TEST(OnExecutorLocal, ThePayloadIsSharedNotCopied) {
  auto bus = started(local_settings(DispatchMode::pool));
  net::io_context io;
  const nlohmann::json* seen = nullptr;
  athomic::asio::subscribe(*bus, "order.paid", io.get_executor(),
                           [&](const Event& e) { seen = &e.payload(); });
  auto payload = std::make_shared<const nlohmann::json>(nlohmann::json{{"amount", 42}});
  bus->publish("order.paid", payload).wait();
  io.run();
  EXPECT_EQ(seen, payload.get());
}

}  // namespace
}  // namespace athomic::test
