#include "traceparent.h"

namespace athomic::detail {

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

bool is_lower_hex(char c) noexcept { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool all_lower_hex(std::string_view s) noexcept {
  for (char c : s) {
    if (!is_lower_hex(c)) return false;
  }
  return true;
}

bool all_zeros(std::string_view s) noexcept {
  return s.find_first_not_of('0') == std::string_view::npos;
}

int hex_value(char c) noexcept { return c <= '9' ? c - '0' : c - 'a' + 10; }

}  // namespace

bool is_w3c_id(std::string_view s, std::size_t n) noexcept {
  return s.size() == n && all_lower_hex(s) && !all_zeros(s);
}

const char* parse_traceparent(std::string_view text, TraceParent& out) noexcept {
  if (text.size() < kTraceParentChars) return "shorter than the 55 characters of version 00";
  const std::string_view version = text.substr(0, 2);
  if (!all_lower_hex(version)) return "the version is not two lowercase hex digits";
  if (version == "ff") return "version ff is invalid";
  if (text[2] != '-' || text[35] != '-' || text[52] != '-') {
    return "the parts are not separated by '-' at characters 3, 36 and 53";
  }
  const std::string_view trace_id = text.substr(3, kTraceIdChars);
  const std::string_view parent_id = text.substr(36, kParentIdChars);
  const std::string_view flags = text.substr(53, 2);
  if (!all_lower_hex(trace_id)) return "the trace-id is not 32 lowercase hex digits";
  if (all_zeros(trace_id)) return "the trace-id is all zeros";
  if (!all_lower_hex(parent_id)) return "the parent-id is not 16 lowercase hex digits";
  if (all_zeros(parent_id)) return "the parent-id is all zeros";
  if (!all_lower_hex(flags)) return "the trace-flags are not two lowercase hex digits";
  if (text.size() > kTraceParentChars) {
    if (version == "00") return "longer than the 55 characters of version 00";
    // A later version may add fields after a '-'; this reader knows only the first four.
    if (text[kTraceParentChars] != '-') return "no '-' after the trace-flags of a later version";
  }
  out.trace_id = trace_id;
  out.parent_id = parent_id;
  out.flags = static_cast<uint8_t>(hex_value(flags[0]) * 16 + hex_value(flags[1]));
  return nullptr;
}

void append_traceparent(std::string_view trace_id, std::string_view parent_id, uint8_t flags,
                        std::string& out) {
  out += "00-";
  out += trace_id;
  out += '-';
  out += parent_id;
  out += '-';
  out += kHexDigits[flags >> 4];
  out += kHexDigits[flags & 0xf];
}

const char* check_tracestate(std::string_view state) noexcept {
  if (state.size() > kMaxContextValueBytes) return "longer than 1024 bytes";
  for (char c : state) {
    if (c < 0x20 || c > 0x7e) return "holds a byte outside printable ASCII";
  }
  return nullptr;
}

namespace {

bool same_name(athomic_str name, std::string_view key) noexcept {
  if (name.size != key.size()) return false;
  for (std::size_t i = 0; i < key.size(); ++i) {
    char c = name.data[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != key[i]) return false;
  }
  return true;
}

std::string_view view_of(athomic_str s) noexcept {
  return s.size == 0 ? std::string_view() : std::string_view(s.data, s.size);
}

}  // namespace

TraceHeaders find_trace_headers(const athomic_header* headers, std::size_t count) noexcept {
  TraceHeaders out;
  if (!headers) return out;
  for (std::size_t i = 0; i < count; ++i) {
    const athomic_header& h = headers[i];
    if (same_name(h.name, kTraceParentKey)) {
      // W3C: a receiver given several cannot know which is meant.
      if (out.has_parent) out.problem = "the message has more than one 'traceparent' header";
      out.has_parent = true;
      out.parent = view_of(h.value);
    } else if (same_name(h.name, kTraceStateKey)) {
      // Several tracestate headers are one list in W3C; athomic carries one value: the first.
      if (out.has_state) continue;
      out.has_state = true;
      out.state = view_of(h.value).substr(0, kMaxContextValueBytes + 1);
    }
  }
  return out;
}

std::string trace_members(const ExecutionContext& ctx) {
  const auto trace_id = ctx.trace_id();
  const auto span_id = ctx.span_id();
  if (!trace_id || !span_id || !is_w3c_id(*trace_id, kTraceIdChars) ||
      !is_w3c_id(*span_id, kParentIdChars)) {
    return {};
  }
  std::string out;
  out.reserve(kTraceParentChars + 16);
  out += '"';
  out += kTraceParentKey;
  out += "\":\"";
  append_traceparent(*trace_id, *span_id, ctx.trace_flags(), out);
  out += '"';
  if (const auto state = ctx.trace_state()) {
    out += ",\"";
    out += kTraceStateKey;
    out += "\":\"";
    // Printable ASCII (check_tracestate): only the quote and the backslash need escaping.
    for (char c : *state) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out;
}

}  // namespace athomic::detail
