// The event bus: subscribe handlers to event names, publish events to them, on the transport
// chosen in settings (a provider plugin).
#pragma once

#include <athomic/context.h>
#include <athomic/errors.h>
#include <athomic/event.h>
#include <athomic/export.h>
#include <athomic/handlers.h>
#include <athomic/metrics.h>
#include <athomic/typed.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

namespace athomic {

class Settings;
struct EventsSettings;

namespace detail {
class BusCore;
struct Outcome;
struct BusAccess;
}  // namespace detail

/// How one subscription is run.
struct SubscribeOptions {
  /// Pool dispatch: how many of this subscription's handler calls may run at once, on different
  /// workers (1 to 1024). With 1, the default, the subscription receives the events of each
  /// publisher (and of each provider connection) one at a time, in the order they were
  /// published. With more, calls overlap and that order is no longer kept. Inline dispatch runs
  /// handlers on the delivering thread and ignores this.
  uint32_t max_concurrency = 1;
};

/// Identifies one subscription; pass it to EventBus::unsubscribe.
class Subscription {
 public:
  Subscription() = default;
  Subscription(uint64_t id, std::string event_name) : id_(id), event_name_(std::move(event_name)) {}
  uint64_t id() const noexcept { return id_; }
  const std::string& event_name() const noexcept { return event_name_; }
  /// False for the subscription a disabled bus returns.
  explicit operator bool() const noexcept { return id_ != 0; }

 private:
  uint64_t id_ = 0;
  std::string event_name_;
};

class EventBus;

/// Owns one subscription and unsubscribes it when destroyed, with unsubscribe's guarantee: once
/// the destructor (or reset()) returns, the handler will not be called again and — when that
/// happens outside the bus's handlers — is not running on any thread. It holds its bus weakly:
/// when the bus is gone first there is nothing left to do (and if the bus's last owner let go
/// meanwhile, it is closed and destroyed there). Move-only; like a unique_ptr, one object is not
/// for use from several threads at once.
class ATHOMIC_API ScopedSubscription {
 public:
  ScopedSubscription() noexcept = default;
  /// Takes charge of @p subscription, made on @p bus.
  ScopedSubscription(EventBus& bus, Subscription subscription);
  ScopedSubscription(ScopedSubscription&& other) noexcept;
  /// Unsubscribes the subscription this one held, then takes over @p other's.
  ScopedSubscription& operator=(ScopedSubscription&& other) noexcept;
  ScopedSubscription(const ScopedSubscription&) = delete;
  ScopedSubscription& operator=(const ScopedSubscription&) = delete;
  ~ScopedSubscription();

  /// Unsubscribes now and becomes empty.
  /// @return true when the subscription was still registered and is now removed.
  bool reset() noexcept;
  /// Becomes empty without unsubscribing: the subscription stays, and is returned (to pass to
  /// EventBus::unsubscribe later).
  Subscription release() noexcept;
  const Subscription& get() const noexcept { return subscription_; }
  /// True while it holds a subscription (not after reset(), release() or a move).
  explicit operator bool() const noexcept { return static_cast<bool>(subscription_); }

 private:
  std::weak_ptr<EventBus> bus_;
  Subscription subscription_;
};

/// The outcome of one publish, to wait on or to ignore. With an in-process provider it is done
/// when every local handler has finished (or was dropped by close()). With a remote one it is
/// done when the transport took the message — for a provider that acknowledges publishes
/// (redis does), when the server answered, with the number of subscribers it reached or the
/// reason it failed; handlers run wherever the message is received. A Completion may outlive
/// its bus.
class ATHOMIC_API Completion {
 public:
  /// An already finished publish that reached @p receivers handlers, @p failed_handlers of
  /// which threw (-1: unknown).
  explicit Completion(uint32_t failed_handlers = 0, int64_t receivers = -1) noexcept
      : failed_(failed_handlers), receivers_(receivers) {}
  /// Takes over one reference to an in-flight outcome (runtime use).
  explicit Completion(detail::Outcome* record) noexcept : record_(record) {}
  Completion(Completion&& o) noexcept
      : record_(o.record_), failed_(o.failed_), receivers_(o.receivers_) {
    o.record_ = nullptr;
  }
  Completion& operator=(Completion&& o) noexcept;
  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;
  ~Completion() {
    if (record_) release();
  }

