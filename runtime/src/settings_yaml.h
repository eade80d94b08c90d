// YAML settings files → the same JSON tree as TOML ones, with the line of every value.
#pragma once

#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace athomic::detail {

// Aliases can make a few hundred bytes stand for billions of values ("billion laughs"); a
// settings file never needs more than these.
inline constexpr std::size_t kMaxYamlValues = 100'000;
inline constexpr std::size_t kMaxYamlDepth = 64;

// A whole settings document (every environment), and "path" -> "file:line" for each value.
struct ParsedDocument {
  nlohmann::json whole = nlohmann::json::object();
  std::map<std::string, std::string> origin;
};

// Parses @p text, read from @p file. Plain scalars are typed by the YAML 1.2 core schema.
// @throws ConfigError naming the file and line of a syntax error, a key that is not text, a
// document that expands to more than kMaxYamlValues values or nests deeper than kMaxYamlDepth.
ParsedDocument parse_yaml_settings(const std::string& text, const std::string& file);

}  // namespace athomic::detail
