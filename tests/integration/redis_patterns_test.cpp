// Pattern subscriptions on the redis provider: each one is a PSUBSCRIBE of the pattern's glob,
// with names, the key prefix and the separator matched literally, and every channel the glob
// lets through checked against the pattern part by part.
#include "redis_support.h"

#include <mutex>
#include <random>

namespace athomic::test {
namespace {

using testing::ElementsAre;
using testing::HasSubstr;

// The events one handler saw: their names, payloads' "n" and trace ids, in order.
class Seen {
 public:
  Handler handler() {
    return [this](const Event& e) {
      std::lock_guard lock(m_);
      names_.emplace_back(e.name());
      ns_.push_back(e.payload().value("n", -1));
      traces_.emplace_back(ExecutionContext::current().trace_id().value_or(""));
    };
  }
  std::vector<std::string> names() const {
    std::lock_guard lock(m_);
    return names_;
  }
  std::vector<int> ns() const {
    std::lock_guard lock(m_);
    return ns_;
  }
  std::vector<std::string> traces() const {
    std::lock_guard lock(m_);
    return traces_;
  }
  std::size_t size() const {
    std::lock_guard lock(m_);
    return names_.size();
  }
  bool has(const std::string& name) const {
    std::lock_guard lock(m_);
    return std::find(names_.begin(), names_.end(), name) != names_.end();
  }

