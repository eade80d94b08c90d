// `athomic`: look at and use an event bus from the shell, with the same settings an application
// reads (config/settings.toml, NALA_SETTINGS_FILES, NALA_ENV, NALA_ variables).
//
//   athomic backends          search path, each plugin file (what it declares, whether it would
//                             load and why not), the backends found
//   athomic config [--json]   every effective setting, the provider's too, with where it came
//                             from (file:line, NALA_ variable, default); secrets masked
//   athomic publish NAME [JSON] [--trace-id T ...] [-n COUNT] [--interval-ms MS]
//                             one line per event: how far it got; no JSON and stdin not a
//                             terminal: one event per JSON line of stdin
//   athomic listen NAME... [--raw] [-n COUNT] [--timeout S]
//                             one JSON line per event on stdout, everything else on stderr
//   athomic doctor            settings, plugin, start and a round trip, one line each
//   athomic stats [--endpoint HOST:PORT] [-n COUNT]
//                             per event counts and latency percentiles: of a running service's
//                             /metrics (--endpoint, or events.metrics.listen), else of a short
//                             publish/receive run
//   athomic bench [-n COUNT] [--size BYTES] [--rate N]
//                             events/s and latency percentiles, published here and received by
//                             another process (in this one on an in-process backend)
//
// Global: --settings FILE (repeatable), --env NAME, --no-color, --version. Exit codes: 0 done,
// 1 the bus did not do it, 2 a usage or configuration error.
#include "cli.h"
#include "cli_usage.h"

#include <athomic/sdk/provider.h>

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>

extern char** environ;

using namespace athomic::cli;

