// The worker pool of pool dispatch. It runs lanes, not single events: a lane is one
// subscription's serial queue (lane.h), handed to the pool when a push finds it idle and drained
// by one worker at a time, so one subscription's events run in order while different
// subscriptions run in parallel.
//
// Ready lanes go through a bounded lock-free ring (a sequence number per cell: a producer claims
// a cell with one compare-and-swap, a worker takes one the same way); a lane is in it at most
// once, so it holds at most one entry per lane — beyond the ring's capacity the rest wait in a
// mutex-guarded list. A worker that finds nothing keeps looking for up to a few microseconds
// before it parks on a futex, one worker at a time, for as long as looking has been paying off
// (see kMaxLookNs); whoever schedules a lane wakes a parked worker only when nobody is looking,
// and claims the one it wakes, so later schedules do not wake it again before it runs.
//
// stop() lets the workers finish what is queued, waits for them until a deadline, and detaches
// those still inside a handler: each keeps what it needs alive (`keep`) until it returns.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace athomic::detail {

class Lane;

class Executor {
 public:
  // Drains @p lane on worker @p worker; called with the lane owned by the caller.
  using DrainFn = void (*)(void* owner, Lane& lane, unsigned worker) noexcept;

  Executor(unsigned workers, DrainFn drain, void* owner);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Queues a lane whose push found it idle. Never blocks, never fails.
  void schedule(Lane* lane) noexcept;
  // True when lanes wait for a worker (a worker with a long lane then lets them go first).
  bool others_waiting() const noexcept {
    return enqueue_pos_.load(std::memory_order_relaxed) !=
               dequeue_pos_.load(std::memory_order_relaxed) ||
           overflow_size_.load(std::memory_order_relaxed) != 0;
  }

  // Lets the workers finish what is queued and exit; waits for them until @p deadline. Workers
  // still running then are detached, and @p keep stays alive until the last of them exits.
  // Returns the number left running. Idempotent.
  unsigned stop(std::chrono::steady_clock::time_point deadline, std::shared_ptr<void> keep);

  unsigned size() const noexcept { return static_cast<unsigned>(workers_.size()); }

  // Polling for work is one worker's job at a time — the ready queue's, or a worker's lane it
  // expects more events on. True when the caller may poll now; then call stop_looking().
  bool try_look() noexcept {
    unsigned expected = 0;
    return looking_.load(std::memory_order_relaxed) == 0 &&
           looking_.compare_exchange_strong(expected, 1, std::memory_order_acq_rel);
  }
  // Stops polling; wakes a parked worker when lanes wait meanwhile. A lane scheduled while a
  // worker polled woke nobody (the poller was to take it): the poller, taking one lane or
  // none, must hand the others on, or they would wait for a worker that is busy for good.
  void stop_looking() noexcept {
    looking_.store(0, std::memory_order_seq_cst);
    pass_on();
  }
  // Wakes one parked worker if lanes wait.
  void pass_on() noexcept;

  // Polls, as the one worker looking, until ready() holds or lanes wait for a worker, for at
  // most the current look budget; true when ready() held. Returns false at once when another
  // worker is looking. Worker @p worker then parks without polling the ready queue again: this
  // look watched it too.
  template <class Ready>
  bool watch(unsigned worker, Ready ready) noexcept {
    if (!try_look()) return false;
    bool found = false;
    const bool any = poll([&] { return (found = ready()) || others_waiting(); });
    looked_[worker].missed = !any;
    stop_looking();
    return found;
  }

  // The longest a worker polls before it parks. The budget adapts between 0 and this to the
  // gap between a look that found nothing and the work that came next (the look included): a
  // gap a look this long would have caught restores it, a longer one halves it. Work that comes
  // in bursts is caught by polling, without a futex wake-up per event; a steady trickle stops
  // paying several microseconds of polling per event.
  static constexpr int64_t kMaxLookNs = 8000;
  static constexpr int64_t kMinLookNs = 250;  // below it, not worth a clock read
  static constexpr int kParkYields = 4;
  int64_t look_budget_ns() const noexcept { return look_ns_.load(std::memory_order_relaxed); }
  // True on one of this executor's worker threads.
  bool is_worker_thread() const noexcept;

 private:
  static constexpr std::size_t kRingCapacity = std::size_t{1} << 12;

  struct Cell {
    std::atomic<std::size_t> sequence;
    Lane* lane;
  };
  struct Worker {
    std::thread thread;
    bool exited = false;    // guarded by exit_mutex_
    bool detached = false;  // guarded by exit_mutex_
  };

  bool try_push(Lane* lane) noexcept;
  bool try_pop(Lane*& lane) noexcept;
  bool pop(Lane*& lane);  // ring first, then overflow
  void wake(unsigned count) noexcept;
  void unpark() noexcept;
  // Polls until ready() or the look budget passes; true when ready() held. The clock is read
  // once per 16 pauses: a pause takes from a few to over a hundred cycles by CPU model.
  template <class Ready>
  bool poll(Ready ready) noexcept {
    if (ready()) return true;
    const int64_t budget = look_ns_.load(std::memory_order_relaxed);
    if (budget <= 0) return false;
    const int64_t until = now_ns() + budget;
    for (;;) {
      for (int i = 0; i < 16; ++i) {
        cpu_relax();
        if (ready()) return true;
      }
      if (now_ns() >= until) return false;
    }
  }
  static int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  static void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
  // Adapts the look budget to a look that found nothing and the @p waited_ns after it until
  // work came.
  void adapt_look(int64_t waited_ns) noexcept;
  void work(unsigned index);
  void exited(unsigned index) noexcept;

  DrainFn drain_;
  void* owner_;

  std::unique_ptr<Cell[]> cells_;
  const std::size_t mask_;
  alignas(64) std::atomic<std::size_t> enqueue_pos_{0};
  alignas(64) std::atomic<std::size_t> dequeue_pos_{0};

  // Workers parked (or about to park) on wake_seq_: the high half counts those nobody has
  // claimed, the low half those a scheduler claimed and is waking. One word, so that both
  // change in one step.
  static constexpr uint64_t kOneParked = uint64_t{1} << 32;
  static unsigned parked_of(uint64_t idle) noexcept { return static_cast<unsigned>(idle >> 32); }
  static unsigned claimed_of(uint64_t idle) noexcept { return static_cast<unsigned>(idle); }
  alignas(64) std::atomic<uint64_t> idle_{0};
  std::atomic<unsigned> looking_{0};   // 0 or 1: the worker polling for work
  std::atomic<int64_t> look_ns_{kMaxLookNs};
  std::atomic<int64_t> missed_at_{0};  // when the last look found nothing; 0 once work came
  // Per worker, written by that worker only: its last look found nothing.
  struct alignas(64) Looked {
    bool missed = false;
  };
  std::unique_ptr<Looked[]> looked_;
  std::atomic<uint32_t> wake_seq_{0};  // the futex parked workers wait on
  std::atomic<bool> stopping_{false};

  std::mutex overflow_mutex_;
  std::deque<Lane*> overflow_;
  std::atomic<std::size_t> overflow_size_{0};

  std::mutex exit_mutex_;
  std::condition_variable exit_cv_;
  std::vector<Worker> workers_;
  unsigned detached_running_ = 0;  // guarded by exit_mutex_
  std::shared_ptr<void> keep_;     // guarded by exit_mutex_
  bool stopped_ = false;           // guarded by exit_mutex_
};

}  // namespace athomic::detail