 private:
  mutable std::mutex m_;
  std::vector<std::string> names_;
  std::vector<int> ns_;
  std::vector<std::string> traces_;
};

int64_t numpat(int port) {
  RawClient c(port);
  return c.command({"PUBSUB", "NUMPAT"}).get<int64_t>();
}

class RedisPatterns : public testing::TestWithParam<DispatchMode> {
 protected:
  EventsSettings settings() const {
    return redis_settings(server.uri(), json::object(), GetParam());
  }
  RedisServer server;
};

TEST_P(RedisPatterns, StarAndGreaterThanReceiveTheirEventsWithTheirNamesAndContext) {
  Seen star, rest;
  auto bus = started(settings());
  bus->subscribe("orders.*.created", star.handler());
  bus->subscribe("orders.>", rest.handler());
  int n = 0;
  for (const char* name : {"orders.eu.created", "orders.eu.x.created", "orders.created",
                           "orders.us.created", "orders", "shipments.eu.created", "ordersx.a"}) {
    ContextScope scope(ExecutionContext::Builder().trace_id("t-" + std::to_string(n)).build());
    bus->publish(name, {{"n", n++}}).wait();
  }
  // A fence for each: whatever was going to arrive came before it.
  bus->publish("orders.fence.created", {{"n", n}}).wait();
  ASSERT_TRUE(eventually([&] { return star.has("orders.fence.created"); }));
  ASSERT_TRUE(eventually([&] { return rest.has("orders.fence.created"); }));
  EXPECT_THAT(star.names(),
              ElementsAre("orders.eu.created", "orders.us.created", "orders.fence.created"));
  EXPECT_THAT(star.ns(), ElementsAre(0, 3, 7));
  EXPECT_THAT(star.traces(), ElementsAre("t-0", "t-3", ""));
  EXPECT_THAT(rest.names(),
              ElementsAre("orders.eu.created", "orders.eu.x.created", "orders.created",
                          "orders.us.created", "orders.fence.created"));
  EXPECT_THAT(rest.ns(), ElementsAre(0, 1, 2, 3, 7));
  EXPECT_EQ(bus->stats().undeliverable, 0u);
}

TEST_P(RedisPatterns, AnEventMatchingANameAndPatternsReachesEachSubscriptionOnce) {
  Seen exact, star, rest, all;
  auto bus = started(settings());
  bus->subscribe("a.b", exact.handler());
  bus->subscribe("a.*", star.handler());
  bus->subscribe("a.>", rest.handler());
  bus->subscribe(">", all.handler());
  for (int n = 1; n <= 3; ++n) bus->publish("a.b", {{"n", n}}).wait();
  for (Seen* s : {&exact, &star, &rest, &all}) {
    ASSERT_TRUE(eventually([&] { return s->size() >= 3; }));
  }
  // Each subscription's events come in order: a duplicate of the first two would show before
  // the third.
  for (Seen* s : {&exact, &star, &rest, &all}) {
    EXPECT_THAT(s->ns(), ElementsAre(1, 2, 3));
    EXPECT_THAT(s->names(), ElementsAre("a.b", "a.b", "a.b"));
  }
  EXPECT_EQ(bus->stats().undeliverable, 0u);
}

TEST_P(RedisPatterns, OrderIsKeptPerPatternSubscription) {
  Seen seq;
  auto bus = started(settings());
  bus->subscribe("seq.*", seq.handler());
  constexpr int kEvents = 1000;
  for (int i = 0; i < kEvents; ++i) bus->publish(i % 2 ? "seq.odd" : "seq.even", {{"n", i}});
  ASSERT_TRUE(eventually([&] { return seq.size() == kEvents; })) << seq.size();
  const auto ns = seq.ns();
  for (int i = 0; i < kEvents; ++i) ASSERT_EQ(ns[static_cast<std::size_t>(i)], i);
}

TEST_P(RedisPatterns, ThePatternIsSubscribedWhileItHasHandlers) {
  Seen first, fence, again;
  auto bus = started(settings());
  EXPECT_EQ(numpat(server.port()), 0);
  auto a = bus->subscribe("orders.*", first.handler());
  auto b = bus->subscribe("orders.*", [](const Event&) {});
  EXPECT_EQ(numpat(server.port()), 1);
  RawClient admin(server.port());
  const std::string list = admin.command({"CLIENT", "LIST"}).get<std::string>();
  EXPECT_THAT(list, HasSubstr("psub=1")) << list;
  bus->publish("orders.x", {{"n", 1}});
  ASSERT_TRUE(eventually([&] { return first.size() == 1; }));
  ASSERT_TRUE(bus->unsubscribe(a));
  EXPECT_EQ(numpat(server.port()), 1);
  ASSERT_TRUE(bus->unsubscribe(b));
  EXPECT_TRUE(eventually([&] { return numpat(server.port()) == 0; }));
  // Nothing arrives for it any more: an exact subscription's event comes, the pattern's not.
  bus->subscribe("orders.fence", fence.handler());
  bus->publish("orders.y", {{"n", 2}});
  bus->publish("orders.fence", {{"n", 3}});
  ASSERT_TRUE(eventually([&] { return fence.size() == 1; }));
  EXPECT_EQ(first.size(), 1u);
  EXPECT_EQ(bus->stats().undeliverable, 0u) << "the server still sent the pattern's events";
  // And again.
  bus->subscribe("orders.*", again.handler());
  EXPECT_EQ(numpat(server.port()), 1);
  bus->publish("orders.z", {{"n", 4}});
  ASSERT_TRUE(eventually([&] { return again.size() == 1; }));
  EXPECT_THAT(again.names(), ElementsAre("orders.z"));
}

// A Redis glob reads `?`, `*`, `[...]` and `\` as wildcards and escapes; in athomic names they
// are plain characters.
TEST_P(RedisPatterns, GlobCharactersInNamesAreMatchedLiterally) {
  Seen question, brackets, backslash;
  auto bus = started(settings());
  bus->subscribe("a?b.*", question.handler());
  bus->subscribe("[ab].>", brackets.handler());
  bus->subscribe("x\\y.*", backslash.handler());
  RawClient other(server.port());
  // What each glob would match unescaped, then what it must match; in order on one connection.
  for (const char* channel : {"aXb.x", "ab.x", "a.x", "b.x", "[ab]x.y", "xy.z", "x\\\\y.z"}) {
    other.command({"PUBLISH", std::string("app_events:") + channel, R"({"n":0})"});
  }
  bus->publish("a?b.x", {{"n", 1}}).wait();
  bus->publish("[ab].x.y", {{"n", 2}}).wait();
  bus->publish("x\\y.z", {{"n", 3}}).wait();
  ASSERT_TRUE(eventually([&] { return question.size() && brackets.size() && backslash.size(); }));
  EXPECT_THAT(question.names(), ElementsAre("a?b.x"));
  EXPECT_THAT(brackets.names(), ElementsAre("[ab].x.y"));
  EXPECT_THAT(backslash.names(), ElementsAre("x\\y.z"));
}

TEST_P(RedisPatterns, AKeyPrefixAndSeparatorWithGlobCharactersAreMatchedLiterally) {
  Seen seen;
  auto s = settings();
  s.provider_config["provider"]["key_prefix"] = "app[1]?*";
  s.provider_config["provider"]["channel_separator"] = "\\";
  auto bus = started(s);
  bus->subscribe("orders.*", seen.handler());
  RawClient other(server.port());
  // Each matches the glob "app[1]?*\orders.*" read unescaped.
  for (const char* channel : {"app1Xorders.x", "app1XY\\orders.x", "app1?*orders.x"}) {
    other.command({"PUBLISH", channel, R"({"n":0})"});
  }
  other.command({"PUBLISH", "app[1]?*\\orders.x", R"({"n":1})"});
  ASSERT_TRUE(eventually([&] { return seen.size() >= 1; }));
  bus->publish("orders.y", {{"n", 2}}).wait();
  ASSERT_TRUE(eventually([&] { return seen.size() >= 2; }));
  EXPECT_THAT(seen.names(), ElementsAre("orders.x", "orders.y"));
  EXPECT_THAT(seen.ns(), ElementsAre(1, 2));
}

TEST_P(RedisPatterns, ChannelsTheGlobMatchesAndThePatternDoesNotAreNotDelivered) {
  // Redis's `*` crosses dots and matches nothing at all; athomic's stands for one whole part.
  Seen star, rest;
  auto bus = started(settings());
  bus->subscribe("a.*.c", star.handler());
  bus->subscribe("b.>", rest.handler());
  RawClient other(server.port());
  for (const char* channel : {"a.x.y.c", "a..c", "a.c", "b.", "b..x", "b.x."}) {
    other.command({"PUBLISH", std::string("app_events:") + channel, R"({"n":0})"});
  }
  other.command({"PUBLISH", "app_events:a.x.c", R"({"n":1})"});
  other.command({"PUBLISH", "app_events:b.x.y", R"({"n":2})"});
  ASSERT_TRUE(eventually([&] { return star.size() >= 1 && rest.size() >= 1; }));
  EXPECT_THAT(star.names(), ElementsAre("a.x.c"));
  EXPECT_THAT(rest.names(), ElementsAre("b.x.y"));
  EXPECT_EQ(bus->stats().undeliverable, 0u);
}

TEST_P(RedisPatterns, RandomNamesReachExactlyThePatternsThatMatchThem) {
  // The server's glob and the provider's check together, against the rule: `*` one part, a
  // final `>` one or more, everything else literal.
  const std::vector<std::string> patterns = {"*",     ">",    "*.*",    "a.*",    "a.>",
                                             "*.b",   "a?.*", "[a].>",  "*.\\.*", "a.*.>",
                                             "*.*.*", "?.>",  "a\\b.*", "*.[b]"};
  std::map<std::string, Seen> seen;
  auto bus = started(settings());
  for (const auto& p : patterns) bus->subscribe(p, seen[p].handler());
  auto matches = [](std::string_view pattern, std::string_view name) {
    std::vector<std::string_view> p, n;
    for (auto* parts : {&p, &n}) {
      std::string_view s = parts == &p ? pattern : name;
      for (std::size_t dot; (dot = s.find('.')) != std::string_view::npos; s.remove_prefix(dot + 1))
        parts->push_back(s.substr(0, dot));
      parts->push_back(s);
    }
    for (std::size_t i = 0; i < p.size(); ++i) {
      if (p[i] == ">") return n.size() > i;
      if (i >= n.size() || (p[i] != "*" && p[i] != n[i])) return false;
    }
    return p.size() == n.size();
  };
  std::mt19937 rng(5);
  const char* parts[] = {"a", "b", "a?", "?", "[a]", "[b]", "\\", "a\\b", "ab", "b]"};
  std::vector<std::pair<std::string, int>> published;  // name, n
  RawClient other(server.port());
  for (int i = 0; i < 300; ++i) {
    std::string name;
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < n; ++k) name += (k ? "." : "") + std::string(parts[rng() % 10]);
    other.command({"PUBLISH", "app_events:" + name, json{{"n", i}}.dump()});
    published.emplace_back(name, i);
  }
  // Then one fence per pattern, a name it matches, from the bus: behind everything above.
  for (std::size_t i = 0; i < patterns.size(); ++i) {
    std::string fence;
    for (std::string_view p = patterns[i];;) {
      const auto dot = p.find('.');
      const std::string_view part = p.substr(0, dot);
      fence += part == "*" || part == ">" ? std::string("f") : std::string(part);
      if (dot == std::string_view::npos) break;
      fence += '.';
      p.remove_prefix(dot + 1);
    }
    bus->publish(fence, {{"n", 1000 + static_cast<int>(i)}});
    published.emplace_back(fence, 1000 + static_cast<int>(i));
  }
  for (const auto& p : patterns) {
    std::vector<std::string> want;
    int last = -1;
    for (const auto& [name, n] : published) {
      if (matches(p, name)) {
        want.push_back(name);
        last = n;
      }
    }
    // A subscription's events come in order: once the last one it is due is in, all are.
    ASSERT_TRUE(eventually([&, last = last] {
      const auto ns = seen[p].ns();
      return std::find(ns.begin(), ns.end(), last) != ns.end();
    })) << "pattern "
        << p;
    EXPECT_EQ(seen[p].names(), want) << "pattern " << p;
  }
  EXPECT_EQ(bus->stats().undeliverable, 0u);
}

TEST_P(RedisPatterns, AnotherClientsPublishReachesThePatternHandlerWithTheEventsName) {
  Seen seen;
  auto bus = started(settings());
  bus->subscribe("user.*", seen.handler());
  Process cli(
      {"redis-cli", "-p", std::to_string(server.port()), "PUBLISH", "app_events:user.created",
       R"({"id":"u-9","n":5,"_nala_context":{"trace_id":"cli-trace"}})"},
      /*capture_stdout=*/true);
  EXPECT_EQ(cli.read_line(kGenerous).value_or("(nothing)"), "1");  // one receiver: the pattern
  EXPECT_EQ(cli.wait(kGenerous), 0);
  ASSERT_TRUE(eventually([&] { return seen.size() == 1; }));
  EXPECT_THAT(seen.names(), ElementsAre("user.created"));
  EXPECT_THAT(seen.ns(), ElementsAre(5));
  EXPECT_THAT(seen.traces(), ElementsAre("cli-trace"));
}

TEST_P(RedisPatterns, PatternsAreSubscribedAgainAfterTheSubscribingConnectionIsLost) {
  Seen seen;
  auto bus = started(settings());
  bus->subscribe("stream.*", seen.handler());
  bus->publish("stream.a", {{"n", 0}}).wait();
  ASSERT_TRUE(eventually([&] { return seen.size() == 1; }));
  RawClient admin(server.port());
  ASSERT_EQ(admin.command({"CLIENT", "KILL", "TYPE", "pubsub"}), 1);
  ASSERT_TRUE(eventually([&] { return numpat(server.port()) == 1 && bus->health().healthy(); }));
  for (int n = 1; n < 100; ++n) bus->publish("stream.b", {{"n", n}});
  ASSERT_TRUE(eventually([&] { return seen.size() == 100; })) << seen.size();
  const auto ns = seen.ns();
  for (int n = 0; n < 100; ++n) EXPECT_EQ(ns[static_cast<std::size_t>(n)], n);
}

INSTANTIATE_TEST_SUITE_P(Modes, RedisPatterns,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

TEST(RedisPatternsRefused, APatternTheServerRefusesMakesSubscribeThrow) {
  // The ACL allows the channels app_events:allowed.*; a PSUBSCRIBE pattern must be one of the
  // allowed patterns, literally.
  RedisServer server({"--user", "app", "on", ">app-pw", "~*", "&app_events:allowed.*", "+@all"});
  Seen allowed;
  auto bus = started(redis_settings(server.uri("app:app-pw")));
  bus->subscribe("allowed.*", allowed.handler());
  try {
    bus->subscribe("denied.*", [](const Event&) {});
    ADD_FAILURE() << "subscribe() succeeded on a pattern the server refused";
  } catch (const EventBusError& e) {
    EXPECT_THAT(e.what(), HasSubstr("PSUBSCRIBE app_events:denied.*"));
    EXPECT_THAT(e.what(), HasSubstr("NOPERM"));
  }
  EXPECT_EQ(numpat(server.port()), 1);
  bus->publish("allowed.x", {{"n", 1}});
  ASSERT_TRUE(eventually([&] { return allowed.size() == 1; }));
  EXPECT_THAT(allowed.names(), ElementsAre("allowed.x"));
}

TEST(RedisPatternsBackpressure, AFullDispatchQueueSlowsPatternDeliveriesAndLosesNothing) {
  // As RedisHostBackpressure.AFullDispatchQueueSlowsTheSubscriberAndLosesNothing, for pmessages.
  RedisServer server;
  auto s = redis_settings(server.uri());
  s.max_queued_events = 8;
  Gate gate;
  std::mutex m;
  std::vector<int> received;
  auto bus = started(s);
  bus->subscribe("bp.*", [&](const Event& e) {
    gate.wait();
    std::lock_guard lock(m);
    received.push_back(e.payload()["n"].get<int>());
  });
  RawClient publisher(server.port());
  constexpr int kEvents = 2000;
  for (int n = 0; n < kEvents; ++n) {
    publisher.command({"PUBLISH", "app_events:bp.x", json{{"n", n}}.dump()});
  }
  ASSERT_TRUE(eventually([&] { return bus->stats().receive_refusals > 0; }))
      << "the host never refused a delivery";
  gate.open();
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(m);
    return received.size() == static_cast<std::size_t>(kEvents);
  })) << received.size()
      << " of " << kEvents << " delivered";
  std::lock_guard lock(m);
  for (int n = 0; n < kEvents; ++n) EXPECT_EQ(received[static_cast<std::size_t>(n)], n);
  EXPECT_EQ(bus->stats().dropped_queue_full, 0u);
}

}  // namespace
}  // namespace athomic::test
