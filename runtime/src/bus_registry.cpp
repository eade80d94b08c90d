// The subscriber registry: subscribe, unsubscribe, and giving back what they replace.
#include "bus_core.h"

#include "handler_frame.h"
#include "hazard.h"

#include <athomic/errors.h>

#include <fmt/format.h>

#include <algorithm>
#include <thread>

namespace athomic::detail {

namespace {

constexpr uint32_t kMaxConcurrency = 1024;
constexpr uint32_t kFirstCapacity = 4;
// Retired states and subscribers are freed in batches: each pass reads every thread's hazards.
constexpr std::size_t kReclaimBatch = 32;
constexpr auto kSlowUnsubscribe = std::chrono::seconds(5);

uint32_t slot_index(uint64_t id) noexcept { return static_cast<uint32_t>(id); }
uint32_t slot_generation(uint64_t id) noexcept { return static_cast<uint32_t>(id >> 32); }

}  // namespace

std::unique_lock<std::mutex> BusCore::lock_interest() {
  // Without a provider to tell, there is no interest to serialise.
  if (!tracks_interest_) return {};
  if (HandlerFrame::inside(this)) return std::unique_lock(interest_mutex_, std::try_to_lock);
  return std::unique_lock(interest_mutex_);
}

void BusCore::apply_deferred_interest(std::unique_lock<std::mutex>& registry) noexcept {
  while (!deferred_interest_.empty()) {
    const std::string name = std::move(deferred_interest_.back());
    deferred_interest_.pop_back();
    const bool wanted = topics_.get(name, TopicTable::hash_of(name)) != nullptr ||
                        pattern_subscribers_.count(name) != 0;
    const bool told = interest_.count(name) != 0;
    if (wanted == told || state_.load() != kStarted) continue;
    registry.unlock();
    bool done = true;
    try {
      if (wanted) {
        provider_->interest_add(name);
      } else {
        provider_->interest_remove(name);
      }
    } catch (const std::exception& e) {
      done = false;
      try {
        log_->error("the provider refused interest in '{}' for a handler subscribed from "
                    "inside a handler; its events will not arrive: {}", name, e.what());
      } catch (...) {
      }
    } catch (...) {
      done = false;
    }
    registry.lock();
    if (done) {
      try {
        if (wanted) {
          interest_.insert(name);
        } else {
          interest_.erase(name);
        }
      } catch (...) {
      }
    }
  }
}

Subscriber* BusCore::find_subscriber(uint64_t id) const noexcept {
  const uint32_t index = slot_index(id);
  if (index >= subscribers_.size()) return nullptr;
  const SubscriberSlot& slot = subscribers_[index];
  return slot.generation == slot_generation(id) ? slot.subscriber : nullptr;
}

void BusCore::retire(const TopicState* s) { retired_states_.push_back({s, ++retire_seq_}); }

void BusCore::retire(const PatternSet* p) { retired_patterns_.push_back({p, ++retire_seq_}); }

void BusCore::retire(Subscriber* s) { retired_subscribers_.push_back({s, ++retire_seq_}); }

void BusCore::rebuild_patterns() {
  const PatternSet* next = nullptr;
  if (!pattern_subscribers_.empty()) {
    std::vector<PatternSet::Entry> entries;
    entries.reserve(pattern_subscribers_.size());
    for (const auto& [pattern, subs] : pattern_subscribers_) entries.push_back({pattern, subs});
    next = new PatternSet(std::move(entries));
  }
  const PatternSet* old = patterns_.exchange(next, std::memory_order_seq_cst);
  if (old) retire(old);
}

void BusCore::reclaim(bool force) {
  if (retired_states_.empty() && retired_patterns_.empty() && retired_subscribers_.empty()) return;
  if (!force && retired_states_.size() + retired_patterns_.size() + retired_subscribers_.size() <
                    kReclaimBatch) {
    return;
  }
  // Every thread's hazards, this one's too: a handler that (un)subscribes may be iterating a
  // state it just retired.
  std::vector<const void*> in_use;
  Hazards::for_each_all([&](const void* v) { in_use.push_back(v); });
  std::sort(in_use.begin(), in_use.end());
  std::erase_if(retired_states_, [&](const RetiredState& r) {
    if (std::binary_search(in_use.begin(), in_use.end(), r.state)) return false;
    spare_states_.recycle(r.state);
    return true;
  });
  // A subscriber is reachable only through states retired before it (every later state was
  // built without it): once those are gone, no publisher can reach it.
  std::erase_if(retired_patterns_, [&](const RetiredPatterns& r) {
    if (std::binary_search(in_use.begin(), in_use.end(), r.set)) return false;
    delete r.set;
    return true;
  });
  uint64_t oldest_state = UINT64_MAX;
  for (const auto& r : retired_states_) oldest_state = std::min(oldest_state, r.seq);
  for (const auto& r : retired_patterns_) oldest_state = std::min(oldest_state, r.seq);
  std::erase_if(retired_subscribers_, [&](const RetiredSubscriber& r) {
    if (r.seq > oldest_state) return false;
    r.subscriber->unref();
    return true;
  });
}

Subscription BusCore::subscribe(std::string_view name, Handler handler,
                                const SubscribeOptions& options) {
  const bool pattern = is_pattern(name);
  if (pattern) {
    validate_pattern(name);
    if (remote_ && !provider_->has(ATHOMIC_CAP_PATTERN)) {
      const bool declared = provider_->plugin().info->capabilities & ATHOMIC_CAP_PATTERN;
      throw EventBusError(fmt::format(
          "subscribe('{}'): provider '{}' cannot subscribe to patterns ({}); subscribe to each "
          "event name instead",
          name, provider_->plugin().info->name,
          declared ? "it has no ATHOMIC_CAP_PATTERN with its settings: see its documentation"
                   : "it does not declare ATHOMIC_CAP_PATTERN"));
    }
  } else {
    validate_event_name(name);
  }
  if (!handler) throw EventBusError(fmt::format("subscribe('{}'): the handler is empty", name));
  if (options.max_concurrency < 1 || options.max_concurrency > kMaxConcurrency) {
    throw EventBusError(fmt::format(
        "subscribe('{}'): max_concurrency = {} is invalid: expected 1 to {}", name,
        options.max_concurrency, kMaxConcurrency));
  }
  const std::size_t hash = TopicTable::hash_of(name);
  auto interest = lock_interest();
  std::unique_lock registry(registry_mutex_);
  if (state_.load() >= kClosing) {
    throw EventBusError(fmt::format("subscribe('{}'): the event bus is closed", name));
  }
  if (tracks_interest_ && state_.load() == kStarted && interest_.find(name) == interest_.end()) {
    if (!interest.owns_lock()) {
      deferred_interest_.emplace_back(name);
    } else {
      // Before the handler is installed: if the provider refuses, nothing was subscribed.
      registry.unlock();
      try {
        provider_->interest_add(name);
      } catch (...) {
        registry.lock();
        apply_deferred_interest(registry);
        throw;
      }
      registry.lock();
      interest_.emplace(name);
    }
  }

  uint32_t index;
  if (!free_slots_.empty()) {
    index = free_slots_.back();
    free_slots_.pop_back();
  } else {
    index = static_cast<uint32_t>(subscribers_.size());
    subscribers_.emplace_back();
  }
  SubscriberSlot& slot = subscribers_[index];
  if (slot.generation == 0) slot.generation = 1;
  const uint64_t id = (uint64_t{slot.generation} << 32) | index;
  Subscriber* sub;
  try {
    sub = new Subscriber(id, std::move(handler), std::string(name), pattern,
                         inline_mode_ ? 0 : options.max_concurrency);
  } catch (...) {
    free_slots_.push_back(index);
    throw;
  }
  slot.subscriber = sub;
  ++subscriber_count_;

  if (pattern) {
    auto it = pattern_subscribers_.find(name);
    if (it == pattern_subscribers_.end()) it = pattern_subscribers_.emplace(std::string(name), std::vector<Subscriber*>{}).first;
    it->second.push_back(sub);
    rebuild_patterns();
    reclaim();
    if (interest.owns_lock()) apply_deferred_interest(registry);
    return Subscription(id, std::string(name));
  }

  TopicState* current = topics_.get(name, hash);
  if (!current) {
    TopicState* fresh = spare_states_.create(name, hash, kFirstCapacity);
    fresh->metrics_slot = metrics_.slot(name, hash);
    fresh->items[0].store(sub, std::memory_order_relaxed);
    fresh->count.store(1, std::memory_order_release);
    topics_.insert(fresh);
  } else if (const uint32_t n = current->count.load(std::memory_order_relaxed);
             n < current->capacity) {
    // In place: readers see the new slot only once count covers it.
    current->items[n].store(sub, std::memory_order_release);
    current->count.store(n + 1, std::memory_order_release);
  } else {
    TopicState* grown = spare_states_.create(name, hash, current->capacity * 2);
    grown->metrics_slot = current->metrics_slot;
    for (uint32_t i = 0; i < n; ++i) grown->items[i].store(current->at(i), std::memory_order_relaxed);
    grown->items[n].store(sub, std::memory_order_relaxed);
    grown->count.store(n + 1, std::memory_order_release);
    topics_.replace(current, grown);
    retire(current);
  }
  reclaim();
  if (interest.owns_lock()) apply_deferred_interest(registry);
  return Subscription(id, std::string(name));
}

bool BusCore::unsubscribe(const Subscription& s, bool wait) {
  Subscriber* sub = nullptr;
  // What a thread running the handler inline may still hold (see wait_until_unused).
  std::vector<HeldVersion> containing;
  {
    auto interest = lock_interest();
    std::unique_lock registry(registry_mutex_);
    sub = find_subscriber(s.id());
    if (!sub) return false;
    SubscriberSlot& slot = subscribers_[slot_index(s.id())];
    slot.subscriber = nullptr;
    if (++slot.generation == 0) slot.generation = 1;
    free_slots_.push_back(slot_index(s.id()));
    --subscriber_count_;
    sub->active.store(false, std::memory_order_seq_cst);
    if (sub->pattern) {
      remove_pattern_subscriber(*sub, containing);
    } else {
      remove_subscriber(*sub, containing);
    }
    sub->ref();  // ours, for the wait below
    retire(sub);
    reclaim();
    if (interest.owns_lock()) apply_deferred_interest(registry);
  }
  // Inside a handler of this bus, waiting for other threads could be waiting for a handler that
  // waits for us; "never called again" holds without it (active is cleared).
  if (wait && !HandlerFrame::inside(this)) wait_until_unused(*sub, std::move(containing));
  sub->unref();
  return true;
}

void BusCore::remove_subscriber(Subscriber& sub, std::vector<HeldVersion>& containing) {
  const std::size_t hash = TopicTable::hash_of(sub.name);
  TopicState* current = topics_.get(sub.name, hash);
  const uint32_t n = current->count.load(std::memory_order_relaxed);
  if (n == 1) {
    topics_.erase(current);
    if (tracks_interest_) deferred_interest_.push_back(sub.name);
  } else {
    // A new version without it: threads dispatching the old one finish with the old one.
    const uint32_t capacity =
        (n - 1) * 4 <= current->capacity && current->capacity > kFirstCapacity
            ? current->capacity / 2
            : current->capacity;
    TopicState* next = spare_states_.create(sub.name, hash, capacity);
    next->metrics_slot = current->metrics_slot;
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; ++i) {
      Subscriber* other = current->at(i);
      if (other != &sub) next->items[k++].store(other, std::memory_order_relaxed);
    }
    next->count.store(k, std::memory_order_release);
    topics_.replace(current, next);
  }
  retire(current);
  // Inline dispatch runs handlers inside a hazard on the version that held them: the ones
  // that may still be running it are this version and older ones not yet freed. (Pool
  // dispatch runs them only on lanes, which unsubscribe watches instead.)
  if (inline_mode_) {
    for (const auto& r : retired_states_) {
      if (r.state->hash == hash && same_name(r.state->name(), sub.name)) {
        containing.push_back({r.state, r.seq});
      }
    }
  }
}