  bool done() const noexcept;
  /// Blocks until done.
  /// @throws EventBusError when called, on an in-process publish not yet done, from inside a
  ///         handler of the same bus: the handlers it waits for may need the very thread.
  void wait() const;
  /// Blocks until done or @p timeout elapses; true when done. Refused like wait().
  bool wait_for(std::chrono::nanoseconds timeout) const;
  /// Handlers of this event that threw (valid once done; 0 for remote transports).
  uint32_t failed_handlers() const noexcept;
  /// Once done: the handlers the event was queued for (in process), or the subscribers the
  /// transport delivered it to when it says (Redis's PUBLISH reply); -1 when unknown.
  int64_t receivers() const noexcept;
  /// Done, and not failed by the transport (in-process events count as delivered once their
  /// handlers ran, whether or not they threw: see failed_handlers()).
  bool delivered() const noexcept;
  /// Once done: why the transport failed the publish; empty when it did not.
  std::string error() const;
  /// Runs @p fn once the publish is done: at once, on this thread, when it is already; else on
  /// the thread that completes it (a worker, or the provider's thread) — keep it short, e.g.
  /// hand the rest to an executor (<athomic/asio.hpp> does). At most once per publish.
  /// @throws EventBusError when called a second time, or with an empty function.
  void then(std::function<void()> fn);

 private:
  void refuse_inside_handler() const;
  void release() noexcept;  // gives back the in-flight outcome's reference
  detail::Outcome* record_ = nullptr;  // nullptr: already done
  uint32_t failed_ = 0;                // when already done
  int64_t receivers_ = -1;             // when already done
};

/// Counters since the bus was created. Every event the bus could not deliver is counted under
/// one reason.
struct BusStats {
  uint64_t handler_failures = 0;    ///< handler calls that threw
  uint64_t malformed_messages = 0;  ///< received messages that did not decode (skipped)
  uint64_t dropped_on_close = 0;    ///< handler calls abandoned because close() timed out
  uint64_t undeliverable = 0;       ///< received events with no handler in this process
  /// Publishes the transport refused (e.g. its buffer full) or, for a provider that
  /// acknowledges publishes, failed afterwards (e.g. the server refused it, or the provider
  /// stopped before it could send it).
  uint64_t publish_failures = 0;
  uint64_t queue_full = 0;          ///< publishes refused because the pool's queue stayed full
  /// Received messages the bus asked the provider to deliver again later (queue full); the
  /// provider keeps them and slows down its reading, so these are not losses.
  uint64_t receive_refusals = 0;
  /// Received messages dropped because the queue stayed full and the provider (built for an
  /// ABI before 1.2) cannot deliver them again.
  uint64_t dropped_queue_full = 0;
  /// Handler calls still running when close() returned (it stopped waiting for them).
  uint64_t running_at_close = 0;
  /// Received messages the transport lost before they reached the bus, as the provider
  /// reported them (e.g. a client library's slow-consumer limit).
  uint64_t dropped_by_transport = 0;
  /// Times the provider's connection went from up to reconnecting or down.
  uint64_t outages = 0;
  /// events.context.traceparent: received messages whose `traceparent` or `tracestate` was
  /// invalid and ignored (logged at most once a second). Not a loss: the event was delivered.
  uint64_t invalid_traceparent = 0;
  /// Pool dispatch: events accepted and not yet handled by every handler, and their bytes.
  uint64_t queued_events = 0;
  uint64_t queued_bytes = 0;
};

/// The bus's state for a health check.
struct BusHealth {
  enum class Connection { up, reconnecting, down };
  /// start() succeeded and close() was not called.
  bool started = false;
  /// As the provider last reported it (providers that report nothing count as up while
  /// started, down otherwise).
  Connection connection = Connection::down;
  /// The provider's last words on it, e.g. the error that took the connection down.
  std::string detail;
  /// When the connection entered its present state.
  std::chrono::system_clock::time_point since{};
  uint64_t outages = 0;
  /// Pool dispatch: how full the queue is (events / executor.max_queued_events, 0 to 1).
  double queue_fill = 0;
  /// Started, and the connection is up.
  bool healthy() const noexcept { return started && connection == Connection::up; }
};

/// Who carries the events.
struct ProviderDescription {
  std::string name;
  std::string version;
  std::string file;
  uint16_t abi_major = 0;
  uint16_t abi_minor = 0;
  uint64_t capabilities = 0;
};

/// An event bus: handlers subscribed to event names, events published to them, carried by the
/// provider plugin the settings name. Every call is safe from any thread.
///
/// Buses are always owned by a std::shared_ptr (create() and get_event_bus() make them so);
/// ScopedSubscription and tracked subscriptions hold them weakly.
///
/// Guarantees, in both dispatch modes and on every provider:
///  * Order: a subscription receives the events of one publisher, or of one provider
///    connection, in the order they were published (unless it opted into
///    SubscribeOptions::max_concurrency > 1). Different subscriptions run concurrently in pool
///    dispatch.
///  * Bounds (pool dispatch): at most executor.max_queued_events events and
///    executor.max_queued_bytes bytes wait for or run in handlers. When full, publish waits up to
///    executor.publish_timeout (when_full = "block") or at once (when_full = "fail") throws
///    EventBusError; a handler's own publish never waits for the queue it drains. A provider
///    delivering received messages is told to slow down instead.
///  * From inside a handler: publish, subscribe and unsubscribe work; close() and waiting on a
///    Completion of the same bus are refused with EventBusError.
///  * close(timeout) returns within the timeout (plus a few milliseconds) whatever handlers do.
///  * Nothing is lost silently: every event the bus could not deliver is counted in stats() by
///    reason, and refused publishes throw.
class ATHOMIC_API EventBus : public std::enable_shared_from_this<EventBus> {
 public:
  /// Builds a bus from explicit settings, loading its provider plugin. Not started.
  /// @throws ConfigError, PluginError
  static std::shared_ptr<EventBus> create(const Settings& settings);
  static std::shared_ptr<EventBus> create(const EventsSettings& settings);

