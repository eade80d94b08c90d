// How the callables EventBus::subscribe accepts become a Handler: untyped ones (the Event or
// only its payload) and typed ones (a C++ type read with from_json).
#pragma once

#include <athomic/event.h>
#include <athomic/export.h>
#include <athomic/typed.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <type_traits>
#include <utility>

namespace athomic {

/// A handler. It runs inside the publisher's execution context. Exceptions it throws are
/// caught, logged with the event name and trace id, and counted; other handlers are unaffected.
using Handler = std::function<void(const Event&)>;

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

}  // namespace detail
}  // namespace athomic
