// The conformance suite's shared helpers: recorders, waits, the peer process, the fixture.
#include "conformance.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

namespace athomic::conformance {

void Inbox::add(const std::string& key) {
  std::lock_guard lock(m_);
  counts_[key]++;
  total_++;
}
std::size_t Inbox::total() const {
  std::lock_guard lock(m_);
  return total_;
}
int Inbox::count(const std::string& key) const {
  std::lock_guard lock(m_);
  auto it = counts_.find(key);
  return it == counts_.end() ? 0 : it->second;
}
std::size_t Inbox::distinct() const {
  std::lock_guard lock(m_);
  return counts_.size();
}

void Fences::add(int batch) {
  std::lock_guard lock(m_);
  seen_.insert(batch);
  cv_.notify_all();
}
bool Fences::wait_for(int batch, std::chrono::milliseconds limit) {
  std::unique_lock lock(m_);
  return cv_.wait_for(lock, limit, [&] { return seen_.count(batch) != 0; });
}

bool settle(const std::function<bool()>& done, const std::function<std::size_t()>& progress,
            std::chrono::milliseconds quiet) {
  const auto give_up = std::chrono::steady_clock::now() + kPatience;
  std::size_t last = progress();
  auto last_change = std::chrono::steady_clock::now();
  while (!done()) {
    const auto now = std::chrono::steady_clock::now();
    if (now > give_up) return false;
    if (const std::size_t p = progress(); p != last) {
      last = p;
      last_change = now;
    } else if (now - last_change > quiet) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

Completion publish_patiently(EventBus& bus, std::string_view name, const nlohmann::json& payload) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    try {
      return bus.publish(name, payload);
    } catch (const EventBusError&) {
      if (std::chrono::steady_clock::now() > give_up) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
}

void on_threads(int n, const std::function<void(int)>& body) {
  std::mutex m;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      try {
        body(i);
      } catch (const std::exception& e) {
        std::lock_guard lock(m);
        errors.push_back("thread " + std::to_string(i) + ": " + e.what());
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) ADD_FAILURE() << e;
}

// ---------------------------------------------------------------------------------------------

namespace {
std::vector<std::string> peer_argv(const std::string& role, const Target& t,
                                   const std::vector<std::string>& args) {
  std::vector<std::string> argv{std::filesystem::canonical("/proc/self/exe").string(),
                                "--peer",
                                role,
                                "--peer-backend",
                                t.backend,
                                "--peer-mode",
                                mode_text(t.mode)};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}
}  // namespace

Peer::Peer(const std::string& role, const Target& target, const std::vector<std::string>& args)
    : process_(peer_argv(role, target, args), true) {}

testing::AssertionResult Peer::ready() {
  const auto line = process_.read_line(kPatience);
  if (line == "ready") return testing::AssertionSuccess();
  const auto status = process_.wait(std::chrono::seconds(2));
  return testing::AssertionFailure()
         << "the peer process (a second copy of this suite on the same bus) did not become "
            "ready: "
         << (line ? "it said '" + *line + "'" : std::string("no answer"))
         << (status ? ", exit status " + std::to_string(*status) : std::string())
         << " (its own message, if any, is above)";
}

std::optional<int> Peer::request(int sig) {
  process_.signal(sig);
  const auto line = process_.read_line(kPatience);
  if (!line) return std::nullopt;
  const auto space = line->rfind(' ');
  if (space == std::string::npos) return std::nullopt;
  return std::atoi(line->c_str() + space + 1);
}

int Peer::finish() {
  process_.signal(SIGTERM);
  const auto status = process_.wait(kPatience);
  return status ? *status : -1;
}

bool fence_flows(Peer& peer, Fences& fences) {
  for (int round = 0; round < 60; ++round) {
    const auto batch = peer.request(SIGUSR2);
    if (!batch) return false;
    if (fences.wait_for(*batch, std::chrono::milliseconds(500))) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------

void Conformance::SetUp() {
  const Probe* p = probe(backend());
  if (!p) GTEST_FAIL() << "the start-up probe did not run for backend '" << backend() << "'";
  if (!p->ok) {
    GTEST_FAIL() << "backend '" << backend() << "' could not be created and started, so this "
                 << "check cannot run: " << p->error;
  }
}

std::shared_ptr<EventBus> Conformance::make_bus(const EventsSettings& s) const {
  auto bus = EventBus::create(s);
  bus->start();
  return bus;
}

bool Conformance::has(uint64_t capability) const {
  const Probe* p = probe(backend());
  return p && (p->provider.capabilities & capability) != 0;
}

std::string Conformance::name(const std::string& base) const {
  const auto* info = testing::UnitTest::GetInstance()->current_test_info();
  std::string test = info->name();
  test = test.substr(0, test.find('/'));
  return "conformance." + std::to_string(::getpid()) + "." + test + "." + mode_text(mode()) + "." +
         base;
}

}  // namespace athomic::conformance
