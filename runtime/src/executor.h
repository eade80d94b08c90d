// The worker pool that runs handlers.
//
// One queue under one mutex, taken in batches: a publisher appends all tasks of one event
// under a single lock, and a worker takes up to kMaxBatch tasks (its fair share when several
// workers are awake) per lock, so the lock is paid per batch rather than per task.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
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

  // Waits until the queue is empty and no task runs, or @p deadline; then discards every task
  // not yet started, queued or taken by a worker (returning how many), and joins the workers
  // (which finish the task they are running).
  std::size_t shutdown(std::chrono::steady_clock::time_point deadline);

  // True on one of this executor's worker threads.
  bool is_worker_thread() const noexcept;

 private:
  static constexpr std::size_t kMaxBatch = 64;
  void work();

  const unsigned workers_;
  RunFn run_;
  RunFn drop_;
  void* owner_;
  std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable idle_cv_;
  std::deque<Task> queue_;
  unsigned sleeping_ = 0;
  unsigned running_ = 0;
  bool stopping_ = false;
  std::atomic<bool> abandon_{false};  // past the deadline: workers drop their remaining batch
  std::atomic<std::size_t> dropped_{0};
  std::vector<std::thread> threads_;
};

}  // namespace athomic::detail
