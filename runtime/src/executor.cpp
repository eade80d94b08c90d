#include "executor.h"

#include <algorithm>
#include <cstdint>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace athomic::detail {

namespace {
thread_local const Executor* tls_worker_of = nullptr;

// Parked workers sleep on a futex of their own: std::atomic::wait polls and calls sched_yield
// several times before it sleeps, which a worker that has just polled does not need (perf, a
// subscriber at 10,000 events/s: 16 % of its CPU in sched_yield).
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) &&
              std::atomic<uint32_t>::is_always_lock_free);

// Sleeps while @p word holds @p seen, after giving the CPU away up to @p yields times.
void futex_wait(std::atomic<uint32_t>& word, uint32_t seen, int yields) noexcept {
  for (int i = 0; i < yields; ++i) {
    if (word.load(std::memory_order_acquire) != seen) return;
    std::this_thread::yield();
  }
#ifdef __linux__
  while (word.load(std::memory_order_acquire) == seen) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, seen, nullptr,
            nullptr, 0);
  }
#else
  word.wait(seen, std::memory_order_acquire);
#endif
}

void futex_wake(std::atomic<uint32_t>& word, bool all) noexcept {
#ifdef __linux__
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, all ? INT32_MAX : 1,
          nullptr, nullptr, 0);
#else
  all ? word.notify_all() : word.notify_one();
#endif
}
}  // namespace

Executor::Executor(unsigned workers, DrainFn drain, void* owner)
    : drain_(drain),
      owner_(owner),
      cells_(new Cell[kRingCapacity]),
      mask_(kRingCapacity - 1),
      looked_(new Looked[workers]) {
  for (std::size_t i = 0; i < kRingCapacity; ++i) {
    cells_[i].sequence.store(i, std::memory_order_relaxed);
  }
  std::lock_guard lock(exit_mutex_);
  workers_.resize(workers);
  for (unsigned i = 0; i < workers; ++i) {
    workers_[i].thread = std::thread([this, i] { work(i); });
  }
}

Executor::~Executor() {
  stop(std::chrono::steady_clock::time_point::max(), nullptr);
}

bool Executor::is_worker_thread() const noexcept { return tls_worker_of == this; }

