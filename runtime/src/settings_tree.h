// Reading configuration files into one JSON tree that remembers where every value came from,
// so that validation errors can name the file and line (or the environment variable).
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace athomic::detail {

struct SettingsTree {
  nlohmann::json root = nlohmann::json::object();
  // "events.provider.backend" -> "config/settings.toml:7" or "environment variable NALA_...";
  // list items as "events.propagated_context[1]". A value replaced by a later source takes the
  // origins of everything below it along.
  std::map<std::string, std::string> origin;
  // The NALA_ variables applied, in order.
  std::vector<std::string> variables;
  // The files read that are written in environments, the environments they define (their
  // top-level tables but [default]), and whether one of them defines the active environment.
  std::vector<std::string> files_with_environments;
  std::set<std::string> environments;
  bool env_defined = false;

  // Where @p path (or its nearest enclosing table or list) was set; "built-in defaults" when
  // nowhere.
  std::string origin_of(const std::string& path) const;
  // Deep-merges @p other over this tree.
  void merge(SettingsTree&& other);
  // Sets @p path (dot-separated) to @p value, creating tables (which then come from @p where
  // too); @throws ConfigError when a prefix of the path is not a table.
  void set(const std::string& path, nlohmann::json value, const std::string& where);
};

// Parses one TOML or YAML file (by extension) and returns the tree of environment @p env:
// [default] merged under [env]. A file with neither uses its top level as is. @p named_in says
// where the file was named ("NALA_SETTINGS_FILES"; empty: the caller's own list).
// @throws ConfigError naming the file and line of a syntax error, or the file and what it is
// when it is not a readable regular file.
SettingsTree read_settings_file(const std::string& path, const std::string& env,
                                const std::string& named_in = {});
SettingsTree read_settings_toml(std::string_view text, const std::string& source_name,
                                const std::string& env);

// Applies NALA_<A>__<B>=value variables: values are parsed as TOML scalars, else taken as text.
void apply_environment(SettingsTree& tree, const std::map<std::string, std::string>& environment);

}  // namespace athomic::detail
