// What a handler receives: the event's name, its payload and the publisher's context.
#pragma once

#include <athomic/context.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <string_view>

namespace athomic {

/// An immutable JSON object shared by every handler of one event, never copied by the bus.
using Payload = std::shared_ptr<const nlohmann::json>;

/// A view on one delivered event, valid for the duration of the handler call. Copy what you
/// need to keep (copying the Payload pointer keeps the payload alive without a deep copy).
class Event {
 public:
  Event(std::string_view name, const Payload& payload, const ExecutionContext& context) noexcept
      : name_(name), payload_(&payload), context_(&context) {}

  /// The event name, e.g. "user.created".
  std::string_view name() const noexcept { return name_; }
  /// The payload object, without the wire's "_nala_context" key.
  const nlohmann::json& payload() const noexcept { return **payload_; }
  /// Shared ownership of the payload, to keep it past the handler call.
  const Payload& payload_ptr() const noexcept { return *payload_; }
  /// The publisher's captured context; also the current context while the handler runs.
  const ExecutionContext& context() const noexcept { return *context_; }

 private:
  std::string_view name_;
  const Payload* payload_;
  const ExecutionContext* context_;
};

}  // namespace athomic
