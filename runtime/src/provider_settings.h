// A provider's own settings (ABI 1.2): the keys it declares, validated like the host's own —
// errors name where a value came from (file:line or the NALA_ variable), the key path, the
// value and what is allowed, with a did-you-mean for misspelt keys — and handed back to it
// typed, with defaults.
#pragma once

#include <athomic/sdk/provider.h>
#include <athomic/settings.h>

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace athomic::detail {

class ProviderSettings {
 public:
  // Validates events.provider of @p settings against @p declared (NULL-terminated) for the
  // provider called @p provider. @throws ConfigError.
  ProviderSettings(const athomic_setting* const* declared, const EventsSettings& settings,
                   std::string_view provider);

  // The value of a declared key (its default when unset). False for an undeclared path, or a
  // key with neither value nor default.
  bool get(std::string_view path, athomic_setting_value& out) const;

  // events.provider with every declared default filled in: what the provider's create gets.
  const nlohmann::json& effective() const noexcept { return effective_; }

  // One line per declared key, for `athomic config`.
  struct Row {
    std::string path;         // "events.provider.provider.provider.uri"
    std::string value;        // JSON text, secrets masked; "(unset)" when neither set nor default
    std::string origin;       // "config/settings.toml:9", "environment variable ...", "default"
    std::string description;
  };
  std::vector<Row> describe() const;

 private:
  struct Key {
    const athomic_setting* decl;
    nlohmann::json value;  // null: unset, no default
    std::string origin;
  };
  std::map<std::string, Key, std::less<>> keys_;
  nlohmann::json effective_;
};

}  // namespace athomic::detail
