// The event the dispatch benchmarks publish: a small payload and a request's context.
#pragma once

#include <athomic/athomic.h>

#include <memory>

namespace athomic::bench {

inline constexpr const char* kEventName = "user.created";

inline nlohmann::json sample_json() { return nlohmann::json{{"id", "user-123"}, {"n", 1}}; }

inline Payload sample_payload() { return std::make_shared<const nlohmann::json>(sample_json()); }

// trace_id and tenant_id, both propagated by default.
inline ContextPtr sample_context() {
  return ExecutionContext::Builder()
      .trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
      .tenant_id("acme")
      .build();
}

}  // namespace athomic::bench
