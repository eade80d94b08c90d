// Tracked subscriptions: a member function called on an object held by std::weak_ptr, removed
// once the object is gone.
#include "tracked_subscription.h"

#include <athomic/log.h>

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
  // it is made from inside the handler itself, or by the subscribing call. The bus may
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

std::shared_ptr<TrackedSubscription> make_tracker(EventBus& bus) {
  BusCore* core = BusAccess::core(bus);
  return std::make_shared<TrackedSubscription>(core ? core->weak_from_this()
                                                    : std::weak_ptr<BusCore>());
}

void tracker_subscribed(TrackedSubscription& tracker, const Subscription& s) {
  if (s) tracker.subscribed(s);  // else a disabled bus: nothing was subscribed
}

void tracker_object_gone(TrackedSubscription& tracker) noexcept { tracker.object_gone(); }

}  // namespace athomic::detail