  ~EventBus();  // closes
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  /// Starts the provider (connects, for remote ones). Idempotent.
  /// @throws EventBusError naming the cause, e.g. an unreachable server.
  void start();

  /// Stops accepting publishes, then waits — in all at most the configured
  /// executor.close_timeout, or @p timeout — for publishes in progress and for queued handler
  /// calls to finish, and stops the provider. What has not started by then is dropped and
  /// counted (stats().dropped_on_close). Handler calls still running are not interrupted: close
  /// logs how many there are and for which events, counts them (running_at_close), and returns;
  /// what they use stays alive until they return, and the events queued behind them are dropped
  /// as they do. Idempotent.
  /// @throws EventBusError when called from inside a handler of this bus (it would wait for
  ///         itself).
  void close();
  void close(std::chrono::milliseconds timeout);

  /// Registers @p handler for @p event_name. Allowed before start and from inside handlers.
  /// With a remote provider it returns once the transport confirmed the subscription.
  /// @throws EventBusError for an invalid event name, a closed bus, or a provider that refused.
  Subscription subscribe(std::string_view event_name, Handler handler);
  Subscription subscribe(std::string_view event_name, Handler handler,
                         const SubscribeOptions& options);

  /// Registers a handler that only wants the payload.
  template <class F>
    requires(!std::is_invocable_v<F&, const Event&> &&
             std::is_invocable_v<F&, const nlohmann::json&>)
  Subscription subscribe(std::string_view event_name, F handler) {
    return subscribe(event_name, Handler([h = std::move(handler)](const Event& e) mutable {
                       h(e.payload());
                     }));
  }

  /// Typed: registers @p handler, taking `(const T&, const Event&)` or `(const T&)`, for
  /// @p event_name. Each call reads the payload as a T with its `from_json`; a payload that
  /// does not convert is a handler failure (logged and counted, other handlers unaffected)
  /// whose message names the event, T and — for types defined with ATHOMIC_EVENT_FIELDS — the
  /// field (PayloadError). Throws as the untyped form.
  template <class T, class F>
    requires(!std::is_void_v<T> && detail::HandlerFor<F, T>)
  Subscription subscribe(std::string_view event_name, F handler,
                         const SubscribeOptions& options = {}) {
    return subscribe(event_name, detail::make_handler<T>(std::move(handler)), options);
  }
  /// Typed, for an event type that carries its name (T::event_name).
  template <NamedEvent T, class F>
    requires detail::HandlerFor<F, T>
  Subscription subscribe(F handler, const SubscribeOptions& options = {}) {
    return subscribe<T>(T::event_name, std::move(handler), options);
  }

