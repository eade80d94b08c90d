// Wildcard subscriptions on the bus, in both dispatch modes: `*` one part, `>` the rest; the
// handler sees the event's own name and the publisher's context; every guarantee of an exact
// subscription holds.
#include "test_support.h"

#include <gmock/gmock.h>

#include <map>
#include <set>
#include <vector>

namespace athomic::test {
namespace {

using testing::HasSubstr;

class Patterns : public testing::TestWithParam<DispatchMode> {
 protected:
  std::shared_ptr<EventBus> bus = started(local_settings(GetParam(), 4));
};

// Names a handler saw, safely from any thread.
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
  std::size_t size() const {
    std::lock_guard lock(m_);
    return names_.size();
  }

 private:
  mutable std::mutex m_;
  std::vector<std::string> names_;
};

TEST_P(Patterns, StarMatchesOnePartAndGreaterThanTheRest) {
  Names star, rest;
  bus->subscribe("orders.*.created", star.handler());
  bus->subscribe("orders.>", rest.handler());
  for (const char* name : {"orders.eu.created", "orders.eu.x.created", "orders.created",
                           "orders.us.created", "orders", "shipments.eu.created"}) {
    bus->publish(name, {}).wait();
  }
  ASSERT_TRUE(eventually([&] { return star.size() == 2 && rest.size() == 4; }));
  EXPECT_THAT(star.get(), testing::ElementsAre("orders.eu.created", "orders.us.created"));
  EXPECT_THAT(rest.get(), testing::ElementsAre("orders.eu.created", "orders.eu.x.created",
                                               "orders.created", "orders.us.created"));
}

TEST_P(Patterns, TheHandlerRunsInThePublishersContextWithThePayload) {
  std::mutex m;
  std::string trace, id;
  Counter got;
  bus->subscribe("users.*", [&](const Event& e) {
    std::lock_guard lock(m);
    trace = std::string(ExecutionContext::current().trace_id().value_or("none"));
    id = e.payload()["id"].get<std::string>();
    got.add();
  });
  {
    ContextScope scope(ExecutionContext::Builder().trace_id("trace-42").build());
    bus->publish("users.created", {{"id", "u1"}});
  }
  ASSERT_TRUE(got.wait_for_at_least(1));
  std::lock_guard lock(m);
  EXPECT_EQ(trace, "trace-42");
  EXPECT_EQ(id, "u1");
}

TEST_P(Patterns, AnEventMatchingSeveralSubscriptionsReachesEachOnce) {
  Counter calls;
  auto handler = [&](const Event&) { calls.add(); };
  bus->subscribe("a.b", handler);
  bus->subscribe("a.*", handler);
  bus->subscribe("a.>", handler);
  bus->subscribe(">", handler);
  bus->publish("a.b", {}).wait();
  ASSERT_TRUE(calls.wait_for_at_least(4));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // room for a duplicate to show
  EXPECT_EQ(calls.value(), 4);
}

TEST_P(Patterns, OrderIsKeptPerPatternSubscription) {
  std::mutex m;
  std::vector<int> seen;
  bus->subscribe("seq.*", [&](const Event& e) {
    std::lock_guard lock(m);
    seen.push_back(e.payload()["i"].get<int>());
  });
  constexpr int kEvents = 1000;
  for (int i = 0; i < kEvents; ++i) bus->publish(i % 2 ? "seq.odd" : "seq.even", {{"i", i}});
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(m);
    return seen.size() == kEvents;
  }));
  std::lock_guard lock(m);
  for (int i = 0; i < kEvents; ++i) ASSERT_EQ(seen[i], i);
}

TEST_P(Patterns, UnsubscribedPatternsAreNeverCalledAgainAndThrowersAreIsolated) {
  Counter other;
  auto sub = bus->subscribe("x.*", [](const Event&) { throw std::runtime_error("boom"); });
  bus->subscribe("x.*", [&](const Event&) { other.add(); });
  bus->publish("x.y", {}).wait();
  ASSERT_TRUE(other.wait_for_at_least(1));
  EXPECT_EQ(bus->stats().handler_failures, 1u);
  EXPECT_EQ(bus->handler_count("x.*"), 2u);
  EXPECT_TRUE(bus->unsubscribe(sub));
  EXPECT_EQ(bus->handler_count("x.*"), 1u);
  bus->publish("x.y", {}).wait();
  ASSERT_TRUE(other.wait_for_at_least(2));
  EXPECT_EQ(bus->stats().handler_failures, 1u);
}

