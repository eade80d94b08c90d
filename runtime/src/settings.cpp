#include "metrics_endpoint.h"
#include "settings_tree.h"
#include "text_util.h"

#include <athomic/errors.h>
#include <athomic/log.h>
#include <athomic/settings.h>

#include <fmt/format.h>

#include <cmath>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <regex>

extern char** environ;

namespace athomic {

class SettingsLoader {
 public:
  static Settings build(detail::SettingsTree tree, const std::string& env,
                        const std::string& files);
};

namespace {

using detail::SettingsTree;

// The value as a message shows it: secrets masked, long values cut, and nan/inf by name (JSON
// has no spelling for them and would print "null").
std::string shown(const nlohmann::json& v) {
  if (v.is_number_float() && !std::isfinite(v.get<double>())) {
    const double d = v.get<double>();
    return std::isnan(d) ? "nan" : (d < 0 ? "-inf" : "inf");
  }
  std::string s = mask_secret_values(v).dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

[[noreturn]] void fail(const SettingsTree& t, const std::string& path, const nlohmann::json& v,
                       const std::string& allowed) {
  throw ConfigError(fmt::format("{}: {} = {} is invalid: {}", t.origin_of(path), path, shown(v),
                                allowed));
}

void reject_unknown(const SettingsTree& t, const std::string& path, const nlohmann::json& obj,
                    const std::vector<std::string>& known) {
  for (const auto& [k, v] : obj.items()) {
    if (std::find(known.begin(), known.end(), k) != known.end()) continue;
    std::string hint;
    if (auto best = detail::closest_match(k, known)) hint = fmt::format(" Did you mean '{}'?", *best);
    throw ConfigError(fmt::format("{}: unknown setting {}.{}.{} Known keys of {}: {}",
                                  t.origin_of(path + "." + k), path, k, hint, path,
                                  fmt::join(known, ", ")));
  }
}

const nlohmann::json* member(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

bool read_bool(const SettingsTree& t, const std::string& path, const nlohmann::json& v) {
  if (!v.is_boolean()) fail(t, path, v, "expected true or false");
  return v.get<bool>();
}

int64_t read_int(const SettingsTree& t, const std::string& path, const nlohmann::json& v,
                 int64_t lo, int64_t hi, const std::string& note = "") {
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
    fail(t, path, v, fmt::format("expected an integer from {} to {}{}", lo, hi, note));
  }
  return v.get<int64_t>();
}

// Seconds as a duration: finite, from 0 to @p max_seconds.
std::chrono::milliseconds read_seconds(const SettingsTree& t, const std::string& path,
                                       const nlohmann::json& v, double max_seconds) {
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0 ||
      v.get<double>() > max_seconds) {
    fail(t, path, v, fmt::format("expected seconds from 0 to {}", max_seconds));
  }
  return std::chrono::milliseconds(std::llround(v.get<double>() * 1000));
}

// No setting has a use for nan or inf, and the provider's keys reach it as JSON, which cannot
// carry them: refuse them anywhere under @p path before any key is read.
void refuse_non_finite(const SettingsTree& t, const std::string& path, const nlohmann::json& v) {
  if (v.is_number_float() && !std::isfinite(v.get<double>())) {
    fail(t, path, v, "expected a finite number (nan and inf are not allowed in settings)");
  }
  if (v.is_object()) {
    for (const auto& [k, item] : v.items()) refuse_non_finite(t, path + "." + k, item);
  } else if (v.is_array()) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      refuse_non_finite(t, fmt::format("{}[{}]", path, i), v[i]);
    }
  }
}

std::string read_string(const SettingsTree& t, const std::string& path, const nlohmann::json& v) {
  if (!v.is_string()) fail(t, path, v, "expected a string");
  return v.get<std::string>();
}

