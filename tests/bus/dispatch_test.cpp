// Dispatch through the real `local` plugin, in both dispatch modes.
#include "test_support.h"

#include <gmock/gmock.h>

#include <memory>
#include <mutex>
#include <set>
#include <vector>

namespace athomic::test {
namespace {

using testing::HasSubstr;

class Dispatch : public testing::TestWithParam<DispatchMode> {
 protected:
  std::shared_ptr<EventBus> bus = started(local_settings(GetParam()));
};

TEST_P(Dispatch, EveryHandlerIsCalledExactlyOncePerPublish) {
  constexpr int kEvents = 200;
  std::atomic<int> a{0}, b{0}, c{0}, other{0};
  bus->subscribe("user.created", [&](const Event&) { a++; });
  bus->subscribe("user.created", [&](const Event&) { b++; });
  bus->subscribe("user.created", [&](const Event&) { c++; });
  bus->subscribe("user.deleted", [&](const Event&) { other++; });
  for (int i = 0; i < kEvents; ++i) bus->publish("user.created", {{"i", i}}).wait();
  EXPECT_EQ(a, kEvents);
  EXPECT_EQ(b, kEvents);
  EXPECT_EQ(c, kEvents);
  EXPECT_EQ(other, 0);
}

TEST_P(Dispatch, HandlersGetNamePayloadAndTheSamePayloadObject) {
  std::mutex m;
  std::vector<const nlohmann::json*> seen;
  auto handler = [&](const Event& e) {
    EXPECT_EQ(e.name(), "order.paid");
    EXPECT_EQ(e.payload()["amount"], 42);
    std::lock_guard lock(m);
    seen.push_back(&e.payload());
  };
  bus->subscribe("order.paid", handler);
  bus->subscribe("order.paid", handler);
  auto payload = std::make_shared<const nlohmann::json>(nlohmann::json{{"amount", 42}});
  bus->publish("order.paid", payload).wait();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], payload.get());  // shared, never copied
  EXPECT_EQ(seen[1], payload.get());
}

TEST_P(Dispatch, PayloadOnlyHandlers) {
  Counter got;
  bus->subscribe("ping", [&](const nlohmann::json& payload) {
    EXPECT_EQ(payload["n"], 1);
    got.add();
  });
  bus->publish("ping", {{"n", 1}});
  EXPECT_TRUE(got.wait_for_at_least(1));
}

TEST_P(Dispatch, NullPayloadIsAnEmptyObjectOtherKindsAreRefused) {
  Counter got;
  bus->subscribe("ping", [&](const Event& e) {
    EXPECT_TRUE(e.payload().is_object());
    EXPECT_TRUE(e.payload().empty());
    got.add();
  });
  bus->publish("ping", nlohmann::json{}).wait();
  EXPECT_EQ(got.value(), 1);
  try {
    bus->publish("ping", nlohmann::json::array({1, 2}));
    FAIL() << "expected EventBusError";
  } catch (const EventBusError& e) {
    EXPECT_THAT(e.what(), HasSubstr("publish('ping'): the payload must be a JSON object, got array"));
  }
  EXPECT_EQ(got.value(), 1);
}

TEST_P(Dispatch, InvalidEventNamesAreRefusedWithTheReason) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "must not be empty"},
      {"user created", "a space"},
      {"user\tcreated", "0x09"},
      {std::string("user\0created", 12), "0x00"},
      {".user", "must not be empty"},
      {"user..created", "must not be empty"},
      {"user.", "must not be empty"},
      {"a.b...c", "must not be empty"},
      {std::string(256, 'a'), "256 bytes, the limit is 255"},
  };
  for (const auto& [name, why] : cases) {
    try {
      bus->subscribe(name, [](const Event&) {});
      ADD_FAILURE() << "subscribe accepted " << name;
    } catch (const EventBusError& e) {
      EXPECT_THAT(e.what(), HasSubstr(why));
    }
    try {
      bus->publish(name, {});
      ADD_FAILURE() << "publish accepted " << name;
    } catch (const EventBusError& e) {
      EXPECT_THAT(e.what(), HasSubstr(why));
    }
  }
  // Wildcards are for subscribing: an event has a concrete name.
  EXPECT_THROW(
      try { bus->publish("user.*", {}); } catch (const EventBusError& e) {
        EXPECT_THAT(e.what(), HasSubstr("reserved for pattern subscriptions"));
        throw;
      },
      EventBusError);
  EXPECT_NO_THROW(bus->publish(std::string(255, 'a'), {}));
  EXPECT_NO_THROW(bus->publish("caf\xc3\xa9.ordered", {}));
}

