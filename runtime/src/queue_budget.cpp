#include "queue_budget.h"

namespace athomic::detail {

bool QueueBudget::take(uint64_t bytes, std::chrono::steady_clock::time_point deadline,
                       const std::function<bool()>& give_up) {
  if (try_take(bytes)) return true;
  std::unique_lock lock(mutex_);
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  bool got = false;
  for (;;) {
    // After announcing ourselves: a place given back from now on notifies us.
    if (try_take(bytes)) {
      got = true;
      break;
    }
    if (give_up()) break;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      got = try_take(bytes);
      break;
    }
  }
  waiters_.fetch_sub(1, std::memory_order_relaxed);
  return got;
}

bool QueueBudget::wait_empty(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  const bool empty = cv_.wait_until(lock, deadline, [&] { return events() == 0; });
  waiters_.fetch_sub(1, std::memory_order_relaxed);
  return empty;
}

void QueueBudget::wake_all() noexcept {
  { std::lock_guard lock(mutex_); }
  cv_.notify_all();
}

}  // namespace athomic::detail
