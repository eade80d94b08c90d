// Publishes acknowledged by the server (ATHOMIC_CAP_ACKNOWLEDGE): a publish's Completion carries
// the server's answer — the receiver count of PUBLISH, or its error — and every publish the
// provider accepted is completed once, at the latest when the bus closes.
#include "redis_support.h"

namespace athomic::test {
namespace {

using testing::HasSubstr;
using testing::Not;

TEST(RedisAcknowledge, ACompletionCarriesTheServersReceiverCount) {
  RedisServer server;
  auto bus = started(redis_settings(server.uri()));
  Completion nobody = bus->publish("count.me", {{"n", 0}});
  ASSERT_TRUE(nobody.wait_for(kGenerous));
  EXPECT_TRUE(nobody.delivered());
  EXPECT_EQ(nobody.receivers(), 0);
  EXPECT_EQ(nobody.error(), "");

  bus->subscribe("count.me", [](const Event&) {});  // this bus's own subscribing connection
  Completion one = bus->publish("count.me", {{"n", 1}});
  ASSERT_TRUE(one.wait_for(kGenerous));
  EXPECT_TRUE(one.delivered());
  EXPECT_EQ(one.receivers(), 1);

  RawClient other(server.port());
  other.command({"SUBSCRIBE", "app_events:count.me"});
  Completion two = bus->publish("count.me", {{"n", 2}});
  ASSERT_TRUE(two.wait_for(kGenerous));
  EXPECT_TRUE(two.delivered());
  EXPECT_EQ(two.receivers(), 2);
  EXPECT_EQ(bus->stats().publish_failures, 0u);
}

TEST(RedisAcknowledge, APublishTheServerRefusesFailsItsCompletion) {
  // User `app` may use only the channels app_events:allowed.*.
  RedisServer server({"--user", "app", "on", ">app-pw", "~*", "&app_events:allowed.*", "+@all"});
  auto bus = started(redis_settings(server.uri("app:app-pw")));
  Completion denied = bus->publish("denied", {{"n", 1}});
  ASSERT_TRUE(denied.wait_for(kGenerous));
  EXPECT_FALSE(denied.delivered());
  EXPECT_THAT(denied.error(), HasSubstr("refused PUBLISH to app_events:denied: NOPERM"));
  EXPECT_THAT(denied.error(), HasSubstr("ACL user 'app'"));
  EXPECT_THAT(denied.error(), Not(HasSubstr("app-pw")));
  EXPECT_EQ(bus->stats().publish_failures, 1u);
  // The connection goes on.
  Completion allowed = bus->publish("allowed.one", {});
  ASSERT_TRUE(allowed.wait_for(kGenerous));
  EXPECT_TRUE(allowed.delivered());
  EXPECT_EQ(bus->stats().publish_failures, 1u);
}

// Closes @p bus and checks that every one of @p pending is done and failed, none delivered.
void expect_failed_at_close(EventBus& bus, std::vector<Completion>& pending,
                            const std::string& reason) {
  bus.close();
  std::size_t failed = 0;
  for (auto& c : pending) {
    ASSERT_TRUE(c.done()) << "a publish accepted before close() is still pending";
    EXPECT_FALSE(c.delivered());
    EXPECT_THAT(c.error(), HasSubstr(reason));
    ++failed;
  }
  EXPECT_EQ(bus.stats().publish_failures, failed);
}

TEST(RedisAcknowledge, ClosingWhileTheServerIsPausedFailsWhatItDidNotAnswer) {
  RedisServer server;
  auto bus = started(redis_settings(server.uri(), {{"flush_timeout", 0.2}}));
  ASSERT_TRUE(bus->publish("before", {}).wait_for(kGenerous));
  RawClient admin(server.port());
  ASSERT_EQ(admin.command({"CLIENT", "PAUSE", "600000", "ALL"}), "OK");
  // Enough to be partly written, partly not: more than the sockets between us hold.
  const std::string pad(16 * 1024, 'x');
  std::vector<Completion> pending;
  for (int i = 0; i < 400; ++i) pending.push_back(bus->publish("paused", {{"i", i}, {"pad", pad}}));
  expect_failed_at_close(*bus, pending, "stopped before");
}

TEST(RedisAcknowledge, ClosingWhileDisconnectedFailsWhatWasBuffered) {
  RedisServer server;
  auto bus = started(redis_settings(server.uri()));
  server.kill9();
  ASSERT_TRUE(eventually([&] { return !bus->health().healthy(); }));
  std::vector<Completion> pending;
  for (int i = 0; i < 20; ++i) pending.push_back(bus->publish("buffered", {{"i", i}}));
  // The connection that publishes may learn of the loss a moment after the one that
  // subscribes: an event written into the dead socket before that fails as unanswered rather
  // than unsent. Either way it fails at close, naming the server.
  expect_failed_at_close(*bus, pending, "stopped before ");
  for (auto& c : pending) EXPECT_THAT(c.error(), HasSubstr(server.uri()));
}

TEST(RedisAcknowledge, PublishesBufferedThroughARestartAreCompletedByTheirResend) {
  RedisServer server;
  auto bus = started(redis_settings(server.uri()));
  Counter got;
  bus->subscribe("stream", [&](const Event&) { got.add(); });
  std::vector<Completion> all;
  constexpr int kEvents = 150;
  for (int n = 0; n < kEvents; ++n) {
    if (n == kEvents / 3) server.kill9();
    if (n == 2 * kEvents / 3) server.start();
    all.push_back(bus->publish("stream", {{"n", n}}));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (int n = 0; n < kEvents; ++n) {
    auto& c = all[static_cast<std::size_t>(n)];
    ASSERT_TRUE(c.wait_for(kGenerous)) << "event " << n;
    EXPECT_TRUE(c.delivered()) << "event " << n << ": " << c.error();
    EXPECT_EQ(c.receivers(), 1) << "event " << n;
  }
  EXPECT_TRUE(got.wait_for_at_least(kEvents));
  EXPECT_EQ(bus->stats().publish_failures, 0u);
}

}  // namespace
}  // namespace athomic::test
