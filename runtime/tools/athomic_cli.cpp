// `athomic`: look at and use an event bus from the shell, with the same settings an application
// reads (config/settings.toml, NALA_SETTINGS_FILES, NALA_ENV, NALA_ variables).
//
//   athomic backends                       search path, each plugin file (what it declares, whether
//                                          it would load and why not), the backends found
//   athomic config                         the effective settings, secrets masked
//   athomic publish NAME [JSON] [--trace-id T --tenant-id X ...] [-n COUNT] [--interval-ms MS]
//   athomic listen NAME [-n COUNT] [--timeout S]   one JSON line per event, with its context
#include <athomic/athomic.h>

#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

namespace {

nlohmann::json context_json(const athomic::ExecutionContext& ctx) {
  nlohmann::json j = nlohmann::json::object();
  for (std::size_t i = 0; i < athomic::kContextStringFieldCount; ++i) {
    const auto f = static_cast<athomic::ContextField>(i);
    if (auto v = ctx.get(f)) j[std::string(athomic::context_field_name(f))] = *v;
  }
  if (ctx.has(athomic::ContextField::feature_flags)) j["feature_flags"] = ctx.feature_flags();
  return j;
}

// "<file>: provider 'x' 1.0, ABI 1.1: loads", or what keeps it from loading.
std::string describe(const athomic::PluginFileReport& r) {
  std::string line = r.file + ": ";
  if (r.described) {
    if (!r.name.empty()) line += "provider '" + r.name + "' " + r.version + ", ";
    line += "ABI " + std::to_string(r.abi_major) + "." + std::to_string(r.abi_minor) + ": ";
  }
  line += r.loads ? "loads" : (r.opened ? "does not load: " : "does not load, not opened: ") + r.problem;
  if (!r.name.empty() && r.name != r.backend) line += " (its file name says '" + r.backend + "')";
  if (r.shadowed) line += " (not used: a folder searched earlier has this backend)";
  return line;
}

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
      {"executor", {{"mode", e.dispatch_mode == athomic::DispatchMode::pool ? "pool" : "inline"},
                    {"workers", e.workers},
                    {"close_timeout", e.close_timeout.count() / 1000.0},
                    {"max_queued_events", e.max_queued_events},
                    {"max_queued_bytes", e.max_queued_bytes},
                    {"when_full", e.when_full == athomic::WhenFull::block ? "block" : "fail"},
                    {"publish_timeout", e.publish_timeout.count() / 1000.0}}},
      {"max_payload_bytes", e.max_payload_bytes},
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

int cmd_publish(athomic::EventBus& bus, const std::string& name, const std::string& payload_text,
                const std::map<athomic::ContextField, std::string>& fields, int count,
                int interval_ms) {
  nlohmann::json payload = payload_text.empty() ? nlohmann::json::object()
                                                : nlohmann::json::parse(payload_text, nullptr, false);
  if (payload.is_discarded()) {
    std::cerr << "athomic publish: the payload is not valid JSON: " << payload_text << std::endl;
    return 2;
  }
  athomic::ExecutionContext::Builder b;
  for (const auto& [f, v] : fields) b.set(f, v);
  athomic::ContextScope scope(std::move(b).build());
  // Each publish's outcome: with a transport that acknowledges, the server's verdict.
  std::vector<athomic::Completion> sent;
  for (int i = 0; i < count; ++i) {
    nlohmann::json p = payload;
    if (count > 1) p["seq"] = i;
    sent.push_back(bus.publish(name, std::move(p)));
    if (interval_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
  bus.close();  // sends what is buffered; a provider fails what it could not send
  int undelivered = 0;
  std::string first_error;
  for (const auto& c : sent) {
    if (c.delivered()) continue;
    if (undelivered++ == 0) first_error = c.done() ? c.error() : "not completed when the bus closed";
  }
  if (undelivered > 0) {
    std::cerr << "athomic publish: " << undelivered << " of " << count
              << " event(s) were not delivered: " << first_error << std::endl;
    return 1;
  }
  return 0;
}

int cmd_listen(athomic::EventBus& bus, const std::string& name, int count, int timeout_s) {
  std::mutex out;
  std::atomic<int> seen{0};
  bus.subscribe(name, [&](const athomic::Event& e) {
    nlohmann::json line = {{"event", std::string(e.name())},
                           {"payload", e.payload()},
                           {"context", context_json(athomic::ExecutionContext::current())}};
    std::lock_guard lock(out);
    std::cout << line.dump() << std::endl;
    seen++;
  });
  {
    std::lock_guard lock(out);
    std::cout << "ready" << std::endl;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while ((count == 0 || seen < count) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return (count == 0 || seen >= count) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"athomic: inspect and use the event bus configured in settings.toml"};
  app.require_subcommand(1);
  auto* backends = app.add_subcommand("backends", "list the plugin search path and backends");
  auto* config = app.add_subcommand("config", "print the effective settings (secrets masked)");

  auto* publish = app.add_subcommand("publish", "publish an event (in the given context)");
  std::string name, payload;
  int count = 1;
  publish->add_option("name", name, "event name")->required();
  publish->add_option("payload", payload, "JSON object (default {})");
  publish->add_option("-n,--count", count, "how many times (adds \"seq\")")->check(CLI::PositiveNumber);
  int interval_ms = 0;
  publish->add_option("--interval-ms", interval_ms, "pause between events");
  std::map<athomic::ContextField, std::string> fields;
  std::vector<std::string> field_values(athomic::kContextStringFieldCount);
  for (std::size_t i = 0; i < athomic::kContextStringFieldCount; ++i) {
    const auto f = static_cast<athomic::ContextField>(i);
    std::string flag = "--" + std::string(athomic::context_field_name(f));
    std::replace(flag.begin(), flag.end(), '_', '-');
    publish->add_option(flag, field_values[i], "context " + std::string(athomic::context_field_name(f)));
  }

  auto* listen = app.add_subcommand("listen", "print events as JSON lines");
  int listen_count = 0, timeout_s = 3600;
  listen->add_option("name", name, "event name")->required();
  listen->add_option("-n,--count", listen_count, "exit after this many (0: never)");
  listen->add_option("--timeout", timeout_s, "exit after this many seconds");
  CLI11_PARSE(app, argc, argv);

  try {
    const athomic::Settings settings = athomic::Settings::load();
    if (*backends) return cmd_backends(settings);
    if (*config) return cmd_config(settings);
    auto bus = athomic::EventBus::create(settings);
    bus->start();
    int rc = 0;
    if (*publish) {
      for (std::size_t i = 0; i < field_values.size(); ++i) {
        if (!field_values[i].empty()) fields[static_cast<athomic::ContextField>(i)] = field_values[i];
      }
      rc = cmd_publish(*bus, name, payload, fields, count, interval_ms);
    } else {
      rc = cmd_listen(*bus, name, listen_count, timeout_s);
    }
    bus->close();
    return rc;
  } catch (const athomic::EventBusError& e) {
    std::cerr << "athomic: " << e.what() << std::endl;
    return 2;
  }
}
