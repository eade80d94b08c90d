// What the provider refuses (its buffer is full, by count or by bytes) and what the server
// refuses (an ACL that forbids a channel): each is an error the caller sees, or counted and
// logged, never a silent loss.
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
    } catch (const PluginError& e) {
      EXPECT_THAT(e.what(), HasSubstr("events.provider.max_buffered_bytes = " + bad.dump() +
                                      " is invalid: expected an integer from"));
    }
  }
}

}  // namespace
}  // namespace athomic::test
