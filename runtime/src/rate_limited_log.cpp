#include "rate_limited_log.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace athomic::detail {

namespace {

using Clock = std::chrono::steady_clock;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// Logs the count of @p s, if any; the line stands for the window's logged line.
void report(RateLimitedLog::State& s) noexcept {
  const uint64_t n = s.suppressed.exchange(0, std::memory_order_relaxed);
  if (n == 0) return;
  s.last_ns.store(now_ns(), std::memory_order_relaxed);
  try {
    s.logger->log(s.level, "{} more {} in the last second", n, s.what);
  } catch (...) {
  }
}

// One thread for the process, started with the first burst, that reports each burst's count
// when its window ends.
class Reporter {
 public:
  void schedule(std::weak_ptr<RateLimitedLog::State> state, Clock::time_point due) {
    std::lock_guard lock(mutex_);
    if (!started_) {
      std::thread([this] { run(); }).detach();
      started_ = true;
    }
    due_.emplace(due, std::move(state));
    wake_.notify_one();
  }

 private:
  [[noreturn]] void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (due_.empty()) {
        wake_.wait(lock);
        continue;
      }
      const auto first = due_.begin();
      if (first->first > Clock::now()) {
        wake_.wait_until(lock, first->first);
        continue;
      }
      auto state = first->second.lock();
      due_.erase(first);
      lock.unlock();
      if (state) report(*state);
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::multimap<Clock::time_point, std::weak_ptr<RateLimitedLog::State>> due_;
  bool started_ = false;
};

Reporter& reporter() {
  static auto* r = new Reporter();  // its thread runs until the process ends
  return *r;
}

}  // namespace

RateLimitedLog::RateLimitedLog(std::shared_ptr<spdlog::logger> logger,
                               spdlog::level::level_enum level, std::string what,
                               std::chrono::milliseconds window)
    : state_(std::make_shared<State>()) {
  state_->logger = std::move(logger);
  state_->level = level;
  state_->what = std::move(what);
  state_->window_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(window).count();
}

RateLimitedLog::~RateLimitedLog() { report(*state_); }

bool RateLimitedLog::admit(uint64_t& suppressed) noexcept {
  State& s = *state_;
  const int64_t now = now_ns();
  int64_t last = s.last_ns.load(std::memory_order_relaxed);
  if ((last != 0 && now - last < s.window_ns) ||
      !s.last_ns.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    // The first one counted since the last report asks for a report at the window's end.
    if (s.suppressed.fetch_add(1, std::memory_order_relaxed) == 0) {
      try {
        reporter().schedule(state_,
                            Clock::time_point(std::chrono::nanoseconds(last + s.window_ns)));
      } catch (...) {
        // No reporting thread: the count goes out with the next line that gets through.
      }
    }
    return false;
  }
  suppressed = s.suppressed.exchange(0, std::memory_order_relaxed);
  return true;
}

}  // namespace athomic::detail
