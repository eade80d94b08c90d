// The provider conformance suite: what every provider must do, whoever wrote it. Installed as
// `athomic-conformance`; a provider author runs it against their provider with one command:
//
//   NALA_SETTINGS_FILES=my-settings.toml ATHOMIC_PLUGIN_PATH=./plugins athomic-conformance
//
// The backend under test is events.provider.backend of those settings (or each name in
// ATHOMIC_CONFORMANCE_BACKENDS, comma-separated), loaded through the real plugin loader with the
// provider configuration from the settings. Tests that a provider's declared capabilities
// exclude are skipped, and say why. Remote providers also run a cross-process test: the suite
// starts a second copy of itself (`--peer`) with the same environment.
#include "process.h"
#include "test_support.h"

#include <athomic/athomic.h>
#include <athomic/sdk/provider.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace athomic::conformance {
namespace {

using test::eventually;

using nlohmann::json;
constexpr auto kPatience = std::chrono::seconds(30);
constexpr std::size_t kPayloadLimit = 256 * 1024;

std::vector<std::string> backends_under_test() {
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
    return out;
  }
  try {
    out.push_back(Settings::load().events().backend);
  } catch (const std::exception& e) {
    std::cerr << "athomic-conformance: cannot read settings: " << e.what() << std::endl;
    out.push_back("local");
  }
  return out;
}

// The settings for @p backend: the loaded settings when they name it, else its defaults.
EventsSettings settings_for(const std::string& backend, DispatchMode mode = DispatchMode::pool) {
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

// Thread-safe multiset of received values per key.
class Inbox {
 public:
  void add(const std::string& key) {
    std::lock_guard lock(m_);
    counts_[key]++;
    total_++;
  }
  std::size_t total() const {
    std::lock_guard lock(m_);
    return total_;
  }
  int count(const std::string& key) const {
    std::lock_guard lock(m_);
    auto it = counts_.find(key);
    return it == counts_.end() ? 0 : it->second;
  }

 private:
  mutable std::mutex m_;
  std::map<std::string, int> counts_;
  std::size_t total_ = 0;
};

class Conformance : public testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<EventBus> make_bus(DispatchMode mode = DispatchMode::pool) {
    auto bus = EventBus::create(settings_for(GetParam(), mode));
    bus->start();
    return bus;
  }
  bool has(uint64_t cap) {
    if (!caps_) caps_ = EventBus::create(settings_for(GetParam()))->provider().capabilities;
    return (*caps_ & cap) != 0;
  }
  // A fresh name per test, so leftovers on a shared server cannot interfere.
  std::string name(const std::string& base) {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    return "conformance." + std::to_string(::getpid()) + "." + info->name() + "." + base;
  }

 private:
  std::optional<uint64_t> caps_;
};

TEST_P(Conformance, DescribesItself) {
  auto bus = make_bus();
  const auto p = bus->provider();
  EXPECT_EQ(p.name, GetParam());
  EXPECT_FALSE(p.version.empty());
  EXPECT_EQ(p.abi_major, ATHOMIC_ABI_VERSION_MAJOR);
  EXPECT_LE(p.abi_minor, ATHOMIC_ABI_VERSION_MINOR);
  EXPECT_TRUE(p.capabilities & (ATHOMIC_CAP_IN_PROCESS | ATHOMIC_CAP_REMOTE));
}

TEST_P(Conformance, EveryHandlerGetsEveryEventExactlyOnce) {
  auto bus = make_bus();
  const auto ev = name("once");
  Inbox a, b;
  bus->subscribe(ev, [&](const Event& e) { a.add(e.payload()["i"].dump()); });
  bus->subscribe(ev, [&](const Event& e) { b.add(e.payload()["i"].dump()); });
  constexpr int kEvents = 100;
  for (int i = 0; i < kEvents; ++i) bus->publish(ev, {{"i", i}});
  ASSERT_TRUE(eventually([&] { return a.total() >= kEvents && b.total() >= kEvents; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // room for duplicates to show
  for (int i = 0; i < kEvents; ++i) {
    EXPECT_EQ(a.count(std::to_string(i)), 1) << "event " << i;
    EXPECT_EQ(b.count(std::to_string(i)), 1) << "event " << i;
  }
}

TEST_P(Conformance, OrderPerPublisherAndNameIsPreserved) {
  if (!has(ATHOMIC_CAP_ORDERED)) GTEST_SKIP() << "provider does not declare ATHOMIC_CAP_ORDERED";
  auto bus = make_bus(DispatchMode::inline_call);  // handlers in delivery order
  const auto ev = name("order");
  std::mutex m;
  std::vector<int> seen;
  bus->subscribe(ev, [&](const Event& e) {
    std::lock_guard lock(m);
    seen.push_back(e.payload()["i"].get<int>());
  });
  constexpr int kEvents = 300;
  for (int i = 0; i < kEvents; ++i) bus->publish(ev, {{"i", i}});
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(m);
    return seen.size() >= kEvents;
  }));
  std::lock_guard lock(m);
  for (int i = 0; i < kEvents; ++i) ASSERT_EQ(seen[i], i) << "out of order at " << i;
}

