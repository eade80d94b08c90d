#include "provider_settings.h"

#include "plugin_loader.h"
#include "text_util.h"

#include <athomic/plugins.h>

#include <athomic/errors.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <set>

namespace athomic::detail {

namespace {

using nlohmann::json;

std::string full_path(std::string_view relative) {
  return fmt::format("events.provider.{}", relative);
}

bool secret(const athomic_setting& d) { return (d.flags & ATHOMIC_SETTING_SECRET) != 0; }

std::string shown(const athomic_setting& d, const json& v) {
  if (secret(d)) return "\"***\"";
  std::string s = mask_secret_values(v).dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

std::string type_text(const athomic_setting& d) {
  switch (d.type) {
    case ATHOMIC_SETTING_BOOL: return "true or false";
    case ATHOMIC_SETTING_INT:
      return fmt::format("an integer from {} to {}", static_cast<int64_t>(d.min),
                         static_cast<int64_t>(d.max));
    case ATHOMIC_SETTING_NUMBER: return fmt::format("a number from {} to {}", d.min, d.max);
    case ATHOMIC_SETTING_SECONDS: return fmt::format("seconds from {} to {}", d.min, d.max);
    case ATHOMIC_SETTING_STRING: {
      if (!d.choices) return "a string";
      std::string out;
      for (auto c = d.choices; *c; ++c) out += fmt::format("{}\"{}\"", out.empty() ? "" : " or ", *c);
      return out;
    }
    case ATHOMIC_SETTING_TABLE: return "a table";
  }
  return "a value";
}

// Why @p v does not fit @p d, or empty when it does.
std::string misfit(const athomic_setting& d, const json& v) {
  switch (d.type) {
    case ATHOMIC_SETTING_BOOL:
      return v.is_boolean() ? "" : "expected " + type_text(d);
    case ATHOMIC_SETTING_INT:
      if (!v.is_number_integer() || v.get<double>() < d.min || v.get<double>() > d.max) {
        return "expected " + type_text(d);
      }
      return "";
    case ATHOMIC_SETTING_NUMBER:
    case ATHOMIC_SETTING_SECONDS:
      if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < d.min ||
          v.get<double>() > d.max) {
        return "expected " + type_text(d);
      }
      return "";
    case ATHOMIC_SETTING_STRING:
      if (!v.is_string()) return "expected " + type_text(d);
      if (d.choices) {
        for (auto c = d.choices; *c; ++c) {
          if (v.get_ref<const std::string&>() == *c) return "";
        }
        return "expected " + type_text(d);
      }
      return "";
    case ATHOMIC_SETTING_TABLE:
      return v.is_object() ? "" : "expected a table";
  }
  return "unknown setting type";
}

}  // namespace

ProviderSettings::ProviderSettings(const athomic_setting* const* declared,
                                   const EventsSettings& settings, std::string_view provider) {
  std::vector<std::string> known;
  std::set<std::string> tables;
  for (auto d = declared; d && *d; ++d) {
    const athomic_setting& decl = **d;
    if (!decl.path || !*decl.path) continue;
    Key key{&decl, nullptr, "default"};
    if (decl.default_json) {
      key.value = json::parse(decl.default_json, nullptr, false);
      if (key.value.is_discarded()) {
        throw ConfigError(fmt::format("provider '{}' declares {} with a default that is not JSON: {}",
                                      provider, full_path(decl.path), decl.default_json));
      }
    }
    keys_.emplace(decl.path, std::move(key));
    known.emplace_back(decl.path);
    // Every prefix of a dotted path is a table.
    const std::string p = decl.path;
    for (auto dot = p.find('.'); dot != std::string::npos; dot = p.find('.', dot + 1)) {
      tables.insert(p.substr(0, dot));
    }
  }

  effective_ = settings.provider_config.is_object() ? settings.provider_config : json::object();
  // Every key that was set must be declared and fit its declaration.
  std::vector<std::pair<std::string, const json*>> todo;
  for (const auto& [k, v] : effective_.items()) {
    if (k != "backend") todo.emplace_back(k, &v);
  }
  while (!todo.empty()) {
    auto [path, value] = todo.back();
    todo.pop_back();
    const std::string where = settings.origin_of(full_path(path));
    auto it = keys_.find(path);
    if (it == keys_.end() && tables.count(path)) {
      if (!value->is_object()) {
        throw ConfigError(fmt::format("{}: {} = {} is invalid: expected a table", where,
                                      full_path(path), mask_secret_values(*value).dump()));
      }
      for (const auto& [k, v] : value->items()) todo.emplace_back(path + "." + k, &v);
      continue;
    }
    if (it == keys_.end()) {
      std::string hint;
      if (auto best = closest_match(path, known)) {
        hint = fmt::format(" Did you mean '{}'?", full_path(*best));
      }
      throw ConfigError(fmt::format("{}: unknown setting {}.{} Keys of provider '{}': {}", where,
                                    full_path(path), hint, provider, fmt::join(known, ", ")));
    }
    const athomic_setting& decl = *it->second.decl;
    if (const std::string why = misfit(decl, *value); !why.empty()) {
      throw ConfigError(fmt::format("{}: {} = {} is invalid: {}", where, full_path(path),
                                    shown(decl, *value), why));
    }
    if (decl.type == ATHOMIC_SETTING_TABLE) {
      for (const auto& [k, v] : value->items()) todo.emplace_back(path + "." + k, &v);
    } else {
      it->second.value = *value;
      it->second.origin = where;
    }
  }
  // Defaults that were not set, into the tree the provider gets.
  for (const auto& [path, key] : keys_) {
    if (key.origin != "default" || key.value.is_null() || key.decl->type == ATHOMIC_SETTING_TABLE) {
      continue;
    }
    json* node = &effective_;
    for (auto part : split(path, '.')) {
      const std::string name(part);
      if (!node->is_object()) break;
      node = &(*node)[name];
    }
    if (node->is_null()) *node = key.value;
  }
}

bool ProviderSettings::get(std::string_view path, athomic_setting_value& out) const {
  auto it = keys_.find(path);
  if (it == keys_.end() || it->second.value.is_null()) return false;
  const Key& key = it->second;
  const athomic_setting& d = *key.decl;
  out.type = d.type;
  switch (d.type) {
    case ATHOMIC_SETTING_BOOL: out.boolean = key.value.get<bool>() ? 1 : 0; break;
    case ATHOMIC_SETTING_INT: out.integer = key.value.get<int64_t>(); break;
    case ATHOMIC_SETTING_NUMBER:
    case ATHOMIC_SETTING_SECONDS: out.number = key.value.get<double>(); break;
    case ATHOMIC_SETTING_STRING: {
      const auto& s = key.value.get_ref<const std::string&>();
      out.text = {s.data(), s.size()};
      break;
    }
    case ATHOMIC_SETTING_TABLE: return false;
  }
  return true;
}

std::vector<ProviderSettings::Row> ProviderSettings::describe() const {
  std::vector<Row> rows;
  for (const auto& [path, key] : keys_) {
    if (key.decl->type == ATHOMIC_SETTING_TABLE) continue;
    rows.push_back({full_path(path),
                    key.value.is_null() ? "(unset)" : shown(*key.decl, key.value), key.origin,
                    key.decl->description ? key.decl->description : ""});
  }
  return rows;
}

}  // namespace athomic::detail

namespace athomic {

std::vector<ProviderSettingReport> describe_provider_settings(const EventsSettings& settings) {
  const detail::LoadedPlugin plugin = detail::load_provider_plugin(settings.backend, settings);
  std::vector<ProviderSettingReport> out;
  if (!ATHOMIC_STRUCT_HOLDS(*plugin.info, athomic_provider_info, settings) ||
      !plugin.info->settings) {
    return out;
  }
  const detail::ProviderSettings declared(plugin.info->settings, settings, plugin.info->name);
  for (auto& row : declared.describe()) {
    out.push_back({std::move(row.path), std::move(row.value), std::move(row.origin),
                   std::move(row.description)});
  }
  return out;
}

}  // namespace athomic
