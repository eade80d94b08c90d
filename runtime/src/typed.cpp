// The non-template side of typed events: type names and the errors that name them.
#include <athomic/bus.h>
#include <athomic/typed.h>

#include <fmt/format.h>

#include <cxxabi.h>

#include <cstdlib>
#include <memory>

namespace athomic {

PayloadError::PayloadError(std::string_view event_name, std::string type, std::string field,
                           const std::string& reason)
    : EventBusError(
          field.empty()
              ? fmt::format("'{}' payload does not convert to {} (field unknown: its from_json "
                            "does not say; ATHOMIC_EVENT_FIELDS does): {}",
                            event_name, type, reason)
              : fmt::format("'{}' payload does not convert to {} at {}: {}", event_name, type,
                            field, reason)),
      type_(std::move(type)),
      field_(std::move(field)) {}

namespace detail {

std::string demangle(const char* mangled) {
  int status = 0;
  const std::unique_ptr<char, decltype(&std::free)> name(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), &std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(mangled);
}

void throw_payload_error(std::string_view event_name, std::string type, std::string field,
                         const std::string& reason) {
  throw PayloadError(event_name, std::move(type), std::move(field), reason);
}

// A bad name is the first thing publish reports, typed or not.
void throw_unwritable(std::string_view event_name, const std::string& type, const char* reason) {
  validate_event_name(event_name);
  throw EventBusError(
      fmt::format("publish('{}'): converting {} to JSON failed: {}", event_name, type, reason));
}

void throw_not_an_object(std::string_view event_name, const std::string& type,
                         const char* json_type) {
  validate_event_name(event_name);
  throw EventBusError(fmt::format(
      "publish('{}'): {} converts to a JSON {}; a payload must be a JSON object (give {} a "
      "to_json that writes one, e.g. with ATHOMIC_EVENT_FIELDS)",
      event_name, type, json_type, type));
}

}  // namespace detail
}  // namespace athomic
