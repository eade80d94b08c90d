// One publishing thread handing events to consumer threads that run one handler, beside the
// queues an executor could be built on, each consumer running the same handler body:
//   athomic in pool dispatch, with 1 worker and with the default worker count
//   moodycamel::BlockingConcurrentQueue, its consumer dequeuing in bulk (wait_dequeue_bulk)
//   Boost.Asio post to an io_context run by one thread
//   atomic_queue (AtomicQueueB2), its consumer spinning, then yielding, while the queue is empty
// each in three placements (cpu_placement.h). The publisher publishes a batch of kBatch events
// and sleeps until the handlers have seen all of it. athomic publishes by name and captures the
// current context; the queues carry the same two references (payload and context), so they pay
// for the same reference counts but not for a name lookup.
//
// Counters: events/s (real time), allocations per event, and CPU time per event summed over
// every thread of the process, so that a consumer spinning while idle is paid for.
#include "bench_support.h"
#include "cpu_placement.h"
#include "sample_event.h"

#include <athomic/athomic.h>

#include <atomic_queue/atomic_queue.h>
#include <blockingconcurrentqueue.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace {

using namespace athomic::bench;
using athomic::ContextPtr;
using athomic::ExecutionContext;
using athomic::Payload;

constexpr uint64_t kBatch = 10000;
// A batch not handled within this is lost events, not slowness.
constexpr std::chrono::seconds kBatchLimit{30};

// Counts handled events. The publisher sleeps until its batch is handled rather than
// spinning, so the process's CPU time is the hand-off's, not the waiting's.
class Tally {
 public:
  void expect(uint64_t events) noexcept { target_.fetch_add(events, std::memory_order_relaxed); }
  // The handler body's bookkeeping.
  void hit() noexcept {
    if (handled_.fetch_add(1, std::memory_order_acq_rel) + 1 ==
        target_.load(std::memory_order_relaxed)) {
      std::lock_guard lock(mutex_);
      done_.notify_one();
    }
  }
  // False when the batch was not handled within kBatchLimit.
  bool wait() {
    std::unique_lock lock(mutex_);
    return done_.wait_for(lock, kBatchLimit, [this] {
      return handled_.load(std::memory_order_acquire) >= target_.load(std::memory_order_relaxed);
    });
  }
  uint64_t handled() const noexcept { return handled_.load(std::memory_order_acquire); }

 private:
  alignas(64) std::atomic<uint64_t> handled_{0};
  alignas(64) std::atomic<uint64_t> target_{0};
  std::mutex mutex_;
  std::condition_variable done_;
};

void handle(Tally& tally, const void* payload) noexcept {
  benchmark::DoNotOptimize(payload);
  tally.hit();
}

// What a baseline queue carries: the references an event record holds.
struct Item {
  Payload payload;  // null: stop
  ContextPtr context;
};

// Publishes batches with @p publish_one until the benchmark has enough, then sets the counters.
// Returns the number of events published.
template <class Publish>
uint64_t publish_batches(benchmark::State& state, Tally& tally, Publish&& publish_one) {
  athomic::ContextScope scope(sample_context());
  const Payload payload = sample_payload();
  uint64_t published = 0;
  Meter meter;
  for (auto _ : state) {
    tally.expect(kBatch);
    for (uint64_t i = 0; i < kBatch; ++i) publish_one(payload);
    published += kBatch;
    if (!tally.wait()) {
      fail(state, "a batch was not handled within " + std::to_string(kBatchLimit.count()) +
                      " s: handled " + std::to_string(tally.handled()) + " of " +
                      std::to_string(published));
      break;
    }
  }
  meter.report(state, static_cast<double>(published), "event", true);
  state.SetItemsProcessed(static_cast<int64_t>(published));
  return published;
}

void athomic_pool(benchmark::State& state, Placement where, unsigned workers) {
  Placed placed(where);
  if (!placed.unavailable().empty()) return skip(state, placed.unavailable());
  Tally tally;
  athomic::EventsSettings settings;  // pool dispatch
  settings.workers = workers;
  auto bus = athomic::EventBus::create(settings);
  bus->start();
  bus->subscribe(kEventName, [&tally](const athomic::Event& e) { handle(tally, &e.payload()); });
  placed.publisher();
  const uint64_t published = publish_batches(
      state, tally, [&](const Payload& payload) { bus->publish(kEventName, payload); });
  bus->close();
  expect_equal(state, "handler calls", tally.handled(), published);
}

