// The peer: a second copy of the suite, on the same bus in another process, for the checks of
// remote providers that need one. Started by the suite as
//
//   athomic-conformance --peer ROLE --peer-backend NAME --peer-mode pool|inline [options]
//
// with the suite's environment (so the same settings and server). Roles:
//   pong       answers each event on <event>.ping from inside its handler with one on
//              <event>.pong carrying the ping's number and the trace id it saw; exits 0 once it
//              answered --peer-count pings.
//   publisher  on SIGUSR1 publishes --peer-count events {"i", "batch"} on --peer-event and then
//              one {"batch"} on --peer-fence; on SIGUSR2 only the fence; then answers
//              "batch N" on stdout, N counting the signals from 1. Exits 0 on SIGTERM.
// Both say "ready" on stdout once started and subscribed. Any failure is one line on stderr and
// exit status 3 — never an uncaught exception.
#include <signal.h>
#include <time.h>

#include <atomic>
#include <cstring>
#include <iostream>
#include <thread>

#include "conformance.h"

namespace athomic::conformance {

namespace {

constexpr auto kPeerLifetime = std::chrono::seconds(300);  // an orphan does not linger forever

struct PeerOptions {
  std::string role, backend, event, fence;
  DispatchMode mode = DispatchMode::pool;
  int count = 1;
};

PeerOptions parse(int argc, char** argv) {
  PeerOptions o;
  o.role = argc > 2 ? argv[2] : "";
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--peer-backend") {
      o.backend = value;
    } else if (key == "--peer-mode") {
      o.mode = value == "inline" ? DispatchMode::inline_call : DispatchMode::pool;
    } else if (key == "--peer-event") {
      o.event = value;
    } else if (key == "--peer-fence") {
      o.fence = value;
    } else if (key == "--peer-count") {
      o.count = std::stoi(value);
    } else {
      throw std::invalid_argument("unknown option " + key);
    }
  }
  if (o.backend.empty() || o.event.empty()) {
    throw std::invalid_argument("--peer-backend and --peer-event are required");
  }
  return o;
}

int run_pong(EventBus& bus, const PeerOptions& o) {
  std::atomic<int> answered{0};
  bus.subscribe(o.event + ".ping", [&](const Event& e) {
    bus.publish(o.event + ".pong",
                {{"n", e.payload()["n"]},
                 {"seen_trace", ExecutionContext::current().trace_id().value_or("")}});
    answered++;
  });
  std::cout << "ready" << std::endl;
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (answered < o.count && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (answered < o.count) {
    std::cerr << "athomic-conformance --peer pong: answered " << answered << " of " << o.count
              << " pings" << std::endl;
    return 1;
  }
  return 0;
}

int run_publisher(EventBus& bus, const PeerOptions& o, const sigset_t& signals) {
  if (o.fence.empty()) throw std::invalid_argument("--peer-fence is required");
  std::cout << "ready" << std::endl;
  const auto deadline = std::chrono::steady_clock::now() + kPeerLifetime;
  for (int batch = 1; std::chrono::steady_clock::now() < deadline;) {
    timespec wait{1, 0};
    const int sig = ::sigtimedwait(&signals, nullptr, &wait);
    if (sig == SIGTERM) return 0;
    if (sig != SIGUSR1 && sig != SIGUSR2) continue;
    std::vector<Completion> sent;
    if (sig == SIGUSR1) {
      for (int i = 0; i < o.count; ++i)
        sent.push_back(bus.publish(o.event, {{"i", i}, {"batch", batch}}));
    }
    sent.push_back(bus.publish(o.fence, {{"batch", batch}}));
    // A transport that acknowledges publishes has taken them once they are done.
    for (const auto& c : sent) c.wait_for(std::chrono::seconds(10));
    std::cout << "batch " << batch++ << std::endl;
  }
  return 0;
}

}  // namespace

int run_peer(int argc, char** argv) {
  try {
    // Before any thread exists, so that every thread inherits the mask and the signals wait for
    // sigtimedwait.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGUSR1);
    sigaddset(&signals, SIGUSR2);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    const PeerOptions o = parse(argc, argv);
    auto bus = EventBus::create(settings_for(o.backend, o.mode));
    bus->start();
    int status = 2;
    if (o.role == "pong") {
      status = run_pong(*bus, o);
    } else if (o.role == "publisher") {
      status = run_publisher(*bus, o, signals);
    } else {
      throw std::invalid_argument("unknown role '" + o.role + "'");
    }
    bus->close();
    return status;
  } catch (const std::exception& e) {
    std::cerr << "athomic-conformance --peer: " << e.what() << std::endl;
  } catch (...) {
    std::cerr << "athomic-conformance --peer: an exception that is not a std::exception"
              << std::endl;
  }
  return 3;
}

}  // namespace athomic::conformance