EventsSettings validate_events(const SettingsTree& t, const std::string& files) {
  EventsSettings s;
  s.origin = files;
  const nlohmann::json* events = member(t.root, "events");
  if (!events || events->is_null()) return s;
  if (!events->is_object()) fail(t, "events", *events, "expected a table");
  refuse_non_finite(t, "events", *events);
  reject_unknown(t, "events", *events,
                 {"enabled", "plugins_dir", "provider", "executor", "propagated_context",
                  "max_payload_bytes", "metrics", "logging", "context"});
  if (auto* v = member(*events, "enabled")) s.enabled = read_bool(t, "events.enabled", *v);
  if (auto* v = member(*events, "plugins_dir")) {
    s.plugins_dir = read_string(t, "events.plugins_dir", *v);
  }
  if (auto* v = member(*events, "max_payload_bytes")) {
    s.max_payload_bytes = static_cast<std::size_t>(
        read_int(t, "events.max_payload_bytes", *v, 1024, int64_t{64} << 20));
  }
  if (auto* v = member(*events, "propagated_context")) {
    if (!v->is_array()) {
      fail(t, "events.propagated_context", *v, "expected a list of context field names");
    }
    s.propagated_fields = 0;
    for (std::size_t i = 0; i < v->size(); ++i) {
      const auto& item = (*v)[i];
      const std::string path = fmt::format("events.propagated_context[{}]", i);
      const auto name = read_string(t, path, item);
      auto f = context_field_from_name(name);
      if (!f) {
        std::vector<std::string> names;
        for (std::size_t k = 0; k < kContextFieldCount; ++k) {
          names.emplace_back(context_field_name(static_cast<ContextField>(k)));
        }
        std::string hint;
        if (auto best = detail::closest_match(name, names)) hint = fmt::format(" (did you mean '{}'?)", *best);
        fail(t, path, item, fmt::format("not a context field{}; fields: {}", hint,
                                        fmt::join(names, ", ")));
      }
      s.propagated_fields |= field_bit(*f);
    }
  }
  if (auto* m = member(*events, "metrics")) {
    if (!m->is_object()) fail(t, "events.metrics", *m, "expected a table");
    reject_unknown(t, "events.metrics", *m, {"enabled", "listen", "max_events", "latency_sample"});
    if (auto* v = member(*m, "enabled")) s.metrics_enabled = read_bool(t, "events.metrics.enabled", *v);
    if (auto* v = member(*m, "listen")) {
      s.metrics_listen = read_string(t, "events.metrics.listen", *v);
      if (!detail::valid_metrics_listen(s.metrics_listen)) {
        fail(t, "events.metrics.listen", *v, detail::kMetricsListenForm);
      }
    }
    if (auto* v = member(*m, "max_events")) {
      s.metrics_max_events = static_cast<uint32_t>(read_int(t, "events.metrics.max_events", *v, 1, 10000));
    }
    if (auto* v = member(*m, "latency_sample")) {
      s.metrics_latency_sample = static_cast<uint32_t>(
          read_int(t, "events.metrics.latency_sample", *v, 1, 1000000, " (1: time every event)"));
    }
  }
  if (auto* lg = member(*events, "logging")) {
    if (!lg->is_object()) fail(t, "events.logging", *lg, "expected a table");
    reject_unknown(t, "events.logging", *lg, {"format"});
    if (auto* v = member(*lg, "format")) {
      const std::string format = v->is_string() ? v->get<std::string>() : std::string();
      if (format == "text") {
        s.log_format = LogFormat::text;
      } else if (format == "json") {
        s.log_format = LogFormat::json;
      } else {
        fail(t, "events.logging.format", *v, "expected \"text\" or \"json\"");
      }
    }
  }
  if (auto* c = member(*events, "context")) {
    if (!c->is_object()) fail(t, "events.context", *c, "expected a table");
    reject_unknown(t, "events.context", *c, {"traceparent"});
    if (auto* v = member(*c, "traceparent")) {
      s.traceparent = read_bool(t, "events.context.traceparent", *v);
    }
  }
  if (auto* ex = member(*events, "executor")) {
    if (!ex->is_object()) fail(t, "events.executor", *ex, "expected a table");
    reject_unknown(t, "events.executor", *ex,
                   {"mode", "workers", "close_timeout", "max_queued_events", "max_queued_bytes",
                    "when_full", "publish_timeout"});
    if (auto* v = member(*ex, "mode")) {
      const auto mode = read_string(t, "events.executor.mode", *v);
      if (mode == "pool") {
        s.dispatch_mode = DispatchMode::pool;
      } else if (mode == "inline") {
        s.dispatch_mode = DispatchMode::inline_call;
      } else {
        fail(t, "events.executor.mode", *v, "expected \"pool\" or \"inline\"");
      }
    }
    if (auto* v = member(*ex, "workers")) {
      s.workers = static_cast<unsigned>(read_int(t, "events.executor.workers", *v, 0, 1024,
                                                 " (0: one per hardware thread)"));
    }
    if (auto* v = member(*ex, "close_timeout")) {
      s.close_timeout = read_seconds(t, "events.executor.close_timeout", *v, 3600);
    }
    if (auto* v = member(*ex, "max_queued_events")) {
      s.max_queued_events = static_cast<std::size_t>(
          read_int(t, "events.executor.max_queued_events", *v, 1, (int64_t{1} << 24) - 1));
    }
    if (auto* v = member(*ex, "max_queued_bytes")) {
      s.max_queued_bytes = static_cast<std::uint64_t>(
          read_int(t, "events.executor.max_queued_bytes", *v, 1024, (int64_t{1} << 40) - 1));
    }
    if (auto* v = member(*ex, "when_full")) {
      const std::string when = v->is_string() ? v->get<std::string>() : std::string();
      if (when == "block") {
        s.when_full = WhenFull::block;
      } else if (when == "fail") {
        s.when_full = WhenFull::fail;
      } else {
        fail(t, "events.executor.when_full", *v, "expected \"block\" or \"fail\"");
      }
    }
    if (auto* v = member(*ex, "publish_timeout")) {
      s.publish_timeout = read_seconds(t, "events.executor.publish_timeout", *v, 3600);
    }
  }
  if (auto* p = member(*events, "provider")) {
    if (!p->is_object()) fail(t, "events.provider", *p, "expected a table");
    s.provider_config = *p;
    if (auto* v = member(*p, "backend")) s.backend = read_string(t, "events.provider.backend", *v);
  }
  s.provider_config["backend"] = s.backend;
  return s;
}

