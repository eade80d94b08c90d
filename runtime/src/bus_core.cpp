#include "bus_core.h"

#include "codec.h"
#include "context_slot.h"
#include "hazard.h"
#include "plugin_loader.h"

#include <athomic/errors.h>
#include <athomic/log.h>

#include <fmt/format.h>

#include <algorithm>
#include <thread>
#include <unordered_set>

namespace athomic::detail {

namespace {

const Payload& empty_payload() {
  static const Payload kEmpty = std::make_shared<const nlohmann::json>(nlohmann::json::object());
  return kEmpty;
}

// Sleeps a little longer each round: waits here last as long as a handler runs.
void backoff(unsigned& round) {
  if (round < 64) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(std::min(1000u, 10u * (round - 63))));
  }
  ++round;
}

unsigned resolve_workers(unsigned configured) {
  if (configured != 0) return configured;
  return std::max(2u, std::thread::hardware_concurrency());
}

}  // namespace

BusCore::BusCore(const EventsSettings& settings)
    : settings_(settings),
      inline_mode_(settings.dispatch_mode == DispatchMode::inline_call),
      log_(get_logger("athomic.events")) {
  LoadedPlugin plugin = load_provider_plugin(settings_.backend, settings_);
  provider_log_ = get_logger("athomic.provider." + std::string(plugin.info->name));
  nlohmann::json config = settings_.provider_config.is_object() ? settings_.provider_config
                                                                 : nlohmann::json::object();
  config["backend"] = settings_.backend;  // the provider always sees the backend it serves
  provider_.emplace(plugin, this, config.dump(), settings_.origin);
  remote_ = provider_->has(ATHOMIC_CAP_REMOTE);
  if (!inline_mode_) {
    executor_ = std::make_unique<Executor>(resolve_workers(settings_.workers), &run_task,
                                           &drop_task, this);
  }
}

