// The execution context that travels with every event: who, for which tenant, in which trace.
//
// A context is immutable and shared by pointer. The current context is thread-local and is set
// with a ContextScope; publish captures it and every handler runs inside the captured context.
#pragma once

#include <athomic/export.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace athomic {

/// The fields of the Python framework's ExecutionContext, in its order.
enum class ContextField : uint8_t {
  tenant_id,
  request_id,
  trace_id,
  span_id,
  user_id,
  role,
  locale,
  source_ip,
  session_id,
  correlation_id,
  feature_flags,
};
inline constexpr std::size_t kContextFieldCount = 11;
/// The ten text fields (all but feature_flags).
inline constexpr std::size_t kContextStringFieldCount = 10;

/// The longest value a context field (or feature-flag name) may have, in bytes. Longer values
/// are refused when a context is built and when one arrives from the wire.
inline constexpr std::size_t kMaxContextValueBytes = 1024;

/// W3C trace-flags a context has unless told otherwise: sampled (see trace_flags()).
inline constexpr uint8_t kDefaultTraceFlags = 0x01;

/// Bit mask over ContextField.
using ContextFieldMask = uint32_t;
constexpr ContextFieldMask field_bit(ContextField f) { return 1u << static_cast<unsigned>(f); }
inline constexpr ContextFieldMask kAllContextFields = (1u << kContextFieldCount) - 1;
/// Propagated by default: everything but source_ip and session_id.
inline constexpr ContextFieldMask kDefaultPropagatedFields =
    kAllContextFields & ~field_bit(ContextField::source_ip) & ~field_bit(ContextField::session_id);

/// Wire and settings name of a field ("trace_id", ...).
ATHOMIC_API std::string_view context_field_name(ContextField f);
/// Field by its name; nullopt for an unknown name.
ATHOMIC_API std::optional<ContextField> context_field_from_name(std::string_view name);

class ExecutionContext;
using ContextPtr = std::shared_ptr<const ExecutionContext>;

/// An immutable set of context fields; unset fields are absent, never empty strings.
class ATHOMIC_API ExecutionContext {
 public:
  using FeatureFlags = std::map<std::string, bool, std::less<>>;

  /// Builds a context field by field.
  class ATHOMIC_API Builder {
   public:
    Builder() = default;
    /// Start from the fields of @p base.
    explicit Builder(const ExecutionContext& base);
    /// @throws EventBusError when @p value is longer than kMaxContextValueBytes.
    Builder& set(ContextField f, std::string value);
    Builder& clear(ContextField f);
    Builder& tenant_id(std::string v) { return set(ContextField::tenant_id, std::move(v)); }
    Builder& request_id(std::string v) { return set(ContextField::request_id, std::move(v)); }
    Builder& trace_id(std::string v) { return set(ContextField::trace_id, std::move(v)); }
    Builder& span_id(std::string v) { return set(ContextField::span_id, std::move(v)); }
    Builder& user_id(std::string v) { return set(ContextField::user_id, std::move(v)); }
    Builder& role(std::string v) { return set(ContextField::role, std::move(v)); }
    Builder& locale(std::string v) { return set(ContextField::locale, std::move(v)); }
    Builder& source_ip(std::string v) { return set(ContextField::source_ip, std::move(v)); }
    Builder& session_id(std::string v) { return set(ContextField::session_id, std::move(v)); }
    Builder& correlation_id(std::string v) {
      return set(ContextField::correlation_id, std::move(v));
    }
    Builder& feature_flags(FeatureFlags flags);
    Builder& feature_flag(std::string name, bool on);
    /// W3C trace-flags for this context's trace (see ExecutionContext::trace_flags()).
    Builder& trace_flags(uint8_t flags) {
      trace_flags_ = flags;
      return *this;
    }
    /// W3C tracestate for this context's trace; empty clears it.
    /// @throws EventBusError when @p state is longer than kMaxContextValueBytes or holds a
    ///         byte outside printable ASCII (0x20-0x7E).
    Builder& trace_state(std::string state);
    ContextPtr build() &&;
    ContextPtr build() const&;

   private:
    std::array<std::string, kContextStringFieldCount> strings_;
    FeatureFlags flags_;
    ContextFieldMask set_ = 0;
    std::string trace_state_;
    uint8_t trace_flags_ = kDefaultTraceFlags;
  };