  /// Tracked: calls @p method on the object @p object points to (a std::weak_ptr, or a
  /// std::shared_ptr, held weakly all the same) while it lives. @p method takes the Event or
  /// the payload JSON. Once the object is gone the call is skipped and the subscription removes
  /// itself, at the next event for it (without waiting: it does so from inside its handler).
  /// A call holds the object while it runs: if the last owner lets go meanwhile, the object is
  /// destroyed on the handler's thread when the call returns — in inline dispatch, calls that
  /// overlap on several threads keep it alive together. The returned Subscription works with
  /// unsubscribe as usual; so do unsubscribe(event_name, object, method) and
  /// unsubscribe_all(object). Subscriptions of objects that are gone are also removed by later
  /// tracked subscribes to this bus, so they do not pile up on events that never come.
  template <class P, class M>
    requires detail::TrackedMethodFor<P, M, void>
  Subscription subscribe(std::string_view event_name, const P& object, M method,
                         const SubscribeOptions& options = {}) {
    return subscribe_tracked<void>(event_name, object, method, options);
  }
  /// Tracked and typed: @p method takes `(const T&, const Event&)` or `(const T&)`.
  template <class T, class P, class M>
    requires(!std::is_void_v<T> && detail::TrackedMethodFor<P, M, T>)
  Subscription subscribe(std::string_view event_name, const P& object, M method,
                         const SubscribeOptions& options = {}) {
    return subscribe_tracked<T>(event_name, object, method, options);
  }
  /// Tracked and typed, for an event type that carries its name.
  template <NamedEvent T, class P, class M>
    requires detail::TrackedMethodFor<P, M, T>
  Subscription subscribe(const P& object, M method, const SubscribeOptions& options = {}) {
    return subscribe_tracked<T>(T::event_name, object, method, options);
  }

  /// Any form of subscribe above, with the same arguments, owned by a ScopedSubscription that
  /// unsubscribes when it is destroyed.
  template <class... A>
    requires requires(EventBus& bus, std::string_view name, A&&... args) {
      { bus.subscribe(name, std::forward<A>(args)...) } -> std::same_as<Subscription>;
    }
  ScopedSubscription subscribe_scoped(std::string_view event_name, A&&... args) {
    return ScopedSubscription(*this, subscribe(event_name, std::forward<A>(args)...));
  }
  /// The typed forms: `subscribe_scoped<UserCreated>(handler)`, `subscribe_scoped<T>(name, …)`.
  template <class T, class... A>
    requires requires(EventBus& bus, A&&... args) {
      { bus.subscribe<T>(std::forward<A>(args)...) } -> std::same_as<Subscription>;
    }
  ScopedSubscription subscribe_scoped(A&&... args) {
    return ScopedSubscription(*this, subscribe<T>(std::forward<A>(args)...));
  }

  /// Removes a subscription. When it returns, the handler will not be called again, and — when
  /// called from outside this bus's handlers — is not running on any thread. Called from inside
  /// a handler of this bus it does not wait for calls running on other threads (two handlers
  /// removing each other must not wait for each other): the promise there is only "never called
  /// again". A wait longer than a few seconds is logged once, naming the event and subscription.
  /// @return false if the subscription was not (or no longer) registered.
  bool unsubscribe(const Subscription& subscription);

  /// Removes the tracked subscriptions of @p method on @p object to @p event_name — what
  /// `unsubscribe(event_name, callback)` does with a bound method in the seed — each with the
  /// guarantee above. The object may be gone already.
  /// @return how many were removed (a method subscribed twice to one name is removed twice).
  template <class P, class M>
    requires(detail::TrackedPointer<P> && std::is_member_function_pointer_v<M>)
  std::size_t unsubscribe(std::string_view event_name, const P& object, M method) {
    return detail::unsubscribe_tracked(
        *this, &event_name,
        detail::tracked_target(std::weak_ptr<detail::tracked_object_t<P>>(object), method));
  }
  /// The same, for an event type that carries its name (T::event_name).
  template <NamedEvent T, class P, class M>
    requires(detail::TrackedPointer<P> && std::is_member_function_pointer_v<M>)
  std::size_t unsubscribe(const P& object, M method) {
    return unsubscribe(T::event_name, object, method);
  }
  /// Removes every tracked subscription of @p object, to any event and with any method, each
  /// with the guarantee above: what an object calls before it stops wanting events while it
  /// still lives.
  /// @return how many were removed.
  template <class P>
    requires detail::TrackedPointer<P>
  std::size_t unsubscribe_all(const P& object) {
    return detail::unsubscribe_tracked(
        *this, nullptr,
        detail::tracked_target(std::weak_ptr<detail::tracked_object_t<P>>(object)));
  }

