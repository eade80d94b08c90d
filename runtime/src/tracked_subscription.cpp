// Tracked subscriptions: a member function called on an object held by std::weak_ptr, removed
// once the object is gone.
#include "tracked_subscription.h"

#include <athomic/log.h>

#include <algorithm>
#include <exception>

#include "bus_core.h"

namespace athomic::detail {

void TrackedSubscription::subscribed(const Subscription& s) {
  name_ = s.event_name();
  id_.store(s.id(), std::memory_order_seq_cst);
  if (gone_.load(std::memory_order_seq_cst)) remove();
}

void TrackedSubscription::object_gone() noexcept {
  if (gone_.exchange(true, std::memory_order_seq_cst)) return;  // told already
  if (id_.load(std::memory_order_seq_cst) != 0) remove();
}

void TrackedSubscription::remove() noexcept {
  if (removed_.exchange(true)) return;
  // Without waiting for calls running elsewhere: nobody asked for this removal to wait, and
  // it is made from inside the handler itself, or from another tracked subscribe. The bus may
  // be gone already; then nothing calls the handler any more either.
  const std::shared_ptr<BusCore> core = core_.lock();
  if (!core) return;
  try {
    core->unsubscribe(Subscription(id_.load(std::memory_order_seq_cst), name_), false);
  } catch (const std::exception& e) {
    // unsubscribe fails only when memory runs out; the handler goes on skipping its calls.
    try {
      get_logger("athomic.events")
          ->error("could not remove the subscription to '{}' whose object is gone: {}", name_,
                  e.what());
    } catch (...) {
    }
  } catch (...) {
  }
}

void TrackedRegistry::add(const std::shared_ptr<TrackedSubscription>& tracker,
                          const Subscription& s, const TrackedTarget& target) {
  std::vector<std::shared_ptr<TrackedSubscription>> orphans;
  {
    std::lock_guard lock(mutex_);
    if (entries_ >= sweep_at_) {
      orphans = sweep();
      sweep_at_ = std::max(kMinSweep, 2 * entries_);
    }
    by_object_[target.object].push_back(Entry{tracker, s, target.method_type, target.method});
    ++entries_;
  }
  for (const auto& t : orphans) t->object_gone();
}

std::vector<std::shared_ptr<TrackedSubscription>> TrackedRegistry::sweep() {
  std::vector<std::shared_ptr<TrackedSubscription>> orphans;
  for (auto it = by_object_.begin(); it != by_object_.end();) {
    const bool object_gone = it->first.expired();
    std::erase_if(it->second, [&](const Entry& e) {
      std::shared_ptr<TrackedSubscription> t = e.tracker.lock();
      if (!t) return true;  // removed, and its handler freed
      if (!object_gone) return false;
      orphans.push_back(std::move(t));
      return true;
    });
    if (it->second.empty()) {
      it = by_object_.erase(it);
    } else {
      ++it;
    }
  }
  entries_ = 0;
  for (const auto& [object, entries] : by_object_) entries_ += entries.size();
  return orphans;
}

std::vector<Subscription> TrackedRegistry::take(const std::string_view* event_name,
                                                const TrackedTarget& target) {
  std::vector<Subscription> taken;
  std::lock_guard lock(mutex_);
  const auto it = by_object_.find(target.object);  // by owner: it may be gone already
  if (it == by_object_.end()) return taken;
  std::erase_if(it->second, [&](const Entry& e) {
    if (event_name && e.subscription.event_name() != *event_name) return false;
    if (target.method_type &&
        (*e.method_type != *target.method_type || e.method != target.method)) {
      return false;
    }
    taken.push_back(e.subscription);
    return true;
  });
  entries_ -= taken.size();
  if (it->second.empty()) by_object_.erase(it);
  return taken;
}

std::size_t TrackedRegistry::size() const {
  std::lock_guard lock(mutex_);
  return entries_;
}

std::shared_ptr<TrackedSubscription> make_tracker(EventBus& bus) {
  BusCore* core = BusAccess::core(bus);
  return std::make_shared<TrackedSubscription>(core ? core->weak_from_this()
                                                    : std::weak_ptr<BusCore>());
}

void tracker_subscribed(EventBus& bus, const std::shared_ptr<TrackedSubscription>& tracker,
                        const Subscription& s, TrackedTarget target) {
  BusCore* core = BusAccess::core(bus);
  if (!core || !s) return;  // a disabled bus: nothing was subscribed
  core->tracked().add(tracker, s, target);
  tracker->subscribed(s);
}

void tracker_object_gone(TrackedSubscription& tracker) noexcept { tracker.object_gone(); }

std::size_t unsubscribe_tracked(EventBus& bus, const std::string_view* event_name,
                                const TrackedTarget& target) {
  BusCore* core = BusAccess::core(bus);
  if (!core) return 0;
  std::size_t removed = 0;
  for (const Subscription& s : core->tracked().take(event_name, target)) {
    if (core->unsubscribe(s)) ++removed;
  }
  return removed;
}

}  // namespace athomic::detail
