// For the trace context tests: the W3C specification's example trace, and what a handler saw —
// each event's payload and the context restored around it — safely from any thread.
#pragma once

#include <athomic/athomic.h>
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "test_support.h"

namespace athomic::test {

inline constexpr const char* kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
inline constexpr const char* kSpan = "00f067aa0ba902b7";
inline const std::string kParent = std::string("00-") + kTrace + "-" + kSpan + "-01";

class Seen {
 public:
  void record(const Event& e) {
    {
      std::lock_guard lock(mutex_);
      payloads_.push_back(e.payload());
      contexts_.push_back(ExecutionContext::current_ptr());
    }
    count_.add();
  }
  bool wait_for(int n) { return count_.wait_for_at_least(n); }
  nlohmann::json payload(std::size_t i) const {
    std::lock_guard lock(mutex_);
    return payloads_.at(i);
  }
  ContextPtr context(std::size_t i) const {
    std::lock_guard lock(mutex_);
    return contexts_.at(i);
  }
  int count() const { return count_.value(); }

 private:
  mutable std::mutex mutex_;
  std::vector<nlohmann::json> payloads_;
  std::vector<ContextPtr> contexts_;
  Counter count_;
};

// @p ctx holds the example trace (flags 01, @p state) and tenant "acme".
inline void expect_example_trace(const ContextPtr& ctx, const std::string& state) {
  ASSERT_TRUE(ctx);
  EXPECT_EQ(ctx->tenant_id(), "acme");
  EXPECT_EQ(ctx->trace_id(), kTrace);
  EXPECT_EQ(ctx->span_id(), kSpan);
  EXPECT_EQ(ctx->trace_flags(), 0x01);
  EXPECT_EQ(ctx->trace_state(), state);
}

// @p seen got @p n events, each with @p payload and tenant "acme", their invalid trace context
// ignored: none has a tracestate, and only the last — a valid traceparent with an invalid
// tracestate — has a trace id.
inline void expect_trace_ignored(const Seen& seen, int n, const nlohmann::json& payload) {
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(seen.payload(i), payload) << i;
    const auto ctx = seen.context(i);
    ASSERT_TRUE(ctx) << i;
    EXPECT_EQ(ctx->tenant_id(), "acme") << i;
    EXPECT_EQ(ctx->trace_state(), std::nullopt) << i;
    EXPECT_EQ(ctx->has(ContextField::trace_id), i == n - 1) << i;
  }
}

}  // namespace athomic::test
