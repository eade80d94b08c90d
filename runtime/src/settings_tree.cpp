#include "settings_tree.h"
#include "settings_yaml.h"

#include "text_util.h"

#include <athomic/errors.h>

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace athomic::detail {

namespace {

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

// ---- TOML ------------------------------------------------------------------------------------

nlohmann::json toml_value(const toml::node& n, const std::string& path, const std::string& file,
                          std::map<std::string, std::string>& origin) {
  origin[path] = fmt::format("{}:{}", file, n.source().begin.line);
  if (const auto* t = n.as_table()) {
    nlohmann::json obj = nlohmann::json::object();
    for (const auto& [k, v] : *t) {
      obj[std::string(k.str())] = toml_value(v, join(path, k.str()), file, origin);
    }
    return obj;
  }
  if (const auto* a = n.as_array()) {
    nlohmann::json arr = nlohmann::json::array();
    std::size_t i = 0;
    for (const auto& v : *a) arr.push_back(toml_value(v, fmt::format("{}[{}]", path, i++), file, origin));
    return arr;
  }
  if (auto s = n.value_exact<std::string>()) return *s;
  if (auto b = n.value_exact<bool>()) return *b;
  if (auto i = n.value_exact<int64_t>()) return *i;
  if (auto d = n.value_exact<double>()) return *d;
  // Dates and times: kept as their TOML text.
  std::ostringstream os;
  n.visit([&](const auto& leaf) { os << leaf; });
  return os.str();
}

// ---- environments ----------------------------------------------------------------------------

// Re-roots origins recorded under "<env>." to the environment-free path.
SettingsTree select(const nlohmann::json& whole, const std::map<std::string, std::string>& origin,
                    const std::string& section) {
  SettingsTree t;
  auto it = whole.find(section);
  if (it == whole.end() || !it->is_object()) return t;
  t.root = *it;
  const std::string prefix = section + ".";
  for (const auto& [path, where] : origin) {
    if (path.starts_with(prefix)) t.origin[path.substr(prefix.size())] = where;
  }
  return t;
}

// Whether @p whole is written in environments: it has a [default] table or one for @p env, or,
// having no top-level [events] of its own, a top-level table that holds an [events] table
// ([production.events] alone). Such a file's top-level tables other than [default] are its
// environments.
bool has_environments(const nlohmann::json& whole, const std::string& env) {
  if (whole.contains("default") || whole.contains(env)) return true;
  if (whole.contains("events")) return false;
  return std::any_of(whole.begin(), whole.end(), [](const nlohmann::json& v) {
    return v.is_object() && v.contains("events");
  });
}

SettingsTree environment_view(nlohmann::json whole, std::map<std::string, std::string> origin,
                              const std::string& env, const std::string& file) {
  if (!has_environments(whole, env)) {
    SettingsTree t;
    t.root = std::move(whole);
    t.origin = std::move(origin);
    return t;
  }
  SettingsTree t = select(whole, origin, "default");
  t.merge(select(whole, origin, env));
  t.files_with_environments.push_back(file);
  for (const auto& [name, v] : whole.items()) {
    if (name != "default" && v.is_object()) t.environments.insert(name);
  }
  t.env_defined = whole.contains(env);
  return t;
}

// The table or list holding @p path ("a.b[2]" -> "a.b", "a.b" -> "a"); empty at the top.
std::string parent_of(const std::string& path) {
  const auto cut = path.find_last_of(".[");
  return cut == std::string::npos ? std::string() : path.substr(0, cut);
}

// Forgets where the values below @p path came from: they were replaced with the value at path.
void erase_below(std::map<std::string, std::string>& origin, const std::string& path) {
  for (const char sep : {'.', '['}) {
    const std::string prefix = path + sep;
    auto it = origin.lower_bound(prefix);
    while (it != origin.end() && it->first.starts_with(prefix)) it = origin.erase(it);
  }
}

// Deep-merges tables; any other value replaces what was there, and with it the origins of
// everything below it.
void merge_json(nlohmann::json& into, nlohmann::json&& from, const std::string& path,
                std::map<std::string, std::string>& origin) {
  if (into.is_object() && from.is_object()) {
    for (auto& [k, v] : from.items()) {
      auto it = into.find(k);
      if (it == into.end()) {
        into[k] = std::move(v);
      } else {
        merge_json(*it, std::move(v), join(path, k), origin);
      }
    }
    return;
  }
  erase_below(origin, path);
  into = std::move(from);
}

}  // namespace

std::string SettingsTree::origin_of(const std::string& path) const {
  for (std::string p = path; !p.empty(); p = parent_of(p)) {
    if (auto it = origin.find(p); it != origin.end()) return it->second;
  }
  return "built-in defaults";
}

void SettingsTree::merge(SettingsTree&& other) {
  merge_json(root, std::move(other.root), "", origin);
  for (auto& [k, v] : other.origin) origin[k] = std::move(v);
  for (auto& v : other.variables) variables.push_back(std::move(v));
  for (auto& f : other.files_with_environments) files_with_environments.push_back(std::move(f));
  environments.merge(other.environments);
  env_defined = env_defined || other.env_defined;
}

void SettingsTree::set(const std::string& path, nlohmann::json value, const std::string& where) {
  nlohmann::json* node = &root;
  std::string walked;
  const auto parts = split(path, '.');
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    walked = join(walked, parts[i]);
    nlohmann::json& next = (*node)[std::string(parts[i])];
    if (next.is_null()) {
      // A table made for this value comes from the same place: an unknown key in it is
      // reported there.
      next = nlohmann::json::object();
      origin[walked] = where;
    }
    if (!next.is_object()) {
      throw ConfigError(fmt::format("{}: cannot set {}: {} is a {}, not a table (set at {})",
                                    where, path, walked, next.type_name(), origin_of(walked)));
    }
    node = &next;
  }
  (*node)[std::string(parts.back())] = std::move(value);
  erase_below(origin, path);
  origin[path] = where;
}

