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

// Appends the envelope of @p payload (a JSON object) and @p ctx (may be null) to @p out.
// @throws EventBusError when the payload already holds the reserved key, or holds what a
//         receiver would refuse (nesting deeper than kMaxJsonDepth, NaN or infinity).
void encode_envelope(const nlohmann::json& payload, const ExecutionContext* ctx,
                     std::string& out);
// The same with the context already encoded by encode_context (empty: no context).
void encode_envelope(const nlohmann::json& payload, std::string_view context_json,
                     std::string& out);
// The "_nala_context" value of @p ctx as JSON text (set fields only).
std::string encode_context(const ExecutionContext& ctx);

struct DecodedEvent {
  Payload payload;     // the object without "_nala_context"
  ContextPtr context;  // nullptr when the message carried none
};

// Decodes an envelope. On failure returns false and says why in @p error; never throws.
bool decode_envelope(std::string_view body, DecodedEvent& out, std::string& error) noexcept;

// The context as the JSON object carried under "_nala_context" (set fields only).
nlohmann::json context_to_json(const ExecutionContext& ctx);
// Parses a "_nala_context" object; false with @p error for wrong types or oversized values.
bool context_from_json(const nlohmann::json& j, ContextPtr& out, std::string& error);

}  // namespace athomic::detail