TEST_P(Conformance, ContextRoundTripsEveryFieldUnicodeAndMaximumSizes) {
  auto s = settings_for(GetParam());
  s.propagated_fields = kAllContextFields;
  auto bus = EventBus::create(s);
  bus->start();
  const auto ev = name("context");
  std::mutex m;
  std::map<std::string, ContextPtr> seen;  // by payload "which"
  bus->subscribe(ev, [&](const Event& e) {
    std::lock_guard lock(m);
    seen[e.payload()["which"].get<std::string>()] = ExecutionContext::current_ptr();
  });
  const std::string big(kMaxContextValueBytes, 'x');
  std::string unicode_big;
  while (unicode_big.size() + 3 <= kMaxContextValueBytes) unicode_big += "\xe2\x9c\x93";
  auto ctx = ExecutionContext::Builder()
                 .tenant_id("t\xc3\xa9nant")
                 .request_id(big)
                 .trace_id("trace-\xf0\x9f\x9a\x80")
                 .span_id("span")
                 .user_id(unicode_big)
                 .role("r\"ole\\")
                 .locale("ja-JP")
                 .source_ip("2001:db8::1")
                 .session_id("session")
                 .correlation_id("corr")
                 .feature_flags({{"beta", true}, {"\xc3\xa9t\xc3\xa9", false}})
                 .build();
  {
    ContextScope scope(ctx);
    bus->publish(ev, {{"which", "with"}});
  }
  bus->publish(ev, {{"which", "without"}});  // no context: none may be invented
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(m);
    return seen.size() >= 2;
  }));
  std::lock_guard lock(m);
  ASSERT_TRUE(seen["with"]);
  EXPECT_EQ(*seen["with"], *ctx);
  EXPECT_TRUE(!seen["without"] || seen["without"]->is_empty());
}

TEST_P(Conformance, PayloadsFromEmptyToTheSizeLimit) {
  auto bus = make_bus();
  const auto ev = name("sizes");
  std::mutex m;
  std::map<std::size_t, std::size_t> got;  // pad length -> payload size seen
  bus->subscribe(ev, [&](const Event& e) {
    std::lock_guard lock(m);
    const auto& p = e.payload();
    got[p.empty() ? 0 : p["pad"].get_ref<const std::string&>().size()] = p.size();
  });
  const std::size_t largest = kPayloadLimit - 64;  // leaves room for {"pad":""} and the context
  for (std::size_t pad : {std::size_t{0}, std::size_t{1}, std::size_t{1000}, std::size_t{65536}, largest}) {
    if (pad == 0) {
      bus->publish(ev, json::object());
    } else {
      bus->publish(ev, {{"pad", std::string(pad, 'p')}});
    }
  }
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(m);
    return got.size() == 5;
  }));
  if (has(ATHOMIC_CAP_REMOTE)) {
    EXPECT_THROW(bus->publish(ev, {{"pad", std::string(kPayloadLimit, 'p')}}), EventBusError);
  }
}

