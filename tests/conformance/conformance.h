// The provider conformance suite's shared parts: the parameter (backend and dispatch mode), the
// fixture every check derives from, the start-up probe's findings, the peer process, and small
// thread-safe recorders. The checks live in *_test.cpp, one concern per file; main(), the command
// line and the probe in conformance_main.cpp; the helpers in conformance.cpp; the peer's side in
// peer.cpp.
#pragma once

#include <athomic/athomic.h>
#include <athomic/sdk/provider.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "process.h"
#include "test_support.h"

namespace athomic::conformance {

// Deadlock guards, never performance assertions.
inline constexpr auto kPatience = std::chrono::seconds(30);
inline constexpr std::size_t kPayloadLimit = 256 * 1024;

// One instance of every check: a backend in one dispatch mode.
struct Target {
  std::string backend;
  DispatchMode mode = DispatchMode::pool;
};
std::ostream& operator<<(std::ostream& os, const Target& t);
std::string target_name(const testing::TestParamInfo<Target>& info);
const char* mode_text(DispatchMode mode);

// The backends under test (chosen by main() before the tests are registered), each in both
// dispatch modes.
std::vector<std::string>& chosen_backends();
std::vector<Target> targets();

// What the start-up probe found out about a backend: created and started once before any test.
struct Probe {
  bool ok = false;
  std::string error;  // why it could not be created or started
  ProviderDescription provider;
};
// Nullptr before the probe ran.
const Probe* probe(const std::string& backend);
testing::Environment* make_startup_probe();

// The settings for @p backend in @p mode: the loaded settings when they name it, else its
// defaults; with the suite's own pool size and payload limit.
EventsSettings settings_for(const std::string& backend, DispatchMode mode);

// Taking the server away and bringing it back, for the overload check: the shell commands in
// ATHOMIC_CONFORMANCE_SERVER_STOP and ATHOMIC_CONFORMANCE_SERVER_START, when both are set.
bool server_control_available();
// Runs one of them; false with @p error when it failed.
bool run_server_control(const char* variable, std::string& error);

// Received values, counted per key.
class Inbox {
 public:
  void add(const std::string& key);
  std::size_t total() const;
  int count(const std::string& key) const;
  std::size_t distinct() const;

 private:
  mutable std::mutex m_;
  std::map<std::string, int> counts_;
  std::size_t total_ = 0;
};

// Batch numbers of the fence events seen, to wait for one.
class Fences {
 public:
  void add(int batch);
  bool wait_for(int batch, std::chrono::milliseconds limit);

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::set<int> seen_;
};

// Waits until @p done, or until @p progress has not changed for @p quiet, or kPatience passed;
// returns done(). For "everything arrived" checks that must fail fast when something is lost.
bool settle(const std::function<bool()>& done, const std::function<std::size_t()>& progress,
            std::chrono::milliseconds quiet = std::chrono::seconds(5));

// Publishes, riding out backpressure: a burst may fill a provider's bounded buffer, which then
// refuses (publish throws EventBusError) until it drains — a refusal the caller is to retry.
// Gives up, rethrowing, after 10 s of refusals.
Completion publish_patiently(EventBus& bus, std::string_view name, const nlohmann::json& payload);

// Runs @p body(i) for i in [0, n) on n threads and joins them; what one throws fails the test
// (instead of ending the process).
void on_threads(int n, const std::function<void(int)>& body);

// A second copy of this binary on the same bus (remote providers): see peer.cpp for the roles.
class Peer {
 public:
  Peer(const std::string& role, const Target& target, const std::vector<std::string>& args);
  // Waits for the peer's "ready".
  testing::AssertionResult ready();
  // Sends @p sig (SIGUSR1: publish the events and a fence; SIGUSR2: a fence only) and waits for
  // the peer's answer, once it has published: the batch number of that fence.
  std::optional<int> request(int sig);
  // Asks the peer to finish (SIGTERM) and returns its exit status (-1: it did not exit).
  int finish();

 private:
  test::Process process_;
};

// Asks @p peer for fences until one arrives in @p fences (a provider that subscribes late gets
// there too, only later): then the fence's own subscription is known to be in place.
bool fence_flows(Peer& peer, Fences& fences);

// Parses the peer's command line and runs it; never throws (main returns its result).
int run_peer(int argc, char** argv);

class Conformance : public testing::TestWithParam<Target> {
 protected:
  // Fails the test at once, with the start-up probe's one-line reason, when the backend could
  // not be started.
  void SetUp() override;

  const std::string& backend() const { return GetParam().backend; }
  DispatchMode mode() const { return GetParam().mode; }
  bool pool() const { return mode() == DispatchMode::pool; }
  EventsSettings settings() const { return settings_for(backend(), mode()); }
  std::shared_ptr<EventBus> make_bus() const { return make_bus(settings()); }
  std::shared_ptr<EventBus> make_bus(const EventsSettings& s) const;
  bool has(uint64_t capability) const;
  // A fresh event name per test, mode and process, so leftovers on a shared server cannot
  // interfere.
  std::string name(const std::string& base) const;
  // "provider 'x'", for messages.
  std::string who() const { return "provider '" + backend() + "'"; }
};

}  // namespace athomic::conformance
