// Tracked subscriptions: the subscription of a member function removes itself once its object
// is gone. Only that subscription's handler looks at the object; nothing here is on the path of
// other subscriptions.
#pragma once

#include <athomic/bus.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

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

}  // namespace athomic::detail
