// ScopedSubscription: a subscription that ends with its owner.
#include <athomic/bus.h>
#include <athomic/log.h>

#include <utility>

namespace athomic {

ScopedSubscription::ScopedSubscription(EventBus& bus, Subscription subscription)
    : bus_(bus.weak_from_this()), subscription_(std::move(subscription)) {}

ScopedSubscription::ScopedSubscription(ScopedSubscription&& other) noexcept
    : bus_(std::move(other.bus_)), subscription_(std::exchange(other.subscription_, {})) {}

ScopedSubscription& ScopedSubscription::operator=(ScopedSubscription&& other) noexcept {
  if (this != &other) {
    reset();
    bus_ = std::move(other.bus_);
    subscription_ = std::exchange(other.subscription_, {});
  }
  return *this;
}

ScopedSubscription::~ScopedSubscription() { reset(); }

bool ScopedSubscription::reset() noexcept {
  const Subscription subscription = std::exchange(subscription_, {});
  const std::shared_ptr<EventBus> bus = std::exchange(bus_, {}).lock();
  if (!subscription || !bus) return false;
  try {
    return bus->unsubscribe(subscription);
  } catch (const std::exception& e) {
    // A destructor cannot throw; unsubscribe fails only when memory runs out.
    try {
      get_logger("athomic.events")
          ->error("could not unsubscribe handler #{} of '{}': {}", subscription.id() & 0xffffffffu,
                  subscription.event_name(), e.what());
    } catch (...) {
    }
    return false;
  } catch (...) {
    return false;
  }
}

Subscription ScopedSubscription::release() noexcept {
  bus_.reset();
  return std::exchange(subscription_, {});
}

}  // namespace athomic
