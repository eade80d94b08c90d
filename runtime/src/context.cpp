#include "context_slot.h"
#include "traceparent.h"

#include <athomic/context.h>
#include <athomic/errors.h>

#include <fmt/format.h>

namespace athomic {
namespace detail {
}  // namespace detail

namespace {
constexpr std::string_view kFieldNames[kContextFieldCount] = {
    "tenant_id", "request_id", "trace_id",   "span_id",        "user_id",      "role",
    "locale",    "source_ip",  "session_id", "correlation_id", "feature_flags"};
constexpr ContextFieldMask kFlagsBit = field_bit(ContextField::feature_flags);
}  // namespace

std::string_view context_field_name(ContextField f) {
  return kFieldNames[static_cast<unsigned>(f)];
}

std::optional<ContextField> context_field_from_name(std::string_view name) {
  for (std::size_t i = 0; i < kContextFieldCount; ++i) {
    if (kFieldNames[i] == name) return static_cast<ContextField>(i);
  }
  return std::nullopt;
}

ExecutionContext::Builder::Builder(const ExecutionContext& base)
    : strings_(base.strings_),
      flags_(base.flags_),
      set_(base.set_),
      trace_state_(base.trace_state_),
      trace_flags_(base.trace_flags_) {}

ExecutionContext::Builder& ExecutionContext::Builder::set(ContextField f, std::string value) {
  if (f == ContextField::feature_flags) return *this;  // use feature_flags()
  if (value.size() > kMaxContextValueBytes) {
    throw EventBusError(fmt::format("context field '{}' is {} bytes; the limit is {}",
                                    context_field_name(f), value.size(), kMaxContextValueBytes));
  }
  strings_[static_cast<unsigned>(f)] = std::move(value);
  set_ |= field_bit(f);
  return *this;
}

ExecutionContext::Builder& ExecutionContext::Builder::clear(ContextField f) {
  if (f == ContextField::feature_flags) {
    flags_.clear();
  } else {
    strings_[static_cast<unsigned>(f)].clear();
  }
  set_ &= ~field_bit(f);
  return *this;
}

ExecutionContext::Builder& ExecutionContext::Builder::feature_flags(FeatureFlags flags) {
  flags_ = std::move(flags);
  set_ |= kFlagsBit;
  return *this;
}

ExecutionContext::Builder& ExecutionContext::Builder::feature_flag(std::string name, bool on) {
  flags_[std::move(name)] = on;
  set_ |= kFlagsBit;
  return *this;
}

ExecutionContext::Builder& ExecutionContext::Builder::trace_state(std::string state) {
  if (const char* why = detail::check_tracestate(state)) {
    throw EventBusError(fmt::format("context tracestate: {}", why));
  }
  trace_state_ = std::move(state);
  return *this;
}

ContextPtr ExecutionContext::Builder::build() && {
  auto ctx = std::make_shared<ExecutionContext>();
  ctx->strings_ = std::move(strings_);
  ctx->flags_ = std::move(flags_);
  ctx->set_ = set_;
  ctx->trace_state_ = std::move(trace_state_);
  ctx->trace_flags_ = trace_flags_;
  return ctx;
}

ContextPtr ExecutionContext::Builder::build() const& { return Builder(*this).build(); }

ExecutionContext::~ExecutionContext() { delete restricted_.load(std::memory_order_acquire); }

const ExecutionContext& ExecutionContext::empty() noexcept {
  static const ExecutionContext kEmpty;
  return kEmpty;
}

const ExecutionContext& ExecutionContext::current() noexcept {
  const ContextPtr* p = detail::tls_current_context;
  return (p && *p) ? **p : empty();
}

ContextPtr ExecutionContext::current_ptr() noexcept {
  const ContextPtr* p = detail::tls_current_context;
  return p ? *p : nullptr;
}

std::optional<std::string_view> ExecutionContext::get(ContextField f) const noexcept {
  if (f == ContextField::feature_flags || !has(f)) return std::nullopt;
  return std::string_view(strings_[static_cast<unsigned>(f)]);
}

const ContextPtr* ExecutionContext::restricted_ptr(ContextFieldMask mask) const {
  const ContextFieldMask wanted = set_ & mask;
  // The cached restriction is right for this mask exactly when it holds the same fields.
  const ContextPtr* cached = restricted_.load(std::memory_order_acquire);
  if (cached) return (*cached)->set_ == wanted ? cached : nullptr;
  auto fresh_ctx = std::make_shared<ExecutionContext>();
  fresh_ctx->set_ = wanted;
  for (std::size_t i = 0; i < kContextStringFieldCount; ++i) {
    if (wanted & (1u << i)) fresh_ctx->strings_[i] = strings_[i];
  }
  if (wanted & kFlagsBit) fresh_ctx->flags_ = flags_;
  fresh_ctx->trace_state_ = trace_state_;
  fresh_ctx->trace_flags_ = trace_flags_;
  auto* fresh = new ContextPtr(std::move(fresh_ctx));
  if (restricted_.compare_exchange_strong(cached, fresh, std::memory_order_acq_rel)) return fresh;
  delete fresh;
  return (*cached)->set_ == wanted ? cached : nullptr;
}

const ExecutionContext* ExecutionContext::restrict_view(ContextFieldMask mask) const {
  if ((set_ & ~mask) == 0) return this;
  const ContextPtr* p = restricted_ptr(mask);
  return p ? p->get() : nullptr;
}

ContextPtr ExecutionContext::restrict(const ContextPtr& self, ContextFieldMask mask) {
  if (!self) return nullptr;
  if ((self->set_ & ~mask) == 0) return self;
  if (const ContextPtr* cached = self->restricted_ptr(mask)) return *cached;
  Builder b(*self);
  for (std::size_t i = 0; i < kContextFieldCount; ++i) {
    if (!(mask & (1u << i))) b.clear(static_cast<ContextField>(i));
  }
  return std::move(b).build();
}

bool ExecutionContext::operator==(const ExecutionContext& o) const noexcept {
  return set_ == o.set_ && strings_ == o.strings_ && flags_ == o.flags_ &&
         trace_flags_ == o.trace_flags_ && trace_state_ == o.trace_state_;
}

ContextScope::ContextScope(ContextPtr ctx) noexcept
    : ctx_(std::move(ctx)), previous_(detail::tls_current_context) {
  detail::tls_current_context = &ctx_;
}

ContextScope::~ContextScope() { detail::tls_current_context = previous_; }

}  // namespace athomic
