// The thread-local "current context" slot, shared by ContextScope and the dispatcher.
#pragma once

#include "tls.h"

#include <athomic/context.h>

namespace athomic::detail {

// Points at a ContextPtr owned by a ContextScope or an in-flight event; nullptr: no context.
// A pointer to the owner (not the context) lets capture take shared ownership on demand while
// installing a context stays two plain stores.
// An inline variable, so every file sees it constant-initialised and reads it directly (no
// wrapper call, which UBSan mistakes for a null access).
inline thread_local const ContextPtr* tls_current_context ATHOMIC_FAST_TLS = nullptr;

// Installs a context for the lifetime of this object (dispatcher use).
class ContextSwap {
 public:
  explicit ContextSwap(const ContextPtr* ctx) noexcept : previous_(tls_current_context) {
    tls_current_context = ctx;
  }
  ~ContextSwap() { tls_current_context = previous_; }
  ContextSwap(const ContextSwap&) = delete;
  ContextSwap& operator=(const ContextSwap&) = delete;

 private:
  const ContextPtr* previous_;
};

}  // namespace athomic::detail
