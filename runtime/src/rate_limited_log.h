// "Logged once per burst": the first occurrence is logged; later ones within the window are
// counted, and the count is logged when the window ends — with the next line that gets
// through, or, when none comes in time, on its own by a reporting thread. A burst is never
// left unreported until some later, unrelated occurrence.
#pragma once

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace athomic::detail {

class RateLimitedLog {
 public:
  // What the reporting thread needs, shared with it so that it may outlive this object.
  struct State {
    std::shared_ptr<spdlog::logger> logger;
    spdlog::level::level_enum level;
    std::string what;  // "malformed message(s) skipped": "<n> more <what> in the last second"
    int64_t window_ns;
    std::atomic<int64_t> last_ns{0};  // when a line last went out (steady clock)
    std::atomic<uint64_t> suppressed{0};
  };

  RateLimitedLog(std::shared_ptr<spdlog::logger> logger, spdlog::level::level_enum level,
                 std::string what, std::chrono::milliseconds window = std::chrono::seconds(1));
  // Logs what is still counted.
  ~RateLimitedLog();
  RateLimitedLog(const RateLimitedLog&) = delete;
  RateLimitedLog& operator=(const RateLimitedLog&) = delete;

  // Returns true when this occurrence should be logged; @p suppressed then receives how many
  // occurrences were swallowed since the previous line (and not yet reported on their own).
  bool admit(uint64_t& suppressed) noexcept;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace athomic::detail
