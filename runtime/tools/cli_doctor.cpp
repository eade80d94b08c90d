// `athomic doctor`: the steps an application takes to get a working bus, one line each, so
// that the first one that fails is named with what to do about it.
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string_view>

#include "cli.h"

namespace athomic::cli {
namespace {

class Report {
 public:
  explicit Report(bool color) : color_(color) {}
  void pass(const char* step, const std::string& detail) { line("\u2713", "32", step, detail); }
  void fail(const char* step, const std::string& detail, const std::string& fix) {
    line("\u2717", "31", step, detail);
    std::cout << "    fix: " << fix << std::endl;
  }
  void skip(const char* step, const std::string& why) { line("-", "2", step, "skipped: " + why); }

 private:
  void line(const char* mark, const char* sgr, const char* step, const std::string& detail) {
    if (color_) {
      std::cout << "\033[" << sgr << "m" << mark << "\033[0m";
    } else {
      std::cout << mark;
    }
    std::cout << " " << step << ": " << detail << std::endl;
  }
  bool color_;
};

constexpr auto kRoundTripTimeout = std::chrono::seconds(5);

}  // namespace

int cmd_doctor(const Settings::LoadOptions& load, bool color) {
  Report report(color);
  std::optional<Settings> settings;
  try {
    settings = Settings::load(load);
    const auto& e = settings->events();
    report.pass("settings", "environment " + settings->env() + ", backend " + e.backend + " (" +
                                e.origin_of("events.provider.backend") + ")");
  } catch (const EventBusError& e) {
    report.fail("settings", e.what(),
                "correct the value at the place named above; `athomic config` shows what is read");
    report.skip("plugin", "no settings");
    report.skip("start", "no settings");
    report.skip("round trip", "no settings");
    return kExitUsage;
  }

  std::shared_ptr<EventBus> bus;
  try {
    bus = EventBus::create(*settings);
  } catch (const EventBusError& e) {
    // A provider setting it does not declare, or one the provider refused: the plugin loaded.
    const bool settings =
        dynamic_cast<const ConfigError*>(&e) ||
        std::string_view(e.what()).find(" failed to initialise: ") != std::string_view::npos;
    report.fail("plugin", e.what(),
                settings ? "correct the setting named above; `athomic config` shows each setting "
                           "and where it came from"
                         : "`athomic backends` lists the folders searched and why each plugin "
                           "file does or does not load");
    report.skip("start", "no plugin");
    report.skip("round trip", "no plugin");
    return kExitUsage;
  }
  if (!bus->enabled()) {
    report.fail("plugin",
                "events.enabled is false (" + settings->events().origin_of("events.enabled") +
                    "): no provider is loaded and the bus does nothing",
                "set events.enabled = true");
    report.skip("start", "the bus is disabled");
    report.skip("round trip", "the bus is disabled");
    return kExitUsage;
  }
  const auto provider = bus->provider();
  report.pass("plugin", "provider '" + provider.name + "' " + provider.version + ", ABI " +
                            std::to_string(provider.abi_major) + "." +
                            std::to_string(provider.abi_minor) + " (" + provider.file + ")");

  try {
    bus->start();
  } catch (const EventBusError& e) {
    report.fail("start", e.what(),
                "check that the server is running and reachable at the address in the settings "
                "(`athomic config` shows it, password masked)");
    report.skip("round trip", "the bus did not start");
    return kExitFailed;
  }
  const bool local = in_process_only(*bus);
  const std::string detail = bus->health().detail;
  report.pass("start", local ? "started (in process)" : detail.empty() ? "connected" : detail);

  // A name no one else uses, so that the event received is this one.
  const std::string name =
      "athomic.doctor." + std::to_string(getpid()) + "." +
      std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  std::mutex m;
  std::condition_variable cv;
  bool received = false;
  bus->subscribe(name, [&](const Event&) {
    std::lock_guard lock(m);
    received = true;
    cv.notify_all();
  });
  const auto sent_at = std::chrono::steady_clock::now();
  Completion c = bus->publish(name, nlohmann::json{{"check", "round trip"}});
  bool arrived;
  {
    std::unique_lock lock(m);
    arrived = cv.wait_for(lock, kRoundTripTimeout, [&] { return received; });
  }
  const auto took =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sent_at);
  c.wait_for(kRoundTripTimeout);
  bus->close();
  if (!c.delivered()) {
    report.fail(
        "round trip",
        "publishing " + name + " failed: " + (c.done() ? c.error() : "no answer within 5 s"),
        "the error above is the transport's; for Redis ACLs, the user needs publish and "
        "subscribe rights on the key prefix's channels");
    return kExitFailed;
  }
  if (!arrived) {
    report.fail("round trip", "published " + name + ", but it did not arrive within 5 s",
                "the server took the event and did not deliver it back: check that nothing "
                "between (a proxy, a cluster) drops Pub/Sub messages");
    return kExitFailed;
  }
  char ms[32];
  std::snprintf(ms, sizeof ms, "%.1f ms", took.count());
  report.pass("round trip", "published " + name + " and received it in " + ms +
                                (local ? " (in process only: other processes do not "
                                         "see this backend's events)"
                                       : ""));
  return kExitOk;
}

}  // namespace athomic::cli