TEST_P(Dispatch, PublishWithoutHandlersCompletesAtOnce) {
  auto done = bus->publish("nobody.listens", {{"x", 1}});
  EXPECT_TRUE(done.done());
}

TEST_P(Dispatch, AThrowingHandlerDoesNotAffectTheOthersAndIsCounted) {
  std::atomic<int> ok{0};
  bus->subscribe("job.run", [&](const Event&) { ok++; });
  bus->subscribe("job.run", [](const Event&) { throw std::runtime_error("boom"); });
  bus->subscribe("job.run", [](const Event&) { throw 42; });
  bus->subscribe("job.run", [&](const Event&) { ok++; });
  for (int i = 0; i < 10; ++i) {
    auto done = bus->publish("job.run", {});
    done.wait();
    EXPECT_EQ(done.failed_handlers(), 2u);
  }
  EXPECT_EQ(ok, 20);
  EXPECT_EQ(bus->stats().handler_failures, 20u);
}

TEST_P(Dispatch, HandlersMayPublishAndSubscribe) {
  Counter second;
  bus->subscribe("step.one", [&](const Event& e) {
    bus->subscribe("step.three", [&](const Event&) { second.add(); });
    bus->publish("step.two", {{"from", std::string(e.name())}});
  });
  bus->subscribe("step.two", [&](const Event& e) {
    EXPECT_EQ(e.payload()["from"], "step.one");
    second.add();
  });
  bus->publish("step.one", {});
  EXPECT_TRUE(second.wait_for_at_least(1));
  bus->publish("step.three", {});
  EXPECT_TRUE(second.wait_for_at_least(2));
}

TEST_P(Dispatch, RunsOnTheExpectedThread) {
  std::atomic<std::thread::id> where{};
  bus->subscribe("where", [&](const Event&) { where = std::this_thread::get_id(); });
  bus->publish("where", {}).wait();
  if (GetParam() == DispatchMode::inline_call) {
    EXPECT_EQ(where.load(), std::this_thread::get_id());
  } else {
    EXPECT_NE(where.load(), std::this_thread::get_id());
  }
}

TEST_P(Dispatch, PublishingFromManyThreadsDeliversEverything) {
  constexpr int kThreads = 8, kEach = 500;
  std::atomic<int> got{0};
  std::mutex m;
  std::set<std::pair<int, int>> seen;
  bus->subscribe("load", [&](const Event& e) {
    std::lock_guard lock(m);
    seen.emplace(e.payload()["t"].get<int>(), e.payload()["i"].get<int>());
    got++;
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) bus->publish("load", {{"t", t}, {"i", i}});
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_TRUE(eventually([&] { return got.load() == kThreads * kEach; }));
  bus->close();
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kThreads * kEach));
}

TEST_P(Dispatch, ThenRunsOnceWhenThePublishIsDone) {
  Gate gate;
  bus->subscribe("later", [&](const Event&) { gate.wait(); });
  if (GetParam() == DispatchMode::inline_call) gate.open();  // it runs on this very thread
  std::atomic<int> ran{0};
  Counter done;
  Completion c = bus->publish("later", {});
  c.then([&] {
    ran++;
    done.add();
  });
  if (GetParam() == DispatchMode::pool) {
    EXPECT_THROW(c.then([] {}), EventBusError);  // one per publish while it is pending
  }
  gate.open();
  ASSERT_TRUE(done.wait_for_at_least(1));
  EXPECT_EQ(ran.load(), 1);
  c.then([&] { ran++; });  // done already: runs at once
  EXPECT_EQ(ran.load(), 2);
  // Registered while the handlers finish: run exactly once, whichever thread gets there.
  bus->subscribe("quick", [](const Event&) {});
  for (int i = 0; i < 500; ++i) {
    auto count = std::make_shared<std::atomic<int>>(0);
    Completion r = bus->publish("quick", {});
    r.then([count] { count->fetch_add(1); });
    ASSERT_TRUE(eventually([&] { return count->load() >= 1; }));
    std::this_thread::yield();
    ASSERT_EQ(count->load(), 1);
  }
}

