// The executor: lanes scheduled from any thread are drained by one worker at a time; stop()
// lets workers finish and leaves one stuck in a handler behind, keeping what it needs alive.
#include "executor.h"
#include "lane.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace athomic::detail {
namespace {

struct Harness {
  std::atomic<int> drained{0};

  static void drain(void* self, Lane& lane, unsigned) noexcept {
    auto* h = static_cast<Harness*>(self);
    for (;;) {
      LaneNode* n = lane.pop();
      if (!n) {
        if (lane.maybe_nonempty()) continue;
        if (!lane.try_release()) break;
        continue;
      }
      h->drained++;
    }
  }
};

TEST(Executor, DrainsEveryLaneScheduledFromManyThreads) {
  Harness h;
  Executor ex(3, &Harness::drain, &h);
  constexpr int kLanes = 64;
  constexpr int kPerLane = 2000;
  std::vector<Lane> lanes(kLanes);
  std::vector<std::unique_ptr<LaneNode[]>> nodes;
  for (int l = 0; l < kLanes; ++l) nodes.emplace_back(new LaneNode[kPerLane]);
  std::vector<std::thread> producers;
  for (int p = 0; p < 4; ++p) {
    producers.emplace_back([&, p] {
      for (int l = p; l < kLanes; l += 4) {
        for (int i = 0; i < kPerLane; ++i) {
          if (lanes[l].push(&nodes[l][i])) ex.schedule(&lanes[l]);
        }
      }
    });
  }
  for (auto& t : producers) t.join();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (h.drained.load() < kLanes * kPerLane && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(h.drained.load(), kLanes * kPerLane);
  EXPECT_EQ(ex.stop(std::chrono::steady_clock::now() + std::chrono::seconds(30), nullptr), 0u);
}

TEST(Executor, ParkedWorkersWakeForLaterWork) {
  Harness h;
  Executor ex(2, &Harness::drain, &h);
  Lane lane;
  std::vector<LaneNode> nodes(50);
  for (int round = 0; round < 50; ++round) {
    // Long enough apart for the workers to park between rounds.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (lane.push(&nodes[round])) ex.schedule(&lane);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (h.drained.load() <= round && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    ASSERT_EQ(h.drained.load(), round + 1);
  }
}

// Drains like the bus does: watches its lane for more work before giving it up.
struct Watching {
  Executor* ex = nullptr;
  std::atomic<int> drained{0};

  static void drain(void* self, Lane& lane, unsigned worker) noexcept {
    auto* w = static_cast<Watching*>(self);
    for (;;) {
      if (lane.pop()) {
        w->drained++;
        continue;
      }
      if (lane.maybe_nonempty()) continue;
      if (w->ex->watch(worker, [&] { return lane.maybe_nonempty(); })) continue;
      if (!lane.try_release()) break;
    }
  }
};

// Waits until @p count items were drained; false after 30 s.
bool drained_to(const std::atomic<int>& drained, int count) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (drained.load() < count) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(Executor, ATrickleOfWorkStopsThePollingAndBackToBackWorkBringsItBack) {
  Watching w;
  Executor ex(2, &Watching::drain, &w);
  w.ex = &ex;
  EXPECT_EQ(ex.look_budget_ns(), Executor::kMaxLookNs);
  Lane lane;
  std::vector<LaneNode> nodes(2);
  int sent = 0;
  // Gaps of 2 ms: each look found nothing, and each halves the next until none is made.
  for (int round = 0; round < 20; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (lane.push(&nodes[0])) ex.schedule(&lane);
    ASSERT_TRUE(drained_to(w.drained, ++sent));
  }
  EXPECT_EQ(ex.look_budget_ns(), 0);
  // Work right behind the last: a look would have caught it, so looking resumes. Whether one
  // push lands while a worker is parked (rather than still on its way) is up to the scheduler:
  // keep pushing until it happens.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (ex.look_budget_ns() != Executor::kMaxLookNs &&
         std::chrono::steady_clock::now() < deadline) {
    if (lane.push(&nodes[sent % 2])) ex.schedule(&lane);
    ASSERT_TRUE(drained_to(w.drained, ++sent));
  }
  EXPECT_EQ(ex.look_budget_ns(), Executor::kMaxLookNs);
}

TEST(Executor, WatchingWorkersLoseNothingWhateverTheLookBudget) {
  // Producers alternate bursts with pauses, so the budget swings between 0 and its maximum
  // while lanes are scheduled, watched and given up from several threads.
  Watching w;
  Executor ex(3, &Watching::drain, &w);
  w.ex = &ex;
  constexpr int kLanes = 8;
  constexpr int kPerLane = 3000;
  std::vector<Lane> lanes(kLanes);
  std::vector<std::unique_ptr<LaneNode[]>> nodes;
  for (int l = 0; l < kLanes; ++l) nodes.emplace_back(new LaneNode[kPerLane]);
  std::vector<std::thread> producers;
  for (int p = 0; p < 2; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kPerLane; ++i) {
        for (int l = p; l < kLanes; l += 2) {
          if (lanes[l].push(&nodes[l][i])) ex.schedule(&lanes[l]);
        }
        if (i % 100 == 99) std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
  }
  for (auto& t : producers) t.join();
  EXPECT_TRUE(drained_to(w.drained, kLanes * kPerLane)) << w.drained.load();
  EXPECT_EQ(ex.stop(std::chrono::steady_clock::now() + std::chrono::seconds(30), nullptr), 0u);
}

// A drain function whose handler blocks until released.
struct Stuck {
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  std::atomic<bool> entered{false};
  std::atomic<bool> returned{false};
  static void drain(void* self, Lane& lane, unsigned) noexcept {
    auto* s = static_cast<Stuck*>(self);
    while (LaneNode* n = lane.pop()) {
      (void)n;
      s->entered = true;
      std::unique_lock lock(s->m);
      s->cv.wait(lock, [&] { return s->release; });
    }
    lane.try_release();
    s->returned = true;
  }
};

TEST(Executor, StopLeavesAStuckWorkerBehindAndKeepsItsOwnerAlive) {
  auto stuck = std::make_shared<Stuck>();
  auto ex = std::make_unique<Executor>(2, &Stuck::drain, stuck.get());
  Lane lane;
  LaneNode node;
  if (lane.push(&node)) ex->schedule(&lane);
  while (!stuck->entered.load()) std::this_thread::yield();
  std::weak_ptr<Stuck> watch = stuck;
  // The executor keeps `stuck` alive for the worker that is still inside it.
  const unsigned left = ex->stop(std::chrono::steady_clock::now() + std::chrono::milliseconds(50),
                                 std::shared_ptr<void>(stuck));
  EXPECT_EQ(left, 1u);
  auto raw = stuck.get();
  stuck.reset();
  EXPECT_FALSE(watch.expired());
  {
    // Notify under the lock: once released, the worker may let go of the last reference.
    std::lock_guard lock(raw->m);
    raw->release = true;
    raw->cv.notify_all();
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!watch.expired() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(watch.expired()) << "the stuck worker did not let go of its owner";
  ex.reset();  // the detached worker has left: destroying the executor is safe
}

}  // namespace
}  // namespace athomic::detail
