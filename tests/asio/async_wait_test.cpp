// athomic::asio::async_wait with every kind of completion token, on the real `local` plugin in
// both dispatch modes, on the loopback remote provider, and on the acknowledging one for the
// transport's failures.
#include "asio_support.h"

#include <gmock/gmock.h>

#include <future>
#include <mutex>

namespace athomic::test {
namespace {

using athomic::asio::async_wait;
using testing::HasSubstr;

class AsyncWait : public testing::TestWithParam<Backend> {
 protected:
  std::shared_ptr<EventBus> bus = started(backend_settings(GetParam().name, GetParam().mode));
  bool in_process() const { return GetParam().name == "local"; }
};

// What the handler saw, by event.
struct Seen {
  std::mutex mutex;
  std::vector<std::pair<int, std::string>> events;  // payload "n", current trace id
  void add(int n, std::string t) {
    std::lock_guard lock(mutex);
    events.emplace_back(n, std::move(t));
  }
  std::size_t size() {
    std::lock_guard lock(mutex);
    return events.size();
  }
};

net::awaitable<void> publish_and_await(EventBus& bus, Seen& seen, bool in_process, int count,
                                       bool& finished) {
  auto ex = co_await net::this_coro::executor;
  for (int i = 0; i < count; ++i) {
    Completion c = publish_in(bus, trace("trace-" + std::to_string(i)), "order.paid", {{"n", i}});
    Completion done = co_await async_wait(std::move(c), net::use_awaitable);
    EXPECT_TRUE(done.done());
    EXPECT_TRUE(done.delivered());
    EXPECT_EQ(done.error(), "");
    // Resumed on the coroutine's executor, not on the bus's thread.
    EXPECT_TRUE(ex.target<net::io_context::executor_type>()->running_in_this_thread());
    // In process, done means the handler has run.
    if (in_process) {
      EXPECT_EQ(seen.size(), static_cast<std::size_t>(i + 1));
    }
  }
  finished = true;
}

TEST_P(AsyncWait, ACoroutineCoAwaitsEachPublish) {
  Seen seen;
  bus->subscribe("order.paid",
                 [&](const Event& e) { seen.add(e.payload()["n"], current_trace()); });
  net::io_context io;
  bool finished = false;
  std::exception_ptr failure;
  net::co_spawn(io, publish_and_await(*bus, seen, in_process(), 50, finished),
                [&](std::exception_ptr e) { failure = e; });
  // No work guard: the pending waits alone keep run() from returning early.
  io.run();
  EXPECT_FALSE(failure);
  EXPECT_TRUE(finished);
  ASSERT_TRUE(eventually([&] { return seen.size() == 50; }));
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(seen.events[i].first, i);
    EXPECT_EQ(seen.events[i].second, "trace-" + std::to_string(i));
  }
}

TEST_P(AsyncWait, ManyCoroutinesOnSeveralThreads) {
  constexpr int kCoroutines = 16, kEach = 40;
  Seen seen;
  bus->subscribe("order.paid",
                 [&](const Event& e) { seen.add(e.payload()["n"], current_trace()); });
  net::io_context io;
  std::atomic<int> finished{0};
  for (int k = 0; k < kCoroutines; ++k) {
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
          for (int i = 0; i < kEach; ++i) {
            // (A braced payload inside the co_await operand trips GCC 12: "array used as
            // initializer". Publishing in a statement of its own avoids it.)
            Completion c = bus->publish("order.paid", {{"n", i}});
            Completion done = co_await async_wait(std::move(c), net::use_awaitable);
            EXPECT_TRUE(done.delivered());
          }
          finished++;
        },
        net::detached);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) threads.emplace_back([&] { io.run(); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(finished.load(), kCoroutines);
  EXPECT_TRUE(eventually([&] { return seen.size() == kCoroutines * kEach; }));
}

TEST_P(AsyncWait, ACallbackRunsOnTheGivenExecutorNeverInsideAsyncWait) {
  bus->subscribe("ping", [](const Event&) {});
  net::io_context io;
  bool called = false, on_io = false;
  boost::system::error_code code = athomic::asio::error::publish_failed;
  // Inline dispatch: the publish is done before async_wait is called; the callback is still
  // posted, not run at once.
  async_wait(io.get_executor(), bus->publish("ping", {}),
             [&](boost::system::error_code ec, Completion c) {
               called = true;
               code = ec;
               on_io = io.get_executor().running_in_this_thread();
               EXPECT_TRUE(c.done());
             });
  EXPECT_FALSE(called);
  io.run();
  EXPECT_TRUE(called);
  EXPECT_TRUE(on_io);
  EXPECT_FALSE(code);
}

TEST_P(AsyncWait, ACallbackBoundToAStrandRunsOnIt) {
  bus->subscribe("ping", [](const Event&) {});
  net::io_context io;
  auto strand = net::make_strand(io);
  bool on_strand = false;
  async_wait(bus->publish("ping", {}),
             net::bind_executor(strand, [&](boost::system::error_code, Completion) {
               on_strand = strand.running_in_this_thread();
             }));
  io.run();
  EXPECT_TRUE(on_strand);
}

TEST_P(AsyncWait, UseFutureNeedsNoIoContext) {
  Counter got;
  bus->subscribe("ping", [&](const Event&) { got.add(); });
  std::future<Completion> f = async_wait(bus->publish("ping", {}), net::use_future);
  ASSERT_EQ(f.wait_for(kGenerous), std::future_status::ready);
  Completion c = f.get();
  EXPECT_TRUE(c.done());
  EXPECT_TRUE(c.delivered());
  EXPECT_TRUE(got.wait_for_at_least(1));
}

TEST_P(AsyncWait, UsableInsideAHandlerOfTheSameBus) {
  // Completion::wait() is refused there in some cases; async_wait never blocks.
  net::io_context io;
  IoThreads running(io, 1);
  Counter inner_done;
  bus->subscribe("inner", [](const Event&) {});
  bus->subscribe("outer", [&](const Event&) {
    async_wait(io.get_executor(), bus->publish("inner", {}),
               [&](boost::system::error_code ec, Completion c) {
                 EXPECT_FALSE(ec);
                 EXPECT_TRUE(c.delivered());
                 inner_done.add();
               });
  });
  bus->publish("outer", {});
  EXPECT_TRUE(inner_done.wait_for_at_least(1));
}

net::awaitable<void> refused_wait(Completion c, std::string& refusal) {
  try {
    co_await async_wait(std::move(c), net::use_awaitable);
  } catch (const EventBusError& e) {
    refusal = e.what();
  }
}

TEST_P(AsyncWait, ACompletionWhoseThenIsTakenIsRefused) {
  Gate gate;
  Counter left;
  bus->subscribe("slow", [&](const Event&) {
    gate.wait();
    left.add();
  });
  if (GetParam().mode == DispatchMode::inline_call) gate.open();
  Completion c = bus->publish("slow", {});
  if (!c.done()) {  // only a pending publish has a continuation slot to take
    c.then([] {});
    net::io_context io;
    EXPECT_THROW(async_wait(io.get_executor(), std::move(c), [](auto, auto) {}), EventBusError);
    io.run();  // nothing pending: returns at once
  }
  // In a coroutine the refusal is thrown at the co_await.
  Completion d = bus->publish("slow", {});
  if (!d.done()) {
    d.then([] {});
    net::io_context io;
    std::string refusal;
    net::co_spawn(io, refused_wait(std::move(d), refusal), net::detached);
    io.run();
    EXPECT_THAT(refusal, HasSubstr("Completion::then called twice"));
  }
  gate.open();
  ASSERT_TRUE(left.wait_for_at_least(2));  // the handler is done with the gate
}

INSTANTIATE_TEST_SUITE_P(Backends, AsyncWait, kBackends, backend_name);

// ---------------------------------------------------------------------------------------------
// The transport's verdict

class AsyncWaitVerdict : public testing::TestWithParam<DispatchMode> {
 protected:
  std::shared_ptr<EventBus> bus =
      started(acknowledging({{"limits", {{"receivers", 3}}}}, GetParam()));
};

TEST_P(AsyncWaitVerdict, ADeliveredPublishYieldsItsCompletion) {
  net::io_context io;
  int64_t receivers = 0;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        Completion c = co_await async_wait(bus->publish("ok.event", {}), net::use_awaitable);
        receivers = c.receivers();
      },
      net::detached);
  io.run();
  EXPECT_EQ(receivers, 3);
}

