#include "executor.h"

#include <algorithm>

namespace athomic::detail {

namespace {
thread_local const Executor* tls_worker_of = nullptr;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

Executor::Executor(unsigned workers, RunFn run, RunFn drop, void* owner)
    : workers_(workers),
      run_(run),
      drop_(drop),
      owner_(owner),
      cells_(new Cell[kRingCapacity]),
      mask_(kRingCapacity - 1) {
  for (std::size_t i = 0; i < kRingCapacity; ++i) {
    cells_[i].sequence.store(i, std::memory_order_relaxed);
  }
  threads_.reserve(workers_);
  for (unsigned i = 0; i < workers_; ++i) threads_.emplace_back([this] { work(); });
}

Executor::~Executor() { shutdown(std::chrono::steady_clock::now()); }

bool Executor::is_worker_thread() const noexcept { return tls_worker_of == this; }

bool Executor::try_push(const Task& t) noexcept {
  std::size_t pos = enqueue_pos_.load(std::memory_order_relaxed);
  for (;;) {
    Cell& cell = cells_[pos & mask_];
    const std::size_t seq = cell.sequence.load(std::memory_order_acquire);
    const auto diff = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos);
    if (diff == 0) {
      if (enqueue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
        cell.task = t;
        cell.sequence.store(pos + 1, std::memory_order_release);
        return true;
      }
    } else if (diff < 0) {
      return false;  // full
    } else {
      pos = enqueue_pos_.load(std::memory_order_relaxed);
    }
  }
}

bool Executor::try_pop(Task& t) noexcept {
  std::size_t pos = dequeue_pos_.load(std::memory_order_relaxed);
  for (;;) {
    Cell& cell = cells_[pos & mask_];
    const std::size_t seq = cell.sequence.load(std::memory_order_acquire);
    const auto diff = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos + 1);
    if (diff == 0) {
      if (dequeue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
        t = cell.task;
        cell.sequence.store(pos + mask_ + 1, std::memory_order_release);
        return true;
      }
    } else if (diff < 0) {
      return false;  // empty
    } else {
      pos = dequeue_pos_.load(std::memory_order_relaxed);
    }
  }
}

bool Executor::pop(Task& t) {
  if (try_pop(t)) return true;
  if (overflow_size_.load(std::memory_order_acquire) == 0) return false;
  std::lock_guard lock(overflow_mutex_);
  if (overflow_.empty()) return false;
  t = overflow_.front();
  overflow_.pop_front();
  overflow_size_.fetch_sub(1, std::memory_order_release);
  return true;
}

void Executor::wake(unsigned count) noexcept {
  wake_seq_.fetch_add(1, std::memory_order_release);
  if (count == 1) {
    wake_seq_.notify_one();
  } else {
    wake_seq_.notify_all();
  }
}

void Executor::unpark() noexcept {
  // Leave the parked state: take back a claim a publisher made on us if there is one (it
  // already counted us out of `parked`), else count ourselves out.
  uint64_t idle = idle_.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t next = claimed_of(idle) > 0 ? idle - 1 : idle - kOneParked;
    if (idle_.compare_exchange_weak(idle, next, std::memory_order_acq_rel,
                                    std::memory_order_relaxed)) {
      return;
    }
  }
}

bool Executor::submit(EventRecord* record, Subscriber* const* subscribers, std::size_t count) {
  if (stopping_.load(std::memory_order_acquire)) return false;
  unfinished_.fetch_add(count, std::memory_order_relaxed);
  for (std::size_t i = 0; i < count; ++i) {
    const Task t{record, subscribers[i]};
    if (!try_push(t)) {
      std::lock_guard lock(overflow_mutex_);
      overflow_.push_back(t);
      overflow_size_.fetch_add(1, std::memory_order_release);
    }
  }
  // Pairs with the fence a worker issues after announcing it parks: either we see it parked,
  // or it sees our tasks.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  uint64_t idle = idle_.load(std::memory_order_relaxed);
  if (parked_of(idle) == 0) return true;
  const std::size_t uncovered = count - std::min<std::size_t>(count, looking_.load(std::memory_order_relaxed));
  // Claim the workers we wake: moving them from parked to claimed means the tasks submitted
  // before they rise do not wake them again (one system call per wake, not per task).
  unsigned n = 0;
  while (n < uncovered && parked_of(idle) > 0) {
    if (idle_.compare_exchange_weak(idle, idle - kOneParked + 1, std::memory_order_seq_cst,
                                    std::memory_order_relaxed)) {
      ++n;
    }
  }
  if (n > 0) wake(n);
  return true;
}

void Executor::execute(Task& t) noexcept {
  if (abandon_.load(std::memory_order_relaxed)) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    drop_(owner_, t);
  } else {
    run_(owner_, t);
  }
  if (unfinished_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
      shutdown_waiting_.load(std::memory_order_seq_cst)) {
    std::lock_guard lock(idle_mutex_);
    idle_cv_.notify_all();
  }
}

void Executor::work() {
  tls_worker_of = this;
  Task t;
  for (;;) {
    if (pop(t)) {
      execute(t);
      continue;
    }
    if (stopping_.load(std::memory_order_acquire)) return;
    // Keep looking for a little while, one worker at a time.
    unsigned expected = 0;
    if (looking_.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
      bool found = false;
      for (int round = 0; round < kLookRounds && !found; ++round) {
        cpu_relax();
        found = pop(t);
      }
      looking_.store(0, std::memory_order_release);
      if (found) {
        execute(t);
        continue;
      }
    }
    // Park. Announce first, then look once more: a publisher that missed the announcement has
    // made its tasks visible to this look (see the fence in submit).
    const uint32_t seen = wake_seq_.load(std::memory_order_acquire);
    idle_.fetch_add(kOneParked, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (pop(t)) {
      unpark();
      execute(t);
      continue;
    }
    if (stopping_.load(std::memory_order_acquire)) {
      unpark();
      return;
    }
    wake_seq_.wait(seen, std::memory_order_acquire);
    unpark();
  }
}

std::size_t Executor::shutdown(std::chrono::steady_clock::time_point deadline) {
  if (threads_.empty()) return dropped_.load(std::memory_order_relaxed);
  {
    std::unique_lock lock(idle_mutex_);
    shutdown_waiting_.store(true, std::memory_order_seq_cst);
    const bool idle = idle_cv_.wait_until(lock, deadline, [&] {
      return unfinished_.load(std::memory_order_seq_cst) == 0;
    });
    if (!idle) abandon_.store(true, std::memory_order_relaxed);
  }
  stopping_.store(true, std::memory_order_release);
  wake(workers_);
  for (auto& th : threads_) th.join();
  threads_.clear();
  // Whatever a racing submit left behind is dropped, so no completion waits forever.
  Task t;
  while (pop(t)) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    drop_(owner_, t);
    unfinished_.fetch_sub(1, std::memory_order_relaxed);
  }
  return dropped_.load(std::memory_order_relaxed);
}

}  // namespace athomic::detail
