#include "plugin_file_check.h"

#include <fmt/format.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

namespace athomic::detail {

namespace {

namespace fs = std::filesystem;

std::string user_name(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(4096);
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found) return pw.pw_name;
  return fmt::format("uid {}", uid);
}

std::string owner_text(uid_t uid) {
  const std::string name = user_name(uid);
  return name.starts_with("uid ") ? name : fmt::format("{} (uid {})", name, uid);
}

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a fifo";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

// Who besides the owner may write, by the mode's bits; empty when nobody may.
std::string other_writers(mode_t mode) {
  const bool group = (mode & S_IWGRP) != 0;
  const bool others = (mode & S_IWOTH) != 0;
  if (group && others) return "its group and other users";
  if (group) return "its group";
  if (others) return "other users";
  return "";
}

// Why @p p (the file, or one of the folders above it) makes the plugin unsafe; empty if not.
std::string unsafe(const fs::path& p, const struct stat& st, bool is_file) {
  const char* what = is_file ? "the file" : "the folder";
  const uid_t me = ::geteuid();
  if (st.st_uid != 0 && st.st_uid != me) {
    return fmt::format(
        "{} {} is owned by {}, not by root or the user running this process ({}), "
        "so its owner could replace the code this process would run. Fix: chown "
        "root {} (or move the plugin to a folder you own)",
        what, p.string(), owner_text(st.st_uid), owner_text(me), p.string());
  }
  // A sticky folder owned by root (/tmp) lets no one replace another user's entries.
  if (!is_file && (st.st_mode & S_ISVTX) && st.st_uid == 0) return "";
  const std::string writers = other_writers(st.st_mode);
  if (writers.empty()) return "";
  return fmt::format(
      "{} {} is writable by {} (mode {:04o}, owner {}), so they could replace the "
      "code this process would run. Fix: chmod go-w {}",
      what, p.string(), writers, st.st_mode & 07777, owner_text(st.st_uid), p.string());
}

// The first unsafe folder from @p dir up to /, or empty.
std::string unsafe_folders(fs::path dir) {
  for (;;) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
      return fmt::format("the folder {} cannot be examined: {}", dir.string(),
                         std::strerror(errno));
    }
    if (auto why = unsafe(dir, st, false); !why.empty()) return why;
    if (dir == dir.root_path() || !dir.has_parent_path()) return "";
    dir = dir.parent_path();
  }
}

}  // namespace

PluginFileCheck check_plugin_file(const std::string& path) {
  PluginFileCheck out;
  const auto refuse = [&](const std::string& why) {
    const bool moved =
        !out.resolved.empty() && out.resolved != fs::absolute(path).lexically_normal().string();
    out.refusal = fmt::format("provider plugin {}{}: refusing to load it: {}", path,
                              moved ? fmt::format(" (resolved: {})", out.resolved) : "", why);
    return out;
  };

  char resolved[PATH_MAX];
  if (!::realpath(path.c_str(), resolved)) {
    out.refusal =
        fmt::format("provider plugin {}: cannot be resolved: {}", path, std::strerror(errno));
    return out;
  }
  out.resolved = resolved;

  struct stat st {};
  if (::stat(resolved, &st) != 0) {
    out.refusal =
        fmt::format("provider plugin {}: cannot be examined: {}", path, std::strerror(errno));
    return out;
  }
  if (!S_ISREG(st.st_mode)) {
    out.refusal = fmt::format(
        "provider plugin {}: is not a regular file (it is {}); remove it or "
        "put the plugin's .so file there",
        path, kind_of(st.st_mode));
    return out;
  }
  if (auto why = unsafe(resolved, st, true); !why.empty()) return refuse(why);
  if (auto why = unsafe_folders(fs::path(resolved).parent_path()); !why.empty()) return refuse(why);
  // Where the name was found matters too when it is a link: whoever can write that folder can
  // point the link elsewhere.
  const fs::path given = fs::absolute(path).lexically_normal();
  if (given.parent_path() != fs::path(resolved).parent_path()) {
    if (auto why = unsafe_folders(given.parent_path()); !why.empty()) return refuse(why);
  }
  return out;
}

}  // namespace athomic::detail