TEST_P(Patterns, AnUnsubscribedPatternIsNotRunningWhenUnsubscribeReturns) {
  constexpr int kPublishers = 3;
  std::atomic<bool> stop{false};
  std::vector<std::thread> publishers;
  for (int p = 0; p < kPublishers; ++p) {
    publishers.emplace_back([&] {
      while (!stop.load()) bus->publish("race.event", {});
    });
  }
  int violations = 0;
  for (int round = 0; round < 40; ++round) {
    auto running = std::make_shared<std::atomic<int>>(0);
    auto calls = std::make_shared<std::atomic<int>>(0);
    auto sub = bus->subscribe("race.*", [=](const Event&) {
      running->fetch_add(1);
      calls->fetch_add(1);
      std::this_thread::yield();
      running->fetch_sub(1);
    });
    eventually([&] { return calls->load() > 0; }, std::chrono::seconds(5));
    ASSERT_TRUE(bus->unsubscribe(sub));
    if (running->load() != 0) ++violations;
    const int at_return = calls->load();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (calls->load() != at_return) ++violations;
  }
  stop = true;
  for (auto& t : publishers) t.join();
  EXPECT_EQ(violations, 0);
}

TEST_P(Patterns, PatternSubscriptionsComeAndGoWithoutLeaving) {
  const uint64_t before = bus->stats().undeliverable;
  for (int i = 0; i < 2000; ++i) {
    auto sub = bus->subscribe("churn." + std::to_string(i) + ".*", [](const Event&) {});
    bus->publish("churn." + std::to_string(i) + ".x", {});
    ASSERT_TRUE(bus->unsubscribe(sub));
  }
  EXPECT_EQ(bus->handler_count("churn.1.*"), 0u);
  EXPECT_EQ(bus->stats().undeliverable, before);
}

TEST_P(Patterns, InvalidPatternsAreRefusedAndPublishingToOneIsRefused) {
  EXPECT_THROW(bus->subscribe("orders.>.x", [](const Event&) {}), EventBusError);
  EXPECT_THROW(bus->subscribe("orders..*", [](const Event&) {}), EventBusError);
  EXPECT_THROW(bus->subscribe("ord*", [](const Event&) {}), EventBusError);
  EXPECT_THROW(bus->publish("orders.*", {}), EventBusError);
}

INSTANTIATE_TEST_SUITE_P(Modes, Patterns,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

TEST(PatternsRemote, AProviderThatCannotSubscribeToPatternsRefusesThemClearly) {
  auto bus = started(backend_settings("loopback", DispatchMode::pool));
  try {
    bus->subscribe("orders.*", [](const Event&) {});
    FAIL() << "expected EventBusError";
  } catch (const EventBusError& e) {
    EXPECT_THAT(e.what(), HasSubstr("provider 'loopback' cannot subscribe to patterns"));
    EXPECT_THAT(e.what(), HasSubstr("ATHOMIC_CAP_PATTERN"));
  }
}

class PatternsNative : public testing::TestWithParam<DispatchMode> {};

TEST_P(PatternsNative, ATransportsPatternDeliveriesReachThatPatternsHandlersOnly) {
  // loopback_patterns delivers once per matching subscription, as a broker does: the name's
  // handlers through deliver_message, each pattern's through deliver_message_to.
  auto bus = started(backend_settings("loopback_patterns", GetParam()));
  Names exact, star, rest;
  bus->subscribe("orders.eu.created", exact.handler());
  bus->subscribe("orders.*.created", star.handler());
  bus->subscribe("orders.>", rest.handler());
  bus->publish("orders.eu.created", {});
  bus->publish("orders.us.created", {});
  ASSERT_TRUE(eventually([&] { return exact.size() == 1 && star.size() == 2 && rest.size() == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // room for a duplicate to show
  EXPECT_THAT(exact.get(), testing::ElementsAre("orders.eu.created"));
  EXPECT_THAT(star.get(), testing::ElementsAre("orders.eu.created", "orders.us.created"));
  EXPECT_THAT(rest.get(), testing::ElementsAre("orders.eu.created", "orders.us.created"));
  EXPECT_EQ(bus->stats().undeliverable, 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, PatternsNative,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

}  // namespace
}  // namespace athomic::test