bool Executor::try_push(Lane* lane) noexcept {
  std::size_t pos = enqueue_pos_.load(std::memory_order_relaxed);
  for (;;) {
    Cell& cell = cells_[pos & mask_];
    const std::size_t seq = cell.sequence.load(std::memory_order_acquire);
    const auto diff = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos);
    if (diff == 0) {
      if (enqueue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
        cell.lane = lane;
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

bool Executor::try_pop(Lane*& lane) noexcept {
  std::size_t pos = dequeue_pos_.load(std::memory_order_relaxed);
  for (;;) {
    Cell& cell = cells_[pos & mask_];
    const std::size_t seq = cell.sequence.load(std::memory_order_acquire);
    const auto diff = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos + 1);
    if (diff == 0) {
      if (dequeue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
        lane = cell.lane;
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

bool Executor::pop(Lane*& lane) {
  if (try_pop(lane)) return true;
  if (overflow_size_.load(std::memory_order_acquire) == 0) return false;
  std::lock_guard lock(overflow_mutex_);
  if (overflow_.empty()) return false;
  lane = overflow_.front();
  overflow_.pop_front();
  overflow_size_.fetch_sub(1, std::memory_order_release);
  return true;
}

void Executor::wake(unsigned count) noexcept {
  if (count == 1 && missed_at_.load(std::memory_order_relaxed) != 0) {
    // Work came for a worker that parked after a look found nothing: the gap since that look
    // says whether a longer look would have caught it (the wake-up's latency does not count).
    const int64_t missed = missed_at_.exchange(0, std::memory_order_relaxed);
    if (missed != 0) adapt_look(now_ns() - missed);
  }
  wake_seq_.fetch_add(1, std::memory_order_release);
  futex_wake(wake_seq_, count != 1);
}

void Executor::adapt_look(int64_t waited_ns) noexcept {
  // Two threads adapting at once race harmlessly: either result is a valid budget.
  const int64_t budget = look_ns_.load(std::memory_order_relaxed);
  int64_t next = kMaxLookNs;
  if (budget + waited_ns > kMaxLookNs) next = budget / 2 < kMinLookNs ? 0 : budget / 2;
  if (next != budget) look_ns_.store(next, std::memory_order_relaxed);
}

void Executor::unpark() noexcept {
  // Leave the parked state: take back a claim a scheduler made on us if there is one (it
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

void Executor::schedule(Lane* lane) noexcept {
  if (!try_push(lane)) {
    // At most one entry per lane: bounded by the number of subscriptions.
    try {
      std::lock_guard lock(overflow_mutex_);
      overflow_.push_back(lane);
      overflow_size_.fetch_add(1, std::memory_order_release);
    } catch (...) {
      // Out of memory for one list node: wait for the ring instead of losing the lane.
      while (!try_push(lane)) std::this_thread::yield();
    }
  }
  // Pairs with the fence a worker issues after announcing it parks: either we see it parked,
  // or it sees our lane.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  uint64_t idle = idle_.load(std::memory_order_relaxed);
  if (parked_of(idle) == 0 || looking_.load(std::memory_order_relaxed) != 0) return;
  // Claim the worker we wake: the lanes scheduled before it rises do not wake another.
  while (parked_of(idle) > 0) {
    if (idle_.compare_exchange_weak(idle, idle - kOneParked + 1, std::memory_order_seq_cst,
                                    std::memory_order_relaxed)) {
      wake(1);
      return;
    }
  }
}

void Executor::pass_on() noexcept {
  // Pairs with the fence in schedule: it sees the poller gone, or we see its lane.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!others_waiting()) return;
  uint64_t idle = idle_.load(std::memory_order_relaxed);
  while (parked_of(idle) > 0) {
    if (idle_.compare_exchange_weak(idle, idle - kOneParked + 1, std::memory_order_seq_cst,
                                    std::memory_order_relaxed)) {
      wake(1);
      return;
    }
  }
}

void Executor::work(unsigned index) {
  tls_worker_of = this;
  Lane* lane = nullptr;
  // Drains a lane; true when the drain ended with a look that found nothing (watch()).
  const auto run = [&] {
    looked_[index].missed = false;
    drain_(owner_, *lane, index);
    return looked_[index].missed;
  };
  bool looked = false;
  for (;;) {
    if (pop(lane)) {
      pass_on();  // more lanes than this one: a parked worker takes the next
      looked = run();
      continue;
    }
    if (stopping_.load(std::memory_order_acquire)) break;
    // Keep looking for a little while, one worker at a time — unless the drain just did.
    if (!looked && try_look()) {
      const bool found = poll([&] { return pop(lane); });
      stop_looking();
      if (found) {
        looked = run();
        continue;
      }
      looked = true;
    }
    // Park. Announce first, then look once more: a scheduler that missed the announcement has
    // made its lane visible to this look (see the fence in schedule).
    const uint32_t seen = wake_seq_.load(std::memory_order_acquire);
    idle_.fetch_add(kOneParked, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (pop(lane)) {
      unpark();
      pass_on();
      looked = run();
      continue;
    }
    if (stopping_.load(std::memory_order_acquire)) {
      unpark();
      break;
    }
    // While looking pays, give the CPU away a few times before sleeping: a publisher sharing
    // this CPU runs and fills the lane, and nobody pays a wake-up (+25 % events/s with both
    // on one CPU). A trickle of events, with the budget at 0, sleeps at once.
    const int yields = look_ns_.load(std::memory_order_relaxed) > 0 ? kParkYields : 0;
    // A look that found nothing: the scheduler that wakes a worker next adapts the budget.
    if (looked) missed_at_.store(now_ns(), std::memory_order_relaxed);
    futex_wait(wake_seq_, seen, yields);
    unpark();
    looked = false;
  }
  exited(index);
}

void Executor::exited(unsigned index) noexcept {
  std::shared_ptr<void> last;
  {
    std::lock_guard lock(exit_mutex_);
    workers_[index].exited = true;
    if (workers_[index].detached && --detached_running_ == 0) last = std::move(keep_);
    exit_cv_.notify_all();
  }
  // `last` may own this executor: nothing of it is touched once it goes.
}

unsigned Executor::stop(std::chrono::steady_clock::time_point deadline, std::shared_ptr<void> keep) {
  std::unique_lock lock(exit_mutex_);
  if (stopped_) return detached_running_;
  stopped_ = true;
  stopping_.store(true, std::memory_order_release);
  lock.unlock();
  wake(size());
  lock.lock();
  exit_cv_.wait_until(lock, deadline, [&] {
    return std::all_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.exited; });
  });
  unsigned left = 0;
  for (auto& w : workers_) {
    if (!w.thread.joinable()) continue;
    if (w.exited) {
      if (w.thread.get_id() == std::this_thread::get_id()) {
        w.thread.detach();
      } else {
        w.thread.join();  // it has left work(); joining takes no time
      }
    } else {
      w.detached = true;
      w.thread.detach();
      ++left;
    }
  }
  detached_running_ = left;
  if (left > 0) keep_ = std::move(keep);
  return left;
}

}  // namespace athomic::detail
