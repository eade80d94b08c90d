// The hand-written queues of pool dispatch beside the library queues that could replace them,
// doing the same job in the same process state:
//
//  * a subscription's lane (lane.h: intrusive MPSC list, plus the "scheduled" hand-off) against
//    moodycamel::ConcurrentQueue and atomic_queue used as a subscription's queue — one
//    producer thread pushing event pointers, one consumer thread taking them in order;
//  * what an idle subscription's queue costs in memory (the lane: its size; the others: their
//    size plus what constructing one allocates), since a bus holds one per subscription.
//
// The executor's ready-lane ring is not compared: it carries one entry per lane that becomes
// ready, not per event, so it is not on the per-event path.
#include "bench_support.h"

#include "lane.h"

#include <atomic_queue/atomic_queue.h>
#include <concurrentqueue.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace {

using namespace athomic::bench;
using athomic::detail::Lane;
using athomic::detail::LaneNode;

constexpr uint64_t kItems = 1 << 16;

// Bytes the library queues allocate, through their allocator hooks.
std::atomic<uint64_t> g_queue_bytes{0};
struct CountedTraits : moodycamel::ConcurrentQueueDefaultTraits {
  static void* malloc(std::size_t size) {
    g_queue_bytes.fetch_add(size, std::memory_order_relaxed);
    return ::operator new(size);
  }
  static void free(void* p) { ::operator delete(p); }
};
template <class T>
struct CountedAllocator : std::allocator<T> {
  using value_type = T;
  template <class U>
  struct rebind {
    using other = CountedAllocator<U>;
  };
  CountedAllocator() = default;
  template <class U>
  CountedAllocator(const CountedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    g_queue_bytes.fetch_add(n * sizeof(T), std::memory_order_relaxed);
    return std::allocator<T>::allocate(n);
  }
};
using MoodycamelQueue = moodycamel::ConcurrentQueue<uint64_t, CountedTraits>;
using AtomicQueue = atomic_queue::AtomicQueueB2<uint64_t, CountedAllocator<uint64_t>>;

// The consumer's side of each queue: take everything in order, check the order, count.
template <class Take>
void run_transfer(benchmark::State& state, Take&& take_all,
                  const std::function<void(uint64_t)>& produce) {
  uint64_t moved = 0;
  Meter meter;
  for (auto _ : state) {
    std::atomic<bool> order_ok{true};
    std::thread consumer([&] {
      uint64_t expected = 0;
      while (expected < kItems) expected = take_all(expected, order_ok);
    });
    produce(kItems);
    consumer.join();
    if (!order_ok.load()) {
      fail(state, "items came out of order");
      return;
    }
    moved += kItems;
  }
  state.SetItemsProcessed(static_cast<int64_t>(moved));
  meter.report(state, static_cast<double>(moved), "item", true);
}

void lane(benchmark::State& state) {
  Lane lane;
  std::unique_ptr<LaneNode[]> nodes(new LaneNode[kItems]);
  std::atomic<bool> scheduled{false};  // the hand-off the lane's push reports
  run_transfer(
      state,
      [&](uint64_t expected, std::atomic<bool>& ok) {
        while (LaneNode* n = lane.pop()) {
          if (n != &nodes[expected]) ok = false;
          ++expected;
        }
        return expected;
      },
      [&](uint64_t count) {
        for (uint64_t i = 0; i < count; ++i) {
          if (lane.push(&nodes[i])) scheduled.store(true, std::memory_order_relaxed);
        }
      });
  // Reset for the next iteration: drain and give the lane up.
  while (lane.pop()) {
  }
  lane.try_release();
}

void moodycamel_queue(benchmark::State& state) {
  MoodycamelQueue queue;
  run_transfer(
      state,
      [&](uint64_t expected, std::atomic<bool>& ok) {
        uint64_t items[64];
        const std::size_t n = queue.try_dequeue_bulk(items, 64);
        for (std::size_t i = 0; i < n; ++i) {
          if (items[i] != expected) ok = false;
          ++expected;
        }
        return expected;
      },
      [&](uint64_t count) {
        moodycamel::ProducerToken token(queue);
        for (uint64_t i = 0; i < count; ++i) queue.enqueue(token, i);
      });
}

void atomic_queue_b(benchmark::State& state) {
  AtomicQueue queue(4096);
  run_transfer(
      state,
      [&](uint64_t expected, std::atomic<bool>& ok) {
        uint64_t item;
        while (queue.try_pop(item)) {
          if (item != expected) ok = false;
          ++expected;
        }
        return expected;
      },
      [&](uint64_t count) {
        for (uint64_t i = 0; i < count; ++i) {
          while (!queue.try_push(i)) {
          }
        }
      });
}

// Bytes an idle queue holds: its own size and what constructing it allocated.
template <class Make>
void idle_memory(benchmark::State& state, std::size_t object_size, Make&& make) {
  constexpr int kQueues = 1000;
  for (auto _ : state) {
    const uint64_t allocs = allocations();
    const uint64_t bytes = g_queue_bytes.load();
    auto made = make(kQueues);
    benchmark::DoNotOptimize(made);
    state.counters["allocs_per_queue"] =
        static_cast<double>(allocations() - allocs) / static_cast<double>(kQueues);
    state.counters["bytes_per_queue"] =
        static_cast<double>(object_size) +
        static_cast<double>(g_queue_bytes.load() - bytes) / static_cast<double>(kQueues);
  }
}

int register_all() {
  const Row transfer{"queues/transfer",
                     "one producer thread to one consumer thread, in order: a subscription's "
                     "queue (items/s)",
                     Figure::rate};
  add(transfer, "athomic_lane", lane)->UseRealTime();
  add(transfer, "moodycamel_queue", moodycamel_queue)->UseRealTime();
  add(transfer, "atomic_queue", atomic_queue_b)->UseRealTime();
  const Row idle{"queues/idle", "constructing 1,000 idle subscription queues"};
  add(idle, "athomic_lane", [](auto& s) {
    idle_memory(s, sizeof(Lane), [](int n) { return std::make_unique<Lane[]>(n); });
  });
  add(idle, "moodycamel_queue", [](auto& s) {
    idle_memory(s, sizeof(MoodycamelQueue),
                [](int n) { return std::make_unique<MoodycamelQueue[]>(n); });
  });
  add(idle, "atomic_queue", [](auto& s) {
    idle_memory(s, sizeof(AtomicQueue), [](int n) {
      std::vector<std::unique_ptr<AtomicQueue>> v;
      for (int i = 0; i < n; ++i) v.push_back(std::make_unique<AtomicQueue>(4096));
      return v;
    });
  });
  return 0;
}
const int registered = register_all();

}  // namespace
