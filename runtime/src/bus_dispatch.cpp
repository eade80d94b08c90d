// Publish and dispatch: the paths every event takes, in process and from a wire.
#include "bus_core.h"

#include "codec.h"
#include "context_slot.h"
#include "hazard.h"

#include <athomic/errors.h>

#include <fmt/format.h>

namespace athomic::detail {

namespace {

const Payload& empty_payload() {
  static const Payload kEmpty = std::make_shared<const nlohmann::json>(nlohmann::json::object());
  return kEmpty;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Publish

void BusCore::throw_not_running(std::string_view name) const {
  const int s = state_.load();
  if (s == kCreated) {
    throw EventBusError(fmt::format("publish('{}'): the event bus is not started; call start()",
                                    name));
  }
  throw EventBusError(fmt::format("publish('{}'): the event bus is closed", name));
}

void BusCore::throw_refused(std::string_view name, const std::string& error) {
  publish_failures_.fetch_add(1, std::memory_order_relaxed);
  throw EventBusError(fmt::format("publish('{}'): provider '{}' refused the event: {}", name,
                                  provider_->plugin().info->name, error));
}

Completion BusCore::publish(std::string_view name, const Payload& given) {
  const std::size_t hash = TopicTable::hash_of(name);
  Topic* topic = topics_.find(name, hash);
  if (!topic) validate_event_name(name);  // names in the table were validated on subscribe
  const Payload& payload = (!given || given->is_null()) ? empty_payload() : given;
  if (!payload->is_object()) {
    throw EventBusError(fmt::format("publish('{}'): the payload must be a JSON object, got {}",
                                    name, payload->type_name()));
  }

  // One hazard covers the handler list we are about to use and keeps close() waiting for us.
  HazardSlot slot;
  const HandlerList* list = topic ? slot.protect(topic->list) : nullptr;
  if (slot.overflow()) {
    throw EventBusError(fmt::format(
        "publish('{}'): handlers publishing from handlers nested more than {} levels deep", name,
        HazardRecord::kSlots));
  }
  if (!list) slot.set(this);
  if (state_.load(std::memory_order_seq_cst) != kStarted) throw_not_running(name);

  if (remote_) return publish_remote(topic ? std::string_view(topic->name) : name, payload);
  if (!list) return Completion();  // in process, nobody listens

  // Capture the propagated part of the publisher's context.
  const ContextPtr* current = tls_current_context;
  const bool restrict =
      current && *current && ((*current)->fields() & ~settings_.propagated_fields) != 0;

  std::string error;
  if (inline_mode_) {
    EventRecord rec;
    rec.bus = this;
    rec.name = topic->name;
    rec.payload = &payload;
    if (restrict) rec.context_owned = ExecutionContext::restrict(*current, settings_.propagated_fields);
    rec.context = restrict ? &rec.context_owned : current;
    rec.handlers_view = list;
    athomic_message m{sizeof(athomic_message), {name.data(), name.size()}, {nullptr, 0},
                      reinterpret_cast<athomic_host_event*>(&rec)};
    if (provider_->publish(m, error) != ATHOMIC_OK) throw_refused(name, error);
    return Completion(rec.failed.load(std::memory_order_relaxed));
  }

  EventRecord* rec = new_pool_record();
  rec->name = topic->name;
  rec->payload_owned = payload;
  rec->payload = &rec->payload_owned;
  if (current && *current) {
    rec->context_owned =
        restrict ? ExecutionContext::restrict(*current, settings_.propagated_fields) : *current;
  }
  rec->context = &rec->context_owned;
  rec->handlers_view = list;
  athomic_message m{sizeof(athomic_message), {name.data(), name.size()}, {nullptr, 0},
                    reinterpret_cast<athomic_host_event*>(rec)};
  Completion done(rec);  // owns the initial reference
  if (provider_->publish(m, error) != ATHOMIC_OK) throw_refused(name, error);
  return done;
}

Completion BusCore::publish_remote(std::string_view name, const Payload& payload) {
  thread_local std::string body;
  // A thread publishes many events in one context: encode it once, not once per event. The
  // cache holds a reference, so its key cannot be reused by another context.
  thread_local struct {
    ContextPtr source;
    ContextFieldMask fields = 0;
    std::string json;
  } context_cache;
  body.clear();
  std::string_view context_json;
  const ContextPtr* current = tls_current_context;
  if (current && *current) {
    if (context_cache.source != *current || context_cache.fields != settings_.propagated_fields) {
      const ExecutionContext* ctx = (*current)->restrict_view(settings_.propagated_fields);
      ContextPtr restricted;
      if (!ctx) {
        restricted = ExecutionContext::restrict(*current, settings_.propagated_fields);
        ctx = restricted.get();
      }
      context_cache.json = ctx->is_empty() ? std::string() : encode_context(*ctx);
      context_cache.source = *current;
      context_cache.fields = settings_.propagated_fields;
    }
    context_json = context_cache.json;
  }
  try {
    encode_envelope(*payload, context_json, body);
  } catch (const EventBusError& e) {
    throw EventBusError(fmt::format("publish('{}'): {}", name, e.what()));
  }
  if (body.size() > settings_.max_payload_bytes) {
    throw EventBusError(fmt::format(
        "publish('{}'): the encoded event is {} bytes; events.max_payload_bytes is {}", name,
        body.size(), settings_.max_payload_bytes));
  }
  athomic_message m{sizeof(athomic_message), {name.data(), name.size()},
                    {body.data(), body.size()}, nullptr};
  std::string error;
  if (provider_->publish(m, error) != ATHOMIC_OK) throw_refused(name, error);
  return Completion();
}

// ---------------------------------------------------------------------------------------------
// Dispatch

athomic_status BusCore::deliver_event(EventRecord* r) noexcept {
  // Called by an in-process provider from inside publish, which holds the list's hazard.
  if (!r || r->bus != this || !r->handlers_view) return ATHOMIC_ERR_INVALID_ARGUMENT;
  if (inline_mode_) {
    dispatch_inline(*r, *r->handlers_view);
  } else {
    dispatch_pool(*r, *r->handlers_view);
  }
  return ATHOMIC_OK;
}

athomic_status BusCore::deliver_message(std::string_view name, std::string_view body) noexcept {
  if (state_.load(std::memory_order_acquire) != kStarted) return ATHOMIC_ERR_STATE;
  Topic* topic = topics_.find(name);
  HazardSlot slot;
  const HandlerList* list = topic ? slot.protect(topic->list) : nullptr;
  if (!list) {
    undeliverable_.fetch_add(1, std::memory_order_relaxed);
    return ATHOMIC_OK;
  }
  if (body.size() > settings_.max_payload_bytes) {
    skip_malformed(name, fmt::format("{} bytes exceed events.max_payload_bytes ({})", body.size(),
                                     settings_.max_payload_bytes));
    return ATHOMIC_ERR_DECODE;
  }
  if (!inline_mode_) {
    // Decoding happens on a worker: the provider's thread, which every received event passes
    // through, only copies the bytes and hands them over.
    EventRecord* rec = new_pool_record();
    rec->name = topic->name;
    rec->topic = topic;
    rec->raw.assign(body);
    rec->refs.fetch_add(1, std::memory_order_relaxed);  // the decoding task's
    Subscriber* const decode = nullptr;
    if (!executor_->submit(rec, &decode, 1)) {
      Task t{rec, nullptr};
      drop_task(this, t);
    }
    release(rec);
    return ATHOMIC_OK;
  }
  DecodedEvent decoded;
  std::string error;
  if (!decode_envelope(body, decoded, error)) {
    skip_malformed(name, error);
    return ATHOMIC_ERR_DECODE;
  }
  EventRecord rec;
  rec.bus = this;
  rec.name = topic->name;
  rec.payload = &decoded.payload;
  rec.context = &decoded.context;
  dispatch_inline(rec, *list);
  return ATHOMIC_OK;
}

void BusCore::skip_malformed(std::string_view name, const std::string& why) noexcept {
  malformed_.fetch_add(1, std::memory_order_relaxed);
  uint64_t suppressed = 0;
  if (malformed_log_.admit(suppressed)) {
    try {
      log_->warn("skipped a malformed message for '{}': {}{}", name, why,
                 suppressed ? fmt::format(" ({} more since the last report)", suppressed) : "");
    } catch (...) {
    }
  }
}

// On a worker: decodes a received message, then runs its handlers — the only one here, or
// each as a task of its own.
void BusCore::decode_and_dispatch(EventRecord& r) noexcept {
  DecodedEvent decoded;
  std::string error;
  if (!decode_envelope(r.raw, decoded, error)) {
    skip_malformed(r.name, error);
    return;
  }
  r.payload_owned = std::move(decoded.payload);
  r.payload = &r.payload_owned;
  r.context_owned = std::move(decoded.context);
  r.context = &r.context_owned;
  HazardSlot slot;
  const HandlerList* list = slot.protect(r.topic->list);
  if (!list) {
    undeliverable_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (list->items.size() > 1) {
    dispatch_pool(r, *list);
    return;
  }
  // The hazard on the list keeps unsubscribe waiting for this call, as in inline dispatch.
  const Subscriber& sub = *list->items.front();
  if (!sub.active.load(std::memory_order_seq_cst)) return;
  ContextSwap swap(r.context);
  const Event ev(r.name, *r.payload,
                 (r.context && *r.context) ? **r.context : ExecutionContext::empty());
  invoke(sub, ev, r);
}

EventRecord* BusCore::new_pool_record() {
  free_buried();
  auto* r = new EventRecord();
  r->on_heap = true;
  r->bus = this;
  return r;
}

void BusCore::release(EventRecord* r) noexcept {
  if (r->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) bury(r);
}

void BusCore::bury(EventRecord* r) noexcept {
  // The handler list goes now: it may hold the last reference to an unsubscribed handler.
  r->handlers.reset();
  // What a worker decoded is freed here, on the worker that made it; the rest goes back.
  if (r->topic) {
    r->payload_owned.reset();
    r->context_owned.reset();
  }
  if (buried_count_.fetch_add(1, std::memory_order_relaxed) >= kMaxBuried) {
    buried_count_.fetch_sub(1, std::memory_order_relaxed);
    delete r;
    return;
  }
  EventRecord* head = buried_.load(std::memory_order_relaxed);
  do {
    r->next_buried = head;
  } while (!buried_.compare_exchange_weak(head, r, std::memory_order_release,
                                          std::memory_order_relaxed));
}

void BusCore::free_buried() noexcept {
  if (!buried_.load(std::memory_order_relaxed)) return;
  // Taking the whole list at once cannot suffer ABA; pushes may go on meanwhile.
  EventRecord* r = buried_.exchange(nullptr, std::memory_order_acquire);
  uint32_t n = 0;
  while (r) {
    EventRecord* next = r->next_buried;
    delete r;
    r = next;
    ++n;
  }
  buried_count_.fetch_sub(n, std::memory_order_relaxed);
}

void BusCore::invoke(const Subscriber& s, const Event& ev, EventRecord& r) noexcept {
  const char* what = nullptr;
  try {
    s.fn(ev);
    return;
  } catch (const std::exception& e) {
    what = e.what();
    handler_failures_.fetch_add(1, std::memory_order_relaxed);
    r.failed.fetch_add(1, std::memory_order_relaxed);
    try {
      log_->error("handler #{} for '{}' threw: {}", s.id, ev.name(), what);
    } catch (...) {
    }
  } catch (...) {
    handler_failures_.fetch_add(1, std::memory_order_relaxed);
    r.failed.fetch_add(1, std::memory_order_relaxed);
    try {
      log_->error("handler #{} for '{}' threw a non-standard exception", s.id, ev.name());
    } catch (...) {
    }
  }
}

void BusCore::dispatch_inline(EventRecord& r, const HandlerList& list) noexcept {
  // Handlers run on the provider's thread: see lock_interest.
  struct Delivering {
    const BusCore* outer = delivering;
    explicit Delivering(const BusCore* bus) { delivering = bus; }
    ~Delivering() { delivering = outer; }
  } marker(this);
  ContextSwap swap(r.context);
  const Event ev(r.name, *r.payload,
                 (r.context && *r.context) ? **r.context : ExecutionContext::empty());
  for (const auto& sub : list.items) {
    // Only this thread can have cleared it since the list was read (others are waited for).
    if (!sub->active.load(std::memory_order_relaxed)) continue;
    invoke(*sub, ev, r);
  }
}

void BusCore::dispatch_pool(EventRecord& r, const HandlerList& list) noexcept {
  const std::size_t n = list.items.size();
  if (n == 0) return;
  r.handlers = list.shared_from_this();
  r.handlers_view = nullptr;
  r.pending.fetch_add(static_cast<uint32_t>(n), std::memory_order_relaxed);
  r.refs.fetch_add(static_cast<uint32_t>(n), std::memory_order_relaxed);
  // Subscriber pointers of an immutable list; small events avoid a heap array.
  Subscriber* stack_subs[8];
  std::unique_ptr<Subscriber*[]> heap_subs;
  Subscriber** subs = stack_subs;
  if (n > 8) {
    heap_subs.reset(new Subscriber*[n]);
    subs = heap_subs.get();
  }
  for (std::size_t i = 0; i < n; ++i) subs[i] = list.items[i].get();
  if (!executor_->submit(&r, subs, n)) {
    for (std::size_t i = 0; i < n; ++i) {
      Task t{&r, subs[i]};
      drop_task(this, t);
    }
  }
}

void BusCore::run_task(void* self, Task& t) noexcept {
  auto* bus = static_cast<BusCore*>(self);
  if (!t.subscriber) {
    bus->decode_and_dispatch(*t.record);
    bus->release(t.record);
    return;
  }
  {
    HazardSlot slot;
    slot.set(t.subscriber);
    if (t.subscriber->active.load(std::memory_order_seq_cst)) {
      EventRecord& r = *t.record;
      ContextSwap swap(r.context);
      const Event ev(r.name, *r.payload,
                     (r.context && *r.context) ? **r.context : ExecutionContext::empty());
      bus->invoke(*t.subscriber, ev, r);
    }
  }
  finish_one(t.record);
  bus->release(t.record);
}

void BusCore::drop_task(void* self, Task& t) noexcept {
  auto* bus = static_cast<BusCore*>(self);
  bus->dropped_.fetch_add(1, std::memory_order_relaxed);
  if (t.subscriber) finish_one(t.record);  // a decoding task counts no handler call
  bus->release(t.record);
}

}  // namespace athomic::detail