// Refused here, like a bad NALA_ variable, so that a service does not start with logging
// silently at the wrong level.
void check_log_level_variable(const std::map<std::string, std::string>& environment) {
  auto it = environment.find("ATHOMIC_LOG_LEVEL");
  if (it == environment.end() || it->second.empty()) return;
  try {
    parse_log_level(it->second);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("environment variable ATHOMIC_LOG_LEVEL: {}", e.what()));
  }
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    const auto eq = kv.find('=');
    if (eq != std::string_view::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

// An environment that no file defines runs [default] alone, which is rarely what was meant
// (NALA_ENV=prodution): say so, with the environments the files do define. @p chosen_by names
// who chose @p env; empty when nobody did (the default "development").
void warn_if_undefined(const SettingsTree& t, const std::string& env, const std::string& chosen_by) {
  if (chosen_by.empty() || t.files_with_environments.empty() || t.env_defined) return;
  const std::vector<std::string> defined(t.environments.begin(), t.environments.end());
  std::string hint;
  if (auto best = detail::closest_match(env, defined)) hint = fmt::format(" Did you mean '{}'?", *best);
  get_logger("athomic.settings")
      ->warn("{}: no settings file defines the environment '{}' ({}); only [default] applies.{} "
             "Environments the files define: {}",
             chosen_by, env, fmt::join(t.files_with_environments, ", "), hint,
             defined.empty() ? std::string("none, only [default]")
                             : fmt::format("{}", fmt::join(defined, ", ")));
}

}  // namespace

Settings SettingsLoader::build(SettingsTree tree, const std::string& env,
                               const std::string& files) {
  Settings s;
  s.env_ = env;
  std::string origin = files;
  if (!tree.variables.empty()) {
    origin = fmt::format("{}{}environment variable{} {}", files == "built-in defaults" ? "" : files,
                         files == "built-in defaults" ? "" : ", ",
                         tree.variables.size() > 1 ? "s" : "", fmt::join(tree.variables, ", "));
  }
  s.events_ = validate_events(tree, origin);
  for (const auto& [path, where] : tree.origin) {
    if (path == "events" || path.starts_with("events.")) s.events_.origins.emplace(path, where);
  }
  s.tree_ = std::move(tree.root);
  return s;
}

Settings::Settings() = default;

Settings Settings::load() { return load(LoadOptions{}); }

