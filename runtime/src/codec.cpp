#include "codec.h"

#include "json_reader.h"
#include "json_writer.h"
#include "traceparent.h"

#include <athomic/errors.h>

#include <fmt/format.h>

namespace athomic::detail {

nlohmann::json context_to_json(const ExecutionContext& ctx) {
  nlohmann::json j = nlohmann::json::object();
  for (std::size_t i = 0; i < kContextStringFieldCount; ++i) {
    const auto f = static_cast<ContextField>(i);
    if (auto v = ctx.get(f)) j[std::string(context_field_name(f))] = *v;
  }
  if (ctx.has(ContextField::feature_flags)) {
    nlohmann::json flags = nlohmann::json::object();
    for (const auto& [k, v] : ctx.feature_flags()) flags[k] = v;
    j["feature_flags"] = std::move(flags);
  }
  return j;
}

std::string encode_context(const ExecutionContext& ctx) {
  return context_to_json(ctx).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void encode_envelope(const nlohmann::json& payload, std::string_view context_json,
                     std::string& out) {
  if (payload.contains(kContextKey)) {
    throw EventBusError(fmt::format(
        "payload holds the reserved key '{}': the bus sets it from the execution context",
        kContextKey));
  }
  const std::size_t start = out.size();
  std::string error;
  if (!write_json_checked(payload, kMaxJsonDepth, out, error)) {
    out.resize(start);
    throw EventBusError(fmt::format("the payload cannot travel: {} (receivers refuse it)", error));
  }
  if (context_json.empty()) return;
  // Splice the context in before the closing brace instead of copying the payload.
  out.pop_back();
  if (out.size() - start > 1) out += ',';
  out += '"';
  out += kContextKey;
  out += "\":";
  out += context_json;
  out += '}';
}

void encode_traced_envelope(const nlohmann::json& payload, std::string_view context_json,
                            std::string_view trace_members, std::string& out) {
  for (const std::string_view key : {kTraceParentKey, kTraceStateKey}) {
    if (payload.contains(key)) {
      throw EventBusError(fmt::format(
          "payload holds the key '{}', which events.context.traceparent = true reserves: the "
          "bus sets it from the execution context",
          key));
    }
  }
  const std::size_t start = out.size();
  encode_envelope(payload, context_json, out);
  if (trace_members.empty()) return;
  out.pop_back();
  if (out.size() - start > 1) out += ',';
  out += trace_members;
  out += '}';
}

void encode_envelope(const nlohmann::json& payload, const ExecutionContext* ctx, std::string& out,
                     const EnvelopeOptions& options) {
  const bool has_context = ctx && !ctx->is_empty();
  const std::string context_json = has_context ? encode_context(*ctx) : std::string();
  if (!options.traceparent) return encode_envelope(payload, context_json, out);
  encode_traced_envelope(payload, context_json, has_context ? trace_members(*ctx) : std::string(),
                         out);
}

bool context_from_json(const nlohmann::json& j, ContextPtr& out, std::string& error) {
  if (j.is_null()) return true;
  if (!j.is_object()) {
    error = fmt::format("'{}' must be an object, got {}", kContextKey, j.type_name());
    return false;
  }
  ExecutionContext::Builder b;
  for (const auto& [key, value] : j.items()) {
    auto field = context_field_from_name(key);
    if (!field || value.is_null()) continue;  // fields this version does not know are ignored
    if (*field == ContextField::feature_flags) {
      if (!value.is_object()) {
        error = fmt::format("'{}.feature_flags' must be an object of booleans, got {}",
                            kContextKey, value.type_name());
        return false;
      }
      if (value.size() > kMaxFeatureFlags) {
        error = fmt::format("'{}.feature_flags' has {} entries; the limit is {}", kContextKey,
                            value.size(), kMaxFeatureFlags);
        return false;
      }
      ExecutionContext::FeatureFlags flags;
      for (const auto& [name, on] : value.items()) {
        if (!on.is_boolean() || name.size() > kMaxContextValueBytes) {
          error = fmt::format("'{}.feature_flags.{}' must be a boolean with a name of at most {} "
                              "bytes",
                              kContextKey, name.substr(0, 64), kMaxContextValueBytes);
          return false;
        }
        flags.emplace(name, on.get<bool>());
      }
      b.feature_flags(std::move(flags));
      continue;
    }
    if (!value.is_string()) {
      error = fmt::format("'{}.{}' must be a string, got {}", kContextKey, key, value.type_name());
      return false;
    }
    const auto& s = value.get_ref<const std::string&>();
    if (s.size() > kMaxContextValueBytes) {
      error = fmt::format("'{}.{}' is {} bytes; the limit is {}", kContextKey, key, s.size(),
                          kMaxContextValueBytes);
      return false;
    }
    b.set(*field, s);
  }
  out = std::move(b).build();
  return true;
}

namespace {

// A received string as a log line shows it: JSON, cut short.
std::string shown(std::string_view v) {
  std::string s = nlohmann::json(v.substr(0, 80))
                      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

// A W3C member: read as a string into a reused buffer (JsonSideMember::string_value), else a
// JSON value of another type.
bool absent(const JsonSideMember& m) { return !m.seen || (!m.is_string && m.value.is_null()); }
const char* type_of(const JsonSideMember& m) {
  return m.is_string ? "string" : m.value.type_name();
}

// A received traceparent (and its tracestate, or null), applied to the context "_nala_context"
// gave (out.context); @p where says which ("", or " header"). Invalid values are ignored and
// said in out.trace_problem (@p state_problem: the tracestate is unusable, and why). Returns
// whether the traceparent was valid.
bool apply_trace(std::string_view parent, const std::string_view* state, const char* where,
                 DecodedEvent& out, std::string state_problem = {}) {
  TraceParent tp;
  if (const char* why = parse_traceparent(parent, tp)) {
    if (out.trace_problem.empty()) {
      out.trace_problem = fmt::format("'{}'{} {}: {}", kTraceParentKey, where, shown(parent), why);
    }
    return false;
  }
  const ExecutionContext* base = out.context.get();
  const auto trace_id = base ? base->trace_id() : std::nullopt;
  const auto span_id = base ? base->span_id() : std::nullopt;
  // "_nala_context" wins: a traceparent of another trace or span is not mixed into it.
  if ((trace_id && *trace_id != tp.trace_id) || (span_id && *span_id != tp.parent_id)) return true;
  std::string_view trace_state;
  if (!state_problem.empty()) {
    if (out.trace_problem.empty()) out.trace_problem = std::move(state_problem);
  } else if (state) {
    if (const char* why = check_tracestate(*state)) {
      if (out.trace_problem.empty()) {
        out.trace_problem =
            fmt::format("'{}'{} {}: {}", kTraceStateKey, where, shown(*state), why);
      }
    } else {
      trace_state = *state;
    }
  }
  // The usual case between athomic services: "_nala_context" already says it all, and its
  // context object stays shared (the decoder's cache).
  if (trace_id && span_id && tp.flags == kDefaultTraceFlags && trace_state.empty()) return true;
  ExecutionContext::Builder b =
      base ? ExecutionContext::Builder(*base) : ExecutionContext::Builder();
  b.trace_id(std::string(tp.trace_id))
      .span_id(std::string(tp.parent_id))
      .trace_flags(tp.flags)
      .trace_state(std::string(trace_state));
  out.context = std::move(b).build();
  return true;
}

// The W3C members of a received envelope. Returns whether it carried a valid traceparent.
bool apply_trace_members(const JsonSideMember& parent, const JsonSideMember& state,
                         DecodedEvent& out) {
  // Null is absent, as for "_nala_context" and its fields. A tracestate without a traceparent
  // means nothing (W3C): ignored.
  if (absent(parent)) return false;
  if (!parent.is_string) {
    out.trace_problem =
        fmt::format("'{}' must be a string, got {}", kTraceParentKey, type_of(parent));
    return false;
  }
  std::string_view state_text;
  const std::string_view* state_value = nullptr;
  std::string state_problem;
  if (!absent(state)) {
    if (!state.is_string) {
      state_problem = fmt::format("'{}' must be a string, got {}", kTraceStateKey, type_of(state));
    } else {
      state_text = *state.string_value;
      state_value = &state_text;
    }
  }
  return apply_trace(*parent.string_value, state_value, "", out, std::move(state_problem));
}

// The message's W3C headers, read when its envelope had no valid traceparent.
void apply_trace_headers(const TraceHeaders& headers, DecodedEvent& out) {
  if (headers.problem) {
    if (out.trace_problem.empty()) out.trace_problem = headers.problem;
    return;
  }
  if (!headers.has_parent) return;
  apply_trace(headers.parent, headers.has_state ? &headers.state : nullptr, " header", out);
}

// What a thread keeps of the last context it decoded: consecutive messages mostly carry the
// same one (one publisher, one request), which is then reused when its text is the same.
struct LastContext {
  std::string text;
  ContextPtr context;
};

// The W3C members' strings (what a valid member is) are read into buffers a thread keeps.
struct TraceBuffers {
  std::string parent, state;
  // Keeps the buffers, not what an outsized value made of them.
  void trim() {
    for (std::string* buffer : {&parent, &state}) {
      if (buffer->capacity() > 4096) std::string().swap(*buffer);
    }
  }
};

// Reads "_nala_context" and, with kSides == 3, the W3C members apart from the payload. Off,
// the decoder does exactly what it did before they existed.
template <std::size_t kSides>
bool decode_sides(std::string_view body, DecodedEvent& out, std::string& error, LastContext& last,
                  TraceBuffers* buffers, const TraceHeaders* headers) {
  JsonSideMember side[kSides];
  side[0].key = kContextKey;
  side[0].known = last.text;
  if constexpr (kSides == 3) {
    side[1].key = kTraceParentKey;
    side[1].string_value = &buffers->parent;
    side[2].key = kTraceStateKey;
    side[2].string_value = &buffers->state;
  }
  JsonReadOptions options;
  options.max_depth = kMaxJsonDepth;
  options.side = side;
  options.side_count = kSides;
  auto payload = std::make_shared<nlohmann::json>();
  if (!read_json(body, *payload, error, options)) return false;
  if (!payload->is_object()) {
    error = fmt::format("the message must be a JSON object, got {}", payload->type_name());
    return false;
  }
  out.context = nullptr;
  if (side[0].was_known) {
    out.context = last.context;
  } else if (side[0].seen) {
    if (!context_from_json(side[0].value, out.context, error)) return false;
    if (side[0].value.is_object()) {
      last.text.assign(side[0].text);
      last.context = out.context;
    }
  }
  if constexpr (kSides == 3) {
    // The envelope's copy first: it is what athomic publishers send, headers or not.
    if (!apply_trace_members(side[1], side[2], out) && headers) apply_trace_headers(*headers, out);
  }
  out.payload = std::move(payload);
  return true;
}

}  // namespace

bool decode_envelope(std::string_view body, DecodedEvent& out, std::string& error,
                     const EnvelopeOptions& envelope, const TraceHeaders* headers) noexcept {
  thread_local LastContext last;
  try {
    if (!envelope.traceparent) return decode_sides<1>(body, out, error, last, nullptr, nullptr);
    thread_local TraceBuffers buffers;
    const bool ok =
        decode_sides<3>(body, out, error, last, &buffers, headers && !headers->empty() ? headers : nullptr);
    buffers.trim();
    return ok;
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
}

}  // namespace athomic::detail
