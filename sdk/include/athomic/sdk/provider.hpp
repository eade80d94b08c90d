// C++ helper over the provider ABI: write one class deriving from athomic::sdk::Provider and
// one ATHOMIC_PROVIDER(...) line; this header turns it into the C tables of provider.h and
// catches every exception at the boundary. Header-only, depends on the standard library alone.
#ifndef ATHOMIC_SDK_PROVIDER_HPP
#define ATHOMIC_SDK_PROVIDER_HPP

#include <athomic/sdk/provider.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace athomic::sdk {

inline std::string_view view(athomic_str s) noexcept {
  return s.size == 0 ? std::string_view{} : std::string_view{s.data, s.size};
}
inline athomic_str str(std::string_view s) noexcept { return athomic_str{s.data(), s.size()}; }

/// ABI 1.3: a message's headers (ATHOMIC_CAP_HEADERS) — a view on an array the caller owns.
struct Headers {
  const athomic_header* data = nullptr;
  std::size_t size = 0;
  const athomic_header* begin() const noexcept { return data; }
  const athomic_header* end() const noexcept { return data + size; }
  bool empty() const noexcept { return size == 0; }
};

/// Throw from a provider method to return @p status with a message to the host.
class Error : public std::runtime_error {
 public:
  Error(athomic_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  athomic_status status() const noexcept { return status_; }

 private:
  athomic_status status_;
};

/// The host services, bound to one bus. Cheap to copy; valid while the provider instance lives.
class Host {
 public:
  Host(const athomic_host_api* api, athomic_host_ctx* ctx) noexcept : api_(api), ctx_(ctx) {}

  void log(athomic_log_level level, std::string_view message) const noexcept {
    api_->log(ctx_, level, str(message));
  }
  void info(std::string_view m) const noexcept { log(ATHOMIC_LOG_INFO, m); }
  void warn(std::string_view m) const noexcept { log(ATHOMIC_LOG_WARN, m); }
  void error(std::string_view m) const noexcept { log(ATHOMIC_LOG_ERROR, m); }
  void debug(std::string_view m) const noexcept { log(ATHOMIC_LOG_DEBUG, m); }

  /// Remote providers: hand received bytes for @p event_name to the host.
  athomic_status deliver_message(std::string_view event_name, std::string_view body) const noexcept {
    return api_->deliver_message(ctx_, str(event_name), str(body));
  }
  /// Providers with ATHOMIC_CAP_PATTERN (ABI 1.2): hand a received message to the handlers of
  /// the one pattern the transport matched it to.
  athomic_status deliver_message_to(std::string_view event_name, std::string_view body,
                                    std::string_view pattern) const noexcept {
    if (!has(offsetof(athomic_host_api, deliver_message_to))) return ATHOMIC_ERR_UNSUPPORTED;
    return api_->deliver_message_to(ctx_, str(event_name), str(body), str(pattern),
                                    ATHOMIC_INTEREST_PATTERN);
  }
  /// ABI 1.3: hand a received message to the host with its headers (ATHOMIC_CAP_HEADERS) — to
  /// the exact name's handlers, or with @p pattern (ATHOMIC_CAP_PATTERN) to that pattern's. A
  /// host older than 1.3 gets the message without the headers.
  athomic_status deliver_received(std::string_view event_name, std::string_view body,
                                  Headers headers, std::string_view pattern = {}) const noexcept {
    if (!has(offsetof(athomic_host_api, deliver_received))) {
      return pattern.empty() ? deliver_message(event_name, body)
                             : deliver_message_to(event_name, body, pattern);
    }
    athomic_received r{};
    r.struct_size = sizeof r;
    r.event_name = str(event_name);
    r.body = str(body);
    r.interest = str(pattern);
    r.kind = ATHOMIC_INTEREST_PATTERN;
    r.headers = headers.data;
    r.header_count = headers.size;
    return api_->deliver_received(ctx_, &r);
  }
  /// In-process providers: hand the event of the current publish call back to the host.
  athomic_status deliver_event(athomic_host_event* event) const noexcept {
    return api_->deliver_event(ctx_, event);
  }
  uint64_t now_ns() const noexcept { return api_->clock_now_ns(); }

  /// ABI 1.2 (providers declaring ATHOMIC_CAP_ACKNOWLEDGE): complete the publish whose
  /// Message::publish_token is @p token — exactly once, at the latest before stop returns.
  void publish_done(uint64_t token, athomic_status status, int64_t receivers = -1,
                    std::string_view error = {}) const noexcept {
    if (has(offsetof(athomic_host_api, publish_done))) {
      api_->publish_done(ctx_, token, status, receivers, str(error));
    }
  }
  /// ABI 1.2: the connection is up, reconnecting or down (with why).
  void report_state(athomic_connection_state state, std::string_view detail = {}) const noexcept {
    if (has(offsetof(athomic_host_api, report_state))) api_->report_state(ctx_, state, str(detail));
  }
  /// ABI 1.2: the transport lost @p count received messages before they reached us.
  void report_dropped(std::string_view event_name, uint64_t count,
                      std::string_view reason) const noexcept {
    if (has(offsetof(athomic_host_api, report_dropped))) {
      api_->report_dropped(ctx_, str(event_name), count, str(reason));
    }
  }

