// Ordered delivery per subscription in pool dispatch: one subscription receives the events of
// one publisher (or one provider connection) in the order they were published, while different
// subscriptions run concurrently.
#include "test_support.h"

#include <map>
#include <vector>

namespace athomic::test {
namespace {

class Order : public testing::TestWithParam<std::string> {};

TEST_P(Order, OnePublisherOneSubscriptionInPoolDispatch) {
  auto bus = started(backend_settings(GetParam(), DispatchMode::pool, 4));
  constexpr int kEvents = 2000;
  std::mutex m;
  std::vector<int> seen;
  std::atomic<int> running{0}, overlapped{0};
  bus->subscribe("seq", [&](const Event& e) {
    if (running.fetch_add(1) != 0) overlapped++;
    std::size_t n;
    {
      std::lock_guard lock(m);
      seen.push_back(e.payload()["i"].get<int>());
      n = seen.size();
    }
    if (n % 7 == 0) std::this_thread::yield();  // give another worker a chance
    running.fetch_sub(1);
  });
  for (int i = 0; i < kEvents; ++i) bus->publish("seq", {{"i", i}});
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(m);
    return seen.size() == kEvents;
  }));
  std::lock_guard lock(m);
  int swapped = 0;
  for (int i = 0; i < kEvents; ++i) swapped += seen[i] != i;
  EXPECT_EQ(swapped, 0) << "events delivered out of order";
  EXPECT_EQ(overlapped.load(), 0) << "one subscription's calls overlapped";
}

TEST_P(Order, EachPublisherKeepsItsOrderAmongOthers) {
  auto bus = started(backend_settings(GetParam(), DispatchMode::pool, 4));
  constexpr int kPublishers = 3;
  constexpr int kEvents = 1000;
  std::mutex m;
  std::map<int, std::vector<int>> seen;
  Counter total;
  bus->subscribe("multi", [&](const Event& e) {
    {
      std::lock_guard lock(m);
      seen[e.payload()["p"].get<int>()].push_back(e.payload()["i"].get<int>());
    }
    total.add();
  });
  std::vector<std::thread> publishers;
  for (int p = 0; p < kPublishers; ++p) {
    publishers.emplace_back([&, p] {
      for (int i = 0; i < kEvents; ++i) bus->publish("multi", {{"p", p}, {"i", i}});
    });
  }
  for (auto& t : publishers) t.join();
  ASSERT_TRUE(total.wait_for_at_least(kPublishers * kEvents));
  std::lock_guard lock(m);
  for (int p = 0; p < kPublishers; ++p) {
    ASSERT_EQ(seen[p].size(), static_cast<std::size_t>(kEvents));
    for (int i = 0; i < kEvents; ++i) ASSERT_EQ(seen[p][i], i) << "publisher " << p;
  }
}

TEST_P(Order, DifferentSubscriptionsRunConcurrently) {
  auto bus = started(backend_settings(GetParam(), DispatchMode::pool, 2));
  // Each handler waits for the other to have started: only concurrent runs let both finish.
  Gate a_started, b_started;
  std::atomic<bool> a_saw_b{false}, b_saw_a{false};
  Counter done;
  bus->subscribe("both", [&](const Event&) {
    a_started.open();
    a_saw_b = b_started.wait();
    done.add();
  });
  bus->subscribe("both", [&](const Event&) {
    b_started.open();
    b_saw_a = a_started.wait();
    done.add();
  });
  bus->publish("both", {});
  ASSERT_TRUE(done.wait_for_at_least(2));
  EXPECT_TRUE(a_saw_b.load());
  EXPECT_TRUE(b_saw_a.load());
}

TEST_P(Order, TwoLanesScheduledTogetherBothGetAWorkerEveryTime) {
  // Two workers, two subscriptions whose handlers each wait for the other: the second lane
  // must reach the second worker even when the first worker was the one polling for work
  // when both were scheduled.
  auto bus = started(backend_settings(GetParam(), DispatchMode::pool, 2));
  std::atomic<int> round{0};
  std::atomic<int> a_in{-1}, b_in{-1};
  std::atomic<int> stuck{0};
  auto wait_for = [&](std::atomic<int>& other, int r) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (other.load() != r) {
      if (std::chrono::steady_clock::now() > deadline) {
        stuck++;
        return;
      }
      std::this_thread::yield();
    }
  };
  Counter done;
  bus->subscribe("pair", [&](const Event& e) {
    const int r = e.payload()["r"].get<int>();
    a_in = r;
    wait_for(b_in, r);
    done.add();
  });
  bus->subscribe("pair", [&](const Event& e) {
    const int r = e.payload()["r"].get<int>();
    b_in = r;
    wait_for(a_in, r);
    done.add();
  });
  for (int r = 0; r < 300 && stuck.load() == 0; ++r) {
    bus->publish("pair", {{"r", r}});
    ASSERT_TRUE(done.wait_for_at_least(2 * (r + 1))) << "round " << r;
    // Let the workers park or poll, as they would between bursts.
    if (r % 3 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  EXPECT_EQ(stuck.load(), 0) << "a lane waited for a worker while one was parked";
}

TEST_P(Order, MaxConcurrencyLetsOneSubscriptionRunOnSeveralWorkers) {
  auto bus = started(backend_settings(GetParam(), DispatchMode::pool, 4));
  std::atomic<int> running{0}, peak{0};
  Gate two_at_once;
  Counter done;
  SubscribeOptions options;
  options.max_concurrency = 2;
  bus->subscribe(
      "wide",
      [&](const Event&) {
        const int now = ++running;
        int p = peak.load();
        while (now > p && !peak.compare_exchange_weak(p, now)) {
        }
        if (now >= 2) two_at_once.open();
        two_at_once.wait();
        --running;
        done.add();
      },
      options);
  for (int i = 0; i < 4; ++i) bus->publish("wide", {});
  ASSERT_TRUE(done.wait_for_at_least(4));
  EXPECT_EQ(peak.load(), 2);
}

TEST(OrderOptions, MaxConcurrencyOutOfRangeIsRefused) {
  auto bus = started(local_settings());
  SubscribeOptions options;
  options.max_concurrency = 0;
  EXPECT_THROW(bus->subscribe("x", [](const Event&) {}, options), EventBusError);
  options.max_concurrency = 5000;
  EXPECT_THROW(bus->subscribe("x", [](const Event&) {}, options), EventBusError);
}

INSTANTIATE_TEST_SUITE_P(Backends, Order, testing::Values("local", "loopback"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace athomic::test
