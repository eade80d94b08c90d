// End-to-end bench tool: one process publishes, another subscribes, over whatever backend the
// settings choose (NALA_SETTINGS_FILES / NALA_ variables). The subscriber measures throughput
// (first to last receipt) and publish→handler latency from a monotonic timestamp in each
// payload (both processes run on one machine, so CLOCK_MONOTONIC is shared).
//
//   athomic_e2e_bench --role sub -n 200000              prints "ready", then a JSON result line
//   athomic_e2e_bench --role pub -n 200000 [--rate R]   R events/s, 0 = as fast as accepted
#include <athomic/athomic.h>

#include <CLI/CLI.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>
#include <vector>

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// CPU time of the whole process (all threads), seconds.
double process_cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int run_sub(athomic::EventBus& bus, const std::string& event, int count, int timeout_s) {
  std::vector<int64_t> latency(static_cast<std::size_t>(count));
  std::atomic<int> received{0};
  std::atomic<int64_t> first{0}, last{0};
  bus.subscribe(event, [&](const athomic::Event& e) {
    const int64_t t = now_ns();
    const int i = received.fetch_add(1);
    if (i == 0) first = t;
    if (i < count) latency[static_cast<std::size_t>(i)] = t - e.payload()["ts"].get<int64_t>();
    if (i == count - 1) last = t;
  });
  std::cout << "ready" << std::endl;
  const double cpu_at_ready = process_cpu_s();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (received.load() < count && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const int got = std::min(received.load(), count);
  const double cpu_s = process_cpu_s() - cpu_at_ready;
  const athomic::BusStats stats = bus.stats();
  bus.close();
  std::vector<int64_t> l(latency.begin(), latency.begin() + got);
  std::sort(l.begin(), l.end());
  auto pct = [&](double p) {
    return l.empty() ? 0.0 : l[std::min(l.size() - 1, static_cast<std::size_t>(p * l.size()))] / 1e3;
  };
  const double secs = got > 1 ? (last.load() - first.load()) / 1e9 : 0;
  nlohmann::json out = {{"role", "sub"},          {"received", got},
                        {"expected", count},      {"seconds", secs},
                        {"events_per_s", secs > 0 ? (got - 1) / secs : 0},
                        {"p50_us", pct(0.50)},    {"p99_us", pct(0.99)},
                        {"max_us", pct(1.0)},
                        // The subscribing process's CPU (every thread) from "ready" to the last
                        // event, per event received.
                        {"cpu_us_per_event", got > 0 ? cpu_s * 1e6 / got : 0},
                        // Deliveries the bus asked the provider to retry (its queue was full).
                        {"receive_refusals", stats.receive_refusals}};
  std::cout << out.dump() << std::endl;
  return got == count ? 0 : 1;
}

int run_pub(athomic::EventBus& bus, const std::string& event, int count, double rate,
            int payload_bytes) {
  const std::string pad(static_cast<std::size_t>(payload_bytes), 'x');
  athomic::ContextScope ctx(
      athomic::ExecutionContext::Builder().trace_id("bench-trace").tenant_id("bench").build());
  uint64_t retries = 0;
  const int64_t start = now_ns();
  for (int i = 0; i < count; ++i) {
    if (rate > 0) {
      const int64_t due = start + static_cast<int64_t>(i * 1e9 / rate);
      while (now_ns() < due) {
      }
    }
    for (;;) {
      try {
        bus.publish(event, {{"ts", now_ns()}, {"n", i}, {"pad", pad}});
        break;
      } catch (const athomic::EventBusError&) {
        ++retries;  // the provider's buffer is full: let it drain
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
  }
  const double secs = (now_ns() - start) / 1e9;
  bus.close();
  nlohmann::json out = {{"role", "pub"}, {"sent", count}, {"seconds", secs},
                        {"events_per_s", count / secs}, {"backpressure_retries", retries}};
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"athomic end-to-end bench"};
  std::string role;
  int count = 100000;
  double rate = 0;
  int payload_bytes = 64;
  int timeout_s = 120;
  std::string event = "bench.tick";
  app.add_option("--role", role, "pub or sub")->required()->check(CLI::IsMember({"pub", "sub"}));
  app.add_option("-n,--count", count, "events")->check(CLI::PositiveNumber);
  app.add_option("--rate", rate, "publish rate, events/s (0: as fast as possible)");
  app.add_option("--payload-bytes", payload_bytes, "padding in each payload");
  app.add_option("--timeout", timeout_s, "seconds the subscriber waits");
  app.add_option("--event", event, "event name");
  CLI11_PARSE(app, argc, argv);
  athomic::set_log_level("warn");
  try {
    athomic::EventBus& bus = athomic::get_event_bus();
    return role == "sub" ? run_sub(bus, event, count, timeout_s)
                         : run_pub(bus, event, count, rate, payload_bytes);
  } catch (const std::exception& e) {
    std::cerr << "bench: " << e.what() << std::endl;
    return 2;
  }
}
