// Where provider plugins are looked for, and which backends are there.
#pragma once

#include <athomic/export.h>

#include <cstdint>
#include <string>
#include <vector>

namespace athomic {

struct EventsSettings;

struct PluginSearchDir {
  std::string path;
  std::string reason;  ///< "events.plugins_dir", "ATHOMIC_PLUGIN_PATH", "next to libathomic.so.0", ...
};

/// The folders searched for provider plugins, in order (docs/CONFIGURATION.md, "Finding plugins").
ATHOMIC_API std::vector<PluginSearchDir> plugin_search_path(const EventsSettings& settings);

/// Backends with a plugin file in any of the searched folders, sorted.
ATHOMIC_API std::vector<std::string> available_backends(const EventsSettings& settings);

/// The file name a backend's plugin must have: "athomic_provider_<backend>.so".
ATHOMIC_API std::string plugin_file_name(const std::string& backend);

/// One plugin file on the search path, as the loader judges it.
struct PluginFileReport {
  std::string file;       ///< the path found
  std::string backend;    ///< the backend its file name stands for
  bool shadowed = false;  ///< a folder searched earlier has a file for the same backend
  bool loads = false;     ///< whether the loader accepts it
  std::string problem;    ///< why it does not load: the loader's message
  /// Whether it was opened, so its code ran. A file refused before that — by the permission
  /// check, or because it is not a shared library — was not.
  bool opened = false;
  /// Whether its entry point answered: then the ABI below is known, and so are the name and
  /// version when the ABI major is this host's.
  bool described = false;
  std::string name;     ///< the backend name it declares
  std::string version;  ///< its own version
  uint16_t abi_major = 0;
  uint16_t abi_minor = 0;
};

/// Every plugin file in the searched folders, in search order, each checked as the loader
/// checks it. A file that fails the permission check is not opened; one that is opened stays
/// loaded (plugins are never unloaded).
ATHOMIC_API std::vector<PluginFileReport> inspect_plugin_files(const EventsSettings& settings);

/// One key a provider declares (ABI 1.2), with its effective value.
struct ProviderSettingReport {
  std::string key;          ///< "events.provider.provider.provider.uri"
  std::string value;        ///< as JSON, secrets masked; "(unset)" with neither value nor default
  std::string origin;       ///< "config/settings.toml:9", "environment variable …", or "default"
  std::string description;  ///< the provider's one line on it
};

/// The keys the configured backend's provider declares, each with the value the settings give
/// it (validated exactly as when a bus is built) — for `athomic config`. Empty when the
/// provider declares none (it then reads events.provider unvalidated).
/// @throws PluginError when the plugin cannot be loaded, ConfigError for an invalid value.
ATHOMIC_API std::vector<ProviderSettingReport> describe_provider_settings(
    const EventsSettings& settings);

}  // namespace athomic
