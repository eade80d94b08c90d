// Delivery: every handler gets every event exactly once, in each publisher's order, with its
// context and its payload intact, from many names and many threads.
#include <atomic>
#include <thread>

#include "conformance.h"

namespace athomic::conformance {
namespace {

using nlohmann::json;
using test::eventually;

TEST_P(Conformance, EveryHandlerGetsEveryEventExactlyOnce) {
  auto bus = make_bus();
  const auto ev = name("once");
  Inbox a, b;
  bus->subscribe(ev, [&](const Event& e) { a.add(e.payload()["i"].dump()); });
  bus->subscribe(ev, [&](const Event& e) { b.add(e.payload()["i"].dump()); });
  constexpr int kEvents = 100;
  for (int i = 0; i < kEvents; ++i) publish_patiently(*bus, ev, {{"i", i}});
  ASSERT_TRUE(settle([&] { return a.total() >= kEvents && b.total() >= kEvents; },
                     [&] { return a.total() + b.total(); }))
      << "received " << a.total() << " and " << b.total() << " of " << kEvents;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // room for duplicates to show
  for (int i = 0; i < kEvents; ++i) {
    EXPECT_EQ(a.count(std::to_string(i)), 1) << "event " << i;
    EXPECT_EQ(b.count(std::to_string(i)), 1) << "event " << i;
  }
}

// The first place where @p seen departs from 0, 1, 2, ...; -1 when it does not.
int first_out_of_order(const std::vector<int>& seen) {
  for (std::size_t i = 0; i < seen.size(); ++i) {
    if (seen[i] != static_cast<int>(i)) return static_cast<int>(i);
  }
  return -1;
}

TEST_P(Conformance, OrderPerPublisherAndNameIsPreserved) {
  if (!has(ATHOMIC_CAP_ORDERED)) GTEST_SKIP() << "provider does not declare ATHOMIC_CAP_ORDERED";
  auto bus = make_bus();
  const auto ev = name("order");
  std::mutex m;
  std::vector<int> seen;
  bus->subscribe(ev, [&](const Event& e) {
    std::lock_guard lock(m);
    seen.push_back(e.payload()["i"].get<int>());
  });
  constexpr int kEvents = 2000;
  for (int i = 0; i < kEvents; ++i) publish_patiently(*bus, ev, {{"i", i}});
  auto received = [&] {
    std::lock_guard lock(m);
    return seen.size();
  };
  ASSERT_TRUE(settle([&] { return received() >= kEvents; }, received))
      << "received " << received() << " of " << kEvents;
  std::lock_guard lock(m);
  const int at = first_out_of_order(seen);
  EXPECT_EQ(at, -1) << who() << " delivered one publisher's events on one name out of order, in "
                    << mode_text(mode()) << " dispatch: position " << at << " holds event #"
                    << seen[std::max(at, 0)] << " where #" << at
                    << " was due — yet it declares ATHOMIC_CAP_ORDERED";
}

TEST_P(Conformance, OrderIsKeptForEachOfSeveralPublishers) {
  if (!has(ATHOMIC_CAP_ORDERED)) GTEST_SKIP() << "provider does not declare ATHOMIC_CAP_ORDERED";
  auto bus = make_bus();
  const auto ev = name("orders");
  constexpr int kPublishers = 4, kEach = 500;
  std::mutex m;
  std::vector<std::vector<int>> seen(kPublishers);
  std::atomic<std::size_t> total{0};
  bus->subscribe(ev, [&](const Event& e) {
    std::lock_guard lock(m);
    seen.at(e.payload()["t"].get<std::size_t>()).push_back(e.payload()["i"].get<int>());
    total++;
  });
  on_threads(kPublishers, [&](int t) {
    for (int i = 0; i < kEach; ++i) publish_patiently(*bus, ev, {{"t", t}, {"i", i}});
  });
  ASSERT_TRUE(settle([&] { return total >= kPublishers * kEach; }, [&] { return total.load(); }))
      << "received " << total << " of " << kPublishers * kEach;
  std::lock_guard lock(m);
  for (int t = 0; t < kPublishers; ++t) {
    const int at = first_out_of_order(seen[t]);
    EXPECT_EQ(at, -1) << who() << " delivered publisher " << t << "'s events out of order, in "
                      << mode_text(mode()) << " dispatch: position " << at << " holds its event #"
                      << seen[t][std::max(at, 0)] << " where #" << at
                      << " was due — yet it declares ATHOMIC_CAP_ORDERED";
  }
}

TEST_P(Conformance, ContextRoundTripsEveryFieldUnicodeAndMaximumSizes) {
  auto s = settings();
  s.propagated_fields = kAllContextFields;
  auto bus = make_bus(s);
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
  for (std::size_t pad :
       {std::size_t{0}, std::size_t{1}, std::size_t{1000}, std::size_t{65536}, largest}) {
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
  for (int n = 0; n < kNames; ++n) publish_patiently(*bus, name("many." + std::to_string(n)), {});
  ASSERT_TRUE(settle([&] { return inbox.total() >= kNames; }, [&] { return inbox.total(); }));
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
  on_threads(kThreads, [&](int t) {
    for (int i = 0; i < kEach; ++i) publish_patiently(*bus, ev, {{"t", t}, {"i", i}});
  });
  ASSERT_TRUE(
      settle([&] { return inbox.total() >= kThreads * kEach; }, [&] { return inbox.total(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(inbox.total(), static_cast<std::size_t>(kThreads * kEach));
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kEach; ++i) EXPECT_EQ(inbox.count(key(t, i)), 1);
  }
}

}  // namespace
}  // namespace athomic::conformance
