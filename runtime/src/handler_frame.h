// "This thread is running a handler of bus X": calls that would wait for the bus's own handlers
// (close, Completion::wait) are refused there, and unsubscribe does not wait for other threads.
#pragma once

#include "tls.h"

namespace athomic::detail {

class HandlerFrame {
 public:
  explicit HandlerFrame(const void* bus) noexcept : bus_(bus), outer_(top_) { top_ = this; }
  ~HandlerFrame() { top_ = outer_; }
  HandlerFrame(const HandlerFrame&) = delete;
  HandlerFrame& operator=(const HandlerFrame&) = delete;

  // True when the calling thread is inside a handler (or a delivery) of @p bus, at any depth.
  static bool inside(const void* bus) noexcept {
    for (const HandlerFrame* f = top_; f; f = f->outer_) {
      if (f->bus_ == bus) return true;
    }
    return false;
  }

 private:
  const void* bus_;
  const HandlerFrame* outer_;
  static inline thread_local const HandlerFrame* top_ ATHOMIC_FAST_TLS = nullptr;
};

}  // namespace athomic::detail
