// The event a log line is about, for JSON lines ("event"): set around the bus's own lines about
// one event, on the thread that logs them.
#pragma once

#include <optional>
#include <string_view>

namespace athomic::detail {

class LogEventScope {
 public:
  // An empty name (no event) leaves the enclosing one in place.
  explicit LogEventScope(std::string_view event_name) noexcept : name_(event_name), outer_(top_) {
    if (!name_.empty()) top_ = this;
  }
  ~LogEventScope() { top_ = outer_; }
  LogEventScope(const LogEventScope&) = delete;
  LogEventScope& operator=(const LogEventScope&) = delete;

  static std::optional<std::string_view> current() noexcept {
    return top_ ? std::optional<std::string_view>(top_->name_) : std::nullopt;
  }

 private:
  std::string_view name_;
  const LogEventScope* outer_;
  static inline thread_local const LogEventScope* top_ = nullptr;
};

}  // namespace athomic::detail
