// `athomic backends` and `athomic config`: what the settings select, without starting a bus.
#include "cli.h"

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

int cmd_config(const athomic::Settings& settings) {
  const auto& e = settings.events();
  nlohmann::json effective = {
      {"environment", settings.env()},
      {"origin", e.origin},
      {"enabled", e.enabled},
      {"backend", e.backend},
      {"executor",
       {{"mode", e.dispatch_mode == athomic::DispatchMode::pool ? "pool" : "inline"},
        {"workers", e.workers},
        {"close_timeout", e.close_timeout.count() / 1000.0},
        {"max_queued_events", e.max_queued_events},
        {"max_queued_bytes", e.max_queued_bytes},
        {"when_full", e.when_full == athomic::WhenFull::block ? "block" : "fail"},
        {"publish_timeout", e.publish_timeout.count() / 1000.0}}},
      {"max_payload_bytes", e.max_payload_bytes},
      {"metrics",
       {{"enabled", e.metrics_enabled},
        {"listen", e.metrics_listen},
        {"max_events", e.metrics_max_events},
        {"latency_sample", e.metrics_latency_sample}}},
      {"logging",
       {{"format", e.log_format && *e.log_format == athomic::LogFormat::json ? "json" : "text"}}},
      {"context", {{"traceparent", e.traceparent}}},
      {"provider", athomic::mask_secret_values(e.provider_config)}};
  // The provider's own keys, with their defaults and where each value came from.
  nlohmann::json keys = nlohmann::json::array();
  for (const auto& k : athomic::describe_provider_settings(e)) {
    keys.push_back({{"key", k.key},
                    {"value", nlohmann::json::parse(k.value, nullptr, false).is_discarded()
                                  ? nlohmann::json(k.value)
                                  : nlohmann::json::parse(k.value)},
                    {"origin", k.origin},
                    {"meaning", k.description}});
  }
  if (!keys.empty()) effective["provider_keys"] = std::move(keys);
  std::cout << effective.dump(2) << std::endl;
  return 0;
}

}  // namespace athomic::cli