// The queue's blocks are counted like every other allocation.
struct CountedTraits : moodycamel::ConcurrentQueueDefaultTraits {
  static void* malloc(std::size_t size) { return ::operator new(size); }
  static void free(void* p) { ::operator delete(p); }
};

void moodycamel_bulk(benchmark::State& state, Placement where) {
  Placed placed(where);
  if (!placed.unavailable().empty()) return skip(state, placed.unavailable());
  Tally tally;
  moodycamel::BlockingConcurrentQueue<Item, CountedTraits> queue;
  std::thread consumer([&] {
    moodycamel::ConsumerToken token(queue);
    std::array<Item, 256> items;
    for (;;) {
      const std::size_t n = queue.wait_dequeue_bulk(token, items.begin(), items.size());
      for (std::size_t i = 0; i < n; ++i) {
        if (!items[i].payload) return;
        handle(tally, items[i].payload.get());
        items[i] = Item{};
      }
    }
  });
  placed.publisher();
  // No producer token: a bus's publishers are any thread, and hold none.
  const uint64_t published = publish_batches(state, tally, [&](const Payload& payload) {
    queue.enqueue(Item{payload, ExecutionContext::current_ptr()});
  });
  queue.enqueue(Item{});
  consumer.join();
  expect_equal(state, "handler calls", tally.handled(), published);
}

void asio_post(benchmark::State& state, Placement where) {
  Placed placed(where);
  if (!placed.unavailable().empty()) return skip(state, placed.unavailable());
  Tally tally;
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::thread runner([&io] { io.run(); });
  placed.publisher();
  const uint64_t published = publish_batches(state, tally, [&](const Payload& payload) {
    boost::asio::post(io, [&tally, item = Item{payload, ExecutionContext::current_ptr()}] {
      handle(tally, item.payload.get());
    });
  });
  work.reset();
  runner.join();
  expect_equal(state, "handler calls", tally.handled(), published);
}

void atomic_queue_spin(benchmark::State& state, Placement where) {
  Placed placed(where);
  if (!placed.unavailable().empty()) return skip(state, placed.unavailable());
  Tally tally;
  // Larger than a batch, so that the publisher never waits for room, as with the unbounded
  // queues.
  atomic_queue::AtomicQueueB2<Item> queue(2 * kBatch);
  std::thread consumer([&] {
    Item item;
    for (;;) {
      // Yielding after a short spin keeps a consumer sharing the publisher's CPU from
      // stalling it for a whole time slice.
      for (unsigned idle = 0; !queue.try_pop(item); ++idle) {
        if (idle < 64) {
          atomic_queue::spin_loop_pause();
        } else {
          std::this_thread::yield();
        }
      }
      if (!item.payload) return;
      handle(tally, item.payload.get());
      item = Item{};
    }
  });
  placed.publisher();
  const uint64_t published = publish_batches(state, tally, [&](const Payload& payload) {
    queue.push(Item{payload, ExecutionContext::current_ptr()});
  });
  queue.push(Item{});
  consumer.join();
  expect_equal(state, "handler calls", tally.handled(), published);
}

int register_all() {
  const unsigned default_workers = athomic::EventsSettings{}.workers;
  for (Placement p : {Placement::any_cpu, Placement::separate_cpus, Placement::same_cpu}) {
    const Row row{
        std::string("handoff/") + placement_id(p),
        std::string("one publisher thread to consumer threads, 1 handler; ") + placement_title(p),
        Figure::rate};
    add(row, "athomic_1_worker", [p](auto& s) { athomic_pool(s, p, 1); })->UseRealTime();
    add(row, "athomic_" + std::to_string(default_workers) + "_workers_default",
        [p, default_workers](auto& s) { athomic_pool(s, p, default_workers); })
        ->UseRealTime();
    add(row, "moodycamel_bulk", [p](auto& s) { moodycamel_bulk(s, p); })->UseRealTime();
    add(row, "asio_post", [p](auto& s) { asio_post(s, p); })->UseRealTime();
    add(row, "atomic_queue_spin", [p](auto& s) { atomic_queue_spin(s, p); })->UseRealTime();
  }
  return 0;
}
const int registered = register_all();

}  // namespace
