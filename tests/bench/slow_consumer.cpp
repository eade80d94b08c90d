// The slow-consumer run: a handler that takes a millisecond per event and a publisher that
// publishes as fast as it is allowed, for a while. What a service owner wants to know: how much
// memory the process took (peak RSS), how many publishes were refused, and how many events were
// dropped and why — the bus's own counters.
//
//   athomic_slow_consumer --role local [--seconds 10]   both sides in one process (any backend)
//   athomic_slow_consumer --role sub  [--seconds 10]    the slow side, over the settings' backend
//   athomic_slow_consumer --role pub  [--seconds 10]    the fast side
// Settings come from NALA_SETTINGS_FILES / NALA_ variables, as in any application. Each role
// prints one JSON line.
#include <athomic/athomic.h>

#include <CLI/CLI.hpp>

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

nlohmann::json counters(const athomic::EventBus& bus) {
  const auto s = bus.stats();
  return {{"queue_full_refusals", s.queue_full},
          {"receive_refusals", s.receive_refusals},
          {"publish_failures", s.publish_failures},
          {"dropped_on_close", s.dropped_on_close},
          {"dropped_queue_full", s.dropped_queue_full},
          {"dropped_by_transport", s.dropped_by_transport},
          {"malformed", s.malformed_messages},
          {"undeliverable", s.undeliverable},
          {"handler_failures", s.handler_failures}};
}

struct Publisher {
  uint64_t accepted = 0;
  uint64_t refused = 0;
  uint64_t queued_peak = 0;
};

Publisher publish_for(athomic::EventBus& bus, const std::string& event, int seconds,
                      int payload_bytes) {
  const std::string pad(static_cast<std::size_t>(payload_bytes), 'x');
  Publisher p;
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  for (uint64_t n = 0; Clock::now() < end; ++n) {
    try {
      bus.publish(event, {{"n", n}, {"pad", pad}});
      ++p.accepted;
    } catch (const athomic::EventBusError&) {
      ++p.refused;
    }
    if ((n & 1023) == 0) p.queued_peak = std::max(p.queued_peak, bus.stats().queued_events);
  }
  return p;
}

void slow_handler(athomic::EventBus& bus, const std::string& event, int handler_ms,
                  std::atomic<uint64_t>& handled) {
  bus.subscribe(event, [&handled, handler_ms](const athomic::Event&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(handler_ms));
    handled.fetch_add(1, std::memory_order_relaxed);
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"athomic slow-consumer run"};
  std::string role;
  int seconds = 10;
  int handler_ms = 1;
  int payload_bytes = 64;
  std::string event = "slow.consumer";
  app.add_option("--role", role, "local, pub or sub")
      ->required()
      ->check(CLI::IsMember({"local", "pub", "sub"}));
  app.add_option("--seconds", seconds, "how long to publish (sub: to listen)")->check(CLI::PositiveNumber);
  app.add_option("--handler-ms", handler_ms, "milliseconds each handler call takes");
  app.add_option("--payload-bytes", payload_bytes, "padding in each payload");
  app.add_option("--event", event, "event name");
  CLI11_PARSE(app, argc, argv);
  athomic::set_log_level("warn");
  try {
    athomic::EventBus& bus = athomic::get_event_bus();
    std::atomic<uint64_t> handled{0};
    nlohmann::json out = {{"role", role}};
    if (role != "pub") slow_handler(bus, event, handler_ms, handled);
    if (role == "sub") {
      std::cout << "ready" << std::endl;
      uint64_t queued_peak = 0;
      const auto end = Clock::now() + std::chrono::seconds(seconds);
      while (Clock::now() < end) {
        queued_peak = std::max(queued_peak, bus.stats().queued_events);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      out["queued_peak"] = queued_peak;
    } else {
      const Publisher p = publish_for(bus, event, seconds, payload_bytes);
      out["published"] = p.accepted;
      out["refused"] = p.refused;
      out["queued_peak"] = p.queued_peak;
    }
    out["handled"] = handled.load();
    out["queued_at_end"] = bus.stats().queued_events;
    out["peak_rss_mib"] = static_cast<double>(peak_rss_kib()) / 1024.0;
    out["stats"] = counters(bus);
    bus.close(std::chrono::milliseconds(100));  // the backlog is dropped, and counted
    out["dropped_on_close"] = bus.stats().dropped_on_close;
    std::cout << out.dump() << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "slow consumer: " << e.what() << std::endl;
    return 2;
  }
}