  /// ABI 1.2: one of the provider's declared settings, validated by the host, its default when
  /// unset. T is bool, an integer type, double, std::string or a std::chrono::duration (for
  /// ATHOMIC_SETTING_SECONDS). @throws Error for a path the provider did not declare, or one
  /// with neither value nor default.
  template <class T>
  T setting(std::string_view path) const {
    athomic_setting_value v{};
    v.struct_size = sizeof v;
    if (!has(offsetof(athomic_host_api, setting)) ||
        api_->setting(ctx_, str(path), &v) != ATHOMIC_OK) {
      throw Error(ATHOMIC_ERR_INVALID_ARGUMENT,
                  "setting events.provider." + std::string(path) + " has no value");
    }
    if constexpr (std::is_same_v<T, bool>) {
      return v.boolean != 0;
    } else if constexpr (std::is_integral_v<T>) {
      return static_cast<T>(v.integer);
    } else if constexpr (std::is_floating_point_v<T>) {
      return v.type == ATHOMIC_SETTING_INT ? static_cast<T>(v.integer) : static_cast<T>(v.number);
    } else if constexpr (std::is_same_v<T, std::string>) {
      return std::string(view(v.text));
    } else {
      // A std::chrono::duration from a number of seconds.
      return std::chrono::duration_cast<T>(std::chrono::duration<double>(v.number));
    }
  }
  /// Whether the host has a value (set, or a default) for a declared setting.
  bool has_setting(std::string_view path) const noexcept {
    athomic_setting_value v{};
    v.struct_size = sizeof v;
    return has(offsetof(athomic_host_api, setting)) &&
           api_->setting(ctx_, str(path), &v) == ATHOMIC_OK;
  }
  /// The host library's version; empty for hosts older than ABI 1.1.
  std::string_view host_version() const noexcept {
    return has(offsetof(athomic_host_api, host_version)) && api_->host_version
               ? std::string_view(api_->host_version)
               : std::string_view();
  }
  uint16_t abi_major() const noexcept { return api_->abi_major; }
  uint16_t abi_minor() const noexcept { return api_->abi_minor; }

 private:
  // Whether the host's table reaches the member at @p offset (a host of an older minor may
  // not have it).
  bool has(std::size_t offset) const noexcept {
    return api_->struct_size >= offset + sizeof(void*);
  }

