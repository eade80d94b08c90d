// "Logged once per burst": the first occurrence is logged, later ones within the window are
// only counted and reported with the next line that gets through.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace athomic::detail {

class RateLimitedLog {
 public:
  explicit RateLimitedLog(std::chrono::milliseconds window = std::chrono::seconds(1))
      : window_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(window).count()) {}

  // Returns true when this occurrence should be logged; @p suppressed then receives how many
  // occurrences were swallowed since the previous logged one.
  bool admit(uint64_t& suppressed) noexcept {
    const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    int64_t last = last_ns_.load(std::memory_order_relaxed);
    if (last != 0 && now - last < window_ns_) {
      suppressed_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (!last_ns_.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
      suppressed_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
    return true;
  }

 private:
  const int64_t window_ns_;
  std::atomic<int64_t> last_ns_{0};
  std::atomic<uint64_t> suppressed_{0};
};

}  // namespace athomic::detail
