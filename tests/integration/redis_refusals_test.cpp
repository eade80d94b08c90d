// What the provider refuses (its buffer is full, by count or by bytes) and what the server
// refuses (an ACL that forbids a channel): each is an error the caller sees, or counted and
// logged, never a silent loss.
#include "log_capture.h"
#include "redis_support.h"

#include <mutex>

namespace athomic::test {
namespace {

using testing::HasSubstr;

TEST(RedisRefusals, ABufferFullOfBytesIsRefusedAndWhatWasAcceptedArrives) {
  RedisServer server;
  auto bus = started(redis_settings(server.uri(), {{"max_buffered_bytes", 1 << 20}}));
  std::mutex m;
  std::set<int> received;
  bus->subscribe("big", [&](const Event& e) {
    std::lock_guard lock(m);
    received.insert(e.payload()["i"].get<int>());
  });
  server.kill9();
  const std::string pad(100 * 1024, 'x');  // ten of these fill 1 MiB
  int accepted = 0;
  std::string error;
  for (int i = 0; i < 100 && error.empty(); ++i) {
    try {
      bus->publish("big", {{"i", i}, {"pad", pad}});
      ++accepted;
    } catch (const EventBusError& e) {
      error = e.what();
    }
  }
  EXPECT_GE(accepted, 9);
  EXPECT_LE(accepted, 10);
  EXPECT_THAT(error, HasSubstr("events.provider.max_buffered_bytes is 1048576"));
  server.start();
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(m);
    return received.size() == static_cast<std::size_t>(accepted);
  }));
}

TEST(RedisRefusals, TheByteLimitIsValidated) {
  for (const json& bad : {json(0), json(-5), json("64MiB")}) {
    try {
      EventBus::create(redis_settings("redis://127.0.0.1:6379/0", {{"max_buffered_bytes", bad}}));
      ADD_FAILURE() << "max_buffered_bytes = " << bad << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_THAT(e.what(), HasSubstr("events.provider.max_buffered_bytes = " + bad.dump() +
                                      " is invalid: expected an integer from 1024 to "
                                      "1099511627776"));
    }
  }
}

// A server whose user `app` may use only the channels app_events:allowed.*.
std::vector<std::string> acl_server_options() {
  return {"--user", "app", "on", ">app-pw", "~*", "&app_events:allowed.*", "+@all"};
}

TEST(RedisRefusals, ASubscriptionTheServerRefusesMakesSubscribeThrow) {
  RedisServer server(acl_server_options());
  auto bus = started(redis_settings(server.uri("app:app-pw")));
  Counter allowed;
  bus->subscribe("allowed.one", [&](const Event&) { allowed.add(); });
  Counter denied;
  try {
    bus->subscribe("denied", [&](const Event&) { denied.add(); });
    ADD_FAILURE() << "subscribe() succeeded on a channel the server refused";
  } catch (const EventBusError& e) {
    EXPECT_THAT(e.what(), HasSubstr("SUBSCRIBE app_events:denied"));
    EXPECT_THAT(e.what(), HasSubstr("NOPERM"));
  }
  EXPECT_EQ(pubsub_channels(server.port()), std::set<std::string>{"app_events:allowed.one"});
  // The connection goes on, and a later subscription to the same event is refused again.
  EXPECT_THROW(bus->subscribe("denied", [](const Event&) {}), EventBusError);
  bus->publish("allowed.one", {});
  EXPECT_TRUE(allowed.wait_for_at_least(1));
  RawClient other(server.port());
  other.command({"PUBLISH", "app_events:denied", "{}"});
  bus->publish("allowed.one", {});
  EXPECT_TRUE(allowed.wait_for_at_least(2));
  EXPECT_EQ(denied.value(), 0);
}

TEST(RedisRefusals, PublishesTheServerRefusesAreCountedAndLogged) {
  // The provider hands each refusal to the host with the publish (RedisAcknowledge.*), which
  // counts it and logs it, rate-limited.
  RedisServer server(acl_server_options());
  LogCapture log("athomic.events");
  auto bus = started(redis_settings(server.uri("app:app-pw")));
  for (int n = 1; n <= 5; ++n) {
    Completion c = bus->publish("denied", {{"n", n}});
    ASSERT_TRUE(c.wait_for(kGenerous));
    EXPECT_FALSE(c.delivered());
  }
  EXPECT_EQ(bus->stats().publish_failures, 5u);
  EXPECT_THAT(log.text(), HasSubstr("provider 'redis' could not deliver a publish: the server at "
                                    "redis://app:***@127.0.0.1:" +
                                    std::to_string(server.port()) +
                                    "/0 refused PUBLISH to app_events:denied: NOPERM"));
  EXPECT_THAT(log.text(), testing::Not(HasSubstr("app-pw")));
}

}  // namespace
}  // namespace athomic::test
