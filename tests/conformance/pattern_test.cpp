// Pattern subscriptions (`*` one part, a final `>` the rest). An in-process provider needs
// nothing: the host matches. A remote provider either subscribes natively (ATHOMIC_CAP_PATTERN:
// it gets the pattern through interest_add and delivers each message once per matching
// subscription) or makes subscribe() refuse patterns clearly. Every guarantee of an exact
// subscription holds for a pattern: each matching event once, the publisher's context, order,
// confirmation before subscribe() returns, nothing after unsubscribe() returns, a throwing
// handler isolated.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "conformance.h"

namespace athomic::conformance {
namespace {

using test::eventually;

// The names a handler saw, in order, safely from any thread.
class Names {
 public:
  Handler handler() {
    return [this](const Event& e) {
      std::lock_guard lock(m_);
      names_.emplace_back(e.name());
    };
  }
  std::vector<std::string> get() const {
    std::lock_guard lock(m_);
    return names_;
  }
  bool saw(const std::string& name) const {
    std::lock_guard lock(m_);
    return std::find(names_.begin(), names_.end(), name) != names_.end();
  }

 private:
  mutable std::mutex m_;
  std::vector<std::string> names_;
};

class ConformancePatterns : public Conformance {
 protected:
  void SetUp() override {
    Conformance::SetUp();
    if (HasFatalFailure()) return;
    if (has(ATHOMIC_CAP_REMOTE) && !has(ATHOMIC_CAP_PATTERN)) {
      GTEST_SKIP() << who() << " is remote without ATHOMIC_CAP_PATTERN: patterns are refused "
                   << "(PatternsWithoutTheCapabilityAreRefusedClearly checks how)";
    }
  }
};

TEST_P(Conformance, PatternsWithoutTheCapabilityAreRefusedClearly) {
  if (!has(ATHOMIC_CAP_REMOTE) || has(ATHOMIC_CAP_PATTERN)) {
    GTEST_SKIP() << who() << " takes pattern subscriptions (in process, or ATHOMIC_CAP_PATTERN)";
  }
  auto bus = make_bus();
  const auto pattern = name("refused") + ".*";
  try {
    bus->subscribe(pattern, [](const Event&) {});
    ADD_FAILURE() << "subscribe('" << pattern << "') succeeded on " << who()
                  << ", which does not declare ATHOMIC_CAP_PATTERN";
  } catch (const EventBusError& e) {
    EXPECT_NE(std::string(e.what()).find("ATHOMIC_CAP_PATTERN"), std::string::npos) << e.what();
  }
  EXPECT_EQ(bus->handler_count(pattern), 0u);
}

TEST_P(ConformancePatterns, EachSubscriptionGetsWhatItsPatternMatchesOnce) {
  auto bus = make_bus();
  const auto base = name("p");
  Names exact, star, rest, two;
  bus->subscribe(base + ".eu.created", exact.handler());
  bus->subscribe(base + ".*.created", star.handler());
  bus->subscribe(base + ".>", rest.handler());
  bus->subscribe(base + ".*.*", two.handler());  // overlaps the other two
  const auto fence = base + ".fence.created";    // matched by all three patterns
  for (const auto& n : {base + ".eu.created", base + ".eu.x.created", base + ".created",
                        base + ".us.created", base, name("q") + ".eu.created", fence}) {
    publish_patiently(*bus, n, {});
  }
  ASSERT_TRUE(settle([&] { return star.saw(fence) && rest.saw(fence) && two.saw(fence); },
                     [&] { return star.get().size() + rest.get().size() + two.get().size(); }))
      << who() << ": events published on names the patterns match never arrived";
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // room for duplicates to show
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  // In publishing order when the provider promises order; as sets otherwise.
  auto same = [&](const Names& got, std::vector<std::string> want) {
    return has(ATHOMIC_CAP_ORDERED) ? got.get() == want : sorted(got.get()) == sorted(want);
  };
  EXPECT_TRUE(same(exact, {base + ".eu.created"})) << testing::PrintToString(exact.get());
  EXPECT_TRUE(same(star, {base + ".eu.created", base + ".us.created", fence}))
      << base << ".*.created got " << testing::PrintToString(star.get());
  EXPECT_TRUE(same(rest, {base + ".eu.created", base + ".eu.x.created", base + ".created",
                          base + ".us.created", fence}))
      << base << ".> got " << testing::PrintToString(rest.get());
  EXPECT_TRUE(same(two, {base + ".eu.created", base + ".us.created", fence}))
      << base << ".*.* got " << testing::PrintToString(two.get());
  if (has(ATHOMIC_CAP_REMOTE)) {
    // A message delivered for the wrong interest, or for one no longer held, shows here.
    EXPECT_EQ(bus->stats().undeliverable, 0u);
  }
}

TEST_P(ConformancePatterns, APatternHandlerRunsInThePublishersContext) {
  auto bus = make_bus();
  const auto base = name("ctx");
  std::mutex m;
  std::vector<std::string> seen;  // "trace/tenant" as the handler saw them, current and event's
  bus->subscribe(base + ".*", [&](const Event& e) {
    const auto& now = ExecutionContext::current();
    std::lock_guard lock(m);
    seen.push_back(std::string(now.trace_id().value_or("-")) + "/" +
                   std::string(now.tenant_id().value_or("-")) + " " +
                   std::string(e.context().trace_id().value_or("-")));
  });
  {
    ContextScope scope(ExecutionContext::Builder().trace_id("t-1").tenant_id("acme").build());
    publish_patiently(*bus, base + ".a", {});
    // The handler's context was the publisher's, and the publisher's is still its own.
    EXPECT_EQ(ExecutionContext::current().trace_id().value_or("-"), "t-1");
  }
  publish_patiently(*bus, base + ".b", {});  // no context: the handler sees none
  auto count = [&] {
    std::lock_guard lock(m);
    return seen.size();
  };
  ASSERT_TRUE(settle([&] { return count() == 2; }, count)) << "received " << count() << " of 2";
  std::lock_guard lock(m);
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"-/- -", "t-1/acme t-1"}));
}

