#include "executor.h"

#include <algorithm>

namespace athomic::detail {

namespace {
thread_local const Executor* tls_worker_of = nullptr;
}

Executor::Executor(unsigned workers, RunFn run, RunFn drop, void* owner)
    : workers_(workers), run_(run), drop_(drop), owner_(owner) {
  threads_.reserve(workers);
  for (unsigned i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
}

Executor::~Executor() { shutdown(std::chrono::steady_clock::now()); }

bool Executor::is_worker_thread() const noexcept { return tls_worker_of == this; }

bool Executor::submit(EventRecord* record, Subscriber* const* subscribers, std::size_t count) {
  unsigned wake;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    for (std::size_t i = 0; i < count; ++i) queue_.push_back(Task{record, subscribers[i]});
    wake = sleeping_;
  }
  if (wake == 0) return true;
  if (count > 1 && wake > 1) {
    work_cv_.notify_all();
  } else {
    work_cv_.notify_one();
  }
  return true;
}

void Executor::work() {
  tls_worker_of = this;
  std::vector<Task> batch;
  batch.reserve(kMaxBatch);
  std::unique_lock lock(mutex_);
  for (;;) {
    while (queue_.empty() && !stopping_) {
      ++sleeping_;
      work_cv_.wait(lock);
      --sleeping_;
    }
    if (queue_.empty()) return;  // stopping
    const std::size_t share = queue_.size() / std::max(1u, workers_);
    const std::size_t take = std::clamp<std::size_t>(share, 1, kMaxBatch);
    for (std::size_t i = 0; i < take; ++i) {
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    // Leave the rest to sleeping workers rather than running it serially here: handlers of one
    // event are meant to run concurrently.
    const bool more = !queue_.empty() && sleeping_ > 0;
    ++running_;
    lock.unlock();
    if (more) work_cv_.notify_one();
    for (Task& t : batch) {
      if (abandon_.load(std::memory_order_relaxed)) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        drop_(owner_, t);
      } else {
        run_(owner_, t);
      }
    }
    batch.clear();
    lock.lock();
    --running_;
    if (queue_.empty() && running_ == 0) idle_cv_.notify_all();
  }
}

std::size_t Executor::shutdown(std::chrono::steady_clock::time_point deadline) {
  std::deque<Task> dropped;
  {
    std::unique_lock lock(mutex_);
    if (threads_.empty()) return 0;
    const bool idle =
        idle_cv_.wait_until(lock, deadline, [&] { return queue_.empty() && running_ == 0; });
    if (!idle) abandon_.store(true, std::memory_order_relaxed);
    dropped.swap(queue_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  dropped_.fetch_add(dropped.size(), std::memory_order_relaxed);
  for (Task& t : dropped) drop_(owner_, t);
  for (auto& th : threads_) th.join();
  threads_.clear();
  return dropped_.load(std::memory_order_relaxed);
}

}  // namespace athomic::detail