void BusCore::remove_pattern_subscriber(Subscriber& sub, std::vector<HeldVersion>& containing) {
  auto it = pattern_subscribers_.find(sub.name);
  std::erase(it->second, &sub);
  if (it->second.empty()) {
    pattern_subscribers_.erase(it);
    if (tracks_interest_) deferred_interest_.push_back(sub.name);
  }
  rebuild_patterns();
  // Inline dispatch holds the pattern set it matched against for the whole dispatch.
  if (inline_mode_) {
    for (const auto& r : retired_patterns_) containing.push_back({r.set, r.seq});
  }
}

bool BusCore::still_retired(const HeldVersion& v) const noexcept {
  for (const auto& r : retired_states_) {
    if (r.state == v.version && r.seq == v.seq) return true;
  }
  for (const auto& r : retired_patterns_) {
    if (r.set == v.version && r.seq == v.seq) return true;
  }
  return false;
}

void BusCore::wait_until_unused(const Subscriber& sub, std::vector<HeldVersion> versions) {
  // Inline dispatch: a thread running the handler holds a hazard on a version that held it.
  // Pool dispatch: the worker draining one of its lanes has marked the lane.
  std::vector<const void*> held;
  auto gather = [&] {
    held.clear();
    for (const HeldVersion& v : versions) held.push_back(v.version);
    std::sort(held.begin(), held.end());
  };
  gather();
  auto in_use = [&] {
    for (uint32_t i = 0; i < sub.lane_count; ++i) {
      if (sub.lane(i).draining.load(std::memory_order_seq_cst)) return true;
    }
    return !held.empty() && Hazards::any_other([&](const void* v) {
      return std::binary_search(held.begin(), held.end(), v);
    });
  };
  if (!in_use()) return;
  const auto start = std::chrono::steady_clock::now();
  bool logged = false;
  unsigned round = 0;
  while (in_use()) {
    if (!logged && std::chrono::steady_clock::now() - start > kSlowUnsubscribe) {
      logged = true;
      log_->warn("unsubscribe: handler #{} of '{}' has been running for more than {} s; "
                 "waiting for it to return",
                 sub.id & 0xffffffffu, sub.name, kSlowUnsubscribe.count());
    }
    if (round < 64) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(std::min(1000u, 10u * (round - 63))));
    }
    ++round;
    // A version reclaimed meanwhile was unused when it was; its address may be a current
    // version by now, named by publishers that never saw this subscriber. Checked once the
    // wait sleeps: the registry mutex is not worth taking for the first, yielding rounds.
    if (round > 64 && !versions.empty()) {
      std::lock_guard lock(registry_mutex_);
      if (std::erase_if(versions, [&](const HeldVersion& v) { return !still_retired(v); }) > 0) {
        gather();
      }
    }
  }
}

std::size_t BusCore::handler_count(std::string_view name) const {
  std::lock_guard lock(registry_mutex_);
  if (auto it = pattern_subscribers_.find(name); it != pattern_subscribers_.end()) {
    return it->second.size();
  }
  const TopicState* t = topics_.get(name, TopicTable::hash_of(name));
  return t ? t->count.load(std::memory_order_relaxed) : 0;
}

}  // namespace athomic::detail
