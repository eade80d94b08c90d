// The event bus: subscribe handlers to event names, publish events to them, on the transport
// chosen in settings (a provider plugin).
#pragma once

#include <athomic/context.h>
#include <athomic/errors.h>
#include <athomic/event.h>
#include <athomic/export.h>

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
struct EventRecord;
}  // namespace detail

/// A handler. It runs inside the publisher's execution context. Exceptions it throws are
/// caught, logged with the event name and trace id, and counted; other handlers are unaffected.
using Handler = std::function<void(const Event&)>;

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

/// The outcome of one publish, to wait on or to ignore. With an in-process provider it is done
/// when every local handler has finished; with a remote one, when the transport has accepted
/// the message (handlers run wherever the message is received).
class ATHOMIC_API Completion {
 public:
  /// An already finished publish in which @p failed_handlers handlers threw.
  explicit Completion(uint32_t failed_handlers = 0) noexcept : failed_(failed_handlers) {}
  /// Takes over one reference to an in-flight event (runtime use).
  explicit Completion(detail::EventRecord* record) noexcept : record_(record) {}
  Completion(Completion&& o) noexcept : record_(o.record_), failed_(o.failed_) {
    o.record_ = nullptr;
  }
  Completion& operator=(Completion&& o) noexcept;
  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;
  ~Completion();

  bool done() const noexcept;
  /// Blocks until done.
  void wait() const;
  /// Blocks until done or @p timeout elapses; true when done.
  bool wait_for(std::chrono::nanoseconds timeout) const;
  /// Handlers of this event that threw (valid once done; 0 for remote transports).
  uint32_t failed_handlers() const noexcept;

 private:
  detail::EventRecord* record_ = nullptr;  // nullptr: already done
  uint32_t failed_ = 0;                    // when already done
};

/// Counters since the bus was created.
struct BusStats {
  uint64_t handler_failures = 0;   ///< handler calls that threw
  uint64_t malformed_messages = 0; ///< received messages that did not decode (skipped)
  uint64_t dropped_on_close = 0;   ///< handler calls abandoned when close() timed out
  uint64_t undeliverable = 0;      ///< received events with no handler in this process
  uint64_t publish_failures = 0;   ///< publishes the transport refused (e.g. its buffer full)
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

class ATHOMIC_API EventBus {
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

  /// Stops accepting publishes, stops the provider, and waits up to the configured timeout
  /// for running and queued handlers. Handlers still queued then are dropped and counted.
  /// Idempotent; must not be called from inside a handler of this bus.
  void close();
  void close(std::chrono::milliseconds timeout);

  /// Registers @p handler for @p event_name. Allowed before start and from inside handlers.
  /// @throws EventBusError for an invalid event name or a closed bus.
  Subscription subscribe(std::string_view event_name, Handler handler);

  /// Registers a handler that only wants the payload.
  template <class F>
    requires(!std::is_invocable_v<F&, const Event&> &&
             std::is_invocable_v<F&, const nlohmann::json&>)
  Subscription subscribe(std::string_view event_name, F handler) {
    return subscribe(event_name, Handler([h = std::move(handler)](const Event& e) mutable {
                       h(e.payload());
                     }));
  }

  /// Removes a subscription. When it returns, the handler is not running on any other thread
  /// and will not be called again; called from inside that handler, it returns at once.
  /// @return false if the subscription was not (or no longer) registered.
  bool unsubscribe(const Subscription& subscription);

  /// Publishes @p payload (a JSON object; null counts as {}) to every handler of @p event_name,
  /// with the current execution context.
  /// @throws EventBusError for an invalid name, a payload that is not an object or is larger
  ///         than the limit, a bus that is not started or closed, or a transport that refused
  ///         the message (nothing is kept in that case).
  Completion publish(std::string_view event_name, nlohmann::json payload);
  /// Same, sharing an already built payload (no copy). A template only so that
  /// `publish(name, {})` means the JSON overload.
  template <class P>
    requires std::same_as<std::remove_cvref_t<P>, Payload>
  Completion publish(std::string_view event_name, const P& payload) {
    return publish_shared(event_name, payload);
  }

  /// Number of handlers currently subscribed to @p event_name.
  std::size_t handler_count(std::string_view event_name) const;
  BusStats stats() const;
  /// False for a bus built with events.enabled = false: it accepts calls and does nothing.
  bool enabled() const noexcept;
  /// The loaded provider (empty name when disabled).
  ProviderDescription provider() const;

 private:
  explicit EventBus(std::unique_ptr<detail::BusCore> core);
  Completion publish_shared(std::string_view event_name, const Payload& payload);
  std::unique_ptr<detail::BusCore> core_;
};

/// The process-wide bus, built from Settings::load() on first use and started.
/// @throws ConfigError, PluginError, EventBusError on the first call if it cannot be built.
ATHOMIC_API EventBus& get_event_bus();

/// Validates an event name: 1 to 255 bytes, no whitespace or control characters.
/// @throws EventBusError naming the problem.
ATHOMIC_API void validate_event_name(std::string_view name);

}  // namespace athomic
