// What several commands share: starting the bus, saying when it is in-process only, checking
// what the user typed before anything is sent.
#include "cli.h"

#include <athomic/sdk/provider.h>

#include <csignal>
#include <iostream>

namespace athomic::cli {

std::shared_ptr<EventBus> start_bus(const Settings& settings) {
  auto bus = EventBus::create(settings);
  bus->start();
  return bus;
}

bool in_process_only(const EventBus& bus) {
  return (bus.provider().capabilities & ATHOMIC_CAP_IN_PROCESS) != 0;
}

void note_in_process(const EventBus& bus, std::string_view command) {
  if (!in_process_only(bus)) return;
  std::cerr << "athomic " << command << ": backend '" << bus.provider().name
            << "' is in-process only: "
            << (command == "listen"
                    ? "events other processes publish never arrive here, so this prints nothing."
                    : "events reach handlers in this process alone, and this one has none, so "
                      "no other process will see them.")
            << " Choose a shared backend to reach other processes (redis: --settings "
               "config/redis.toml, or NALA_EVENTS__PROVIDER__BACKEND=redis)."
            << std::endl;
}

nlohmann::json parse_payload(std::string_view text, const std::string& what) {
  nlohmann::json payload;
  try {
    payload = nlohmann::json::parse(std::string(text));
  } catch (const nlohmann::json::parse_error& e) {
    // Drop the "[json.exception.parse_error.101] " tag; keep the position and the reason.
    std::string reason = e.what();
    if (const auto close = reason.find("] ");
        reason.starts_with("[") && close != std::string::npos) {
      reason.erase(0, close + 2);
    }
    // The text is one line: its column is enough.
    if (const auto at = reason.find("at line 1, column "); at != std::string::npos) {
      reason.replace(at, std::string_view("at line 1, column ").size(), "at column ");
    }
    throw UsageError(what + " is not valid JSON: " + reason);
  }
  if (payload.is_null()) return nlohmann::json::object();
  if (!payload.is_object()) {
    throw UsageError(what + " must be a JSON object, not " + std::string(payload.type_name()) +
                     ": " + std::string(text.substr(0, 80)));
  }
  return payload;
}

void check_event_name(const std::string& name) {
  try {
    validate_event_name(name);
  } catch (const EventBusError& e) {
    throw UsageError(e.what());
  }
}

void block_stop_signals() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
}

}  // namespace athomic::cli
