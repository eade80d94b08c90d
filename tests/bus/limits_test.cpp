// A remote publish refuses what every receiver would refuse, with the receiver's own words,
// instead of sending it and having each subscriber drop it as malformed.
#include "test_support.h"

#include <gmock/gmock.h>

#include <cmath>
#include <limits>

namespace athomic::test {
namespace {

using testing::HasSubstr;

nlohmann::json nested(int depth) {
  nlohmann::json j = {{"leaf", 1}};
  for (int i = 1; i < depth; ++i) j = nlohmann::json{{"a", std::move(j)}};
  return j;
}

class PublishLimits : public testing::TestWithParam<DispatchMode> {
 protected:
  std::shared_ptr<EventBus> bus = started(backend_settings("loopback", GetParam()));
  Counter got;
  void SetUp() override {
    bus->subscribe("limits", [this](const Event&) { got.add(); });
  }
  std::string refusal(const nlohmann::json& payload) {
    try {
      bus->publish("limits", payload);
    } catch (const EventBusError& e) {
      return e.what();
    }
    return "";
  }
};

TEST_P(PublishLimits, NestingAtTheLimitTravelsOneLevelMoreIsRefused) {
  EXPECT_EQ(refusal(nested(64)), "");
  ASSERT_TRUE(got.wait_for_at_least(1));
  const std::string error = refusal(nested(65));
  EXPECT_THAT(error, HasSubstr("publish('limits'): the payload cannot travel: JSON nested deeper "
                               "than 64 levels at /a/a/a"));
  EXPECT_EQ(bus->stats().malformed_messages, 0u);
}

TEST_P(PublishLimits, NonFiniteNumbersAreRefusedWithTheirPlace) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_THAT(refusal({{"x", {{"ratio", std::nan("")}}}}),
              HasSubstr("nan is not a JSON number (only finite numbers travel) at /x/ratio"));
  EXPECT_THAT(refusal({{"list", {1, 2, -inf}}}), HasSubstr("at /list/2"));
  EXPECT_THAT(refusal({{"a/b~c", inf}}), HasSubstr("at /a~1b~0c"));
  EXPECT_EQ(refusal({{"ok", 1.5}}), "");
  ASSERT_TRUE(got.wait_for_at_least(1));
  EXPECT_EQ(bus->stats().malformed_messages, 0u);
}

TEST_P(PublishLimits, MoreFeatureFlagsThanReceiversAcceptAreRefused) {
  ExecutionContext::FeatureFlags flags;
  for (int i = 0; i < 257; ++i) flags["f" + std::to_string(i)] = true;
  ContextScope scope(ExecutionContext::Builder().feature_flags(flags).build());
  EXPECT_THAT(refusal({}), HasSubstr("the context has 257 feature flags; receivers accept at most 256"));
  EXPECT_EQ(bus->stats().malformed_messages, 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, PublishLimits,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

}  // namespace
}  // namespace athomic::test