namespace {

constexpr const char* kExitCodes =
    "Exit status: 0 done; 1 the bus did not do it (an event refused or not delivered, no\n"
    "connection, a round trip that failed); 2 a usage or configuration error (the command line,\n"
    "a bad JSON line or event name, invalid settings, a backend that cannot be loaded).";

std::string version_text() {
  return std::string("athomic ") + ATHOMIC_VERSION + " (provider ABI " +
         std::to_string(ATHOMIC_ABI_VERSION_MAJOR) + "." +
         std::to_string(ATHOMIC_ABI_VERSION_MINOR) + ")";
}

// --env NAME goes in as NALA_ENV would, so that every message names it the same way.
athomic::Settings::LoadOptions load_options(const std::vector<std::string>& files,
                                            const std::string& env) {
  athomic::Settings::LoadOptions load;
  load.files = files;
  if (!env.empty()) {
    std::map<std::string, std::string> variables;
    for (char** e = environ; *e; ++e) {
      const std::string_view kv(*e);
      const auto eq = kv.find('=');
      if (eq != std::string_view::npos) variables.emplace(kv.substr(0, eq), kv.substr(eq + 1));
    }
    variables["NALA_ENV"] = env;
    load.environment = std::move(variables);
  }
  return load;
}

// CLI11's PositiveNumber says "not in range 0.000000 to 1797693…"; this says what is meant.
CLI::Validator at_least(double min, const char* what) {
  const std::string expected = std::string("expected ") + what;
  return CLI::Validator(
      [min, expected](std::string& value) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(value.c_str(), &end);
        if (value.empty() || *end != '\0' || !(v >= min)) return expected + ", not " + value;
        return {};
      },
      "", "at_least");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"athomic: inspect and use the event bus configured in settings.toml", "athomic"};
  app.set_version_flag("--version", version_text(), "print the version and exit");
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the command
  app.footer(kExitCodes);
  std::vector<std::string> settings_files;
  app.add_option("--settings", settings_files,
                 "read this settings file instead of NALA_SETTINGS_FILES (repeatable; later files "
                 "override earlier ones)")
      ->type_name("FILE")
      ->allow_extra_args(false);
  std::string env;
  app.add_option("--env", env, "the settings environment, as NALA_ENV (default development)")
      ->type_name("NAME");
  bool no_color = false;
  app.add_flag("--no-color", no_color, "no colours (as NO_COLOR=1)");

  auto* backends = app.add_subcommand("backends", "list the plugin search path and backends");
  auto* config = app.add_subcommand(
      "config",
      "print every effective setting, the provider's too, with where it came from (file:line, "
      "environment variable, or default); secrets masked");
  ConfigOptions c;
  config->add_flag("--json", c.json, "a JSON array of {key, value, origin, meaning}");

  auto* publish = app.add_subcommand(
      "publish",
      "publish an event (in the given context); prints one line per event: the handlers it "
      "reached in this process, the receivers the server counted, or that it was acknowledged");
  PublishOptions p;
  std::string payload;
  publish->add_option("name", p.name, "event name")->required();
  publish->add_option("payload", payload,
                      "JSON object (default {}); without it, and stdin not a terminal, each JSON "
                      "line of stdin is one event");
  publish->add_option("-n,--count", p.count, "how many times (adds \"seq\")")
      ->check(at_least(1, "a count of 1 or more"));
  publish->add_option("--interval-ms", p.interval_ms, "pause between events")
      ->check(at_least(0, "milliseconds, 0 or more"));
  std::vector<std::string> field_values(athomic::kContextStringFieldCount);
  for (std::size_t i = 0; i < athomic::kContextStringFieldCount; ++i) {
    const auto f = static_cast<athomic::ContextField>(i);
    std::string flag = "--" + std::string(athomic::context_field_name(f));
    std::replace(flag.begin(), flag.end(), '_', '-');
    publish->add_option(flag, field_values[i],
                        "context " + std::string(athomic::context_field_name(f)));
  }

  auto* listen = app.add_subcommand(
      "listen", "print each event as one JSON line on stdout (readiness and logs on stderr)");
  ListenOptions l;
  double timeout_s = 0;
  listen->add_option("names", l.names, "event names and patterns (user.*, orders.>)")->required();
  listen->add_flag("--raw", l.raw, "print the payload alone");
  listen->add_option("-n,--count", l.count, "exit after this many events")
      ->check(at_least(1, "a count of 1 or more"));
  auto* timeout = listen
                      ->add_option("--timeout", timeout_s,
                                   "exit after this many seconds (default: when interrupted)")
                      ->check(at_least(0, "seconds, 0 or more"))
                      ->type_name("SECONDS");

  auto* doctor = app.add_subcommand(
      "doctor", "check settings, plugin, start and a publish/receive round trip");

  auto* stats = app.add_subcommand(
      "stats",
      "per event published/received/delivered/failures/drops and latency percentiles: of a "
      "running service (--endpoint, or events.metrics.listen), else of a short run");
  StatsOptions st;
  stats->add_option("--endpoint", st.endpoint,
                    "fetch http://HOST:PORT/metrics of a service with events.metrics.listen on")
      ->type_name("HOST:PORT")
      ->check(CLI::Validator(
          [](std::string& v) { return v.empty() ? std::string("an empty HOST:PORT") : std::string(); },
          "HOST:PORT"));
  stats->add_option("-n,--count", st.count, "events of the short run (default 100)")
      ->check(at_least(1, "a count of 1 or more"));

  auto* bench = app.add_subcommand(
      "bench",
      "publish events here and receive them in another process (in this one on an in-process "
      "backend); prints events/s and latency percentiles, with progress on a terminal");
  BenchOptions b;
  bench->add_option("-n,--count", b.count, "events to publish (default 10000)")
      ->check(at_least(1, "a count of 1 or more"));
  bench->add_option("--size", b.size, "bytes of each payload's JSON (default 100)")
      ->check(at_least(0, "bytes, 0 or more"))
      ->type_name("BYTES");
  bench->add_option("--rate", b.rate, "events per second (default: as fast as it can)")
      ->check(at_least(0, "events per second, 0 or more"))
      ->type_name("N");
  // The receiving process's options, set by bench itself.
  bench->add_option("--receiver-fd", b.receiver_fd)->group("");
  bench->add_option("--event", b.event)->group("");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << explain_parse_error(app, std::vector<std::string>(argv + 1, argv + argc), e)
              << std::endl;
    return kExitUsage;
  }
  // athomic's loggers read NO_COLOR when the first is made, which is later.
  if (no_color) setenv("NO_COLOR", "1", 1);
  const auto load = load_options(settings_files, env);
  if (*doctor) {
    const char* nc = std::getenv("NO_COLOR");
    return cmd_doctor(load, isatty(STDOUT_FILENO) && !(nc && *nc));
  }
  // Before anything starts a thread: every thread inherits the mask, and listen takes the
  // signals with sigtimedwait.
  if (*listen) block_stop_signals();

  try {
    const athomic::Settings settings = athomic::Settings::load(load);
    if (*backends) return cmd_backends(settings);
    if (*config) {
      c.env_origin = !env.empty()            ? "--env"
                     : std::getenv("NALA_ENV") ? "environment variable NALA_ENV"
                                               : "default";
      return cmd_config(settings, c);
    }
    if (*publish) {
      if (publish->count("payload") > 0) p.payload = payload;
      p.count_given = publish->count("--count") > 0;
      for (std::size_t i = 0; i < field_values.size(); ++i) {
        if (!field_values[i].empty())
          p.context[static_cast<athomic::ContextField>(i)] = field_values[i];
      }
      return cmd_publish(settings, p);
    }
    if (*stats) return cmd_stats(settings, st);
    if (*bench) {
      for (const auto& f : settings_files) b.global_args.insert(b.global_args.end(), {"--settings", f});
      if (!env.empty()) b.global_args.insert(b.global_args.end(), {"--env", env});
      return cmd_bench(settings, b);
    }
    if (timeout->count() > 0) l.timeout_s = timeout_s;
    return cmd_listen(settings, l);
  } catch (const UsageError& e) {
    std::cerr << "athomic " << app.get_subcommands().front()->get_name() << ": " << e.what()
              << std::endl;
    return kExitUsage;
  } catch (const athomic::ConfigError& e) {
    std::cerr << "athomic: " << e.what() << std::endl;
    return kExitUsage;
  } catch (const athomic::PluginError& e) {
    // The backend named in the settings cannot be loaded, or refused its settings.
    std::cerr << "athomic: " << e.what() << std::endl;
    return kExitUsage;
  } catch (const std::exception& e) {  // EventBusError: refused, or no connection
    std::cerr << "athomic: " << e.what() << std::endl;
    return kExitFailed;
  }
}
