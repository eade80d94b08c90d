// The wire envelope, shared with the Python framework: the payload JSON object with the
// execution context inserted under "_nala_context". Pure: no I/O.
#pragma once

#include <athomic/context.h>
#include <athomic/event.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace athomic::detail {

inline constexpr std::string_view kContextKey = "_nala_context";
// Limits on untrusted input from the wire (values: athomic::kMaxContextValueBytes).
inline constexpr std::size_t kMaxFeatureFlags = 256;
inline constexpr int kMaxJsonDepth = 64;

// How envelopes are written and read; the same for both directions.
struct EnvelopeOptions {
  // events.context.traceparent: the W3C members "traceparent" and "tracestate" travel beside
  // "_nala_context" (traceparent.h). Off, an envelope is exactly the seed's: those keys are
  // payload members like any other.
  bool traceparent = false;
};

// Appends the envelope of @p payload (a JSON object) and @p ctx (may be null) to @p out.
// @throws EventBusError when the payload already holds a reserved key ("_nala_context"; with
//         traceparent on, "traceparent" and "tracestate" too), or holds what a receiver would
//         refuse (nesting deeper than kMaxJsonDepth, NaN or infinity).
void encode_envelope(const nlohmann::json& payload, const ExecutionContext* ctx, std::string& out,
                     const EnvelopeOptions& options = {});
// The same with the context already encoded by encode_context (empty: no context).
void encode_envelope(const nlohmann::json& payload, std::string_view context_json,
                     std::string& out);
// With traceparent on: the same, with the W3C members already encoded by trace_members()
// (empty: the context has none) spliced in after the context.
void encode_traced_envelope(const nlohmann::json& payload, std::string_view context_json,
                            std::string_view trace_members, std::string& out);
// The "_nala_context" value of @p ctx as JSON text (set fields only).
std::string encode_context(const ExecutionContext& ctx);

struct DecodedEvent {
  Payload payload;     // the object without "_nala_context" (nor, with traceparent on, the
                       // W3C members)
  ContextPtr context;  // nullptr when the message carried none
  // With traceparent on: what was wrong with the message's "traceparent" or "tracestate",
  // which were then ignored (the event itself is good). Empty when nothing was.
  std::string trace_problem;
};

struct TraceHeaders;

// Decodes an envelope. On failure returns false and says why in @p error; never throws.
// With traceparent on, a valid "traceparent" fills the trace_id and span_id the message's
// "_nala_context" lacks, unless that names another trace or span (it wins); see
// docs/CONFIGURATION.md. The message's headers (@p headers, may be null) are read the same
// way when the envelope carries no valid "traceparent" of its own.
bool decode_envelope(std::string_view body, DecodedEvent& out, std::string& error,
                     const EnvelopeOptions& options = {},
                     const TraceHeaders* headers = nullptr) noexcept;

// The context as the JSON object carried under "_nala_context" (set fields only).
nlohmann::json context_to_json(const ExecutionContext& ctx);
// Parses a "_nala_context" object; false with @p error for wrong types or oversized values.
bool context_from_json(const nlohmann::json& j, ContextPtr& out, std::string& error);

}  // namespace athomic::detail
