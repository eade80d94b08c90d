// The pool's bound: events and bytes taken and given back; waiting for room.
#include "queue_budget.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace athomic::detail {
namespace {

using Clock = std::chrono::steady_clock;

TEST(QueueBudget, BoundsEventsAndBytes) {
  QueueBudget b(3, 1000);
  EXPECT_TRUE(b.try_take(100));
  EXPECT_TRUE(b.try_take(100));
  EXPECT_FALSE(b.try_take(900));  // bytes
  EXPECT_TRUE(b.try_take(100));
  EXPECT_FALSE(b.try_take(1));    // events
  EXPECT_EQ(b.events(), 3u);
  EXPECT_EQ(b.bytes(), 300u);
  b.give_back(1, 100);
  EXPECT_TRUE(b.try_take(700));
  EXPECT_EQ(b.bytes(), 900u);
}

TEST(QueueBudget, TakeWaitsUntilAPlaceIsGivenBack) {
  QueueBudget b(1, 1000);
  ASSERT_TRUE(b.try_take(10));
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    got = b.take(10, Clock::now() + std::chrono::seconds(60), [] { return false; });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(got.load());
  b.give_back(1, 10);
  waiter.join();
  EXPECT_TRUE(got.load());
}

TEST(QueueBudget, TakeGivesUpAtTheDeadlineOrWhenToldTo) {
  QueueBudget b(1, 1000);
  ASSERT_TRUE(b.try_take(10));
  EXPECT_FALSE(b.take(10, Clock::now() + std::chrono::milliseconds(20), [] { return false; }));
  std::atomic<bool> closing{false};
  std::atomic<bool> result{true};
  std::thread waiter([&] {
    result = b.take(10, Clock::now() + std::chrono::seconds(60), [&] { return closing.load(); });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  closing = true;
  b.wake_all();
  waiter.join();
  EXPECT_FALSE(result.load());
}

TEST(QueueBudget, WaitEmptyReturnsWhenTheLastPlaceIsGivenBack) {
  QueueBudget b(10, 1000);
  EXPECT_TRUE(b.wait_empty(Clock::now()));
  ASSERT_TRUE(b.try_take(1));
  EXPECT_FALSE(b.wait_empty(Clock::now() + std::chrono::milliseconds(10)));
  std::thread giver([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    b.give_back(1, 1);
  });
  EXPECT_TRUE(b.wait_empty(Clock::now() + std::chrono::seconds(60)));
  giver.join();
}

TEST(QueueBudgetStress, NeverMoreThanTheBoundAtOnce) {
  QueueBudget b(8, 1 << 20);
  std::atomic<int> held{0}, peak{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        if (!b.try_take(16)) continue;
        const int now = ++held;
        int p = peak.load();
        while (now > p && !peak.compare_exchange_weak(p, now)) {
        }
        --held;
        b.give_back(1, 16);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(peak.load(), 8);
  EXPECT_EQ(b.events(), 0u);
  EXPECT_EQ(b.bytes(), 0u);
}

TEST(QueueBudgetStress, NeverRefusesWhileFarBelowTheBound) {
  // At most 4 events are ever taken at once, against a bound of 1000: every take must succeed.
  // A taker that read its own count, then the count given back after later takers had given
  // theirs back, used to see a negative queue wrap round to a huge one and refuse.
  QueueBudget b(1000, 1 << 20);
  std::atomic<long> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500000; ++i) {
        if (b.try_take(100)) {
          b.give_back(1, 100);
        } else {
          refused.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(refused.load(), 0);
  EXPECT_EQ(b.events(), 0u);
  EXPECT_EQ(b.bytes(), 0u);
}

TEST(QueueBudgetStress, AnEventTooLargeForWhatIsLeftDoesNotCrowdOutSmallOnes) {
  // 600 KiB of a 1 MiB bound are held; another thread keeps offering an event of 600 KiB, which
  // never fits. Events of 100 bytes always fit and must never be refused.
  constexpr uint64_t kBig = 600 * 1024;
  QueueBudget b(1000, 1 << 20);
  ASSERT_TRUE(b.try_take(kBig));
  std::atomic<bool> stop{false};
  std::thread big([&] {
    while (!stop.load(std::memory_order_relaxed)) EXPECT_FALSE(b.try_take(kBig));
  });
  long refused = 0;
  for (int i = 0; i < 500000; ++i) {
    if (b.try_take(100)) {
      b.give_back(1, 100);
    } else {
      ++refused;
    }
  }
  stop = true;
  big.join();
  EXPECT_EQ(refused, 0);
  EXPECT_LE(b.bytes(), uint64_t{1} << 20);
  b.give_back(1, kBig);
  EXPECT_EQ(b.events(), 0u);
}

}  // namespace
}  // namespace athomic::detail