TEST_P(AsyncWaitVerdict, AFailedPublishThrowsFromCoAwait) {
  net::io_context io;
  std::optional<boost::system::system_error> thrown;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        try {
          co_await async_wait(bus->publish("refused.event", {}), net::use_awaitable);
        } catch (const boost::system::system_error& e) {
          thrown = e;
        }
      },
      net::detached);
  io.run();
  ASSERT_TRUE(thrown);
  EXPECT_EQ(thrown->code(), athomic::asio::error::publish_failed);
  EXPECT_STREQ(thrown->code().category().name(), "athomic");
  EXPECT_THAT(thrown->what(), HasSubstr("the transport failed the publish"));
  EXPECT_EQ(bus->stats().publish_failures, 1u);
}

TEST_P(AsyncWaitVerdict, RedirectErrorGivesTheCodeAndTheTransportsReason) {
  net::io_context io;
  boost::system::error_code ec;
  std::string reason;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        Completion c = co_await async_wait(bus->publish("refused.event", {}),
                                           net::redirect_error(net::use_awaitable, ec));
        reason = c.error();
      },
      net::detached);
  io.run();
  EXPECT_EQ(ec, athomic::asio::error::publish_failed);
  EXPECT_THAT(reason, HasSubstr("the server refused it"));
  // It converts to std::error_code, keeping its category.
  const std::error_code std_ec = ec;
  EXPECT_STREQ(std_ec.category().name(), "athomic");
  EXPECT_EQ(std_ec.value(), static_cast<int>(athomic::asio::error::publish_failed));
}

TEST_P(AsyncWaitVerdict, ACallbackGetsTheCodeAndTheCompletion) {
  net::io_context io;
  boost::system::error_code code;
  std::string reason;
  async_wait(io.get_executor(), bus->publish("refused.event", {}),
             [&](boost::system::error_code ec, Completion c) {
               code = ec;
               reason = c.error();
             });
  io.run();
  EXPECT_EQ(code, athomic::asio::error::publish_failed);
  EXPECT_THAT(reason, HasSubstr("the server refused it"));
}

TEST_P(AsyncWaitVerdict, UseFutureThrowsTheCode) {
  auto f = async_wait(bus->publish("refused.event", {}), net::use_future);
  ASSERT_EQ(f.wait_for(kGenerous), std::future_status::ready);
  try {
    f.get();
    ADD_FAILURE() << "no exception";
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), athomic::asio::error::publish_failed);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, AsyncWaitVerdict,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

}  // namespace
}  // namespace athomic::test
