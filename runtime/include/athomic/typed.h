// Typed events: C++ values as payloads (through nlohmann's to_json / from_json), events that
// carry their own name, and conversion errors that say which field failed.
#pragma once

#include <athomic/errors.h>
#include <athomic/event.h>
#include <athomic/export.h>

#include <nlohmann/json.hpp>

#include <concepts>
#include <cstddef>
#include <exception>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace athomic {

/// A type the bus can publish: it has a `to_json` (ATHOMIC_EVENT_FIELDS,
/// NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE, a hand-written one or an `adl_serializer`). The JSON it
/// converts to must be an object: EventBus::publish refuses anything else.
template <class T>
concept JsonWritable = requires(nlohmann::json& j, const T& value) {
  nlohmann::adl_serializer<T>::to_json(j, value);
};

/// A type a typed handler can take: it has a `from_json` (or an `adl_serializer`).
template <class T>
concept JsonReadable = requires(const nlohmann::json& j) { j.template get<T>(); };

/// An event type that carries its own name:
/// `struct UserCreated { static constexpr std::string_view event_name = "user.created"; … };`
template <class T>
concept NamedEvent = requires {
  { T::event_name } -> std::convertible_to<std::string_view>;
};

/// A nlohmann conversion error and where it happened, as a JSON pointer relative to the value
/// being read ("/address/city"). The `from_json` that ATHOMIC_EVENT_FIELDS defines throws it.
/// It is a `nlohmann::json::exception` with the same id, so code that catches those (around
/// `j.get<T>()`) catches it too.
class FieldError : public nlohmann::json::exception {
 public:
  using Pointer = nlohmann::json::json_pointer;

  /// @p cause happened at @p pointer.
  FieldError(Pointer pointer, const nlohmann::json::exception& cause)
      : FieldError(std::move(pointer), cause.id, cause.what()) {}
  /// @p inner, which happened in the value at @p parent.
  FieldError(const Pointer& parent, const FieldError& inner)
      : FieldError(parent / inner.pointer_, inner.id, inner.reason_) {}

  /// Where the conversion failed (empty: the value itself).
  const Pointer& pointer() const noexcept { return pointer_; }
  /// nlohmann's message, e.g. "[json.exception.type_error.302] type must be number, but is
  /// string".
  const std::string& reason() const noexcept { return reason_; }

 private:
  FieldError(Pointer pointer, int id, std::string reason)
      : exception(id, (pointer.empty() ? reason : reason + " at " + pointer.to_string()).c_str()),
        pointer_(std::move(pointer)),
        reason_(std::move(reason)) {}

  Pointer pointer_;
  std::string reason_;
};

/// A payload that does not convert to the C++ type a typed handler takes. Typed handlers throw
/// it, so the bus logs it (with the event name and trace id) and counts it in
/// `stats().handler_failures`; other handlers are unaffected. Its message names the event,
/// the type and the field, e.g. `'user.created' payload does not convert to app::UserCreated
/// at /age: [json.exception.type_error.302] type must be number, but is string`.
class ATHOMIC_API PayloadError : public EventBusError {
 public:
  PayloadError(std::string_view event_name, std::string type, std::string field,
               const std::string& reason);
  /// The C++ type, demangled ("app::UserCreated").
  const std::string& type() const noexcept { return type_; }
  /// The field that failed, as a JSON pointer ("/age"); empty when the type's `from_json` does
  /// not say (it was not defined by ATHOMIC_EVENT_FIELDS).
  const std::string& field() const noexcept { return field_; }

 private:
  std::string type_;
  std::string field_;
};

