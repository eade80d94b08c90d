// The public EventBus: a thin face over BusCore, or a no-op when events are disabled.
#include "bus_core.h"
#include "handler_frame.h"

#include <athomic/bus.h>
#include <athomic/log.h>
#include <athomic/settings.h>

#include <fmt/format.h>

#include <mutex>
#include <thread>

namespace athomic {

namespace {
// The name as it can be shown in a message: control bytes escaped, long names cut.
std::string printable(std::string_view name) {
  std::string out;
  for (const char ch : name.substr(0, 64)) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += ch;
    }
  }
  if (name.size() > 64) out += "...";
  return out;
}
}  // namespace

void validate_event_name(std::string_view name) {
  constexpr std::size_t kMaxLength = 255;
  if (name.empty()) throw EventBusError("invalid event name \"\": it must not be empty");
  if (name.size() > kMaxLength) {
    throw EventBusError(fmt::format("invalid event name \"{}\": {} bytes, the limit is {}",
                                    printable(name), name.size(), kMaxLength));
  }
  bool empty_part = name.front() == '.' || name.back() == '.';
  for (std::size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c == '.' && i > 0 && name[i - 1] == '.') empty_part = true;
    if (c <= 0x20 || c == 0x7f) {
      throw EventBusError(fmt::format(
          "invalid event name \"{}\": byte {} is {} (no spaces or control characters)",
          printable(name), i, c == 0x20 ? "a space" : fmt::format("0x{:02x}", c)));
    }
    if (c == '*' || c == '>') {
      throw EventBusError(fmt::format(
          "invalid event name \"{}\": '{}' is reserved for pattern subscriptions", printable(name),
          static_cast<char>(c)));
    }
  }
  if (empty_part) {
    throw EventBusError(fmt::format(
        "invalid event name \"{}\": dot-separated parts must not be empty (e.g. user.created)",
        printable(name)));
  }
}

EventBus::EventBus(std::shared_ptr<detail::BusCore> core) : core_(std::move(core)) {}

EventBus::~EventBus() {
  if (!core_) return;
  if (detail::HandlerFrame::inside(core_.get())) {
    // The last owner let go inside one of the bus's own handlers: closing here would wait for
    // this very handler. Close on a thread of its own, which keeps the bus alive meanwhile.
    std::thread([core = std::move(core_)] {
      try {
        core->close(core->settings().close_timeout);
      } catch (...) {
      }
    }).detach();
    return;
  }
  try {
    core_->close(core_->settings().close_timeout);
  } catch (...) {
  }
}

std::shared_ptr<EventBus> EventBus::create(const Settings& settings) {
  return create(settings.events());
}

std::shared_ptr<EventBus> EventBus::create(const EventsSettings& settings) {
  if (!settings.enabled) {
    get_logger("athomic.events")
        ->info("event bus disabled (events.enabled = false, from {}): subscribe and publish "
               "are accepted and do nothing",
               settings.origin_of("events.enabled"));
    return std::shared_ptr<EventBus>(new EventBus(nullptr));
  }
  return std::shared_ptr<EventBus>(new EventBus(std::make_shared<detail::BusCore>(settings)));
}

void EventBus::start() {
  if (core_) core_->start();
}

void EventBus::close() {
  if (core_) core_->close(core_->settings().close_timeout);
}

void EventBus::close(std::chrono::milliseconds timeout) {
  if (core_) core_->close(timeout);
}

Subscription EventBus::subscribe(std::string_view event_name, Handler handler) {
  return subscribe(event_name, std::move(handler), SubscribeOptions{});
}

Subscription EventBus::subscribe(std::string_view event_name, Handler handler,
                                 const SubscribeOptions& options) {
  if (!core_) {
    validate_event_name(event_name);
    return Subscription();
  }
  return core_->subscribe(event_name, std::move(handler), options);
}

bool EventBus::unsubscribe(const Subscription& subscription) {
  return core_ ? core_->unsubscribe(subscription) : false;
}

Completion EventBus::publish(std::string_view event_name, nlohmann::json payload) {
  if (!core_) {
    validate_event_name(event_name);
    return Completion();
  }
  const Payload shared = std::make_shared<const nlohmann::json>(std::move(payload));
  return core_->publish(event_name, shared);
}

Completion EventBus::publish_shared(std::string_view event_name, const Payload& payload) {
  if (!core_) {
    validate_event_name(event_name);
    return Completion();
  }
  return core_->publish(event_name, payload);
}

std::size_t EventBus::handler_count(std::string_view event_name) const {
  return core_ ? core_->handler_count(event_name) : 0;
}

BusStats EventBus::stats() const { return core_ ? core_->stats() : BusStats{}; }

BusHealth EventBus::health() const { return core_ ? core_->health() : BusHealth{}; }

MetricsSnapshot EventBus::metrics() const { return core_ ? core_->metrics() : MetricsSnapshot{}; }

std::string EventBus::metrics_address() const {
  return core_ ? core_->metrics_address() : std::string();
}

bool EventBus::enabled() const noexcept { return core_ != nullptr; }

ProviderDescription EventBus::provider() const {
  return core_ ? core_->provider() : ProviderDescription{};
}

EventBus& get_event_bus() {
  static std::mutex mutex;
  static std::shared_ptr<EventBus> bus;
  std::lock_guard lock(mutex);
  if (!bus) {
    auto fresh = EventBus::create(Settings::load());
    fresh->start();
    bus = std::move(fresh);
  }
  return *bus;
}

}  // namespace athomic
