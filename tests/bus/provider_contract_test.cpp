// ABI 1.2 through a real plugin (tests/plugins/acknowledging.cpp): publishes completed by the
// transport, connection state, losses the transport reports, and declared provider settings
// validated by the host.
#include "log_capture.h"
#include "test_support.h"

#include <gmock/gmock.h>

namespace athomic::test {
namespace {

using nlohmann::json;
using testing::HasSubstr;
using testing::Not;

EventsSettings acknowledging(const json& keys = json::object(),
                             DispatchMode mode = DispatchMode::pool) {
  auto s = backend_settings("acknowledging", mode);
  s.provider_config.update(keys);
  return s;
}

TEST(ProviderContract, ACompletionCarriesTheTransportsVerdict) {
  auto bus = started(acknowledging({{"limits", {{"receivers", 3}}}}));
  Counter got;
  bus->subscribe("ok.event", [&](const Event&) { got.add(); });
  Completion ok = bus->publish("ok.event", {{"n", 1}});
  ASSERT_TRUE(ok.wait_for(kGenerous));
  EXPECT_TRUE(ok.delivered());
  EXPECT_EQ(ok.receivers(), 3);
  EXPECT_EQ(ok.error(), "");
  Completion refused = bus->publish("refused.event", {});
  ASSERT_TRUE(refused.wait_for(kGenerous));
  EXPECT_FALSE(refused.delivered());
  EXPECT_THAT(refused.error(), HasSubstr("the server refused it"));
  EXPECT_EQ(bus->stats().publish_failures, 1u);
  EXPECT_TRUE(got.wait_for_at_least(1));
}

TEST(ProviderContract, PublishesTheProviderCouldNotSendFailWhenItStops) {
  auto bus = started(acknowledging({{"hold", true}}));
  std::vector<Completion> pending;
  for (int i = 0; i < 5; ++i) pending.push_back(bus->publish("held", {{"i", i}}));
  for (auto& c : pending) EXPECT_FALSE(c.done());
  bus->close();
  for (auto& c : pending) {
    ASSERT_TRUE(c.done());
    EXPECT_FALSE(c.delivered());
    EXPECT_THAT(c.error(), HasSubstr("stopped before it was sent"));
  }
  EXPECT_EQ(bus->stats().publish_failures, 5u);
}

TEST(ProviderContract, WaitingForAnAcknowledgementInsideAPoolHandlerIsAllowed) {
  auto bus = started(acknowledging());
  Counter done;
  bool delivered = false;
  bus->subscribe("inner", [](const Event&) {});
  bus->subscribe("outer", [&](const Event&) {
    Completion c = bus->publish("inner", {});
    c.wait();  // the transport completes it, not this bus's handlers
    delivered = c.delivered();
    done.add();
  });
  bus->publish("outer", {});
  ASSERT_TRUE(done.wait_for_at_least(1));
  EXPECT_TRUE(delivered);
}

TEST(ProviderContract, WaitingForAnAcknowledgementInsideAnInlineHandlerIsRefused) {
  // Inline dispatch runs handlers on the provider's delivering thread: the provider could not
  // answer while that thread waits for it. ("held." events are answered only at stop.)
  auto bus = started(acknowledging({{"hold_prefix", "held."}}, DispatchMode::inline_call));
  Counter done;
  std::string error;
  bus->subscribe("outer", [&](const Event&) {
    Completion c = bus->publish("held.inner", {});
    try {
      c.wait();
    } catch (const EventBusError& e) {
      error = e.what();
    }
    done.add();
  });
  bus->publish("outer", {});
  ASSERT_TRUE(done.wait_for_at_least(1));
  EXPECT_THAT(error, HasSubstr("Completion::wait() called from inside a handler of the same bus"));
}

TEST(ProviderContract, HealthFollowsTheReportedConnection) {
  auto bus = EventBus::create(acknowledging());
  EXPECT_FALSE(bus->health().healthy());
  bus->start();
  auto h = bus->health();
  EXPECT_TRUE(h.healthy());
  EXPECT_EQ(h.detail, "ready");
  bus->publish("test.outage", {});
  h = bus->health();
  EXPECT_EQ(h.outages, 1u);
  EXPECT_EQ(h.connection, BusHealth::Connection::up);
  EXPECT_EQ(bus->stats().outages, 1u);
  bus->close();
  h = bus->health();
  EXPECT_FALSE(h.started);
  EXPECT_EQ(h.connection, BusHealth::Connection::down);
  EXPECT_FALSE(h.healthy());
}

TEST(ProviderContract, LossesTheTransportReportsAreCounted) {
  auto bus = started(acknowledging());
  LogCapture log("athomic.events");
  bus->publish("test.drop", {}).wait();
  EXPECT_EQ(bus->stats().dropped_by_transport, 3u);
  EXPECT_THAT(log.text(), HasSubstr("lost 3 received message(s) for 'test.drop': simulated loss"));
}

TEST(ProviderContract, DeclaredSettingsReachTheProviderWithTheirDefaults) {
  LogCapture log("athomic.provider.acknowledging");
  auto bus = started(acknowledging({{"limits", {{"delay", 0.25}}}, {"mode", "safe"}}));
  EXPECT_THAT(log.text(), HasSubstr("delay 250 ms, mode safe, token unset"));
}

std::string refusal(const json& keys) {
  try {
    EventBus::create(acknowledging(keys));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ProviderContract, UndeclaredOrInvalidProviderSettingsAreRefusedLikeTheHostsOwn) {
  EXPECT_THAT(refusal({{"hodl", true}}),
              HasSubstr("unknown setting events.provider.hodl. Did you mean "
                        "'events.provider.hold'?"));
  EXPECT_THAT(refusal({{"limits", {{"recievers", 2}}}}),
              HasSubstr("Did you mean 'events.provider.limits.receivers'?"));
  EXPECT_THAT(refusal({{"limits", {{"receivers", 5000}}}}),
              HasSubstr("events.provider.limits.receivers = 5000 is invalid: expected an integer "
                        "from 0 to 1000"));
  EXPECT_THAT(refusal({{"limits", {{"delay", std::nan("")}}}}), HasSubstr("expected seconds"));
  EXPECT_THAT(refusal({{"mode", "turbo"}}), HasSubstr("expected \"fast\" or \"safe\""));
  EXPECT_THAT(refusal({{"limits", 3}}), HasSubstr("events.provider.limits = 3 is invalid: expected a table"));
  const std::string secret = refusal({{"credentials", {{"token", 42}}}});
  EXPECT_THAT(secret, HasSubstr("events.provider.credentials.token = \"***\" is invalid"));
  EXPECT_THAT(secret, Not(HasSubstr("42")));
}

TEST(ProviderContract, AnInvalidSettingIsBlamedOnWhereItWasSet) {
  ScopedEnv variable("NALA_EVENTS__PROVIDER__HOLD", "sometimes");
  const auto settings = Settings::from_toml(
      "[default.events]\nplugins_dir = \"" + std::string(ATHOMIC_TEST_PLUGIN_DIR) +
          "\"\n[default.events.provider]\nbackend = \"acknowledging\"\n",
      "settings.toml", "development", {{"NALA_EVENTS__PROVIDER__HOLD", "sometimes"}});
  try {
    EventBus::create(settings);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("environment variable NALA_EVENTS__PROVIDER__HOLD: "
                                    "events.provider.hold = \"sometimes\" is invalid: expected "
                                    "true or false"));
  }
}

}  // namespace
}  // namespace athomic::test