namespace detail {

/// The demangled name of a type as `typeid(T).name()` gives it ("app::UserCreated").
ATHOMIC_API std::string demangle(const char* mangled);

template <class T>
std::string type_name() {
  return demangle(typeid(T).name());
}

[[noreturn]] ATHOMIC_API void throw_payload_error(std::string_view event_name, std::string type,
                                                  std::string field, const std::string& reason);
[[noreturn]] ATHOMIC_API void throw_unwritable(std::string_view event_name, const std::string& type,
                                               const char* reason);
[[noreturn]] ATHOMIC_API void throw_not_an_object(std::string_view event_name,
                                                  const std::string& type, const char* json_type);

// Types whose from_json ATHOMIC_EVENT_FIELDS defined: their errors are located already.
template <class T>
concept EventFields = requires(const T* p) {
  { athomic_event_fields(p) } -> std::same_as<std::true_type>;
};

// Containers nlohmann reads from a JSON object (string keys) or array, element by element.
template <class F>
concept JsonObjectLike = requires {
  typename F::key_type;
  typename F::mapped_type;
} && std::is_constructible_v<typename F::key_type, std::string>;
template <class F>
concept JsonArrayLike = requires { typename F::value_type; } && !JsonObjectLike<F> &&
                        !std::is_convertible_v<const F&, std::string_view> &&
                        !std::is_same_v<F, nlohmann::json>;

template <class F>
void read_into(const nlohmann::json& j, F& out);

// Finds the element of a container that does not convert (the error path only: every element
// is read again); throws there, or at @p j itself when F is not a container nlohmann reads
// element by element.
template <class F>
[[noreturn]] void throw_located(const nlohmann::json& j, const nlohmann::json::exception& cause);

template <class V>
void check_element(const nlohmann::json& j, const FieldError::Pointer& where) {
  if constexpr (std::is_default_constructible_v<V> && requires(V& v) { j.get_to(v); }) {
    V value;
    try {
      read_into(j, value);
    } catch (const FieldError& e) {
      throw FieldError(where, e);
    }
  }
}

template <class F>
void throw_located(const nlohmann::json& j, const nlohmann::json::exception& cause) {
  if constexpr (JsonObjectLike<F>) {
    if (j.is_object()) {
      for (const auto& item : j.items()) {
        check_element<typename F::mapped_type>(item.value(), FieldError::Pointer() / item.key());
      }
    }
  } else if constexpr (JsonArrayLike<F>) {
    if (j.is_array()) {
      for (std::size_t i = 0; i < j.size(); ++i) {
        check_element<typename F::value_type>(j[i], FieldError::Pointer() / i);
      }
    }
  }
  throw FieldError(FieldError::Pointer(), cause);
}

// Runs @p convert (a nlohmann conversion of @p j to F); its nlohmann errors come out as a
// FieldError located relative to @p j.
template <class F, class Convert>
decltype(auto) located(const nlohmann::json& j, Convert&& convert) {
  try {
    return convert();
  } catch (const FieldError& e) {
    if constexpr (EventFields<F>) throw;  // located by its own from_json
    throw_located<F>(j, e);
  } catch (const nlohmann::json::exception& e) {
    throw_located<F>(j, e);
  }
}

template <class F>
void read_into(const nlohmann::json& j, F& out) {
  located<F>(j, [&] { j.get_to(out); });
}

// One field of an ATHOMIC_EVENT_FIELDS type.
template <class F>
void read_field(const nlohmann::json& j, const char* key, F& out) {
  const nlohmann::json* value;
  try {
    value = &j.at(key);
  } catch (const nlohmann::json::exception& e) {
    // Missing, or j is not an object at all (then j itself is what is wrong).
    throw FieldError(j.is_object() ? FieldError::Pointer() / key : FieldError::Pointer(), e);
  }
  try {
    read_into(*value, out);
  } catch (const FieldError& e) {
    throw FieldError(FieldError::Pointer() / key, e);
  }
}

// The payload a typed publish sends: @p value's JSON, an object (or null, which counts as {}).
template <JsonWritable T>
nlohmann::json to_payload(std::string_view event_name, const T& value) {
  nlohmann::json j;
  try {
    nlohmann::adl_serializer<T>::to_json(j, value);
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw_unwritable(event_name, type_name<T>(), e.what());
  }
  if (!j.is_object() && !j.is_null()) {
    throw_not_an_object(event_name, type_name<T>(), j.type_name());
  }
  return j;
}

}  // namespace detail

/// The payload of @p event as a @p T, through its `from_json`: what typed handlers receive, for
/// use in an untyped handler.
/// @throws PayloadError naming the event, T and (for ATHOMIC_EVENT_FIELDS types) the field.
template <JsonReadable T>
T payload_as(const Event& event) {
  try {
    return detail::located<T>(event.payload(), [&] { return event.payload().get<T>(); });
  } catch (const FieldError& e) {
    detail::throw_payload_error(event.name(), detail::type_name<T>(), e.pointer().to_string(),
                                e.reason());
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {  // thrown by a hand-written from_json
    detail::throw_payload_error(event.name(), detail::type_name<T>(), "", e.what());
  }
}

}  // namespace athomic

/// Defines `to_json` and `from_json` for @p Type from the listed fields, like
/// NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE (same JSON: one key per field, every field required), but
/// the `from_json` records which field failed: a typed handler's error then names it as a JSON
/// pointer (`/address/city`, `/items/3/price`). Use it at namespace scope, in @p Type's
/// namespace, with 1 to 63 fields:
///
///     struct UserCreated { std::string id; int age = 0; };
///     ATHOMIC_EVENT_FIELDS(UserCreated, id, age)
///
/// Its errors are FieldError, a `nlohmann::json::exception`.
#define ATHOMIC_EVENT_FIELDS(Type, ...)                                                           \
  [[maybe_unused]] inline std::true_type athomic_event_fields(const Type*) { return {}; }         \
  [[maybe_unused]] inline void to_json(nlohmann::json& athomic_json, const Type& athomic_value) { \
    NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(ATHOMIC_DETAIL_FIELD_TO_JSON, __VA_ARGS__))          \
  }                                                                                               \
  [[maybe_unused]] inline void from_json(const nlohmann::json& athomic_json,                      \
                                         Type& athomic_value) {                                   \
    NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(ATHOMIC_DETAIL_FIELD_FROM_JSON, __VA_ARGS__))        \
  }

#define ATHOMIC_DETAIL_FIELD_TO_JSON(field) athomic_json[#field] = athomic_value.field;
#define ATHOMIC_DETAIL_FIELD_FROM_JSON(field) \
  ::athomic::detail::read_field(athomic_json, #field, athomic_value.field);
