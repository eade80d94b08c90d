// Whether a plugin file may be loaded, decided before any of its code runs — the checks ssh
// makes of authorized_keys: code that another user can replace would run inside this process.
#pragma once

#include <optional>
#include <string>

namespace athomic::detail {

struct PluginFileCheck {
  // The file after every symlink; the path to open, so that a link changed after the check
  // cannot redirect the load. Empty when it could not be resolved.
  std::string resolved;
  // Why the file must not be loaded, as a complete message naming @p path, the offending file
  // or folder, its mode and owner, and the fix; nullopt when it may be loaded.
  std::optional<std::string> refusal;
};

// Checks @p path: it must resolve to a regular file owned by root or the effective user and
// not writable by group or others; every folder from it up to / (those of the path as given
// too, where links live) must be owned by root or the effective user and not writable by group
// or others, except a sticky folder owned by root (such as /tmp). Does not open the file.
PluginFileCheck check_plugin_file(const std::string& path);

}  // namespace athomic::detail
