#include "provider_host.h"

#include "bus_core.h"
#include "pattern_index.h"

#include <athomic/errors.h>

#include <fmt/format.h>

#include <chrono>

namespace athomic::detail {

namespace {

std::string_view view(athomic_str s) {
  return s.size == 0 ? std::string_view{} : std::string_view{s.data, s.size};
}

BusCore* core(athomic_host_ctx* ctx) { return reinterpret_cast<BusCore*>(ctx); }

void host_error_set(athomic_error_sink* sink, athomic_str message) {
  if (!sink) return;
  try {
    reinterpret_cast<std::string*>(sink)->assign(view(message));
  } catch (...) {
  }
}

void host_log(athomic_host_ctx* ctx, athomic_log_level level, athomic_str message) {
  static constexpr spdlog::level::level_enum kLevels[] = {
      spdlog::level::trace, spdlog::level::debug, spdlog::level::info, spdlog::level::warn,
      spdlog::level::err};
  const auto l = static_cast<unsigned>(level) <= ATHOMIC_LOG_ERROR ? kLevels[level]
                                                                   : spdlog::level::err;
  try {
    core(ctx)->provider_logger().log(l, "{}", view(message));
  } catch (...) {
  }
}

athomic_status host_deliver_event(athomic_host_ctx* ctx, athomic_host_event* event) {
  return core(ctx)->deliver_event(reinterpret_cast<LocalDelivery*>(event));
}

athomic_status host_deliver_message(athomic_host_ctx* ctx, athomic_str name, athomic_str body) {
  return core(ctx)->deliver_message(view(name), view(body));
}

uint64_t host_clock_now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

void host_publish_done(athomic_host_ctx* ctx, uint64_t token, athomic_status status,
                       int64_t receivers, athomic_str error) {
  core(ctx)->publish_done(token, status, receivers, view(error));
}

void host_report_state(athomic_host_ctx* ctx, athomic_connection_state state,
                       athomic_str detail) {
  core(ctx)->report_state(state, view(detail));
}

void host_report_dropped(athomic_host_ctx* ctx, athomic_str event_name, uint64_t count,
                         athomic_str reason) {
  core(ctx)->report_dropped(view(event_name), count, view(reason));
}

athomic_status host_deliver_message_to(athomic_host_ctx* ctx, athomic_str name, athomic_str body,
                                      athomic_str interest, athomic_interest_kind kind) {
  return core(ctx)->deliver_message_to(view(name), view(body), view(interest), kind);
}

athomic_status host_deliver_received(athomic_host_ctx* ctx, const athomic_received* message) {
  if (!message) return ATHOMIC_ERR_INVALID_ARGUMENT;
  return core(ctx)->deliver_received(*message);
}

athomic_status host_setting(athomic_host_ctx* ctx, athomic_str path, athomic_setting_value* out) {
  if (!out) return ATHOMIC_ERR_INVALID_ARGUMENT;
  return core(ctx)->provider_setting(view(path), *out) ? ATHOMIC_OK
                                                       : ATHOMIC_ERR_INVALID_ARGUMENT;
}

constexpr athomic_host_api kHostApi{sizeof(athomic_host_api),
                                    ATHOMIC_ABI_VERSION_MAJOR,
                                    ATHOMIC_ABI_VERSION_MINOR,
                                    &host_error_set,
                                    &host_log,
                                    &host_deliver_event,
                                    &host_deliver_message,
                                    &host_clock_now_ns,
                                    ATHOMIC_VERSION,
                                    &host_publish_done,
                                    &host_report_state,
                                    &host_report_dropped,
                                    &host_setting,
                                    &host_deliver_message_to,
                                    &host_deliver_received};

}  // namespace

const athomic_host_api& host_api() noexcept { return kHostApi; }

ProviderInstance::ProviderInstance(const LoadedPlugin& plugin, BusCore* host,
                                   std::string_view config_json,
                                   const std::string& settings_origin)
    : plugin_(plugin), capabilities_(honoured_capabilities(*plugin.info)) {
  std::string error;
  const athomic_status st = plugin_.info->vtable->create(
      &kHostApi, reinterpret_cast<athomic_host_ctx*>(host), {config_json.data(), config_json.size()},
      &self_, sink(error));
  if (st != ATHOMIC_OK || !self_) {
    throw PluginError(fmt::format("provider '{}' ({}) failed to initialise: {} ({}; settings from {})",
                                  plugin_.info->name, plugin_.file,
                                  error.empty() ? "no message" : error, athomic_status_text(st),
                                  settings_origin));
  }
  const athomic_provider_vtable& vt = *plugin_.info->vtable;
  if (ATHOMIC_STRUCT_HOLDS(vt, athomic_provider_vtable, instance_capabilities) &&
      vt.instance_capabilities) {
    capabilities_ &= vt.instance_capabilities(self_);
  }
}

ProviderInstance::~ProviderInstance() {
  if (self_) plugin_.info->vtable->destroy(self_);
}

void ProviderInstance::start() {
  std::string error;
  const athomic_status st = plugin_.info->vtable->start(self_, sink(error));
  if (st != ATHOMIC_OK) {
    throw EventBusError(fmt::format("provider '{}' failed to start: {} ({})", plugin_.info->name,
                                    error.empty() ? "no message" : error,
                                    athomic_status_text(st)));
  }
}

void ProviderInstance::stop() noexcept { plugin_.info->vtable->stop(self_); }

void ProviderInstance::interest_add(std::string_view topic) {
  std::string error;
  const athomic_status st = plugin_.info->vtable->interest_add(
      self_, {topic.data(), topic.size()},
      is_pattern(topic) ? ATHOMIC_INTEREST_PATTERN : ATHOMIC_INTEREST_EXACT, sink(error));
  if (st != ATHOMIC_OK) {
    throw EventBusError(fmt::format("provider '{}' could not subscribe to '{}': {} ({})",
                                    plugin_.info->name, topic, error, athomic_status_text(st)));
  }
}

void ProviderInstance::interest_remove(std::string_view topic) noexcept {
  plugin_.info->vtable->interest_remove(
      self_, {topic.data(), topic.size()},
      is_pattern(topic) ? ATHOMIC_INTEREST_PATTERN : ATHOMIC_INTEREST_EXACT);
}

}  // namespace athomic::detail