Settings Settings::load(const LoadOptions& options) {
  const auto environment = options.environment ? *options.environment : process_environment();
  auto get = [&](const char* k) -> std::string {
    auto it = environment.find(k);
    return it == environment.end() ? std::string() : it->second;
  };
  std::string env = options.env.empty() ? get("NALA_ENV") : options.env;
  const std::string chosen_by =
      !options.env.empty() ? fmt::format("environment '{}' (Settings::LoadOptions::env)", options.env)
      : !env.empty()       ? fmt::format("NALA_ENV={}", env)
                           : std::string();
  check_log_level_variable(environment);
  if (env.empty()) env = "development";
  std::transform(env.begin(), env.end(), env.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });

  std::vector<std::string> files = options.files;
  std::string named_in;  // where the files were named, for messages
  if (files.empty()) {
    const std::string listed = get("NALA_SETTINGS_FILES");
    for (auto f : detail::split(listed, ',')) {
      while (!f.empty() && f.front() == ' ') f.remove_prefix(1);
      while (!f.empty() && f.back() == ' ') f.remove_suffix(1);
      if (!f.empty()) files.emplace_back(f);
    }
    if (!files.empty()) named_in = "NALA_SETTINGS_FILES";
  }
  if (files.empty()) {
    std::error_code ec;
    if (std::filesystem::exists("config/settings.toml", ec)) {
      files.emplace_back("config/settings.toml");
      named_in = "the default location";
    }
  }

  SettingsTree tree;
  for (const auto& f : files) tree.merge(detail::read_settings_file(f, env, named_in));
  warn_if_undefined(tree, env, chosen_by);
  detail::apply_environment(tree, environment);
  const std::vector<std::string> variables = tree.variables;
  const std::string origin = files.empty() ? "built-in defaults" : fmt::format("{}", fmt::join(files, ", "));
  Settings settings = SettingsLoader::build(std::move(tree), env, origin);
  if (settings.events().log_format) set_log_format(*settings.events().log_format);

  // Once per load, so that a service that runs on defaults because its file was not where it
  // looked says so.
  const std::string applied =
      variables.empty() ? "" : fmt::format("; NALA_ variables applied: {}", fmt::join(variables, ", "));
  if (files.empty()) {
    std::error_code ec;
    get_logger("athomic.settings")
        ->info("no settings file found (looked for config/settings.toml in {}); using defaults: "
               "backend {}{}",
               std::filesystem::current_path(ec).string(), settings.events().backend, applied);
  } else {
    get_logger("athomic.settings")
        ->info("settings read from {} (environment {}): backend {}{}", fmt::join(files, ", "), env,
               settings.events().backend, applied);
  }
  return settings;
}

Settings Settings::from_toml(std::string_view text, std::string_view source_name,
                             const std::string& env,
                             const std::map<std::string, std::string>& environment) {
  auto tree = detail::read_settings_toml(text, std::string(source_name), env);
  warn_if_undefined(tree, env, env == "development" ? "" : fmt::format("environment '{}'", env));
  detail::apply_environment(tree, environment);
  return SettingsLoader::build(std::move(tree), env, std::string(source_name));
}

std::string Settings::describe() const { return mask_secret_values(tree_).dump(2); }

std::string mask_secrets(std::string_view text) {
  static const std::regex kUserInfo(R"(([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@)");
  return std::regex_replace(std::string(text), kUserInfo, "$1***@");
}

nlohmann::json mask_secret_values(const nlohmann::json& tree) {
  if (tree.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : tree.items()) {
      std::string lower = k;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) {
        return static_cast<char>(std::tolower(c));
      });
      const bool secret = lower.find("password") != std::string::npos ||
                          lower.find("passwd") != std::string::npos ||
                          lower.find("token") != std::string::npos ||
                          lower.find("secret") != std::string::npos;
      out[k] = (secret && !v.is_null() && !v.is_object()) ? nlohmann::json("***") : mask_secret_values(v);
    }
    return out;
  }
  if (tree.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : tree) out.push_back(mask_secret_values(v));
    return out;
  }
  if (tree.is_string()) return mask_secrets(std::string_view(tree.get_ref<const std::string&>()));
  return tree;
}

}  // namespace athomic
