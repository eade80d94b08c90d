// `athomic backends` and `athomic config`: what the settings select, without starting a bus.
#include "cli.h"

#include <algorithm>
#include <iostream>

namespace athomic::cli {
namespace {

// "<file>: provider 'x' 1.0, ABI 1.1: loads", or what keeps it from loading.
std::string describe(const athomic::PluginFileReport& r) {
  std::string line = r.file + ": ";
  if (r.described) {
    if (!r.name.empty()) line += "provider '" + r.name + "' " + r.version + ", ";
    line += "ABI " + std::to_string(r.abi_major) + "." + std::to_string(r.abi_minor) + ": ";
  }
  line += r.loads ? "loads"
                  : (r.opened ? "does not load: " : "does not load, not opened: ") + r.problem;
  if (!r.name.empty() && r.name != r.backend) line += " (its file name says '" + r.backend + "')";
  if (r.shadowed) line += " (not used: a folder searched earlier has this backend)";
  return line;
}

struct SettingRow {
  std::string key;
  std::string value;  // as JSON, secrets masked
  std::string origin;
  std::string meaning;
};

// One line per key, in columns: key = value, then where it came from.
void print_settings(const std::vector<SettingRow>& rows, bool json) {
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : rows) {
      nlohmann::json item = {{"key", r.key},
                             {"value", nlohmann::json::parse(r.value, nullptr, false)},
                             {"origin", r.origin}};
      if (item["value"].is_discarded()) item["value"] = r.value;  // "(unset)"
      if (!r.meaning.empty()) item["meaning"] = r.meaning;
      out.push_back(std::move(item));
    }
    std::cout << out.dump(2) << std::endl;
    return;
  }
  std::size_t key_width = 0, value_width = 0;
  for (const auto& r : rows) {
    key_width = std::max(key_width, r.key.size());
    // A long value (a uri) does not push every origin far right.
    value_width = std::max(value_width, std::min<std::size_t>(r.value.size(), 24));
  }
  for (const auto& r : rows) {
    std::cout << r.key << std::string(key_width - r.key.size(), ' ') << " = " << r.value
              << std::string(value_width > r.value.size() ? value_width - r.value.size() : 0, ' ')
              << "  # " << r.origin << "\n";
  }
  std::cout << std::flush;
}

}  // namespace

int cmd_backends(const athomic::Settings& settings) {
  std::cout << "Searched, in order:\n";
  for (const auto& d : athomic::plugin_search_path(settings.events())) {
    std::cout << "  " << d.path << "  (" << d.reason << ")\n";
  }
  std::cout << "Plugin files:\n";
  for (const auto& r : athomic::inspect_plugin_files(settings.events())) {
    std::cout << "  " << describe(r) << "\n";
  }
  const auto backends = athomic::available_backends(settings.events());
  std::cout << "Backends: " << (backends.empty() ? "none found" : "");
  for (std::size_t i = 0; i < backends.size(); ++i) std::cout << (i ? ", " : "") << backends[i];
  std::cout << "\nConfigured: " << settings.events().backend << "\n";
  return 0;
}

int cmd_config(const athomic::Settings& settings, const ConfigOptions& options) {
  const auto& e = settings.events();
  std::vector<SettingRow> rows;
  // Exactly the key's own origin: a key no source set is a default even when its table was
  // written in a file (origin_of would give the table's line).
  auto origin = [&](const std::string& path) -> std::string {
    const auto it = e.origins.find(path);
    return it == e.origins.end() ? "default" : it->second;
  };
  auto add = [&](const std::string& path, nlohmann::json value) {
    rows.push_back({path, value.dump(), origin(path), ""});
  };
  rows.push_back({"environment", nlohmann::json(settings.env()).dump(), options.env_origin, ""});
  add("events.enabled", e.enabled);
  add("events.plugins_dir", e.plugins_dir);
  add("events.max_payload_bytes", e.max_payload_bytes);
  nlohmann::json fields = nlohmann::json::array();
  for (std::size_t i = 0; i < athomic::kContextFieldCount; ++i) {
    const auto f = static_cast<athomic::ContextField>(i);
    if (e.propagated_fields & athomic::field_bit(f)) fields.push_back(athomic::context_field_name(f));
  }
  add("events.propagated_context", fields);
  add("events.executor.mode", e.dispatch_mode == athomic::DispatchMode::pool ? "pool" : "inline");
  add("events.executor.workers", e.workers);
  add("events.executor.close_timeout", e.close_timeout.count() / 1000.0);
  add("events.executor.max_queued_events", e.max_queued_events);
  add("events.executor.max_queued_bytes", e.max_queued_bytes);
  add("events.executor.when_full", e.when_full == athomic::WhenFull::block ? "block" : "fail");
  add("events.executor.publish_timeout", e.publish_timeout.count() / 1000.0);
  add("events.metrics.enabled", e.metrics_enabled);
  add("events.metrics.listen", e.metrics_listen);
  add("events.metrics.max_events", e.metrics_max_events);
  add("events.metrics.latency_sample", e.metrics_latency_sample);
  add("events.logging.format",
      e.log_format && *e.log_format == athomic::LogFormat::json ? "json" : "text");
  add("events.context.traceparent", e.traceparent);
  add("events.provider.backend", e.backend);
  // The provider's keys: those it declares, with their defaults; else whatever was set.
  const auto declared = athomic::describe_provider_settings(e);
  for (const auto& k : declared) rows.push_back({k.key, k.value, k.origin, k.description});
  if (declared.empty()) {
    const auto leaves = athomic::mask_secret_values(e.provider_config).flatten();
    for (const auto& [pointer, value] : leaves.items()) {
      // "/provider/uri" -> "events.provider.provider.uri"
      std::string path = "events.provider";
      for (char c : pointer) path += c == '/' ? '.' : c;
      if (path != "events.provider.backend") rows.push_back({path, value.dump(), origin(path), ""});
    }
  }
  print_settings(rows, options.json);
  // The provider's own checks (a uri, a list of addresses), met as a bus meets them when it is
  // created: nothing is connected.
  try {
    (void)athomic::EventBus::create(settings);
  } catch (const std::exception& e) {
    std::cerr << "athomic config: these settings are refused: " << e.what() << std::endl;
    return kExitUsage;
  }
  return 0;
}

}  // namespace athomic::cli