TEST_P(ConformancePatterns, OrderIsKeptPerPatternSubscriptionAcrossNames) {
  if (!has(ATHOMIC_CAP_ORDERED)) GTEST_SKIP() << "provider does not declare ATHOMIC_CAP_ORDERED";
  auto bus = make_bus();
  const auto base = name("order");
  std::mutex m;
  std::vector<int> seen;
  bus->subscribe(base + ".>", [&](const Event& e) {
    std::lock_guard lock(m);
    seen.push_back(e.payload()["i"].get<int>());
  });
  constexpr int kEvents = 1000;
  const std::string names[] = {base + ".a", base + ".b.c", base + ".d"};
  for (int i = 0; i < kEvents; ++i) publish_patiently(*bus, names[i % 3], {{"i", i}});
  auto received = [&] {
    std::lock_guard lock(m);
    return seen.size();
  };
  ASSERT_TRUE(settle([&] { return received() >= kEvents; }, received))
      << "received " << received() << " of " << kEvents;
  std::lock_guard lock(m);
  for (int i = 0; i < kEvents; ++i) {
    ASSERT_EQ(seen[static_cast<std::size_t>(i)], i)
        << who() << " delivered one publisher's events to one pattern subscription out of order "
        << "(names alternate between three that the pattern matches)";
  }
}

TEST_P(ConformancePatterns, AThrowingPatternHandlerIsIsolated) {
  auto bus = make_bus();
  const auto base = name("throw");
  Inbox exact, pattern;
  bus->subscribe(base + ".*", [](const Event&) { throw std::runtime_error("handler failed"); });
  bus->subscribe(base + ".*", [&](const Event& e) { pattern.add(e.payload()["i"].dump()); });
  bus->subscribe(base + ".x", [&](const Event& e) { exact.add(e.payload()["i"].dump()); });
  constexpr int kEvents = 20;
  for (int i = 0; i < kEvents; ++i) publish_patiently(*bus, base + ".x", {{"i", i}});
  ASSERT_TRUE(settle([&] { return exact.total() >= kEvents && pattern.total() >= kEvents; },
                     [&] { return exact.total() + pattern.total(); }))
      << "received " << exact.total() << " and " << pattern.total() << " of " << kEvents;
  EXPECT_TRUE(eventually([&] { return bus->stats().handler_failures == kEvents; }))
      << bus->stats().handler_failures;
  EXPECT_EQ(pattern.distinct(), static_cast<std::size_t>(kEvents));
  EXPECT_EQ(exact.distinct(), static_cast<std::size_t>(kEvents));
}

