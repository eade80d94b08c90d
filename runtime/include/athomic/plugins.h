// Where provider plugins are looked for, and which backends are there.
#pragma once

#include <athomic/export.h>

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

}  // namespace athomic