// An event queued for 1 to 9 handlers (some of them wildcard subscriptions): every handler
// sees every event once, in publish order, whichever of the record's queue nodes carries it.
TEST_P(Dispatch, AnyNumberOfHandlersGetsEveryEventInOrder) {
  constexpr int kEvents = 100;
  for (int handlers = 1; handlers <= 9; ++handlers) {
    auto b = started(local_settings(GetParam(), 2));
    std::vector<std::vector<int>> seen(static_cast<std::size_t>(handlers));
    std::vector<std::unique_ptr<std::mutex>> locks;
    for (int h = 0; h < handlers; ++h) locks.push_back(std::make_unique<std::mutex>());
    for (int h = 0; h < handlers; ++h) {
      b->subscribe(h % 3 == 2 ? "order.*" : "order.placed", [&, h](const Event& e) {
        std::lock_guard lock(*locks[static_cast<std::size_t>(h)]);
        seen[static_cast<std::size_t>(h)].push_back(e.payload().value("i", -1));
      });
    }
    std::vector<Completion> done;
    for (int i = 0; i < kEvents; ++i) done.push_back(b->publish("order.placed", {{"i", i}}));
    for (auto& d : done) {
      d.wait();
      EXPECT_EQ(d.receivers(), handlers);
    }
    b->close();
    for (int h = 0; h < handlers; ++h) {
      std::vector<int> expected(kEvents);
      for (int i = 0; i < kEvents; ++i) expected[static_cast<std::size_t>(i)] = i;
      EXPECT_EQ(seen[static_cast<std::size_t>(h)], expected) << handlers << " handlers, #" << h;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, Dispatch,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

TEST(DispatchPool, HandlersOfOneEventRunConcurrently) {
  auto bus = started(local_settings(DispatchMode::pool, 2));
  std::atomic<bool> a_started{false}, b_started{false};
  std::atomic<int> finished{0};
  // Each handler waits for the other to have started: both finish only if they overlap.
  bus->subscribe("meet", [&](const Event&) {
    a_started = true;
    if (eventually([&] { return b_started.load(); })) finished++;
  });
  bus->subscribe("meet", [&](const Event&) {
    b_started = true;
    if (eventually([&] { return a_started.load(); })) finished++;
  });
  bus->publish("meet", {}).wait();
  EXPECT_EQ(finished, 2);
}

TEST(DispatchPool, CompletionWaitsForEveryHandler) {
  auto bus = started(local_settings(DispatchMode::pool, 2));
  std::atomic<int> done{0};
  for (int i = 0; i < 4; ++i) {
    bus->subscribe("slow", [&](const Event&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      done++;
    });
  }
  auto c = bus->publish("slow", {});
  c.wait();
  EXPECT_TRUE(c.done());
  EXPECT_EQ(done, 4);
  EXPECT_TRUE(c.wait_for(std::chrono::milliseconds(0)));
}

TEST(DispatchInline, OrderPerPublisherIsPreserved) {
  auto bus = started(local_settings(DispatchMode::inline_call));
  std::vector<int> seen;
  bus->subscribe("seq", [&](const Event& e) { seen.push_back(e.payload()["i"].get<int>()); });
  for (int i = 0; i < 100; ++i) bus->publish("seq", {{"i", i}});
  ASSERT_EQ(seen.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seen[i], i);
}

TEST(DispatchInline, RecursionBeyondTheNestingLimitIsRefused) {
  auto bus = started(local_settings(DispatchMode::inline_call));
  int depth = 0;
  std::string error;
  bus->subscribe("recurse", [&](const Event&) {
    ++depth;
    try {
      bus->publish("recurse", {});
    } catch (const EventBusError& e) {
      if (error.empty()) error = e.what();
    }
  });
  bus->publish("recurse", {});
  EXPECT_THAT(error, HasSubstr("nested more than 16 levels"));
  EXPECT_EQ(depth, 16);
}

}  // namespace
}  // namespace athomic::test
