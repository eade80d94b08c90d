// The bound on pool dispatch: events (and their bytes) accepted and not yet delivered to every
// handler. Taking a place is two atomic additions; giving one back wakes a publisher waiting
// for room, if any.
#pragma once

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
    if (events_.fetch_add(1, std::memory_order_seq_cst) >= max_events_) {
      events_.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    if (bytes_.fetch_add(bytes, std::memory_order_relaxed) + bytes > max_bytes_) {
      bytes_.fetch_sub(bytes, std::memory_order_relaxed);
      events_.fetch_sub(1, std::memory_order_relaxed);
      give_back_notify();
      return false;
    }
    return true;
  }

  // Waits for room until @p deadline, or until @p give_up() says so (checked whenever a place
  // is given back, and by wake_all). False when no room was had.
  bool take(uint64_t bytes, std::chrono::steady_clock::time_point deadline,
            const std::function<bool()>& give_up);

  void give_back(uint64_t bytes) noexcept {
    bytes_.fetch_sub(bytes, std::memory_order_relaxed);
    events_.fetch_sub(1, std::memory_order_seq_cst);
    give_back_notify();
  }

  // Waits until no event is queued, or @p deadline; true when none is.
  bool wait_empty(std::chrono::steady_clock::time_point deadline);

  // Wakes every waiter so that it checks give_up (the bus is closing).
  void wake_all() noexcept;

  uint64_t events() const noexcept { return events_.load(std::memory_order_relaxed); }
  uint64_t bytes() const noexcept { return bytes_.load(std::memory_order_relaxed); }
  uint64_t max_events() const noexcept { return max_events_; }
  uint64_t max_bytes() const noexcept { return max_bytes_; }

 private:
  void give_back_notify() noexcept {
    if (waiters_.load(std::memory_order_seq_cst) != 0) wake_all();
  }

  const uint64_t max_events_;
  const uint64_t max_bytes_;
  alignas(64) std::atomic<uint64_t> events_{0};
  std::atomic<uint64_t> bytes_{0};
  alignas(64) std::atomic<uint32_t> waiters_{0};
  std::mutex mutex_;
  std::condition_variable cv_;
};

}  // namespace athomic::detail
