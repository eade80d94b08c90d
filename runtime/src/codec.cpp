#include "codec.h"

#include "json_reader.h"
#include "json_writer.h"

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

void encode_envelope(const nlohmann::json& payload, const ExecutionContext* ctx,
                     std::string& out) {
  encode_envelope(payload, ctx && !ctx->is_empty() ? encode_context(*ctx) : std::string(), out);
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

bool decode_envelope(std::string_view body, DecodedEvent& out, std::string& error) noexcept {
  // Consecutive messages mostly carry the same context (one publisher, one request): a thread
  // keeps the last one it decoded and reuses it when the text is the same.
  thread_local struct {
    std::string text;
    ContextPtr context;
  } last;
  try {
    JsonSideMember side;
    side.key = kContextKey;
    side.known = last.text;
    JsonReadOptions options;
    options.max_depth = kMaxJsonDepth;
    options.side = &side;
    auto payload = std::make_shared<nlohmann::json>();
    if (!read_json(body, *payload, error, options)) return false;
    if (!payload->is_object()) {
      error = fmt::format("the message must be a JSON object, got {}", payload->type_name());
      return false;
    }
    out.context = nullptr;
    if (side.was_known) {
      out.context = last.context;
    } else if (side.seen) {
      if (!context_from_json(side.value, out.context, error)) return false;
      if (side.value.is_object()) {
        last.text.assign(side.text);
        last.context = out.context;
      }
    }
    out.payload = std::move(payload);
    return true;
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
}

}  // namespace athomic::detail
