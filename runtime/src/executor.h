// The worker pool of pool dispatch. It runs lanes, not single events: a lane is one
// subscription's serial queue (lane.h), handed to the pool when a push finds it idle and drained
// by one worker at a time, so one subscription's events run in order while different
// subscriptions run in parallel.
//
// Ready lanes go through a bounded lock-free ring (a sequence number per cell: a producer claims
// a cell with one compare-and-swap, a worker takes one the same way); a lane is in it at most
// once, so it holds at most one entry per lane — beyond the ring's capacity the rest wait in a
// mutex-guarded list. A worker that finds nothing keeps looking for a short while before it
// parks on a futex, one worker at a time; whoever schedules a lane wakes a parked worker only
// when nobody is looking, and claims the one it wakes, so later schedules do not wake it again
// before it runs.
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
  // Polls before parking: a few microseconds. Longer, or yielding, costs the other threads of a
  // small machine more than the wake-ups it saves.
  static constexpr int kLookRounds = 256;
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