SettingsTree read_settings_toml(std::string_view text, const std::string& source_name,
                                const std::string& env) {
  toml::table table;
  try {
    table = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    throw ConfigError(fmt::format("{}:{}:{}: malformed TOML: {}", source_name,
                                  e.source().begin.line, e.source().begin.column,
                                  e.description()));
  }
  std::map<std::string, std::string> origin;
  nlohmann::json whole = nlohmann::json::object();
  for (const auto& [k, v] : table) {
    whole[std::string(k.str())] = toml_value(v, std::string(k.str()), source_name, origin);
  }
  return environment_view(std::move(whole), std::move(origin), env, source_name);
}

namespace {

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a fifo";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// The whole file, which must be a regular, readable file. Opened without blocking and checked
// on the open descriptor, so a fifo is refused instead of waiting for a writer.
std::string read_regular_file(const std::string& path, const std::string& named_in) {
  const std::string where = named_in.empty() ? path : fmt::format("{} (from {})", path, named_in);
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      throw ConfigError(fmt::format("settings file {}: does not exist. Fix: name an existing file{}",
                                    where, named_in.empty() ? "" : " in " + named_in));
    }
    throw ConfigError(fmt::format("settings file {}: cannot be read: {}. Fix: let this process "
                                  "read it, or name another file",
                                  where, std::strerror(err)));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    throw ConfigError(fmt::format("settings file {}: is {}, not a settings file. Fix: name a TOML "
                                  "or YAML file",
                                  where, file_kind(st.st_mode)));
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      throw ConfigError(fmt::format("settings file {}: cannot be read: {}", where,
                                    std::strerror(errno)));
    }
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

}  // namespace

SettingsTree read_settings_file(const std::string& path, const std::string& env,
                                const std::string& named_in) {
  const std::string text = read_regular_file(path, named_in);
  std::string lower = path;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  if (lower.ends_with(".yaml") || lower.ends_with(".yml")) {
    auto doc = parse_yaml_settings(text, path);
    return environment_view(std::move(doc.whole), std::move(doc.origin), env, path);
  }
  return read_settings_toml(text, path, env);
}

void apply_environment(SettingsTree& tree, const std::map<std::string, std::string>& environment) {
  constexpr std::string_view kPrefix = "NALA_";
  for (const auto& [name, value] : environment) {
    if (!name.starts_with(kPrefix) || name == "NALA_ENV" || name == "NALA_SETTINGS_FILES") continue;
    std::string path;
    bool valid = true;
    // "__" separates levels; single underscores belong to key names.
    std::string rest = name.substr(kPrefix.size());
    std::size_t start = 0;
    for (;;) {
      const std::size_t pos = rest.find("__", start);
      std::string key = rest.substr(start, pos == std::string::npos ? pos : pos - start);
      if (key.empty()) valid = false;
      std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) {
        return static_cast<char>(std::tolower(c));
      });
      path = join(path, key);
      if (pos == std::string::npos) break;
      start = pos + 2;
    }
    if (!valid) {
      throw ConfigError(fmt::format("environment variable {}: empty key between '__' separators",
                                    name));
    }
    nlohmann::json parsed = value;
    try {
      toml::table t = toml::parse("v = " + value);
      std::map<std::string, std::string> ignored;
      if (const toml::node* v = t.get("v")) parsed = toml_value(*v, "v", "", ignored);
    } catch (const toml::parse_error&) {
      // Not a TOML scalar: the text itself.
    }
    tree.set(path, std::move(parsed), "environment variable " + name);
    tree.variables.push_back(name);
  }
}

}  // namespace athomic::detail
