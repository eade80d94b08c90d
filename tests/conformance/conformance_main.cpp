// athomic-conformance: the provider conformance suite's entry point — the command line, the
// choice of backends, the settings per backend, and the start-up probe.
//
//   athomic-conformance [--backend NAME]... [gtest options]
//
// Installed with the SDK; a provider author runs it against their own provider (see
// docs/WRITING_A_PROVIDER.md, "Run the conformance suite", and --help).
#include <athomic/log.h>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "conformance.h"

namespace athomic::conformance {

namespace {

constexpr const char* kUsage = R"(athomic-conformance: the athomic provider conformance suite.

Usage: athomic-conformance [--backend NAME]... [gtest options]

Runs every check against each backend under test, in both dispatch modes (pool and inline),
loading the provider through the real plugin loader with the provider settings of the loaded
settings (NALA_SETTINGS_FILES or config/settings.toml, NALA_EVENTS__... variables).

The backends under test, in order of precedence:
  --backend NAME                    a backend to test; repeat for several
  ATHOMIC_CONFORMANCE_BACKENDS      comma-separated backend names
  events.provider.backend           of the loaded settings (the default)
A backend other than the settings' own is tested with its default settings.

Environment:
  ATHOMIC_PLUGIN_PATH               where to look for provider plugins (also events.plugins_dir)
  ATHOMIC_LOG_LEVEL                 log level of the host and the provider (trace, debug, info,
                                    warn, error, off); without it the suite logs warnings and
                                    errors only
  ATHOMIC_CONFORMANCE_SERVER_STOP   a shell command that stops the provider's server, and
  ATHOMIC_CONFORMANCE_SERVER_START  one that starts it again on the same address: with both,
                                    the overload check publishes with the server down until
                                    the provider refuses (without them it publishes a burst)

Remote providers (ATHOMIC_CAP_REMOTE) also run checks that need a second process: the suite
starts copies of itself (--peer ...) with the same environment. Checks that a provider's
declared capabilities exclude are skipped, and say why. Before any check, each backend is
created and started once; if that fails, every check of that backend fails with that one
reason. Select checks with --gtest_filter, e.g. '*InterestRemoveIsHonoured*' or '*/*_inline'.
)";

std::map<std::string, Probe>& probes() {
  static std::map<std::string, Probe> p;
  return p;
}

bool g_probed = false;

// Backends from the environment, or the settings' own; a settings error becomes the probe
// error of a backend named after it, so that every check says so.
std::vector<std::string> default_backends() {
  std::vector<std::string> out;
  if (const char* list = std::getenv("ATHOMIC_CONFORMANCE_BACKENDS"); list && *list) {
    std::string s(list);
    for (std::size_t start = 0;;) {
      const auto comma = s.find(',', start);
      std::string name = s.substr(start, comma == std::string::npos ? comma : comma - start);
      if (!name.empty()) out.push_back(name);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (!out.empty()) return out;
  }
  try {
    out.push_back(Settings::load().events().backend);
  } catch (const std::exception& e) {
    out.push_back("unreadable_settings");
    probes()["unreadable_settings"].error = std::string("cannot read the settings: ") + e.what();
  }
  return out;
}

class StartupProbe final : public testing::Environment {
 public:
  void SetUp() override {
    for (const auto& backend : chosen_backends()) {
      Probe& p = probes()[backend];
      if (!p.error.empty()) {
        report(backend, p);
        continue;
      }
      try {
        auto bus = EventBus::create(settings_for(backend, DispatchMode::pool));
        p.provider = bus->provider();
        bus->start();
        bus->close();
        p.ok = true;
        std::cout << "athomic-conformance: testing provider '" << p.provider.name << "' "
                  << p.provider.version << " (ABI " << p.provider.abi_major << "."
                  << p.provider.abi_minor << ", capabilities 0x" << std::hex
                  << p.provider.capabilities << std::dec << ") from " << p.provider.file
                  << std::endl;
      } catch (const std::exception& e) {
        p.error = e.what();
        try {
          if (const auto own = Settings::load().events().backend; own != backend) {
            p.error +=
                " (tested with its default settings: the settings select backend '" + own +
                "'; set events.provider.backend, e.g. NALA_EVENTS__PROVIDER__BACKEND=" + backend +
                ", to test it with the settings' provider keys)";
          }
        } catch (...) {
        }
        report(backend, p);
      }
    }
    g_probed = true;
  }

 private:
  static void report(const std::string& backend, const Probe& p) {
    std::cerr << "athomic-conformance: backend '" << backend
              << "' cannot be tested, every check of it fails: " << p.error << std::endl;
  }
};

// Takes the --backend options out of argv (gtest sees the rest).
std::vector<std::string> take_backend_options(int& argc, char** argv) {
  std::vector<std::string> out;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--backend" && i + 1 < argc) {
      out.push_back(argv[++i]);
    } else if (a.rfind("--backend=", 0) == 0) {
      out.push_back(a.substr(10));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  argv[argc] = nullptr;
  return out;
}

bool wants_help(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h" || a == "-?" || a == "/?" || a == "--gtest_help") return true;
  }
  return false;
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Target& t) {
  return os << t.backend << " (" << mode_text(t.mode) << " dispatch)";
}

const char* mode_text(DispatchMode mode) { return mode == DispatchMode::pool ? "pool" : "inline"; }

std::string target_name(const testing::TestParamInfo<Target>& info) {
  std::string n = info.param.backend + "_" + mode_text(info.param.mode);
  for (char& c : n) {
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return n;
}

std::vector<std::string>& chosen_backends() {
  static std::vector<std::string> b;
  return b;
}

std::vector<Target> targets() {
  std::vector<Target> out;
  for (const auto& b : chosen_backends()) {
    out.push_back({b, DispatchMode::pool});
    out.push_back({b, DispatchMode::inline_call});
  }
  return out;
}

const Probe* probe(const std::string& backend) {
  if (!g_probed) return nullptr;
  auto it = probes().find(backend);
  return it == probes().end() ? nullptr : &it->second;
}

testing::Environment* make_startup_probe() { return new StartupProbe(); }

EventsSettings settings_for(const std::string& backend, DispatchMode mode) {
  EventsSettings s = Settings::load().events();
  if (s.backend != backend) {
    s = EventsSettings{};
    s.backend = backend;
    s.provider_config = {{"backend", backend}};
  }
  s.enabled = true;
  s.dispatch_mode = mode;
  s.workers = 4;
  s.max_payload_bytes = kPayloadLimit;
  return s;
}

bool server_control_available() {
  const char* stop = std::getenv("ATHOMIC_CONFORMANCE_SERVER_STOP");
  const char* start = std::getenv("ATHOMIC_CONFORMANCE_SERVER_START");
  return stop && *stop && start && *start;
}

bool run_server_control(const char* variable, std::string& error) {
  const char* command = std::getenv(variable);
  if (!command || !*command) {
    error = std::string(variable) + " is not set";
    return false;
  }
  const int status = std::system(command);
  if (status != 0) {
    error =
        std::string(variable) + " (" + command + ") failed with status " + std::to_string(status);
    return false;
  }
  return true;
}

INSTANTIATE_TEST_SUITE_P(Provider, Conformance, testing::ValuesIn(targets()), target_name);

}  // namespace athomic::conformance

int main(int argc, char** argv) {
  using namespace athomic::conformance;
  // Warnings and errors only, unless ATHOMIC_LOG_LEVEL says otherwise — the provider's logs
  // included: they go through the host's loggers, which read ATHOMIC_LOG_LEVEL themselves.
  if (const char* level = std::getenv("ATHOMIC_LOG_LEVEL"); !level || !*level) {
    athomic::set_log_level("warn");
  }
  if (argc > 1 && std::strcmp(argv[1], "--peer") == 0) return run_peer(argc, argv);
  if (wants_help(argc, argv)) std::cout << kUsage << std::endl;
  std::vector<std::string> backends = take_backend_options(argc, argv);
  if (backends.empty()) backends = default_backends();
  chosen_backends() = backends;
  testing::InitGoogleTest(&argc, argv);
  testing::AddGlobalTestEnvironment(make_startup_probe());
  return RUN_ALL_TESTS();
}
