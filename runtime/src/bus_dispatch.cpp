// Publish and dispatch: the paths every event takes, in process and from a wire.
#include "bus_core.h"

#include "codec.h"
#include "context_slot.h"
#include "handler_frame.h"
#include "hazard.h"
#include "log_event.h"
#include "payload_size.h"
#include "traceparent.h"

#include <athomic/errors.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include <thread>

namespace athomic::detail {

namespace {

const Payload& empty_payload() {
  static const Payload kEmpty = std::make_shared<const nlohmann::json>(nlohmann::json::object());
  return kEmpty;
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// A worker drains up to this many events of one lane before letting waiting lanes go first.
constexpr unsigned kLaneBatch = 64;

}  // namespace

// ---------------------------------------------------------------------------------------------
// Publish

void BusCore::throw_not_running(std::string_view name) const {
  if (state_.load() == kCreated) {
    throw EventBusError(fmt::format("publish('{}'): the event bus is not started; call start()",
                                    name));
  }
  throw EventBusError(fmt::format("publish('{}'): the event bus is closed", name));
}

void BusCore::throw_refused(std::string_view name, const std::string& error) {
  publish_failures_.fetch_add(1, std::memory_order_relaxed);
  metrics_.add(metrics_slot(name), Counter(kDropped + static_cast<int>(DropReason::transport)));
  throw EventBusError(fmt::format("publish('{}'): provider '{}' refused the event: {}", name,
                                  provider_->plugin().info->name, error));
}

Completion BusCore::publish(std::string_view name, const Payload& given) {
  const std::size_t hash = TopicTable::hash_of(name);
  // One hazard covers the handler array we are about to use and keeps close() waiting for us.
  HazardSlot slot;
  const TopicState* handlers = topics_.find(name, hash, slot);
  if (!handlers && !slot.overflow()) {
    validate_event_name(name);  // names in the table were validated on subscribe
    slot.set(this);
  }
  if (slot.overflow()) {
    throw EventBusError(fmt::format(
        "publish('{}'): handlers publishing from handlers nested more than {} levels deep", name,
        HazardRecord::kSlots));
  }
  const Payload& payload = (!given || given->is_null()) ? empty_payload() : given;
  if (!payload->is_object()) {
    throw EventBusError(fmt::format("publish('{}'): the payload must be a JSON object, got {}",
                                    name, payload->type_name()));
  }
  if (state_.load(std::memory_order_seq_cst) != kStarted) throw_not_running(name);

  const uint32_t mslot = handlers ? handlers->metrics_slot : metrics_slot(name);
  if (remote_) {
    Completion done = publish_remote(handlers ? handlers->name() : name, payload, mslot);
    metrics_.add(mslot, kPublished);
    return done;
  }
  if (patterns_.load(std::memory_order_acquire)) return publish_matched(name, payload, handlers, mslot);
  return publish_local(name, payload, Audience{handlers, nullptr, 0}, mslot);
}

Completion BusCore::publish_matched(std::string_view name, const Payload& payload,
                                    const TopicState* handlers, uint32_t mslot) {
  Matches matched;
  match_patterns(name, matched);
  return publish_local(name, payload, Audience{handlers, matched.data(), matched.size()}, mslot);
}

Completion BusCore::publish_local(std::string_view name, const Payload& payload,
                                  const Audience& to, uint32_t mslot) {
  const TopicState* handlers = to.exact;
  if (to.empty()) {  // in process, nobody listens
    metrics_.add(mslot, kPublished);
    return Completion(0, 0);
  }

  // The propagated part of the publisher's context: its own pointer, or the restricted copy
  // the context caches (built once per context).
  const ContextPtr* context = tls_current_context;
  ContextPtr restricted;
  if (context && *context && ((*context)->fields() & ~settings_.propagated_fields) != 0) {
    if (const ContextPtr* cached = (*context)->restricted_ptr(settings_.propagated_fields)) {
      context = cached;
    } else {
      restricted = ExecutionContext::restrict(*context, settings_.propagated_fields);
      context = &restricted;
    }
  }

  if (!inline_mode_) return publish_pool(name, payload, to, context, mslot);
  uint64_t* cells = metrics_.cells_of(mslot);
  const bool timed = metrics_.add_and_sample(cells, kPublished);
  InlineEvent ev(handlers ? handlers->name() : name, payload, context, cells, mslot, timed);
  if (loopback_) {
    dispatch_inline(ev, to);
  } else {
    LocalDelivery delivery{this, &to, &ev, nullptr, name};
    athomic_message m{sizeof(athomic_message), {name.data(), name.size()}, {nullptr, 0},
                      reinterpret_cast<athomic_host_event*>(&delivery), 0, nullptr, 0};
    std::string error;
    if (provider_->publish(m, error) != ATHOMIC_OK) throw_refused(name, error);
  }
  return Completion(ev.failed, (handlers ? handlers->count.load(std::memory_order_relaxed) : 0) +
                                   to.matched_count);
}

void BusCore::match_patterns(std::string_view name, Matches& out) const noexcept {
  // No pattern subscription: one load, nothing else.
  if (!patterns_.load(std::memory_order_acquire)) return;
  const PatternSet* set;
  do {
    set = patterns_.load(std::memory_order_acquire);
    if (!set || !out.slot.set(set)) return;
  } while (patterns_.load(std::memory_order_seq_cst) != set);
  try {
    set->match(name, [&](Subscriber* s) { out.add(s); });
  } catch (...) {
    // No memory to list more matches: the ones listed are delivered.
  }
}

void BusCore::take_budget(std::string_view name, uint64_t bytes, uint32_t mslot) {
  const Counter refused = Counter(kDropped + static_cast<int>(DropReason::queue_full));
  if (bytes > budget_.max_bytes()) {
    queue_full_.fetch_add(1, std::memory_order_relaxed);
    metrics_.add(mslot, refused);
    throw EventBusError(fmt::format(
        "publish('{}'): the event holds about {} bytes, more than the whole queue may "
        "(events.executor.max_queued_bytes = {})",
        name, bytes, budget_.max_bytes()));
  }
  if (budget_.try_take(bytes)) return;
  // A handler's publish does not wait: the queue it would wait for may need its worker.
  const bool may_wait = settings_.when_full == WhenFull::block && !HandlerFrame::inside(this);
  if (may_wait && budget_.take(bytes, std::chrono::steady_clock::now() + settings_.publish_timeout,
                               [this] { return state_.load() != kStarted; })) {
    return;
  }
  if (state_.load() != kStarted) throw_not_running(name);
  queue_full_.fetch_add(1, std::memory_order_relaxed);
  metrics_.add(mslot, refused);
  throw EventBusError(fmt::format(
      "publish('{}'): the dispatch queue is full ({} events, {} bytes waiting; "
      "events.executor.max_queued_events = {}, max_queued_bytes = {}){}: handlers are not "
      "keeping up",
      name, budget_.events(), budget_.bytes(), budget_.max_events(), budget_.max_bytes(),
      !may_wait ? (settings_.when_full == WhenFull::fail
                       ? " and events.executor.when_full is \"fail\""
                       : " and a handler's publish does not wait for room")
                : fmt::format(" for events.executor.publish_timeout ({} ms)",
                              settings_.publish_timeout.count())));
}

Completion BusCore::publish_pool(std::string_view name, const Payload& payload,
                                 const Audience& to, const ContextPtr* context, uint32_t mslot) {
  const uint64_t bytes = sizeof(PoolEvent) + approximate_size(*payload);
  take_budget(name, bytes, mslot);
  const bool timed = metrics_.add_and_sample(mslot, kPublished);
  PoolEvent* ev = take_record();
  ev->charged_bytes = bytes;
  ev->metrics_slot = mslot;
  ev->stamped_ns = timed ? now_ns() : 0;
  ev->payload = payload;
  if (context && *context) ev->context = *context;
  ev->decode.store(Decode::none, std::memory_order_relaxed);
  ev->failed.store(0, std::memory_order_relaxed);
  ev->pending.store(0, std::memory_order_relaxed);
  ev->refs.store(2, std::memory_order_relaxed);  // the deliveries', and the Completion's
  Completion done(ev);
  if (loopback_) {
    enqueue(*ev, to, name);
    return done;
  }
  LocalDelivery delivery{this, &to, nullptr, ev, name};
  athomic_message m{sizeof(athomic_message), {name.data(), name.size()}, {nullptr, 0},
                    reinterpret_cast<athomic_host_event*>(&delivery), 0, nullptr, 0};
  std::string error;
  const athomic_status st = provider_->publish(m, error);
  if (delivery.pool_event) {
    // The provider never handed the event back: nothing was queued.
    ev->pending.store(1, std::memory_order_relaxed);
    finish(*ev, nullptr);
    if (st == ATHOMIC_OK) {
      undeliverable_.fetch_add(1, std::memory_order_relaxed);
      return done;
    }
  }
  if (st != ATHOMIC_OK) throw_refused(name, error);
  return done;
}

uint32_t BusCore::metrics_slot(std::string_view name) noexcept {
  if (!metrics_.enabled()) return Metrics::kOther;
  try {
    return metrics_.slot(name, TopicTable::hash_of(name));
  } catch (...) {
    return Metrics::kOther;  // no memory for the name: counted with the others
  }
}

Completion BusCore::publish_remote(std::string_view name, const Payload& payload,
                                   uint32_t mslot) {
  // A thread's buffer, borrowed for the call: a provider that delivers synchronously may run a
  // handler that publishes again, on this thread, while the outer body is still in use.
  thread_local std::string spare;
  std::string body = std::move(spare);
  // A thread publishes many events in one context: encode it once, not once per event. The
  // cache holds a reference, so its key cannot be reused by another context.
  thread_local struct {
    ContextPtr source;
    ContextFieldMask key = 0;  // context_cache_key_ of the bus that filled it
    std::string json;
    std::string trace;  // the W3C members, when the key says so
    // The same as header values (traceparent, tracestate); empty when there is no trace.
    std::string trace_parent;
    std::string trace_state;
  } context_cache;
  body.clear();
  std::string_view context_json;
  std::string_view trace_json;
  const ContextPtr* current = tls_current_context;
  if (current && *current) {
    if (context_cache.source != *current || context_cache.key != context_cache_key_) {
      const ExecutionContext* ctx = (*current)->restrict_view(settings_.propagated_fields);
      ContextPtr restricted;
      if (!ctx) {
        restricted = ExecutionContext::restrict(*current, settings_.propagated_fields);
        ctx = restricted.get();
      }
      if (ctx->feature_flags().size() > kMaxFeatureFlags) {
        throw EventBusError(fmt::format(
            "publish('{}'): the context has {} feature flags; receivers accept at most {}", name,
            ctx->feature_flags().size(), kMaxFeatureFlags));
      }
      context_cache.json = ctx->is_empty() ? std::string() : encode_context(*ctx);
      context_cache.trace = settings_.traceparent ? traced_members(*ctx) : std::string();
      // Whatever the provider: the cache is shared by the thread's buses of one key.
      context_cache.trace_parent.clear();
      context_cache.trace_state.clear();
      if (!context_cache.trace.empty()) {
        append_traceparent(*ctx->trace_id(), *ctx->span_id(), ctx->trace_flags(),
                           context_cache.trace_parent);
        if (const auto state = ctx->trace_state()) context_cache.trace_state.assign(*state);
      }
      context_cache.source = *current;
      context_cache.key = context_cache_key_;
    }
    context_json = context_cache.json;
    trace_json = context_cache.trace;
  }
  try {
    if (settings_.traceparent) {
      encode_traced_envelope(*payload, context_json, trace_json, body);
    } else {
      encode_envelope(*payload, context_json, body);
    }
  } catch (const EventBusError& e) {
    throw EventBusError(fmt::format("publish('{}'): {}", name, e.what()));
  }
  if (body.size() > settings_.max_payload_bytes) {
    throw EventBusError(fmt::format(
        "publish('{}'): the encoded event is {} bytes; events.max_payload_bytes is {}", name,
        body.size(), settings_.max_payload_bytes));
  }
  athomic_message m{sizeof(athomic_message), {name.data(), name.size()},
                    {body.data(), body.size()}, nullptr, 0, nullptr, 0};
  Acknowledgement* ack = nullptr;
  if (acknowledges_) {
    // The transport completes it later; its address is the token.
    ack = new Acknowledgement();
    ack->bus = this;
    ack->metrics_slot = mslot;
    // In inline dispatch the provider's thread runs handlers: one of them waiting for the
    // provider's answer would wait for itself.
    ack->needs_handler_threads = inline_mode_;
    ack->pending.store(1, std::memory_order_relaxed);
    ack->refs.store(2, std::memory_order_relaxed);  // the provider's, and the Completion's
    m.publish_token = reinterpret_cast<uint64_t>(ack);
    unacknowledged_.fetch_add(1, std::memory_order_relaxed);
  }
  std::string error;
  const athomic_status st =
      trace_headers_ && !trace_json.empty()
          ? publish_with_trace_headers(m, context_cache.trace_parent, context_cache.trace_state,
                                       error)
          : provider_->publish(m, error);
  spare = std::move(body);
  if (st != ATHOMIC_OK) {
    if (ack) {
      unacknowledged_.fetch_sub(1, std::memory_order_relaxed);
      delete ack;
    }
    throw_refused(name, error);
  }
  return ack ? Completion(ack) : Completion();
}

athomic_status BusCore::publish_with_trace_headers(athomic_message& m, std::string_view parent,
                                                  std::string_view state,
                                                  std::string& error) noexcept {
  // The envelope keeps its copy: receivers that read only the body (an older athomic, a
  // consumer of the JSON) still find the trace there.
  // Copies: the values come from the thread's context cache, which a handler publishing on
  // this thread, inside a provider that delivers synchronously, may refill during the call.
  char parent_copy[kTraceParentChars];
  const std::size_t parent_size = std::min(parent.size(), sizeof parent_copy);
  std::memcpy(parent_copy, parent.data(), parent_size);
  std::string state_copy;
  try {
    state_copy.assign(state);
  } catch (...) {
    error = "out of memory for the tracestate header";
    return ATHOMIC_ERR_INTERNAL;
  }
  athomic_header headers[2] = {
      {{kTraceParentKey.data(), kTraceParentKey.size()}, {parent_copy, parent_size}},
      {{kTraceStateKey.data(), kTraceStateKey.size()}, {state_copy.data(), state_copy.size()}}};
  m.headers = headers;
  m.header_count = state_copy.empty() ? 1 : 2;
  return provider_->publish(m, error);
}

std::string BusCore::traced_members(const ExecutionContext& ctx) {
  std::string members = trace_members(ctx);
  if (members.empty() && (ctx.has(ContextField::trace_id) || ctx.has(ContextField::span_id)) &&
      !said_no_traceparent_.exchange(true, std::memory_order_relaxed)) {
    const auto shown = [](std::optional<std::string_view> v) {
      return v ? fmt::format("\"{}\"", v->substr(0, 64)) : std::string("unset");
    };
    log_->warn(
        "events.context.traceparent is on, but a context's trace_id ({}) and span_id "
        "({}) are not both W3C ids (32 and 16 lowercase hex digits, not all zeros): "
        "events published in such contexts carry no traceparent, only _nala_context "
        "(said once)",
        shown(ctx.trace_id()), shown(ctx.span_id()));
  }
  return members;
}

void BusCore::publish_done(uint64_t token, athomic_status status, int64_t receivers,
                           std::string_view error) noexcept {
  auto* ack = reinterpret_cast<Acknowledgement*>(token);
  if (!ack || ack->bus != this || ack->kind != Outcome::Kind::acknowledgement) {
    try {
      log_->error("provider '{}' completed a publish with a token this bus never gave it",
                  provider_->plugin().info->name);
    } catch (...) {
    }
    return;
  }
  ack->receivers = receivers;
  if (status != ATHOMIC_OK) {
    publish_failures_.fetch_add(1, std::memory_order_relaxed);
    metrics_.add(ack->metrics_slot, Counter(kDropped + static_cast<int>(DropReason::transport)));
    ack->failed.store(1, std::memory_order_relaxed);
    try {
      ack->error = fmt::format("{} ({})", error.empty() ? "no message" : error,
                               athomic_status_text(status));
    } catch (...) {
    }
    uint64_t suppressed = 0;
    if (transport_failure_log_.admit(suppressed)) {
      try {
        log_->error("provider '{}' could not deliver a publish: {}{}",
                    provider_->plugin().info->name, ack->error,
                    suppressed ? fmt::format(" ({} more since the last report)", suppressed) : "");
      } catch (...) {
      }
    }
  }
  unacknowledged_.fetch_sub(1, std::memory_order_relaxed);
  ack->pending.store(0, std::memory_order_seq_cst);  // publishes receivers and error
  wake_waiters(ack);
  release_outcome(ack);
}

// ---------------------------------------------------------------------------------------------
// Records

PoolEvent* BusCore::take_record() {
  PoolEvent* e = take_cached_record();
  if (!e && returned_.load(std::memory_order_relaxed)) {
    // Taking the whole list at once cannot suffer ABA; workers may push meanwhile. The count
    // is approximate (pushes race with it) but only bounds the bus's list.
    PoolEvent* chain = returned_.exchange(nullptr, std::memory_order_acquire);
    const uint32_t n = returned_count_.exchange(0, std::memory_order_relaxed);
    if (chain) {
      e = chain;
      adopt_records(chain->next_free, n > 0 ? n - 1 : 0);
    }
  }
  if (!e) e = new_record();
  e->bus = this;
  e->next_free = nullptr;
  e->waiters.store(0, std::memory_order_relaxed);
  e->continuation.store(nullptr, std::memory_order_relaxed);
  return e;
}

void BusCore::recycle(Finished& finished) noexcept {
  // What finish() left to the batch goes before the places: the bound counts those bytes.
  PoolEvent* e = finished.head;
  for (uint32_t i = 0; i < finished.count; ++i, e = e->next_free) e->clear_content();
  if (finished.events > 0) budget_.give_back(finished.events, finished.bytes);
  if (finished.head) {
    if (returned_count_.fetch_add(finished.count, std::memory_order_relaxed) >= max_returned_) {
      returned_count_.fetch_sub(finished.count, std::memory_order_relaxed);
      finished.tail->next_free = nullptr;
      free_records(finished.head);
    } else {
      PoolEvent* head = returned_.load(std::memory_order_relaxed);
      do {
        finished.tail->next_free = head;
      } while (!returned_.compare_exchange_weak(head, finished.head, std::memory_order_release,
                                                std::memory_order_relaxed));
    }
  }
  finished.head = finished.tail = nullptr;
  finished.count = 0;
  finished.events = finished.bytes = 0;
}

// ---------------------------------------------------------------------------------------------
// Dispatch

athomic_status BusCore::deliver_event(LocalDelivery* d) noexcept {
  // Called by an in-process provider from inside publish, which holds the handlers' hazard.
  if (!d || d->bus != this) return ATHOMIC_ERR_INVALID_ARGUMENT;
  if (InlineEvent* ev = d->inline_event) {
    d->inline_event = nullptr;
    dispatch_inline(*ev, *d->to);
    return ATHOMIC_OK;
  }
  if (PoolEvent* ev = d->pool_event) {
    d->pool_event = nullptr;
    enqueue(*ev, *d->to, d->name);
    return ATHOMIC_OK;
  }
  return ATHOMIC_ERR_STATE;  // handed back twice
}

athomic_status BusCore::deliver_message(std::string_view name, std::string_view body,
                                        const TraceHeaders* headers) noexcept {
  HazardSlot slot;
  const TopicState* handlers = topics_.find(name, TopicTable::hash_of(name), slot);
  if (!handlers) slot.set(this);  // close waits for us either way
  if (state_.load(std::memory_order_seq_cst) != kStarted) return ATHOMIC_ERR_STATE;
  if (slot.overflow()) return ATHOMIC_ERR_STATE;
  // A provider that subscribes to patterns natively delivers their messages with
  // deliver_message_to, once per matching subscription; here only the exact name's handlers.
  Matches matched;
  if (!remote_ || !provider_->has(ATHOMIC_CAP_PATTERN)) match_patterns(name, matched);
  return receive(name, body, Audience{handlers, matched.data(), matched.size()}, headers);
}

athomic_status BusCore::deliver_message_to(std::string_view name, std::string_view body,
                                           std::string_view interest, athomic_interest_kind kind,
                                           const TraceHeaders* headers) noexcept {
  if (kind != ATHOMIC_INTEREST_PATTERN) return deliver_message(name, body, headers);
  // The pattern set, protected while its subscribers are read; it also keeps close() waiting.
  HazardSlot slot;
  const PatternSet* set;
  do {
    set = patterns_.load(std::memory_order_acquire);
    if (!set) break;
    if (!slot.set(set)) return ATHOMIC_ERR_STATE;
  } while (patterns_.load(std::memory_order_seq_cst) != set);
  if (!set) slot.set(this);
  if (state_.load(std::memory_order_seq_cst) != kStarted) return ATHOMIC_ERR_STATE;
  const std::vector<Subscriber*>* subs = set ? set->subscribers_of(interest) : nullptr;
  // The transport matched by its own rules; the subscription is for what the pattern matches.
  if (!subs || !received_name_matches(interest, name)) {
    return receive(name, body, Audience{}, headers);
  }
  return receive(name, body, Audience{nullptr, subs->data(), static_cast<uint32_t>(subs->size())},
                 headers);
}

athomic_status BusCore::deliver_received(const athomic_received& m) noexcept {
  // athomic_received came with 1.3: that is the least layout a provider may hand over.
  if (!ATHOMIC_STRUCT_HOLDS(m, athomic_received, header_count)) return ATHOMIC_ERR_INVALID_ARGUMENT;
  const auto view = [](athomic_str s) {
    return s.size == 0 ? std::string_view() : std::string_view(s.data, s.size);
  };
  // Only the trace is read from headers, and only when the setting asks for it.
  TraceHeaders trace;
  if (settings_.traceparent) trace = find_trace_headers(m.headers, m.header_count);
  const TraceHeaders* headers = trace.empty() ? nullptr : &trace;
  if (m.interest.size == 0) return deliver_message(view(m.event_name), view(m.body), headers);
  return deliver_message_to(view(m.event_name), view(m.body), view(m.interest), m.kind, headers);
}

athomic_status BusCore::receive(std::string_view name, std::string_view body,
                                const Audience& to, const TraceHeaders* headers) noexcept {
  const uint32_t mslot = to.exact ? to.exact->metrics_slot : metrics_slot(name);
  const bool timed = metrics_.add_and_sample(mslot, kReceived);
  if (to.empty()) {
    undeliverable_.fetch_add(1, std::memory_order_relaxed);
    metrics_.add(mslot, Counter(kDropped + static_cast<int>(DropReason::no_handler)));
    return ATHOMIC_OK;
  }
  if (body.size() > settings_.max_payload_bytes) {
    skip_malformed(name, fmt::format("{} bytes exceed events.max_payload_bytes ({})", body.size(),
                                     settings_.max_payload_bytes));
    return ATHOMIC_ERR_DECODE;
  }
  if (!inline_mode_) {
    // Decoding happens on a worker: the provider's thread, which every received event passes
    // through, only copies the bytes and queues them.
    const uint64_t bytes = sizeof(PoolEvent) + body.size() +
                           (headers ? headers->parent.size() + headers->state.size() : 0);
    if (!budget_.try_take(bytes)) {
      if (provider_retries_) {
        receive_refusals_.fetch_add(1, std::memory_order_relaxed);
        return ATHOMIC_ERR_BACKPRESSURE;
      }
      // A provider built before 1.2 drops what is refused: wait a bounded time for room.
      if (!budget_.take(bytes, std::chrono::steady_clock::now() + settings_.publish_timeout,
                        [this] { return state_.load() != kStarted; })) {
        dropped_queue_full_.fetch_add(1, std::memory_order_relaxed);
        metrics_.add(mslot, Counter(kDropped + static_cast<int>(DropReason::queue_full)));
        uint64_t suppressed = 0;
        if (refusal_log_.admit(suppressed)) {
          LogEventScope about(name);
          try {
            log_->error("dropped a received '{}' event: the dispatch queue stayed full for "
                        "events.executor.publish_timeout and provider '{}' cannot deliver it "
                        "again{}",
                        name, provider_->plugin().info->name,
                        suppressed ? fmt::format(" ({} more since the last report)", suppressed)
                                   : "");
          } catch (...) {
          }
        }
        return ATHOMIC_ERR_BACKPRESSURE;
      }
    }
    PoolEvent* ev = nullptr;
    try {
      ev = take_record();
      ev->raw.assign(body);
      if (headers) {
        // The worker decodes after this call returns: the values are copied with the body.
        ev->header_text.assign(headers->parent).append(headers->state);
        ev->headers = *headers;
        ev->headers.parent = std::string_view(ev->header_text).substr(0, headers->parent.size());
        ev->headers.state = std::string_view(ev->header_text).substr(headers->parent.size());
      }
    } catch (...) {
      if (ev) {  // no memory for the bytes: the record goes back, not astray
        ev->clear_content();
        cache_or_free_record(ev);
      }
      budget_.give_back(1, bytes);
      return ATHOMIC_ERR_BACKPRESSURE;
    }
    ev->charged_bytes = bytes;
    ev->metrics_slot = mslot;
    ev->stamped_ns = timed ? now_ns() : 0;
    ev->decode.store(Decode::raw, std::memory_order_relaxed);
    ev->failed.store(0, std::memory_order_relaxed);
    ev->pending.store(0, std::memory_order_relaxed);
    ev->refs.store(1, std::memory_order_relaxed);  // the deliveries'
    enqueue(*ev, to, name);
    return ATHOMIC_OK;
  }
  DecodedEvent decoded;
  std::string error;
  if (!decode_envelope(body, decoded, error, EnvelopeOptions{settings_.traceparent}, headers)) {
    skip_malformed(name, error);
    return ATHOMIC_ERR_DECODE;
  }
  if (!decoded.trace_problem.empty()) ignore_trace_context(name, decoded.trace_problem);
  InlineEvent ev(to.exact ? to.exact->name() : name, decoded.payload, &decoded.context,
                 metrics_.cells_of(mslot), mslot, timed);
  dispatch_inline(ev, to);
  return ATHOMIC_OK;
}

void BusCore::skip_malformed(std::string_view name, const std::string& why) noexcept {
  malformed_.fetch_add(1, std::memory_order_relaxed);
  metrics_.add(metrics_slot(name), Counter(kDropped + static_cast<int>(DropReason::malformed)));
  uint64_t suppressed = 0;
  if (malformed_log_.admit(suppressed)) {
    LogEventScope about(name);
    try {
      log_->warn("skipped a malformed message for '{}': {}{}", name, why,
                 suppressed ? fmt::format(" ({} more since the last report)", suppressed) : "");
    } catch (...) {
    }
  }
}

void BusCore::ignore_trace_context(std::string_view name, const std::string& why) noexcept {
  invalid_traceparent_.fetch_add(1, std::memory_order_relaxed);
  uint64_t suppressed = 0;
  if (trace_context_log_.admit(suppressed)) {
    try {
      log_->warn(
          "ignored the trace context of a received '{}' event (delivered without it): "
          "{}{}",
          name, why, suppressed ? fmt::format(" ({} more since the last report)", suppressed) : "");
    } catch (...) {
    }
  }
}

void BusCore::handler_threw(const Subscriber& s, const Event& ev) noexcept {
  handler_failures_.fetch_add(1, std::memory_order_relaxed);
  LogEventScope about(ev.name());
  try {
    throw;
  } catch (const std::exception& e) {
    try {
      log_->error("handler #{} for '{}' threw: {}", s.id & 0xffffffffu, ev.name(), e.what());
    } catch (...) {
    }
  } catch (...) {
    try {
      log_->error("handler #{} for '{}' threw a non-standard exception", s.id & 0xffffffffu,
                  ev.name());
    } catch (...) {
    }
  }
}

void BusCore::dispatch_inline(InlineEvent& ev, const Audience& to) noexcept {
  if (ev.timed) return dispatch_inline_timed(ev, to);
  HandlerFrame frame(this);
  ContextSwap swap(ev.context);
  const Event& e = ev.event;
  uint32_t calls = 0;
  if (to.exact) {
    const uint32_t n = to.exact->count.load(std::memory_order_acquire);
    for (uint32_t i = 0; i < n; ++i) {
      const Subscriber& s = *to.exact->at(i);
      // Cleared by an unsubscribe on this thread, or by one inside a handler elsewhere (which
      // promises only "never called again"); others wait for this dispatch.
      if (!s.active.load(std::memory_order_seq_cst)) continue;
      ++calls;
      if (!invoke(s, e)) ++ev.failed;
    }
  }
  for (uint32_t i = 0; i < to.matched_count; ++i) {
    const Subscriber& s = *to.matched[i];
    if (!s.active.load(std::memory_order_seq_cst)) continue;
    ++calls;
    if (!invoke(s, e)) ++ev.failed;
  }
  Metrics::add_to(ev.metrics_cells, kDelivered, calls);
  if (ev.failed) Metrics::add_to(ev.metrics_cells, kFailed, ev.failed);
}

void BusCore::dispatch_inline_timed(InlineEvent& ev, const Audience& to) noexcept {
  const uint64_t began = now_ns();
  HandlerFrame frame(this);
  ContextSwap swap(ev.context);
  const Event& e = ev.event;
  uint32_t calls = 0;
  auto call = [&](const Subscriber& s) {
    if (!s.active.load(std::memory_order_seq_cst)) return;
    ++calls;
    const uint64_t start = now_ns();
    metrics_.observe_latency(ev.metrics_slot, start - began);
    if (!invoke(s, e)) ++ev.failed;
    metrics_.observe_duration(ev.metrics_slot, now_ns() - start);
  };
  if (to.exact) {
    const uint32_t n = to.exact->count.load(std::memory_order_acquire);
    for (uint32_t i = 0; i < n; ++i) call(*to.exact->at(i));
  }
  for (uint32_t i = 0; i < to.matched_count; ++i) call(*to.matched[i]);
  Metrics::add_to(ev.metrics_cells, kDelivered, calls);
  if (ev.failed) Metrics::add_to(ev.metrics_cells, kFailed, ev.failed);
}

void BusCore::enqueue(PoolEvent& ev, const Audience& to, std::string_view name) noexcept {
  const uint32_t exact = to.exact ? to.exact->count.load(std::memory_order_acquire) : 0;
  const uint32_t n = exact + to.matched_count;
  bool named = true;
  if (to.matched_count > 0) {
    try {
      ev.name.assign(name);  // pattern subscribers see the event's own name
    } catch (...) {
      named = false;
    }
  }
  if (n == 0 || !named || !ev.reserve_nodes(n)) {
    if (n > 0) {  // out of memory
      dropped_queue_full_.fetch_add(1, std::memory_order_relaxed);
      metrics_.add(ev.metrics_slot, Counter(kDropped + static_cast<int>(DropReason::queue_full)));
    }
    ev.pending.store(1, std::memory_order_relaxed);
    finish(ev, nullptr);
    return;
  }
  // Set before any node is visible: a worker may finish the first delivery at once.
  ev.receivers = n;
  ev.pending.store(n, std::memory_order_relaxed);
  for (uint32_t i = 0; i < n; ++i) {
    Subscriber* s = i < exact ? to.exact->at(i) : to.matched[i - exact];
    LaneNode& node = ev.node(i);
    node.event = &ev;
    Lane& lane = s->next_lane();
    if (lane.push(&node)) {
      s->ref();  // the scheduled lane's
      executor_->schedule(&lane);
    }
  }
}

void BusCore::drain(void* self, Lane& lane, unsigned worker) noexcept {
  auto* bus = static_cast<BusCore*>(self);
  Subscriber& sub = *lane.owner;
  HandlerFrame frame(bus);
  WorkerNote& note = bus->notes_[worker];
  if (note.subscriber_id != sub.id) {
    std::lock_guard lock(note.mutex);
    note.subscriber_id = sub.id;
    try {
      note.event = sub.name;
    } catch (...) {
    }
  }
  lane.draining.store(true, std::memory_order_seq_cst);
  Finished finished;
  unsigned done = 0;
  for (;;) {
    LaneNode* node = lane.pop();
    if (!node) {
      if (lane.maybe_nonempty()) {
        cpu_relax();  // a publisher is between its two steps
        continue;
      }
      // A publisher is often just behind: watch this lane a moment before giving it up, which
      // spares it scheduling the lane again (and this worker a trip through the ready queue) —
      // as the one worker polling, and not while other lanes wait.
      if (bus->executor_->watch(worker, [&] { return lane.maybe_nonempty(); })) continue;
      lane.draining.store(false, std::memory_order_seq_cst);
      if (!lane.try_release()) break;
      lane.draining.store(true, std::memory_order_seq_cst);
      continue;
    }
    note.running.store(true, std::memory_order_relaxed);
    bus->deliver(sub, *node->event, finished);
    note.running.store(false, std::memory_order_relaxed);
    if (++done >= kLaneBatch && bus->executor_->others_waiting()) {
      // Let the lanes that wait go first; this one stays scheduled and queues behind them.
      lane.draining.store(false, std::memory_order_seq_cst);
      bus->recycle(finished);
      bus->executor_->schedule(&lane);
      return;
    }
  }
  bus->recycle(finished);
  sub.unref();  // the scheduled lane's; may free the subscriber and its lanes
}

void BusCore::deliver(Subscriber& s, PoolEvent& ev, Finished& finished) noexcept {
  if (abandon_.load(std::memory_order_relaxed)) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    metrics_.add(ev.metrics_slot, Counter(kDropped + static_cast<int>(DropReason::close)));
  } else if (s.active.load(std::memory_order_seq_cst) &&
             (ev.decode.load(std::memory_order_acquire) == Decode::none ||
              decode_once(ev, s.pattern ? std::string_view(ev.name) : std::string_view(s.name)))) {
    ContextSwap swap(&ev.context);
    const Event e(s.pattern ? std::string_view(ev.name) : std::string_view(s.name), ev.payload,
                  ev.context ? *ev.context : ExecutionContext::empty());
    if (ev.stamped_ns == 0) {
      const bool ok = invoke(s, e);
      if (!ok) ev.failed.fetch_add(1, std::memory_order_relaxed);
      count_calls(ev.metrics_slot, 1, ok ? 0 : 1);
    } else {
      const uint64_t start = now_ns();
      metrics_.observe_latency(ev.metrics_slot, start > ev.stamped_ns ? start - ev.stamped_ns : 0);
      const bool ok = invoke(s, e);
      metrics_.observe_duration(ev.metrics_slot, now_ns() - start);
      if (!ok) ev.failed.fetch_add(1, std::memory_order_relaxed);
      count_calls(ev.metrics_slot, 1, ok ? 0 : 1);
    }
  }
  finish(ev, &finished);
}

bool BusCore::decode_once(PoolEvent& ev, std::string_view name) noexcept {
  Decode d = ev.decode.load(std::memory_order_acquire);
  if (d == Decode::raw && ev.decode.compare_exchange_strong(d, Decode::busy,
                                                            std::memory_order_acq_rel)) {
    DecodedEvent out;
    std::string error;
    if (decode_envelope(ev.raw, out, error, EnvelopeOptions{settings_.traceparent},
                        &ev.headers)) {
      if (!out.trace_problem.empty()) ignore_trace_context(name, out.trace_problem);
      ev.payload = std::move(out.payload);
      ev.context = std::move(out.context);
      ev.decode.store(Decode::ok, std::memory_order_release);
      return true;
    }
    skip_malformed(name, error);
    ev.decode.store(Decode::malformed, std::memory_order_release);
    return false;
  }
  // Another subscriber's worker is decoding it: that takes a few hundred nanoseconds.
  for (unsigned round = 0; d == Decode::busy; ++round) {
    if (round < 128) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
    d = ev.decode.load(std::memory_order_acquire);
  }
  return d == Decode::ok;
}

void BusCore::finish(PoolEvent& ev, Finished* finished) noexcept {
  if (!finished) [[unlikely]] {
    finish_alone(ev);
    return;
  }
  // When the count reads 1, every other delivery has finished (their decrements are visible
  // through the acquire): this is the last, and needs no read-modify-write.
  if (ev.pending.load(std::memory_order_acquire) != 1 &&
      ev.pending.fetch_sub(1, std::memory_order_acq_rel) != 1) {
    return;
  }
  // The last delivery: what the event holds goes now, not when the record is reused — except
  // its context, which goes with the batch, in recycle(), when nobody can see when it goes: no
  // Completion is left to wait for the event (whoever waits is promised it is gone) and no
  // continuation. A publisher usually gives event after event the same context; dropping each
  // reference as its event finishes moves that count's cache line between the publisher's CPU
  // and the worker's twice per event, dropping a batch's together a few times per batch
  // (1.3x the events/s across CPUs, BENCHMARKS.md). The payload's release may run a deleter of
  // the application's, which may give back what the publisher waits for (a buffer of a pool):
  // that happens now, not after the batch's next handlers, which may wait for that publisher.
  // A context's release frees its strings.
  Finished& into = *finished;
  if (ev.refs.load(std::memory_order_acquire) != 1 ||
      ev.waiters.load(std::memory_order_acquire) != 0) {
    ev.clear_content();
  } else {
    ev.payload.reset();
  }
  ++into.events;
  into.bytes += ev.charged_bytes;
  ev.pending.store(0, std::memory_order_seq_cst);  // done: waiters may return
  wake_waiters(&ev);
  // Read 1 above, it stays 1 (nobody else holds the record): the record then joins the batch,
  // whose recycle() clears it.
  if (ev.refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    ev.next_free = into.head;
    into.head = &ev;
    if (!into.tail) into.tail = &ev;
    ++into.count;
  }
  // A batch's places go back at its end — unless a publisher waits for room now.
  if (into.events >= kLaneBatch || budget_.wanted()) recycle(into);
}

void BusCore::finish_alone(PoolEvent& ev) noexcept {
  Finished one;
  finish(ev, &one);
  recycle(one);
}

}  // namespace athomic::detail