TEST_P(Conformance, InterestFollowsHandlers) {
  auto bus = make_bus();
  const auto ev = name("interest");
  Inbox first, second;
  auto sub = bus->subscribe(ev, [&](const Event& e) { first.add(e.payload()["i"].dump()); });
  bus->publish(ev, {{"i", 1}});
  ASSERT_TRUE(eventually([&] { return first.total() == 1; }));
  ASSERT_TRUE(bus->unsubscribe(sub));
  EXPECT_EQ(bus->handler_count(ev), 0u);
  bus->publish(ev, {{"i", 2}});  // nobody listens: accepted, delivered nowhere
  bus->subscribe(ev, [&](const Event& e) { second.add(e.payload()["i"].dump()); });
  bus->publish(ev, {{"i", 3}});
  ASSERT_TRUE(eventually([&] { return second.count("3") == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(first.total(), 1u);
  EXPECT_EQ(second.count("2"), 0);
}

TEST_P(Conformance, ManyEventNamesAtOnce) {
  auto bus = make_bus();
  constexpr int kNames = 100;
  Inbox inbox;
  for (int n = 0; n < kNames; ++n) {
    const auto ev = name("many." + std::to_string(n));
    bus->subscribe(ev, [&inbox, ev](const Event& e) {
      EXPECT_EQ(e.name(), ev);
      inbox.add(ev);
    });
  }
  for (int n = 0; n < kNames; ++n) bus->publish(name("many." + std::to_string(n)), {});
  ASSERT_TRUE(eventually([&] { return inbox.total() >= kNames; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (int n = 0; n < kNames; ++n) EXPECT_EQ(inbox.count(name("many." + std::to_string(n))), 1);
}

TEST_P(Conformance, PublishingFromEightThreads) {
  auto bus = make_bus();
  const auto ev = name("threads");
  Inbox inbox;
  auto key = [](int thread, int i) {
    std::string k = std::to_string(thread);
    k += '/';
    k += std::to_string(i);
    return k;
  };
  bus->subscribe(ev, [&](const Event& e) {
    inbox.add(key(e.payload()["t"].get<int>(), e.payload()["i"].get<int>()));
  });
  constexpr int kThreads = 8, kEach = 100;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) bus->publish(ev, {{"t", t}, {"i", i}});
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(eventually([&] { return inbox.total() >= kThreads * kEach; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(inbox.total(), static_cast<std::size_t>(kThreads * kEach));
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kEach; ++i) EXPECT_EQ(inbox.count(key(t, i)), 1);
  }
}

TEST_P(Conformance, StartAndCloseRepeatedly) {
  for (int round = 0; round < 5; ++round) {
    auto bus = make_bus();
    const auto ev = name("round." + std::to_string(round));
    Inbox inbox;
    bus->subscribe(ev, [&](const Event&) { inbox.add("x"); });
    bus->publish(ev, {});
    ASSERT_TRUE(eventually([&] { return inbox.total() == 1; })) << "round " << round;
    bus->close();
  }
}

TEST_P(Conformance, CloseWithEventsInFlight) {
  auto bus = make_bus();
  const auto ev = name("inflight");
  std::atomic<int> handled{0};
  bus->subscribe(ev, [&](const Event&) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    handled++;
  });
  std::vector<Completion> pending;
  for (int i = 0; i < 500; ++i) pending.push_back(bus->publish(ev, {{"i", i}}));
  bus->close();
  for (auto& c : pending) EXPECT_TRUE(c.done());
  const int after_close = handled.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(handled.load(), after_close) << "a handler ran after close() returned";
}

TEST_P(Conformance, PublishAfterCloseFailsClearly) {
  auto bus = make_bus();
  bus->close();
  try {
    bus->publish(name("closed"), {});
    FAIL() << "publish after close was accepted";
  } catch (const EventBusError& e) {
    EXPECT_NE(std::string(e.what()).find("closed"), std::string::npos) << e.what();
  }
}

TEST_P(Conformance, TwoProcessesExchangeEventsWithContext) {
  if (!has(ATHOMIC_CAP_REMOTE)) GTEST_SKIP() << "provider is in-process only (no ATHOMIC_CAP_REMOTE)";
  constexpr int kPings = 20;
  test::Process peer({std::filesystem::canonical("/proc/self/exe").string(), "--peer",
                      std::to_string(kPings), "--peer-backend", GetParam()},
                     true);
  ASSERT_EQ(peer.read_line(kPatience), "ready");
  auto bus = make_bus();
  std::mutex m;
  std::map<int, std::string> pongs;  // n -> trace seen by the peer's handler
  std::map<int, std::string> contexts;
  bus->subscribe("conformance.pong", [&](const Event& e) {
    std::lock_guard lock(m);
    const int n = e.payload()["n"].get<int>();
    pongs[n] = e.payload()["seen_trace"].get<std::string>();
    contexts[n] = std::string(e.context().trace_id().value_or(""));
  });
  for (int n = 0; n < kPings; ++n) {
    ContextScope scope(ExecutionContext::Builder().trace_id("x-" + std::to_string(n)).build());
    bus->publish("conformance.ping", {{"n", n}});
  }
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(m);
    return pongs.size() == kPings;
  }));
  for (int n = 0; n < kPings; ++n) {
    EXPECT_EQ(pongs[n], "x-" + std::to_string(n));
    EXPECT_EQ(contexts[n], "x-" + std::to_string(n));
  }
  EXPECT_EQ(peer.wait(kPatience), 0);
}

INSTANTIATE_TEST_SUITE_P(Provider, Conformance, testing::ValuesIn(backends_under_test()),
                         [](const testing::TestParamInfo<std::string>& p) {
                           std::string n = p.param;
                           for (char& c : n) {
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

// The other side of the cross-process test: answers each ping from inside its handler, so the
// pong carries the ping's context.
int run_peer(int count, const std::string& backend) {
  auto bus = EventBus::create(settings_for(backend));
  bus->start();
  std::atomic<int> answered{0};
  bus->subscribe("conformance.ping", [&](const Event& e) {
    bus->publish("conformance.pong",
                 {{"n", e.payload()["n"]},
                  {"seen_trace", ExecutionContext::current().trace_id().value_or("")}});
    answered++;
  });
  std::cout << "ready" << std::endl;
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (answered < count && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  bus->close();
  return answered >= count ? 0 : 1;
}

}  // namespace
}  // namespace athomic::conformance

int main(int argc, char** argv) {
  for (int i = 1; i + 3 < argc; ++i) {  // --peer COUNT --peer-backend NAME
    if (std::string(argv[i]) == "--peer") {
      return athomic::conformance::run_peer(std::atoi(argv[i + 1]), argv[i + 3]);
    }
  }
  athomic::set_log_level("warn");
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
