// Finding and loading provider plugins (Boost.DLL). Libraries are never unloaded.
#pragma once

#include <athomic/sdk/provider.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace athomic {
struct EventsSettings;
struct PluginFileReport;
}

namespace athomic::detail {

// ABI 1.x is append-only: a plugin built against any 1.x header hands over structs at least as
// large as their 1.0 layout, which ends with the last field 1.0 defined. The loader requires
// these sizes, never today's sizeof, so a minor that appends a field still loads older plugins.
inline constexpr uint32_t kProviderInfoSize_1_0 =
    offsetof(athomic_provider_info, vtable) + sizeof(athomic_provider_info::vtable);
inline constexpr uint32_t kProviderVtableSize_1_0 =
    offsetof(athomic_provider_vtable, interest_remove) +
    sizeof(athomic_provider_vtable::interest_remove);

// Whether struct @p s, as its writer compiled it (s.struct_size bytes), holds @p field of
// @p type: a field appended after 1.0 is read only when it does.
#define ATHOMIC_STRUCT_HOLDS(s, type, field) \
  ((s).struct_size >= offsetof(type, field) + sizeof((s).field))

// The capabilities the host acts on: those @p info declares, less the bits an older minor
// declared with another (or no) meaning — ATHOMIC_CAP_HEADERS before 1.3, ATHOMIC_CAP_LOOPBACK
// before 1.5 — and ATHOMIC_CAP_LOOPBACK without ATHOMIC_CAP_IN_PROCESS.
inline uint64_t honoured_capabilities(const athomic_provider_info& info) noexcept {
  uint64_t caps = info.capabilities;
  if (info.abi_minor < 3) caps &= ~uint64_t{ATHOMIC_CAP_HEADERS};
  if (info.abi_minor < 5 || !(caps & ATHOMIC_CAP_IN_PROCESS) || (caps & ATHOMIC_CAP_REMOTE))
    caps &= ~uint64_t{ATHOMIC_CAP_LOOPBACK};
  return caps;
}

struct LoadedPlugin {
  const athomic_provider_info* info = nullptr;  // plugin-owned, static storage
  std::string file;                             // the path it was loaded from
};

struct SearchDir {
  std::string path;
  std::string why;  // "events.plugins_dir", "ATHOMIC_PLUGIN_PATH", ...
};

// "athomic_provider_<backend>.so"
std::string plugin_file_name(const std::string& backend);

// The folders searched for plugins, in order (DESIGN §9): events.plugins_dir,
// ATHOMIC_PLUGIN_PATH (colon-separated), <dir of libathomic>/athomic/plugins,
// <dir of the executable>/../<libdir>/athomic/plugins (libdir: CMAKE_INSTALL_LIBDIR,
// lib/<multiarch triplet>). Missing folders are kept (and reported).
std::vector<SearchDir> plugin_search_path(const EventsSettings& settings);

// Backends whose plugin file exists in any of @p dirs, sorted.
std::vector<std::string> available_backends(const std::vector<SearchDir>& dirs);

// Resolves @p backend along the search path and loads it.
// @throws PluginError listing what was searched and which backends exist.
LoadedPlugin load_provider_plugin(const std::string& backend, const EventsSettings& settings);

// Loads one file. @throws PluginError naming the file and what is wrong with it.
LoadedPlugin load_plugin_file(const std::string& path);

// The plugin files ("athomic_provider_*.so") in @p dir, sorted by name.
std::vector<std::string> plugin_files_in(const std::string& dir);

// Loads @p path as load_plugin_file does, and reports the verdict instead of throwing it.
PluginFileReport inspect_plugin_file(const std::string& path);

}  // namespace athomic::detail
