// How the callables EventBus::subscribe accepts become a Handler: untyped ones (the Event or
// only its payload), typed ones (a C++ type read with from_json), and member functions of an
// object held by std::weak_ptr (tracked subscriptions).
#pragma once

#include <athomic/event.h>
#include <athomic/export.h>
#include <athomic/typed.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>
#include <type_traits>
#include <utility>

namespace athomic {

/// A handler. It runs inside the publisher's execution context. Exceptions it throws are
/// caught, logged with the event name and trace id, and counted; other handlers are unaffected.
using Handler = std::function<void(const Event&)>;

class EventBus;
class Subscription;

namespace detail {

// F handles a subscription of payload type T: T = void takes the Event or the payload JSON;
// another T takes (const T&, const Event&) or (const T&).
template <class F, class T>
concept HandlerFor =
    (std::is_void_v<T> &&
     (std::is_invocable_v<F&, const Event&> || std::is_invocable_v<F&, const nlohmann::json&>)) ||
    (!std::is_void_v<T> && JsonReadable<T> &&
     (std::is_invocable_v<F&, const T&, const Event&> || std::is_invocable_v<F&, const T&>));

template <class T, class F>
  requires HandlerFor<F, T>
Handler make_handler(F f) {
  if constexpr (std::is_void_v<T>) {
    if constexpr (std::is_invocable_v<F&, const Event&>) {
      return Handler(std::move(f));
    } else {
      return Handler([f = std::move(f)](const Event& e) mutable { std::invoke(f, e.payload()); });
    }
  } else {
    return Handler([f = std::move(f)](const Event& e) mutable {
      // A payload that does not convert throws PayloadError: a handler failure.
      const T value = payload_as<T>(e);
      if constexpr (std::is_invocable_v<F&, const T&, const Event&>) {
        std::invoke(f, value, e);
      } else {
        std::invoke(f, value);
      }
    });
  }
}

// What a tracked subscription calls, so that unsubscribe(name, object, method) finds it again:
// the object, compared by owner (as std::owner_less does, so a new object at a dead one's
// address is another object), and the member function, by type and bytes (two pointers to
// members of one type are equal exactly when their bytes are, on the Itanium and MSVC ABIs).
struct TrackedTarget {
  std::weak_ptr<const void> object;
  const std::type_info* method_type = nullptr;  // nullptr: any method (unsubscribe_all)
  std::string method;
};

template <class O, class M>
TrackedTarget tracked_target(std::weak_ptr<O> object, const M& method) {
  return TrackedTarget{std::move(object), &typeid(M),
                       std::string(reinterpret_cast<const char*>(&method), sizeof(M))};
}

template <class O>
TrackedTarget tracked_target(std::weak_ptr<O> object) {  // any method
  TrackedTarget target;
  target.object = std::move(object);
  return target;
}

// The bookkeeping of one tracked subscription: it removes the subscription once the object is
// gone (defined in the runtime).
class TrackedSubscription;
ATHOMIC_API std::shared_ptr<TrackedSubscription> make_tracker(EventBus& bus);
// The subscription is made: remembers it under @p target, and removes it if the object is
// gone already.
ATHOMIC_API void tracker_subscribed(EventBus& bus,
                                    const std::shared_ptr<TrackedSubscription>& tracker,
                                    const Subscription& s, TrackedTarget target);
// Called by the handler when the object is gone: removes the subscription (once, without
// waiting: it is called from inside the handler).
ATHOMIC_API void tracker_object_gone(TrackedSubscription& tracker) noexcept;
// Removes the tracked subscriptions of @p target to @p event_name (every name when null).
ATHOMIC_API std::size_t unsubscribe_tracked(EventBus& bus, const std::string_view* event_name,
                                            const TrackedTarget& target);

// Calls @p method on the object while it lives; afterwards tells the tracker instead. The lock
// happens here, in this subscription's own handler: other subscriptions pay nothing.
template <class O, class M>
struct TrackedCall {
  std::weak_ptr<O> object;
  M method;
  std::shared_ptr<TrackedSubscription> tracker;

  template <class... A>
    requires std::is_invocable_v<const M&, O&, const A&...>
  void operator()(const A&... args) const {
    if (const std::shared_ptr<O> alive = object.lock()) {
      std::invoke(method, *alive, args...);
    } else {
      tracker_object_gone(*tracker);
    }
  }
};

template <class P>
struct tracked_object {};
template <class O>
struct tracked_object<std::weak_ptr<O>> {
  using type = O;
};
template <class O>
struct tracked_object<std::shared_ptr<O>> {
  using type = O;
};
template <class P>
using tracked_object_t = typename tracked_object<std::remove_cvref_t<P>>::type;

// P (a weak_ptr or shared_ptr to an object) and M (one of its member functions) handle a
// subscription of payload type T (see HandlerFor).
template <class P, class M, class T>
concept TrackedMethodFor = requires { typename tracked_object_t<P>; } &&
                           std::is_member_function_pointer_v<M> &&
                           HandlerFor<TrackedCall<tracked_object_t<P>, M>, T>;

// P is a weak_ptr or shared_ptr to an object: what unsubscribe_all takes.
template <class P>
concept TrackedPointer = requires { typename tracked_object_t<P>; };

}  // namespace detail
}  // namespace athomic
