#include "bus_core.h"

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
  free_buried();
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

void BusCore::start() {
  std::lock_guard lifecycle(lifecycle_mutex_);
  const int s = state_.load();
  if (s == kStarted) return;
  if (s != kCreated) throw EventBusError("cannot start an event bus that was closed");
  provider_->start();
  std::lock_guard interest(interest_mutex_);
  std::lock_guard registry(registry_mutex_);
  deferred_interest_.clear();  // handlers only run once started: this covers every topic
  try {
    topics_.for_each([&](Topic& t) {
      if (t.list_owner) {
        provider_->interest_add(t.name);
        t.interest = true;
      }
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

  if (before == kStarted) {
    std::lock_guard interest(interest_mutex_);  // an interest change in progress finishes first
    provider_->stop();
  }
  if (executor_) {
    const std::size_t dropped = executor_->shutdown(deadline);
    if (dropped) {
      log_->warn("close: {} handler calls had not started after {} ms and were dropped",
                 dropped, timeout.count());
    }
  }
  free_buried();
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

thread_local const BusCore* BusCore::delivering = nullptr;

std::unique_lock<std::mutex> BusCore::lock_interest() {
  if (delivering == this) return std::unique_lock(interest_mutex_, std::try_to_lock);
  return std::unique_lock(interest_mutex_);
}

void BusCore::apply_deferred_interest(std::unique_lock<std::mutex>& registry) noexcept {
  while (!deferred_interest_.empty()) {
    Topic* t = deferred_interest_.back();
    deferred_interest_.pop_back();
    const bool wanted = t->list_owner != nullptr;
    if (wanted == t->interest || state_.load() != kStarted) continue;
    registry.unlock();
    try {
      if (wanted) {
        provider_->interest_add(t->name);
      } else {
        provider_->interest_remove(t->name);
      }
      t->interest = wanted;
    } catch (const std::exception& e) {
      try {
        log_->error("the provider refused interest in '{}' for a handler subscribed from "
                    "inside a handler; its events will not arrive: {}", t->name, e.what());
      } catch (...) {
      }
    } catch (...) {
    }
    registry.lock();
  }
}

Subscription BusCore::subscribe(std::string_view name, Handler handler) {
  validate_event_name(name);
  if (!handler) throw EventBusError(fmt::format("subscribe('{}'): the handler is empty", name));
  auto interest = lock_interest();
  std::unique_lock registry(registry_mutex_);
  if (state_.load() >= kClosing) {
    throw EventBusError(fmt::format("subscribe('{}'): the event bus is closed", name));
  }
  Topic* t = topics_.find_or_insert(name);
  if (!interest.owns_lock()) {
    deferred_interest_.push_back(t);
  } else if (!t->interest && state_.load() == kStarted) {
    // Before the handler is installed: if the provider refuses, nothing was subscribed.
    registry.unlock();
    try {
      provider_->interest_add(t->name);
    } catch (...) {
      registry.lock();
      apply_deferred_interest(registry);
      throw;
    }
    registry.lock();
    t->interest = true;
  }
  auto sub = std::make_shared<Subscriber>(++next_id_, std::move(handler), t);
  auto next = std::make_shared<HandlerList>();
  if (t->list_owner) next->items = t->list_owner->items;
  next->items.push_back(sub);
  replace_list(*t, std::move(next));
  subscribers_.emplace(sub->id, sub);
  reclaim_retired();
  if (interest.owns_lock()) apply_deferred_interest(registry);
  return Subscription(sub->id, t->name);
}

bool BusCore::unsubscribe(const Subscription& s) {
  std::shared_ptr<Subscriber> sub;
  std::vector<std::shared_ptr<const HandlerList>> containing;
  {
    auto interest = lock_interest();
    std::unique_lock registry(registry_mutex_);
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
    for (const auto& l : retired_) {
      if (std::find(l->items.begin(), l->items.end(), sub) != l->items.end()) {
        containing.push_back(l);
      }
    }
    if (!t.list_owner) deferred_interest_.push_back(&t);
    if (interest.owns_lock()) apply_deferred_interest(registry);
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
