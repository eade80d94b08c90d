// The worker pool that runs handlers.
//
// Tasks go through a bounded lock-free ring (sequence number per cell: a producer claims a cell
// with one compare-and-swap, a worker takes one the same way), so publishers never contend on a
// lock with workers. A worker that finds the ring empty keeps looking for a short while before
// it parks on a futex — but only one worker looks at a time, so an idle pool spins at most one
// thread briefly, not all of them. A publisher wakes parked workers only when nobody is looking, and
// only as many as it brought tasks; it claims each one it wakes, so later publishers do not wake
// it again before it runs. When the ring is full, tasks go to a mutex-guarded overflow
// list instead of blocking the publisher (a handler that publishes must never wait for itself).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace athomic::detail {

struct EventRecord;
struct Subscriber;

struct Task {
  EventRecord* record;
  Subscriber* subscriber;
};

class Executor {
 public:
  using RunFn = void (*)(void* owner, Task& task) noexcept;

  // @p run is called for each task on a worker; @p drop for each task discarded by shutdown.
  Executor(unsigned workers, RunFn run, RunFn drop, void* owner);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Enqueues one task per subscriber. False (nothing enqueued) once shutdown has begun.
  bool submit(EventRecord* record, Subscriber* const* subscribers, std::size_t count);

  // Waits until every submitted task has run, or @p deadline; then discards every task not yet
  // started (returning how many were discarded) and joins the workers, which finish the task
  // they are running.
  std::size_t shutdown(std::chrono::steady_clock::time_point deadline);

  // True on one of this executor's worker threads.
  bool is_worker_thread() const noexcept;

 private:
  static constexpr std::size_t kRingCapacity = std::size_t{1} << 14;  // per bus; bursts beyond go to overflow
  // Polls before parking: about ten microseconds of spinning. Longer, or yielding, loop costs
  // the other threads of a small machine more than the wake-ups it saves.
  static constexpr int kLookRounds = 256;

  struct Cell {
    std::atomic<std::size_t> sequence;
    Task task;
  };

  bool try_push(const Task& t) noexcept;
  bool try_pop(Task& t) noexcept;
  bool pop(Task& t);  // ring first, then overflow
  void execute(Task& t) noexcept;
  void wake(unsigned count) noexcept;
  void unpark() noexcept;
  void work();

  const unsigned workers_;
  RunFn run_;
  RunFn drop_;
  void* owner_;

  std::unique_ptr<Cell[]> cells_;
  const std::size_t mask_;
  alignas(64) std::atomic<std::size_t> enqueue_pos_{0};
  alignas(64) std::atomic<std::size_t> dequeue_pos_{0};

  // Workers parked (or about to park) on wake_seq_: the high half counts those nobody has
  // claimed, the low half those a publisher claimed and is waking. One word, so that both
  // change in one step.
  static constexpr uint64_t kOneParked = uint64_t{1} << 32;
  static unsigned parked_of(uint64_t idle) noexcept { return static_cast<unsigned>(idle >> 32); }
  static unsigned claimed_of(uint64_t idle) noexcept { return static_cast<unsigned>(idle); }
  alignas(64) std::atomic<uint64_t> idle_{0};
  std::atomic<unsigned> looking_{0};               // 0 or 1: the worker polling for work
  std::atomic<uint32_t> wake_seq_{0};              // the futex parked workers wait on
  std::atomic<std::size_t> unfinished_{0};         // submitted, not yet run or dropped
  std::atomic<bool> stopping_{false};
  std::atomic<bool> abandon_{false};               // past the deadline: drop instead of run
  std::atomic<bool> shutdown_waiting_{false};
  std::atomic<std::size_t> dropped_{0};

  std::mutex overflow_mutex_;
  std::deque<Task> overflow_;
  std::atomic<std::size_t> overflow_size_{0};

  std::mutex idle_mutex_;
  std::condition_variable idle_cv_;
  std::vector<std::thread> threads_;
};

}  // namespace athomic::detail
