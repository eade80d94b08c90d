#include "plugin_loader.h"

#include "plugin_file_check.h"
#include "provider_host.h"
#include "text_util.h"

#include <athomic/errors.h>
#include <athomic/log.h>
#include <athomic/plugins.h>
#include <athomic/settings.h>

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <dlfcn.h>
#include <sys/stat.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>

namespace athomic::detail {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPrefix = "athomic_provider_";
constexpr std::string_view kSuffix = ".so";

bool valid_backend_name(const std::string& b) {
  return !b.empty() && b.size() <= 64 && std::all_of(b.begin(), b.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// A file as the kernel knows it: a file replaced on disk is a new one, and dlopen loads it anew.
using FileIdentity = std::pair<dev_t, ino_t>;

struct Refusal {
  std::string message;
  const athomic_provider_info* info;  // what the entry point answered; may be null
};

// Libraries stay loaded until process exit: unloading while a callback, deleter or exception
// from a plugin is alive is undefined behaviour. Keyed by canonical path so a plugin used by
// several buses is loaded once.
struct LoadedRegistry {
  std::mutex mutex;
  std::map<std::string, LoadedPlugin> by_path;
  // Every library opened, accepted or refused.
  std::vector<boost::dll::shared_library> libraries;
  // Why an opened library was refused: its entry point is called once per load, not per try.
  std::map<FileIdentity, Refusal> refused;
};

LoadedRegistry& registry() {
  static auto* r = new LoadedRegistry();  // never destroyed, on purpose
  return *r;
}

std::string describe(const std::vector<SearchDir>& dirs) {
  std::string out;
  for (const auto& d : dirs) {
    std::error_code ec;
    const bool exists = fs::is_directory(d.path, ec);
    out += fmt::format("\n  {} ({}){}", d.path, d.why, exists ? "" : " [does not exist]");
  }
  return out;
}

std::string caps_text(uint64_t caps) {
  static constexpr std::pair<uint64_t, const char*> kNames[] = {
      {ATHOMIC_CAP_IN_PROCESS, "in-process"}, {ATHOMIC_CAP_REMOTE, "remote"},
      {ATHOMIC_CAP_PATTERN, "pattern"},       {ATHOMIC_CAP_ORDERED, "ordered"},
      {ATHOMIC_CAP_ACKNOWLEDGE, "acknowledge"}, {ATHOMIC_CAP_HEADERS, "headers"},
      {ATHOMIC_CAP_LOOPBACK, "loopback"}};
  std::string out;
  for (const auto& [bit, name] : kNames) {
    if (caps & bit) out += out.empty() ? name : fmt::format(",{}", name);
  }
  return out.empty() ? "none" : out;
}

// Calls the entry point. @throws PluginError naming @p path when there is none.
const athomic_provider_info* call_entry(boost::dll::shared_library& lib, const std::string& path) {
  if (!lib.has(ATHOMIC_PROVIDER_ENTRY_SYMBOL)) {
    throw PluginError(fmt::format(
        "provider plugin {}: no symbol '{}': it is not an athomic provider (export it with "
        "ATHOMIC_PROVIDER(...) from <athomic/sdk/provider.hpp>)",
        path, ATHOMIC_PROVIDER_ENTRY_SYMBOL));
  }
  auto entry = lib.get<const athomic_provider_info*(const athomic_host_api*)>(
      ATHOMIC_PROVIDER_ENTRY_SYMBOL);
  return entry(&host_api());
}

// Checks what the entry point answered. @throws PluginError naming @p path.
void validate(const athomic_provider_info* info, const std::string& path) {
  if (!info) {
    throw PluginError(fmt::format("provider plugin {}: its entry point declined to initialise "
                                  "with host ABI {}.{}",
                                  path, ATHOMIC_ABI_VERSION_MAJOR, ATHOMIC_ABI_VERSION_MINOR));
  }
  // Any size that covers the 1.0 layout: later minors only append.
  if (info->struct_size < kProviderInfoSize_1_0) {
    throw PluginError(fmt::format("provider plugin {}: its description is {} bytes, shorter than "
                                  "ABI {}.0 requires ({} bytes)",
                                  path, info->struct_size, ATHOMIC_ABI_VERSION_MAJOR,
                                  kProviderInfoSize_1_0));
  }
  if (info->abi_major != ATHOMIC_ABI_VERSION_MAJOR) {
    throw PluginError(fmt::format(
        "provider plugin {}: built for ABI {}.{}, but this host speaks ABI {}.{} (the major "
        "versions must match); rebuild the plugin against this host's SDK",
        path, info->abi_major, info->abi_minor, ATHOMIC_ABI_VERSION_MAJOR,
        ATHOMIC_ABI_VERSION_MINOR));
  }
  if (info->abi_minor > ATHOMIC_ABI_VERSION_MINOR) {
    throw PluginError(fmt::format(
        "provider plugin {}: built for ABI {}.{}, newer than this host's ABI {}.{}; upgrade the "
        "host or rebuild the plugin against this host's SDK",
        path, info->abi_major, info->abi_minor, ATHOMIC_ABI_VERSION_MAJOR,
        ATHOMIC_ABI_VERSION_MINOR));
  }
  const athomic_provider_vtable* vt = info->vtable;
  if (!info->name || !info->version || !vt || vt->struct_size < kProviderVtableSize_1_0 ||
      !vt->create || !vt->destroy || !vt->start || !vt->stop || !vt->publish ||
      !vt->interest_add || !vt->interest_remove) {
    throw PluginError(fmt::format(
        "provider plugin {}: its provider table is incomplete (a name, a version and every "
        "function of ABI {}.0 are required)",
        path, ATHOMIC_ABI_VERSION_MAJOR));
  }
  if (!(info->capabilities & (ATHOMIC_CAP_IN_PROCESS | ATHOMIC_CAP_REMOTE))) {
    throw PluginError(fmt::format("provider plugin {}: declares neither the in-process nor the "
                                  "remote capability, so the host cannot feed it events",
                                  path));
  }
}

// "athomic_provider_<backend>.so" -> backend; empty for any other file name.
std::string backend_of(const std::string& path) {
  const std::string f = fs::path(path).filename().string();
  if (f.size() <= kPrefix.size() + kSuffix.size() || !f.starts_with(kPrefix) || !f.ends_with(kSuffix)) {
    return "";
  }
  return f.substr(kPrefix.size(), f.size() - kPrefix.size() - kSuffix.size());
}

}  // namespace

std::string plugin_file_name(const std::string& backend) {
  return fmt::format("{}{}{}", kPrefix, backend, kSuffix);
}

std::vector<SearchDir> plugin_search_path(const EventsSettings& settings) {
  std::vector<SearchDir> dirs;
  if (!settings.plugins_dir.empty()) dirs.push_back({settings.plugins_dir, "events.plugins_dir"});
  if (const char* env = std::getenv("ATHOMIC_PLUGIN_PATH"); env && *env) {
    for (auto part : split(env, ':')) {
      if (!part.empty()) dirs.push_back({std::string(part), "ATHOMIC_PLUGIN_PATH"});
    }
  }
  boost::dll::fs::error_code ec;
  const auto lib = boost::dll::this_line_location(ec);
  if (!ec) {
    dirs.push_back({(fs::path(lib.parent_path().string()) / "athomic" / "plugins").lexically_normal().string(),
                    "next to " + lib.filename().string()});
  }
  const auto exe = boost::dll::program_location(ec);
  if (!ec) {
    dirs.push_back(
        {(fs::path(exe.parent_path().string()) / ".." / ATHOMIC_LIBDIR / "athomic" / "plugins")
             .lexically_normal()
             .string(),
         "relative to the executable"});
  }
  // Remove repeats, keeping the first (highest-priority) reason.
  std::set<std::string> seen;
  std::erase_if(dirs, [&](const SearchDir& d) {
    std::error_code e;
    auto key = fs::weakly_canonical(d.path, e).string();
    return !seen.insert(e ? d.path : key).second;
  });
  return dirs;
}

std::vector<std::string> plugin_files_in(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!backend_of(it->path().string()).empty()) files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::string> available_backends(const std::vector<SearchDir>& dirs) {
  std::set<std::string> names;
  for (const auto& d : dirs) {
    for (const auto& f : plugin_files_in(d.path)) names.insert(backend_of(f));
  }
  return {names.begin(), names.end()};
}

LoadedPlugin load_provider_plugin(const std::string& backend, const EventsSettings& settings) {
  // Loaded settings know where the backend was chosen; settings built in code do not.
  const std::string where =
      settings.origins.empty() ? "" : settings.origin_of("events.provider.backend") + ": ";
  if (!valid_backend_name(backend)) {
    throw PluginError(fmt::format(
        "{}events.provider.backend = \"{}\" is not a valid backend name: use lowercase letters, "
        "digits, '_' or '-' (at most 64)",
        where, backend));
  }
  const auto dirs = detail::plugin_search_path(settings);
  const std::string file = plugin_file_name(backend);
  for (const auto& d : dirs) {
    std::error_code ec;
    const fs::path candidate = fs::path(d.path) / file;
    if (fs::exists(candidate, ec)) return load_plugin_file(candidate.string());
  }
  const auto available = detail::available_backends(dirs);
  std::string hint;
  if (auto best = closest_match(backend, available)) {
    hint = fmt::format(" Did you mean \"{}\"?", *best);
  }
  throw PluginError(fmt::format(
      "{}no provider plugin for backend \"{}\" (file {}).{}\nSearched:{}\nAvailable backends: {}",
      where, backend, file, hint, describe(dirs),
      available.empty() ? std::string("none found") : fmt::format("{}", fmt::join(available, ", "))));
}

LoadedPlugin load_plugin_file(const std::string& path) {
  std::error_code fec;
  const std::string key = fs::weakly_canonical(path, fec).string();
  auto& reg = registry();
  std::lock_guard lock(reg.mutex);
  if (auto it = reg.by_path.find(key); it != reg.by_path.end()) return it->second;

  // Everything about the file is decided before it is opened: opening runs its constructors.
  const PluginFileCheck check = check_plugin_file(path);
  if (check.refusal) throw PluginError(*check.refusal);
  struct stat st {};
  const FileIdentity identity =
      ::stat(check.resolved.c_str(), &st) == 0 ? FileIdentity{st.st_dev, st.st_ino} : FileIdentity{};
  if (auto it = reg.refused.find(identity); it != reg.refused.end()) {
    throw PluginError(it->second.message);
  }
  {
    std::ifstream in(check.resolved, std::ios::binary);
    char magic[4] = {};
    if (!in.read(magic, 4) || std::string_view(magic, 4) != "\x7f" "ELF") {
      throw PluginError(fmt::format(
          "provider plugin {}: not a shared object (no ELF header); rebuild the plugin or remove "
          "the file",
          path));
    }
  }
  boost::dll::shared_library lib;
  boost::dll::fs::error_code ec;
  dlerror();  // clear any stale message
  // The resolved path: a link changed after the check cannot redirect the load.
  lib.load(check.resolved, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
  if (ec || !lib.is_loaded()) {
    const char* why = dlerror();
    throw PluginError(fmt::format("provider plugin {}: cannot be loaded: {}", path,
                                  why ? why : ec.message()));
  }
  // Its code has run (constructors, perhaps the entry point): from here on the library stays
  // loaded whatever the verdict, and a refused one is not asked again.
  reg.libraries.push_back(lib);
  const athomic_provider_info* info = nullptr;
  try {
    info = call_entry(lib, path);
    validate(info, path);
  } catch (const PluginError& e) {
    reg.refused.emplace(identity, Refusal{e.what(), info});
    throw;
  }
  LoadedPlugin loaded{info, path};
  reg.by_path.emplace(key, loaded);
  auto log = get_logger("athomic.plugins");
  log->info("loaded provider '{}' {} (ABI {}.{}, capabilities: {}) from {}", info->name,
            info->version, info->abi_major, info->abi_minor, caps_text(honoured_capabilities(*info)),
            path);
  // The file name chose it; a different declared name is a sign of a renamed or misbuilt file.
  if (const std::string backend = backend_of(path); !backend.empty() && backend != info->name) {
    log->warn("provider plugin {} declares the name '{}', but its file name is for backend '{}'; "
              "rename the file to {} or rebuild the plugin with the name '{}'",
              path, info->name, backend, plugin_file_name(info->name), backend);
  }
  return loaded;
}

namespace {

// What an entry point declared, as far as its ABI lets the host read it.
void describe(PluginFileReport& r, const athomic_provider_info* info) {
  if (!info || !ATHOMIC_STRUCT_HOLDS(*info, athomic_provider_info, abi_minor)) return;
  r.described = true;
  r.abi_major = info->abi_major;
  r.abi_minor = info->abi_minor;
  // Beyond the version fields, another major's layout is unknown.
  if (info->abi_major != ATHOMIC_ABI_VERSION_MAJOR || info->struct_size < kProviderInfoSize_1_0) {
    return;
  }
  if (info->name) r.name = info->name;
  if (info->version) r.version = info->version;
}

// The refusal recorded for the library at @p path, if it was opened and refused.
std::optional<Refusal> refusal_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  auto& reg = registry();
  std::lock_guard lock(reg.mutex);
  if (auto it = reg.refused.find({st.st_dev, st.st_ino}); it != reg.refused.end()) return it->second;
  return std::nullopt;
}

}  // namespace

PluginFileReport inspect_plugin_file(const std::string& path) {
  PluginFileReport r;
  r.file = path;
  r.backend = backend_of(path);
  try {
    const LoadedPlugin p = load_plugin_file(path);
    r.loads = r.opened = true;
    describe(r, p.info);
  } catch (const PluginError& e) {
    r.problem = e.what();
    if (const auto refusal = refusal_of(path)) {
      r.opened = true;
      describe(r, refusal->info);
    }
  }
  return r;
}

}  // namespace athomic::detail

namespace athomic {

std::vector<PluginFileReport> inspect_plugin_files(const EventsSettings& settings) {
  std::vector<PluginFileReport> out;
  std::set<std::string> seen;
  for (const auto& d : detail::plugin_search_path(settings)) {
    for (const auto& f : detail::plugin_files_in(d.path)) {
      auto r = detail::inspect_plugin_file(f);
      r.shadowed = !seen.insert(r.backend).second;
      out.push_back(std::move(r));
    }
  }
  return out;
}


std::vector<PluginSearchDir> plugin_search_path(const EventsSettings& settings) {
  std::vector<PluginSearchDir> out;
  for (auto& d : detail::plugin_search_path(settings)) out.push_back({d.path, d.why});
  return out;
}

std::vector<std::string> available_backends(const EventsSettings& settings) {
  return detail::available_backends(detail::plugin_search_path(settings));
}

std::string plugin_file_name(const std::string& backend) {
  return detail::plugin_file_name(backend);
}

}  // namespace athomic