  const athomic_host_api* api_;
  athomic_host_ctx* ctx_;
};

/// One message to publish; views are valid only during Provider::publish.
struct Message {
  std::string_view event_name;
  std::string_view body;        // REMOTE providers
  athomic_host_event* event;    // IN_PROCESS providers
  uint64_t publish_token = 0;   // ACKNOWLEDGE providers: complete it with Host::publish_done
  Headers headers;              // HEADERS providers (ABI 1.3): send them with the body
};

/// Base class of a provider. Methods may throw sdk::Error (or anything else: reported as
/// ATHOMIC_ERR_INTERNAL). Threading rules are those of athomic_provider_vtable.
class Provider {
 public:
  virtual ~Provider() = default;
  virtual void start() = 0;
  virtual void stop() noexcept = 0;
  virtual void publish(const Message& message) = 0;
  virtual void interest_add(std::string_view topic, athomic_interest_kind kind) = 0;
  virtual void interest_remove(std::string_view topic, athomic_interest_kind kind) noexcept = 0;
  /// ABI 1.4: the capabilities this instance has with its settings; the host keeps only those
  /// of the declared ones that are set here. Default: all the declared ones.
  virtual uint64_t instance_capabilities() const noexcept { return ~uint64_t{0}; }
};

namespace detail {

inline athomic_status report(const athomic_host_api* api, athomic_error_sink* err) noexcept {
  try {
    throw;
  } catch (const Error& e) {
    if (err) api->error_set(err, str(e.what()));
    return e.status();
  } catch (const std::bad_alloc&) {
    if (err) api->error_set(err, str("out of memory"));
  } catch (const std::exception& e) {
    if (err) api->error_set(err, str(e.what()));
  } catch (...) {
    if (err) api->error_set(err, str("unknown exception"));
  }
  return ATHOMIC_ERR_INTERNAL;
}

// The C instance: the user's object plus what the boundary needs to report errors.
template <class P>
struct Instance {
  const athomic_host_api* api;
  P impl;
  Instance(const athomic_host_api* a, athomic_host_ctx* c, std::string_view cfg)
      : api(a), impl(Host{a, c}, cfg) {}
};

template <class P>
Instance<P>* self(athomic_provider* p) noexcept {
  return reinterpret_cast<Instance<P>*>(p);
}

template <class P>
struct Adapter {
  static athomic_status create(const athomic_host_api* api, athomic_host_ctx* ctx,
                               athomic_str cfg, athomic_provider** out,
                               athomic_error_sink* err) noexcept {
    try {
      *out = reinterpret_cast<athomic_provider*>(new Instance<P>(api, ctx, view(cfg)));
      return ATHOMIC_OK;
    } catch (...) {
      return report(api, err);
    }
  }
  static void destroy(athomic_provider* p) noexcept {
    auto* s = self<P>(p);
    s->impl.stop();
    delete s;
  }
  static athomic_status start(athomic_provider* p, athomic_error_sink* err) noexcept {
    try {
      self<P>(p)->impl.start();
      return ATHOMIC_OK;
    } catch (...) {
      return report(self<P>(p)->api, err);
    }
  }
  static void stop(athomic_provider* p) noexcept { self<P>(p)->impl.stop(); }
  static athomic_status publish(athomic_provider* p, const athomic_message* m,
                                athomic_error_sink* err) noexcept {
    try {
      // The host is at least as new as this plugin (it refuses newer minors), so a 1.2 message
      // always carries the token; the check keeps the helper honest all the same.
      const uint64_t token =
          m->struct_size >= offsetof(athomic_message, publish_token) + sizeof(uint64_t)
              ? m->publish_token
              : 0;
      // Headers from 1.3 on; a host that does not know them sends none.
      Headers headers;
      if (m->struct_size >= offsetof(athomic_message, header_count) + sizeof(size_t)) {
        headers = Headers{m->headers, m->headers ? m->header_count : 0};
      }
      self<P>(p)->impl.publish(
          Message{view(m->event_name), view(m->body), m->event, token, headers});
      return ATHOMIC_OK;
    } catch (...) {
      return report(self<P>(p)->api, err);
    }
  }
  static athomic_status interest_add(athomic_provider* p, athomic_str topic,
                                     athomic_interest_kind kind,
                                     athomic_error_sink* err) noexcept {
    try {
      self<P>(p)->impl.interest_add(view(topic), kind);
      return ATHOMIC_OK;
    } catch (...) {
      return report(self<P>(p)->api, err);
    }
  }
  static void interest_remove(athomic_provider* p, athomic_str topic,
                              athomic_interest_kind kind) noexcept {
    self<P>(p)->impl.interest_remove(view(topic), kind);
  }

  static uint64_t instance_capabilities(athomic_provider* p) noexcept {
    return self<P>(p)->impl.instance_capabilities();
  }

  static constexpr athomic_provider_vtable vtable{
      sizeof(athomic_provider_vtable), &create,          &destroy,
      &start,                          &stop,            &publish,
      &interest_add,                   &interest_remove, &instance_capabilities};
};

}  // namespace detail

/// One declared setting (ABI 1.2), for ATHOMIC_PROVIDER_WITH_SETTINGS. @p path is relative to
/// events.provider; @p default_json is JSON text or nullptr.
constexpr athomic_setting setting(const char* path, athomic_setting_type type,
                                  const char* default_json, const char* description,
                                  double min = 0, double max = 0, uint32_t flags = 0,
                                  const char* const* choices = nullptr) noexcept {
  return athomic_setting{sizeof(athomic_setting), path, type, flags, default_json, description,
                         min, max, choices};
}

}  // namespace athomic::sdk

/// Export @p ProviderClass as this plugin's provider. Use once, at namespace scope, in one
/// source file. ProviderClass needs a constructor (athomic::sdk::Host, std::string_view json).
#define ATHOMIC_PROVIDER(ProviderClass, name_literal, version_literal, capability_flags)     \
  ATHOMIC_PROVIDER_WITH_SETTINGS(ProviderClass, name_literal, version_literal,              \
                                 capability_flags, nullptr)

/// The same, declaring the provider's settings (ABI 1.2): @p settings_list names a
/// NULL-terminated array of `const athomic_setting*`. The host validates events.provider
/// against it and hands the values back through Host::setting<T>().
#define ATHOMIC_PROVIDER_WITH_SETTINGS(ProviderClass, name_literal, version_literal,         \
                                       capability_flags, settings_list)                     \
  extern "C" ATHOMIC_PLUGIN_EXPORT const athomic_provider_info* athomic_provider_entry(     \
      const athomic_host_api* /*host*/) {                                                  \
    static const athomic_provider_info info{                                               \
        sizeof(athomic_provider_info),                                                     \
        ATHOMIC_ABI_VERSION_MAJOR,                                                         \
        ATHOMIC_ABI_VERSION_MINOR,                                                         \
        name_literal,                                                                      \
        version_literal,                                                                   \
        (capability_flags),                                                                \
        &::athomic::sdk::detail::Adapter<ProviderClass>::vtable,                           \
        (settings_list)};                                                                  \
    return &info;                                                                          \
  }                                                                                        \
  static_assert(true, "")

#endif  // ATHOMIC_SDK_PROVIDER_HPP