  /// Publishes @p payload (a JSON object; null counts as {}) to every handler of @p event_name,
  /// with the current execution context.
  /// @throws EventBusError for an invalid name, a payload that is not an object, a bus that is
  ///         not started or closed, a full queue (see the class comment), or a transport that
  ///         refused the message (nothing is kept in that case). Remote transports also refuse
  ///         what a receiver would: an encoded event over events.max_payload_bytes, nesting
  ///         deeper than 64 levels, NaN or infinite numbers.
  Completion publish(std::string_view event_name, nlohmann::json payload);
  /// Same, sharing an already built payload (no copy). A template only so that
  /// `publish(name, {})` means the JSON overload.
  template <class P>
    requires std::same_as<std::remove_cvref_t<P>, Payload>
  Completion publish(std::string_view event_name, const P& payload) {
    return publish_shared(event_name, payload);
  }
  /// Publishes a C++ value as the payload: its `to_json` (see JsonWritable), which must give a
  /// JSON object. Handlers of any form receive that object.
  /// @throws EventBusError as the JSON form, and naming the type when its JSON is not an object
  ///         or its to_json threw.
  template <class T>
    requires(JsonWritable<T> && !std::same_as<T, nlohmann::json> && !std::same_as<T, Payload>)
  Completion publish(std::string_view event_name, const T& value) {
    return publish(event_name, detail::to_payload(event_name, value));
  }
  /// Publishes an event type that carries its name (T::event_name).
  template <NamedEvent T>
    requires JsonWritable<T>
  Completion publish(const T& event) {
    return publish(T::event_name, event);
  }

  /// Number of handlers currently subscribed to @p event_name.
  std::size_t handler_count(std::string_view event_name) const;
  BusStats stats() const;
  /// Started or not, the provider's connection as it reports it, and how full the queue is.
  BusHealth health() const;
  /// Counters and histograms per event name and in total, the queue and the connection
  /// (events.metrics); render them with prometheus_text(). Empty when events.metrics.enabled
  /// is false or the bus is disabled.
  MetricsSnapshot metrics() const;
  /// "host:port" where the bus serves /metrics and /healthz (events.metrics.listen) while
  /// started; empty otherwise.
  std::string metrics_address() const;
  /// False for a bus built with events.enabled = false: it accepts calls and does nothing.
  bool enabled() const noexcept;
  /// The loaded provider (empty name when disabled).
  ProviderDescription provider() const;

 private:
  friend struct detail::BusAccess;
  explicit EventBus(std::shared_ptr<detail::BusCore> core);
  template <class T, class P, class M>
  Subscription subscribe_tracked(std::string_view event_name, const P& object, M method,
                                 const SubscribeOptions& options) {
    using O = detail::tracked_object_t<P>;
    const std::weak_ptr<O> weak(object);
    auto tracker = detail::make_tracker(*this);
    const Subscription s = subscribe(
        event_name, detail::make_handler<T>(detail::TrackedCall<O, M>{weak, method, tracker}),
        options);
    detail::tracker_subscribed(*this, tracker, s, detail::tracked_target(weak, method));
    return s;
  }
  Completion publish_shared(std::string_view event_name, const Payload& payload);
  std::shared_ptr<detail::BusCore> core_;
};

/// The process-wide bus, built from Settings::load() on first use and started.
/// @throws ConfigError, PluginError, EventBusError on the first call if it cannot be built.
ATHOMIC_API EventBus& get_event_bus();

/// Validates an event name: 1 to 255 bytes, no whitespace or control characters.
/// @throws EventBusError naming the problem.
ATHOMIC_API void validate_event_name(std::string_view name);

}  // namespace athomic
