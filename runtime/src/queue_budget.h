// The bound on pool dispatch: events (and their bytes) accepted and not yet delivered to every
// handler.
//
// Publishers and workers count on separate cache lines — publishers what they took, workers
// what they gave back, in batches — and the number queued is the difference. A publish then
// costs two additions on a line other publishers share but workers never write, and a worker
// touches the counters once per batch of events instead of once per event: no line bounces
// between the publishing and the handling threads for the bound's sake.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

namespace athomic::detail {

class QueueBudget {
 public:
  QueueBudget(uint64_t max_events, uint64_t max_bytes) noexcept
      : max_events_(max_events), max_bytes_(max_bytes) {}

  // One event of @p bytes, if it fits now.
  bool try_take(uint64_t bytes) noexcept {
    // Sequentially consistent: pairs with give_back's check for waiters.
    // Later takers may have given back by the time "given" is read, making it the larger:
    // the difference saturates at 0 (nothing of ours is over the bound then) instead of
    // wrapping round to a refusal.
    const uint64_t taken = taken_events_.fetch_add(1, std::memory_order_seq_cst) + 1;
    if (difference(taken, given_events_.load(std::memory_order_seq_cst)) > max_events_) {
      taken_events_.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    // Bytes are added only if they fit, by compare-and-swap: an event too large for the room
    // left never counts, even for a moment, against the small ones published beside it.
    // "Given" is read after "taken" (acquire) and only grows, so the check can only over-count
    // what is queued; the exchange fails, and the check is made again, if anything was taken
    // meanwhile.
    uint64_t taken_bytes = taken_bytes_.load(std::memory_order_acquire);
    for (;;) {
      if (difference(taken_bytes + bytes, given_bytes_.load(std::memory_order_acquire)) >
          max_bytes_) {
        taken_events_.fetch_sub(1, std::memory_order_relaxed);
        return false;
      }
      if (taken_bytes_.compare_exchange_weak(taken_bytes, taken_bytes + bytes,
                                             std::memory_order_acq_rel,
                                             std::memory_order_acquire)) {
        return true;
      }
    }
  }
  // Waits for room until @p deadline, or until @p give_up() says so (checked whenever room is
  // given back, and by wake_all). False when no room was had.
  bool take(uint64_t bytes, std::chrono::steady_clock::time_point deadline,
            const std::function<bool()>& give_up);

  // @p events events and their @p bytes finished.
  void give_back(uint64_t events, uint64_t bytes) noexcept {
    given_bytes_.fetch_add(bytes, std::memory_order_relaxed);
    given_events_.fetch_add(events, std::memory_order_seq_cst);
    if (waiters_.load(std::memory_order_seq_cst) != 0) wake_all();
  }

  // True when a publisher (or close) waits for room: workers then give back at once.
  bool wanted() const noexcept { return waiters_.load(std::memory_order_relaxed) != 0; }

  // Waits until no event is queued, or @p deadline; true when none is.
  bool wait_empty(std::chrono::steady_clock::time_point deadline);

  // Wakes every waiter so that it checks give_up (the bus is closing).
  void wake_all() noexcept;

  // Read from both sides' counters: exact once the workers have given their batches back. A
  // take being refused counts for a moment; what was accepted never exceeds the bound, and
  // neither does the figure.
  uint64_t events() const noexcept {
    return std::min(difference(taken_events_.load(std::memory_order_seq_cst),
                               given_events_.load(std::memory_order_seq_cst)),
                    max_events_);
  }
  uint64_t bytes() const noexcept {
    return std::min(difference(taken_bytes_.load(std::memory_order_seq_cst),
                               given_bytes_.load(std::memory_order_seq_cst)),
                    max_bytes_);
  }
  uint64_t max_events() const noexcept { return max_events_; }
  uint64_t max_bytes() const noexcept { return max_bytes_; }

 private:
  // Taken is read first, so a concurrent give-back can make "given" the larger one for a moment.
  static uint64_t difference(uint64_t taken, uint64_t given) noexcept {
    return taken > given ? taken - given : 0;
  }

  const uint64_t max_events_;
  const uint64_t max_bytes_;
  alignas(64) std::atomic<uint64_t> taken_events_{0};
  std::atomic<uint64_t> taken_bytes_{0};
  alignas(64) std::atomic<uint64_t> given_events_{0};
  std::atomic<uint64_t> given_bytes_{0};
  alignas(64) std::atomic<uint32_t> waiters_{0};
  std::mutex mutex_;
  std::condition_variable cv_;
};

}  // namespace athomic::detail
