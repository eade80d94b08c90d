// The host side of the ABI: the host services table and a C++ face on one provider instance.
#pragma once

#include "plugin_loader.h"

#include <athomic/sdk/provider.h>

#include <string>
#include <string_view>

namespace athomic::detail {

class BusCore;

// The table handed to every plugin; static, valid until process exit.
const athomic_host_api& host_api() noexcept;

// One created provider; errors become EventBusError naming the provider and its message.
class ProviderInstance {
 public:
  // @p settings_origin names where the settings came from, for initialisation errors.
  ProviderInstance(const LoadedPlugin& plugin, BusCore* host, std::string_view config_json,
                   const std::string& settings_origin);
  ~ProviderInstance();
  ProviderInstance(const ProviderInstance&) = delete;
  ProviderInstance& operator=(const ProviderInstance&) = delete;

  void start();
  void stop() noexcept;
  // Returns the status; on failure @p error receives the provider's message.
  athomic_status publish(const athomic_message& m, std::string& error) noexcept {
    return plugin_.info->vtable->publish(self_, &m, sink(error));
  }
  void interest_add(std::string_view topic);
  void interest_remove(std::string_view topic) noexcept;

  const LoadedPlugin& plugin() const noexcept { return plugin_; }
  bool has(uint64_t capability) const noexcept { return (capabilities_ & capability) != 0; }
  uint64_t capabilities() const noexcept { return capabilities_; }

  static athomic_error_sink* sink(std::string& s) noexcept {
    return reinterpret_cast<athomic_error_sink*>(&s);
  }

 private:
  LoadedPlugin plugin_;
  // honoured_capabilities() of the plugin, less what the instance lacks (ABI 1.4)
  uint64_t capabilities_;
  athomic_provider* self_ = nullptr;
};

}  // namespace athomic::detail