TEST_P(ConformancePatterns, AnUnsubscribedPatternHandlerIsNotRunningAndNeverCalledAgain) {
  auto bus = make_bus();
  const auto base = name("unsub");
  std::atomic<int> running{0}, calls{0}, late{0};
  std::atomic<bool> unsubscribed{false};
  auto sub = bus->subscribe(base + ".>", [&](const Event&) {
    running++;
    if (unsubscribed.load()) late++;
    calls++;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    running--;
  });
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    for (int i = 0; !stop.load(); ++i) {
      try {
        bus->publish(base + (i % 2 ? ".a" : ".b.c"), {{"i", i}});
      } catch (const EventBusError&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // a full buffer: later
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  const bool flowing = eventually([&] { return calls.load() >= 5; });
  ASSERT_TRUE(bus->unsubscribe(sub));
  unsubscribed = true;
  const int running_after = running.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  publisher.join();
  ASSERT_TRUE(flowing) << "events never reached the pattern handler";
  EXPECT_EQ(running_after, 0) << "the handler was still running when unsubscribe() returned";
  EXPECT_EQ(late.load(), 0) << "the handler was called after unsubscribe() returned";
  EXPECT_EQ(bus->handler_count(base + ".>"), 0u);
}

// Across processes (remote providers): a pattern is in place when subscribe() returns, and once
// its last handler is gone the transport stops bringing what it matched.
TEST_P(ConformancePatterns, APatternIsConfirmedBeforeSubscribeReturnsAndRemovedAfterwards) {
  if (!has(ATHOMIC_CAP_REMOTE)) {
    GTEST_SKIP() << "in-process provider: no other process can publish to it";
  }
  constexpr int kEvents = 20;
  auto bus = make_bus();
  const auto base = name("remote"), fence = name("fence");
  Fences fences;
  bus->subscribe(fence, [&](const Event& e) { fences.add(e.payload()["batch"].get<int>()); });
  Peer peer("publisher", GetParam(),
            {"--peer-event", base + ".created", "--peer-fence", fence, "--peer-count",
             std::to_string(kEvents)});
  ASSERT_TRUE(peer.ready());
  ASSERT_TRUE(fence_flows(peer, fences))
      << "events another process published on a subscribed name never arrived";

  Inbox got;
  auto sub = bus->subscribe(base + ".*", [&](const Event& e) { got.add(e.payload()["i"].dump()); });
  const auto batch = peer.request(SIGUSR1);  // the peer publishes the moment subscribe returned
  ASSERT_TRUE(batch) << "the peer did not answer";
  ASSERT_TRUE(fences.wait_for(*batch, kPatience))
      << "the fence the peer published after the events never arrived";
  const bool arrived = settle([&] { return got.total() >= kEvents; }, [&] { return got.total(); },
                              std::chrono::seconds(2));
  EXPECT_TRUE(arrived) << who() << ": " << got.total() << " of " << kEvents
                       << " events another process published right after subscribe('" << base
                       << ".*') returned arrived: interest_add of a pattern must return only "
                       << "once the transport has confirmed it";
  EXPECT_EQ(got.distinct(), got.total()) << "an event reached the pattern's handler twice";

  ASSERT_TRUE(bus->unsubscribe(sub));
  bus->publish(fence, {{"batch", -1}});  // one round trip through the provider
  ASSERT_TRUE(fences.wait_for(-1, kPatience)) << "an event this process published never arrived";
  const uint64_t before = bus->stats().undeliverable;
  const auto after = peer.request(SIGUSR1);
  ASSERT_TRUE(after) << "the peer did not answer";
  ASSERT_TRUE(fences.wait_for(*after, kPatience))
      << "the fence the peer published after the events never arrived";
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the events' names differ
  EXPECT_EQ(bus->stats().undeliverable - before, 0u)
      << who() << " still receives what '" << base << ".*' matches after its last handler "
      << "unsubscribed (the host dropped it as undeliverable): interest_remove of a pattern "
      << "was not honoured";
  EXPECT_EQ(peer.finish(), 0);
}

INSTANTIATE_TEST_SUITE_P(Provider, ConformancePatterns, testing::ValuesIn(targets()), target_name);

}  // namespace
}  // namespace athomic::conformance
