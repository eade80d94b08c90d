// W3C Trace Context (https://www.w3.org/TR/trace-context/) on the wire envelope: the
// `traceparent` and `tracestate` members an envelope carries beside `_nala_context` when
// events.context.traceparent is on. Pure: no I/O.
//
//   traceparent = version "-" trace-id "-" parent-id "-" trace-flags
//                 00        32 hex, not all 0  16 hex, not all 0   2 hex     (lowercase hex)
//
// The mapping (docs/CONFIGURATION.md): the context's trace_id is the trace-id and its span_id
// the parent-id, when they already are W3C ids; a context whose ids are not gets no
// traceparent (nothing is derived). trace-flags and tracestate travel in the context beside
// them (ExecutionContext::trace_flags(), trace_state()).
#pragma once

#include <athomic/context.h>
#include <athomic/sdk/provider.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace athomic::detail {

inline constexpr std::string_view kTraceParentKey = "traceparent";
inline constexpr std::string_view kTraceStateKey = "tracestate";
inline constexpr std::size_t kTraceIdChars = 32;
inline constexpr std::size_t kParentIdChars = 16;
// A version-00 traceparent: 2 + 1 + 32 + 1 + 16 + 1 + 2.
inline constexpr std::size_t kTraceParentChars = 55;

// Exactly @p n lowercase hex digits, not all zeros: a W3C trace-id (32) or parent-id (16).
bool is_w3c_id(std::string_view s, std::size_t n) noexcept;

struct TraceParent {
  std::string_view trace_id;   // 32 lowercase hex digits, a view into the parsed text
  std::string_view parent_id;  // 16 lowercase hex digits, likewise
  uint8_t flags = 0;
};

// Reads a traceparent value. Returns nullptr and fills @p out when it is valid; otherwise a
// static text saying what is wrong, and @p out is left alone. Version 00 is exactly 55
// characters; a later version (01 to fe) is read as the spec asks, by its first 55
// characters, followed by nothing or by '-' and more; version ff is invalid.
const char* parse_traceparent(std::string_view text, TraceParent& out) noexcept;

// Appends the version-00 traceparent of the ids (which must be W3C ids) and flags.
void append_traceparent(std::string_view trace_id, std::string_view parent_id, uint8_t flags,
                        std::string& out);

// nullptr when @p state may travel as a tracestate value: at most kMaxContextValueBytes of
// printable ASCII (0x20-0x7E). It is otherwise opaque: athomic does not read its list-members.
const char* check_tracestate(std::string_view state) noexcept;

// The W3C headers of a received message (ATHOMIC_CAP_HEADERS), found by name without regard to
// case. Views into the provider's memory (or a queued event's copy of them).
struct TraceHeaders {
  bool has_parent = false;
  bool has_state = false;
  std::string_view parent;
  std::string_view state;  // cut to kMaxContextValueBytes + 1: check_tracestate refuses it then
  // What makes them unusable as a whole (a repeated traceparent), or nullptr.
  const char* problem = nullptr;
  bool empty() const noexcept { return !has_parent && !has_state && !problem; }
};
TraceHeaders find_trace_headers(const athomic_header* headers, std::size_t count) noexcept;

// The envelope members for @p ctx as JSON text to splice into the envelope's object:
// "traceparent":"00-…" and, when the context has one, ,"tracestate":"…". Empty when the
// context's trace_id or span_id is missing or not a W3C id: then nothing is sent.
std::string trace_members(const ExecutionContext& ctx);

}  // namespace athomic::detail
