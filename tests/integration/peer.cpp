// The other process of cross-process tests: answers every "ping" with a "pong" published from
// inside the handler, so the pong carries the context the ping brought. Settings come from the
// environment (NALA_SETTINGS_FILES), as for any application.
#include <athomic/athomic.h>

#include <CLI/CLI.hpp>

#include <atomic>
#include <iostream>
#include <thread>

int main(int argc, char** argv) {
  CLI::App app{"athomic test peer"};
  int count = 1;
  app.add_option("-n,--count", count, "pings to answer before exiting");
  CLI11_PARSE(app, argc, argv);
  try {
    athomic::EventBus& bus = athomic::get_event_bus();
    std::atomic<int> answered{0};
    bus.subscribe("ping", [&](const athomic::Event& e) {
      const auto& ctx = athomic::ExecutionContext::current();
      bus.publish("pong", {{"n", e.payload().value("n", -1)},
                           {"seen_trace", ctx.trace_id().value_or("")},
                           {"seen_tenant", ctx.tenant_id().value_or("")}});
      answered++;
    });
    std::cout << "ready" << std::endl;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (answered < count && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    bus.close();
    return answered >= count ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "peer: " << e.what() << std::endl;
    return 2;
  }
}