  ExecutionContext() = default;
  ~ExecutionContext();
  ExecutionContext(const ExecutionContext&) = delete;
  ExecutionContext& operator=(const ExecutionContext&) = delete;

  /// The context of the calling thread (an empty one when none is set). The reference stays
  /// valid while the scope that installed it is alive.
  static const ExecutionContext& current() noexcept;
  /// Shared pointer to the current context; nullptr when none is set.
  static ContextPtr current_ptr() noexcept;
  /// The shared empty context.
  static const ExecutionContext& empty() noexcept;

  bool has(ContextField f) const noexcept { return (set_ & field_bit(f)) != 0; }
  ContextFieldMask fields() const noexcept { return set_; }
  bool is_empty() const noexcept { return set_ == 0; }
  /// Value of a text field; nullopt when unset (or for feature_flags).
  std::optional<std::string_view> get(ContextField f) const noexcept;

  std::optional<std::string_view> tenant_id() const noexcept { return get(ContextField::tenant_id); }
  std::optional<std::string_view> request_id() const noexcept { return get(ContextField::request_id); }
  std::optional<std::string_view> trace_id() const noexcept { return get(ContextField::trace_id); }
  std::optional<std::string_view> span_id() const noexcept { return get(ContextField::span_id); }
  std::optional<std::string_view> user_id() const noexcept { return get(ContextField::user_id); }
  std::optional<std::string_view> role() const noexcept { return get(ContextField::role); }
  std::optional<std::string_view> locale() const noexcept { return get(ContextField::locale); }
  std::optional<std::string_view> source_ip() const noexcept { return get(ContextField::source_ip); }
  std::optional<std::string_view> session_id() const noexcept { return get(ContextField::session_id); }
  std::optional<std::string_view> correlation_id() const noexcept {
    return get(ContextField::correlation_id);
  }
  /// Empty when unset.
  const FeatureFlags& feature_flags() const noexcept { return flags_; }

  /// W3C Trace Context beside trace_id and span_id (events.context.traceparent): not fields of
  /// the Python framework's context, so never in `_nala_context`, and not ContextFields. They
  /// go wherever the context goes and travel on a wire only in the `traceparent` and
  /// `tracestate` members, next to a valid trace_id and span_id (docs/CONFIGURATION.md).
  /// The trace-flags (bit 0: sampled): those received with the trace, else kDefaultTraceFlags.
  uint8_t trace_flags() const noexcept { return trace_flags_; }
  /// The tracestate received with the trace (or set); nullopt when there is none.
  std::optional<std::string_view> trace_state() const noexcept {
    if (trace_state_.empty()) return std::nullopt;
    return std::string_view(trace_state_);
  }

  /// This context restricted to @p mask. Shares this object when nothing is removed; otherwise
  /// the restricted copy is built once and cached for the lifetime of this context.
  /// @p self must own this object.
  static ContextPtr restrict(const ContextPtr& self, ContextFieldMask mask);
  /// Same, returning a borrowed pointer valid as long as this context (no reference count), or
  /// nullptr when the one cache slot already serves another mask.
  const ExecutionContext* restrict_view(ContextFieldMask mask) const;
  /// The cached restriction to @p mask as an owning pointer kept by this context (borrowed:
  /// valid as long as this context; copies of it own the restricted context alone). nullptr
  /// when the cache slot serves another mask. Call only when @p mask removes a field.
  const ContextPtr* restricted_ptr(ContextFieldMask mask) const;

  bool operator==(const ExecutionContext& other) const noexcept;

 private:
  friend class Builder;
  std::array<std::string, kContextStringFieldCount> strings_;
  FeatureFlags flags_;
  ContextFieldMask set_ = 0;
  std::string trace_state_;
  uint8_t trace_flags_ = kDefaultTraceFlags;
  // One cached restriction: publish on a bus always asks for the same mask. nullptr from
  // restrict_view means another mask holds the slot; restrict() then builds an owned copy.
  mutable std::atomic<const ContextPtr*> restricted_{nullptr};
};

/// Makes @p ctx the current context of this thread until destroyed; the previous one is
/// restored afterwards. Scopes nest; they are not movable between threads.
class ATHOMIC_API ContextScope {
 public:
  explicit ContextScope(ContextPtr ctx) noexcept;
  ~ContextScope();
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;

 private:
  ContextPtr ctx_;
  const ContextPtr* previous_;
};

}  // namespace athomic
