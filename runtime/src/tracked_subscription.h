// Tracked subscriptions: the subscription of a member function removes itself once its object
// is gone, and can be found again by its object and method. Only that subscription's handler
// looks at the object; nothing here is on the path of other subscriptions.
#pragma once

#include <athomic/bus.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace athomic::detail {

class BusCore;

// One tracked subscription: shared by its handler (which reports the object gone) and the
// subscribing call (which reports the subscription made).
class TrackedSubscription {
 public:
  explicit TrackedSubscription(std::weak_ptr<BusCore> core) : core_(std::move(core)) {}

  // The subscriber's thread and the handler's may each come second: the handler may find the
  // object gone before subscribe has returned the id. Whichever sees the other's flag removes
  // the subscription (both may try: the second removal is a no-op).
  void subscribed(const Subscription& s);
  void object_gone() noexcept;

 private:
  void remove() noexcept;

  const std::weak_ptr<BusCore> core_;
  std::string name_;  // written before id_ is published, read after it is seen
  std::atomic<uint64_t> id_{0};
  std::atomic<bool> gone_{false};
  std::atomic<bool> removed_{false};
};

// The tracked subscriptions of one bus, by object: what unsubscribe(name, object, method) and
// unsubscribe_all(object) look up. It also removes the subscriptions of objects that died while
// no event came for them, so short-lived objects on a rare event do not pile up.
class TrackedRegistry {
 public:
  // Remembers @p tracker (subscribed as @p s) under @p target. Every so often first removes,
  // without waiting, the subscriptions whose objects are gone, and forgets the trackers of
  // subscriptions removed otherwise: the registry holds at most about twice the live ones.
  void add(const std::shared_ptr<TrackedSubscription>& tracker, const Subscription& s,
           const TrackedTarget& target);
  // Forgets the subscriptions of @p target to @p event_name (every name when null) and returns
  // them, for the caller to unsubscribe outside the lock.
  std::vector<Subscription> take(const std::string_view* event_name, const TrackedTarget& target);
  std::size_t size() const;

 private:
  struct Entry {
    std::weak_ptr<TrackedSubscription> tracker;  // expires once the handler is freed
    Subscription subscription;
    const std::type_info* method_type;
    std::string method;
  };
  using ByObject = std::map<std::weak_ptr<const void>, std::vector<Entry>, std::owner_less<>>;
  // With mutex_ held: forgets what has gone and returns the trackers whose objects have.
  std::vector<std::shared_ptr<TrackedSubscription>> sweep();

  // A leaf lock: nothing calls into the bus while holding it.
  mutable std::mutex mutex_;
  ByObject by_object_;
  std::size_t entries_ = 0;
  std::size_t sweep_at_ = kMinSweep;
  static constexpr std::size_t kMinSweep = 64;
};

}  // namespace athomic::detail
