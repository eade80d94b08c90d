// A pending async_wait and the lifetime of what it waits on: the io_context stopped or
// destroyed first (the handler is kept, or destroyed uncalled — never called on a dead
// context), run() kept going by the wait, completions racing the context's shutdown. Meant to
// run under ASan and TSan as well.
#include "asio_support.h"

#include <gmock/gmock.h>

namespace athomic::test {
namespace {

using athomic::asio::async_wait;

// The coroutine frame's lifetime shows through @p alive (destroyed with the frame).
net::awaitable<void> await_one(EventBus& bus, std::string name, std::shared_ptr<int> alive,
                               bool& resumed, boost::system::error_code& code) {
  co_await async_wait(bus.publish(name, {}), net::redirect_error(net::use_awaitable, code));
  resumed = true;
}

TEST(WaitLifetime, APendingWaitKeepsRunFromReturning) {
  auto bus = started(local_settings(DispatchMode::pool));
  Gate gate;
  bus->subscribe("slow", [&](const Event&) { gate.wait(); });
  net::io_context io;
  bool resumed = false;
  boost::system::error_code code;
  net::co_spawn(io, await_one(*bus, "slow", nullptr, resumed, code), net::detached);
  std::atomic<bool> returned{false};
  std::thread runner([&] {
    io.run();
    returned = true;
  });
  // Not a timing assertion: run() must not return at all before the gate opens; this only
  // gives it a chance to do so wrongly.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(returned.load());
  gate.open();
  runner.join();
  EXPECT_TRUE(resumed);
  EXPECT_FALSE(code);
}

TEST(WaitLifetime, TheIoContextDestroyedWhileAWaitIsPending) {
  // "held." publishes are completed by the acknowledging provider only when it stops.
  auto bus = started(acknowledging({{"hold_prefix", "held."}}));
  auto alive = std::make_shared<int>(0);
  std::weak_ptr<int> frame = alive;
  auto callback_state = std::make_shared<int>(0);
  std::weak_ptr<int> callback = callback_state;
  bool resumed = false, called = false;
  boost::system::error_code code;
  {
    net::io_context io;
    net::co_spawn(io, await_one(*bus, "held.a", std::move(alive), resumed, code), net::detached);
    async_wait(io.get_executor(), bus->publish("held.b", {}),
               [&called, keep = std::move(callback_state)](auto, auto) { called = true; });
    io.poll();  // the coroutine starts and suspends in its co_await
    EXPECT_FALSE(frame.expired());
    EXPECT_FALSE(callback.expired());
  }
  // The context destroyed its handlers, uncalled: the coroutine frame and the callback.
  EXPECT_TRUE(frame.expired());
  EXPECT_TRUE(callback.expired());
  bus->close();  // completes the held publishes now: nothing may touch the dead context
  EXPECT_FALSE(resumed);
  EXPECT_FALSE(called);
  EXPECT_EQ(bus->stats().publish_failures, 2u);
}

TEST(WaitLifetime, AStoppedIoContextKeepsTheHandlerUntilRunAgain) {
  auto bus = started(acknowledging({{"hold_prefix", "held."}}));
  net::io_context io;
  bool resumed = false;
  boost::system::error_code code;
  net::co_spawn(io, await_one(*bus, "held.a", nullptr, resumed, code), net::detached);
  io.poll();  // the coroutine starts and suspends in its co_await
  io.stop();
  bus->close();  // the publish fails now; its handler is queued on the stopped context
  EXPECT_FALSE(resumed);
  io.restart();
  io.run();
  EXPECT_TRUE(resumed);
  EXPECT_EQ(code, athomic::asio::error::publish_failed);
}

TEST(WaitLifetime, AStoppedIoContextDestroyedWithACompletedWaitQueued) {
  auto bus = started(acknowledging({{"hold_prefix", "held."}}));
  auto alive = std::make_shared<int>(0);
  std::weak_ptr<int> frame = alive;
  bool resumed = false;
  boost::system::error_code code;
  {
    net::io_context io;
    net::co_spawn(io, await_one(*bus, "held.a", std::move(alive), resumed, code), net::detached);
    io.poll();
    io.stop();
    bus->close();  // posts the handler into the stopped context's queue
    EXPECT_FALSE(frame.expired());
  }
  EXPECT_TRUE(frame.expired());
  EXPECT_FALSE(resumed);
}

TEST(WaitLifetime, CompletionsRacingTheContextsDestruction) {
  // Pool workers complete publishes while the io_context is stopped and destroyed under them:
  // each handler is either posted before the context's shutdown (and destroyed by it) or
  // dropped by the shutdown — never posted to a dead context.
  auto bus = started(local_settings(DispatchMode::pool, 4));
  bus->subscribe("work", [](const Event&) { std::this_thread::yield(); });
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> resumed{0};
    {
      net::io_context io;
      for (int k = 0; k < 8; ++k) {
        net::co_spawn(
            io,
            [&]() -> net::awaitable<void> {
              for (int i = 0; i < 1000; ++i) {
                Completion c = bus->publish("work", {{"i", i}});
                co_await async_wait(std::move(c), net::use_awaitable);
                resumed++;
              }
            },
            net::detached);
      }
      IoThreads running(io, 2);
      while (resumed.load() < 20 * (round % 4)) std::this_thread::yield();
      running.stop();
    }
  }
  bus->close();
  EXPECT_EQ(bus->stats().dropped_on_close, 0u);
}

TEST(WaitLifetime, AWaitOutlivesItsBus) {
  net::io_context io;
  int calls = 0;
  {
    auto bus = started(acknowledging({{"hold_prefix", "held."}}));
    async_wait(io.get_executor(), bus->publish("held.x", {}),
               [&](boost::system::error_code ec, Completion c) {
                 calls++;
                 EXPECT_EQ(ec, athomic::asio::error::publish_failed);
                 EXPECT_THAT(c.error(), testing::HasSubstr("stopped before it was sent"));
               });
  }  // the bus closes: the provider fails what it held
  io.run();
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace athomic::test
