// The lane: a multi-producer single-consumer serial queue with an ownership flag. Its promises:
// every node pushed is popped exactly once, each producer's nodes in push order, and at most one
// consumer owns the lane at a time (a push that finds it idle hands ownership to its caller).
#include "lane.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace athomic::detail {
namespace {

TEST(Lane, PopsInPushOrderAndReportsWhenItWasIdle) {
  Lane lane;
  LaneNode nodes[5];
  EXPECT_TRUE(lane.push(&nodes[0]));   // idle: the caller schedules it
  EXPECT_FALSE(lane.push(&nodes[1]));  // already scheduled
  EXPECT_FALSE(lane.push(&nodes[2]));
  EXPECT_EQ(lane.pop(), &nodes[0]);
  EXPECT_EQ(lane.pop(), &nodes[1]);
  EXPECT_EQ(lane.pop(), &nodes[2]);
  EXPECT_EQ(lane.pop(), nullptr);
  EXPECT_FALSE(lane.maybe_nonempty());
  EXPECT_FALSE(lane.try_release());  // nothing came meanwhile: given up
  EXPECT_TRUE(lane.push(&nodes[3]));  // idle again
  EXPECT_TRUE(lane.maybe_nonempty());
  EXPECT_EQ(lane.pop(), &nodes[3]);
  EXPECT_FALSE(lane.push(&nodes[4]));
  EXPECT_TRUE(lane.try_release());  // items arrived: the caller keeps it
  EXPECT_EQ(lane.pop(), &nodes[4]);
}

TEST(Lane, NodesCanBeReusedOncePopped) {
  Lane lane;
  LaneNode node;
  for (int i = 0; i < 100; ++i) {
    lane.push(&node);
    ASSERT_EQ(lane.pop(), &node);
    ASSERT_EQ(lane.pop(), nullptr);
    ASSERT_FALSE(lane.try_release());
  }
}

// Producers push; whoever's push finds the lane idle hands it to a consumer through `ready`;
// two consumers take it from there and drain it. Checks exactly-once, per-producer order, and
// that no two consumers ever hold the lane at once.
TEST(LaneStress, ManyProducersTwoConsumersExactlyOnceInOrder) {
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 50000;
  struct Item {
    LaneNode node;
    int producer = 0;
    int seq = 0;
  };
  std::vector<std::unique_ptr<Item[]>> items;
  for (int p = 0; p < kProducers; ++p) items.emplace_back(new Item[kPerProducer]);
  Lane lane;
  std::atomic<int> ready{0};  // lanes handed over and not yet taken (0 or 1)
  std::atomic<int> owners{0}, overlaps{0};
  std::atomic<int> received{0};
  std::vector<int> next(kProducers, 0);
  std::atomic<int> errors{0};
  std::atomic<bool> done{false};

  auto consume = [&] {
    while (!done.load()) {
      int one = 1;
      if (!ready.compare_exchange_strong(one, 0)) {
        std::this_thread::yield();
        continue;
      }
      if (owners.fetch_add(1) != 0) overlaps++;
      for (;;) {
        LaneNode* n = lane.pop();
        if (!n) {
          if (lane.maybe_nonempty()) continue;
          // Counted out before the flag goes down: from then on another consumer may own it.
          owners.fetch_sub(1);
          if (!lane.try_release()) break;
          if (owners.fetch_add(1) != 0) overlaps++;  // taken back
          continue;
        }
        auto* item = reinterpret_cast<Item*>(n);  // node is the first member
        if (next[item->producer] != item->seq) errors++;
        next[item->producer] = item->seq + 1;
        received++;
      }
    }
  };
  std::thread c1(consume), c2(consume);
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        Item& item = items[p][i];
        item.producer = p;
        item.seq = i;
        if (lane.push(&item.node)) ready.store(1);
      }
    });
  }
  for (auto& t : producers) t.join();
  while (received.load() < kProducers * kPerProducer) std::this_thread::yield();
  done = true;
  c1.join();
  c2.join();
  EXPECT_EQ(received.load(), kProducers * kPerProducer);
  EXPECT_EQ(errors.load(), 0) << "a producer's nodes came out of order";
  EXPECT_EQ(overlaps.load(), 0) << "two consumers held the lane at once";
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(next[p], kPerProducer);
}

}  // namespace
}  // namespace athomic::detail