BusCore::~BusCore() {
  close(settings_.close_timeout);
  provider_.reset();
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

void BusCore::start() {
  std::lock_guard lifecycle(lifecycle_mutex_);
  const int s = state_.load();
  if (s == kStarted) return;
  if (s != kCreated) throw EventBusError("cannot start an event bus that was closed");
  provider_->start();
  std::lock_guard registry(registry_mutex_);
  try {
    topics_.for_each([&](const Topic& t) {
      if (t.list_owner) provider_->interest_add(t.name);
    });
  } catch (...) {
    provider_->stop();
    throw;
  }
  state_.store(kStarted);
  log_->info("event bus started: backend '{}', {} dispatch", settings_.backend,
             inline_mode_ ? "inline" : fmt::format("{}-worker pool", resolve_workers(settings_.workers)));
}

void BusCore::close(std::chrono::milliseconds timeout) {
  if (executor_ && executor_->is_worker_thread()) {
    throw EventBusError("close() called from inside a handler of the same bus; call it from "
                        "the thread that owns the bus");
  }
  std::lock_guard lifecycle(lifecycle_mutex_);
  const int before = state_.load();
  if (before == kClosed) return;
  state_.store(kClosing, std::memory_order_seq_cst);
  const auto deadline = std::chrono::steady_clock::now() + timeout;

  // Wait for publishes and deliveries in flight on other threads: each holds a hazard on this
  // bus or on one of its handler lists (inline handlers run inside it).
  std::vector<std::shared_ptr<const HandlerList>> pinned;
  std::unordered_set<const void*> mine{this};
  {
    std::lock_guard registry(registry_mutex_);
    topics_.for_each([&](const Topic& t) {
      if (t.list_owner) pinned.push_back(t.list_owner);
    });
    pinned.insert(pinned.end(), retired_.begin(), retired_.end());
  }
  for (const auto& l : pinned) mine.insert(l.get());
  unsigned round = 0;
  while (Hazards::any_other([&](const void* v) { return mine.count(v) != 0; })) {
    if (std::chrono::steady_clock::now() >= deadline) {
      log_->warn("close: publishes still running after {} ms; stopping the provider anyway",
                 timeout.count());
      break;
    }
    backoff(round);
  }

  if (before == kStarted) provider_->stop();
  if (executor_) {
    const std::size_t dropped = executor_->shutdown(deadline);
    if (dropped) {
      log_->warn("close: {} handler calls had not started after {} ms and were dropped",
                 dropped, timeout.count());
    }
  }
  state_.store(kClosed);
  if (before == kStarted) log_->info("event bus closed");
}

// ---------------------------------------------------------------------------------------------
// Registry

void BusCore::replace_list(Topic& t, std::shared_ptr<const HandlerList> next) {
  if (t.list_owner) retired_.push_back(std::move(t.list_owner));
  t.list_owner = std::move(next);
  t.list.store(t.list_owner.get(), std::memory_order_seq_cst);
}

void BusCore::reclaim_retired() {
  if (retired_.empty()) return;
  std::unordered_set<const void*> in_use;
  Hazards::for_each_other([&](const void* v) { in_use.insert(v); });
  // The calling thread may itself be iterating a retired list (subscribe from a handler).
  const HazardRecord& self = Hazards::mine();
  for (const auto& slot : self.slots) {
    if (const void* v = slot.load(std::memory_order_relaxed)) in_use.insert(v);
  }
  std::erase_if(retired_, [&](const auto& l) { return in_use.count(l.get()) == 0; });
}

Subscription BusCore::subscribe(std::string_view name, Handler handler) {
  validate_event_name(name);
  if (!handler) throw EventBusError(fmt::format("subscribe('{}'): the handler is empty", name));
  std::lock_guard lock(registry_mutex_);
  if (state_.load() >= kClosing) {
    throw EventBusError(fmt::format("subscribe('{}'): the event bus is closed", name));
  }
  Topic* t = topics_.find_or_insert(name);
  auto sub = std::make_shared<Subscriber>(++next_id_, std::move(handler), t);
  auto next = std::make_shared<HandlerList>();
  if (t->list_owner) next->items = t->list_owner->items;
  next->items.push_back(sub);
  const bool first = !t->list_owner;
  if (first && state_.load() == kStarted) provider_->interest_add(t->name);
  replace_list(*t, std::move(next));
  subscribers_.emplace(sub->id, sub);
  reclaim_retired();
  return Subscription(sub->id, t->name);
}

bool BusCore::unsubscribe(const Subscription& s) {
  std::shared_ptr<Subscriber> sub;
  std::vector<std::shared_ptr<const HandlerList>> containing;
  {
    std::lock_guard lock(registry_mutex_);
    auto it = subscribers_.find(s.id());
    if (it == subscribers_.end()) return false;
    sub = std::move(it->second);
    subscribers_.erase(it);
    sub->active.store(false, std::memory_order_seq_cst);
    Topic& t = *sub->topic;
    std::shared_ptr<HandlerList> next;
    if (t.list_owner->items.size() > 1) {
      next = std::make_shared<HandlerList>();
      for (const auto& item : t.list_owner->items) {
        if (item != sub) next->items.push_back(item);
      }
    }
    replace_list(t, std::move(next));
    if (!t.list_owner && state_.load() == kStarted) provider_->interest_remove(t.name);
    for (const auto& l : retired_) {
      if (std::find(l->items.begin(), l->items.end(), sub) != l->items.end()) {
        containing.push_back(l);
      }
    }
  }
  // The guarantee: no other thread is running the handler or iterating a list that holds it.
  // This thread is skipped, so unsubscribing from inside the handler returns at once; its own
  // outer loops see `active == false`.
  unsigned round = 0;
  while (Hazards::any_other([&](const void* v) {
    if (v == sub.get()) return true;
    for (const auto& l : containing) {
      if (v == l.get()) return true;
    }
    return false;
  })) {
    backoff(round);
  }
  containing.clear();
  std::lock_guard lock(registry_mutex_);
  reclaim_retired();
  return true;
}

std::size_t BusCore::handler_count(std::string_view name) const {
  std::lock_guard lock(registry_mutex_);
  const Topic* t = topics_.find(name);
  return (t && t->list_owner) ? t->list_owner->items.size() : 0;
}

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
    rec.topic = topic;
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

  auto* rec = new EventRecord();
  rec->on_heap = true;
  rec->bus = this;
  rec->topic = topic;
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
  body.clear();
  const ContextPtr* current = tls_current_context;
  const ExecutionContext* ctx = nullptr;
  ContextPtr restricted;
  if (current && *current) {
    ctx = (*current)->restrict_view(settings_.propagated_fields);
    if (!ctx) {
      restricted = ExecutionContext::restrict(*current, settings_.propagated_fields);
      ctx = restricted.get();
    }
  }
  try {
    encode_envelope(*payload, ctx, body);
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
  DecodedEvent decoded;
  std::string error;
  const bool ok = body.size() <= settings_.max_payload_bytes
                      ? decode_envelope(body, decoded, error)
                      : (error = fmt::format("{} bytes exceed events.max_payload_bytes ({})",
                                             body.size(), settings_.max_payload_bytes),
                         false);
  if (!ok) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    uint64_t suppressed = 0;
    if (malformed_log_.admit(suppressed)) {
      log_->warn("skipped a malformed message for '{}': {}{}", name, error,
                 suppressed ? fmt::format(" ({} more since the last report)", suppressed) : "");
    }
    return ATHOMIC_ERR_DECODE;
  }
  if (inline_mode_) {
    EventRecord rec;
    rec.bus = this;
    rec.topic = topic;
    rec.name = topic->name;
    rec.payload = &decoded.payload;
    rec.context = &decoded.context;
    dispatch_inline(rec, *list);
    return ATHOMIC_OK;
  }
  auto* rec = new EventRecord();
  rec->on_heap = true;
  rec->bus = this;
  rec->topic = topic;
  rec->name = topic->name;
  rec->payload_owned = std::move(decoded.payload);
  rec->payload = &rec->payload_owned;
  rec->context_owned = std::move(decoded.context);
  rec->context = &rec->context_owned;
  dispatch_pool(*rec, *list);
  release(rec);
  return ATHOMIC_OK;
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
  release(t.record);
}

void BusCore::drop_task(void* self, Task& t) noexcept {
  static_cast<BusCore*>(self)->dropped_.fetch_add(1, std::memory_order_relaxed);
  finish_one(t.record);
  release(t.record);
}

// ---------------------------------------------------------------------------------------------

BusStats BusCore::stats() const {
  BusStats s;
  s.handler_failures = handler_failures_.load(std::memory_order_relaxed);
  s.malformed_messages = malformed_.load(std::memory_order_relaxed);
  s.dropped_on_close = dropped_.load(std::memory_order_relaxed);
  s.undeliverable = undeliverable_.load(std::memory_order_relaxed);
  s.publish_failures = publish_failures_.load(std::memory_order_relaxed);
  return s;
}

ProviderDescription BusCore::provider() const {
  const auto& p = provider_->plugin();
  return ProviderDescription{p.info->name,    p.info->version,    p.file,
                             p.info->abi_major, p.info->abi_minor, p.info->capabilities};
}

}  // namespace athomic::detail
