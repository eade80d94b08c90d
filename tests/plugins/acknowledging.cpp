// A remote provider without a server that uses everything ABI 1.2 added: it declares its
// settings, completes each publish with publish_done, reports its connection state and the
// messages its "transport" lost. Publishes go back to the host synchronously, like loopback.
//
// Settings (events.provider.*): refuse_prefix — events whose name starts with it fail with
// ATHOMIC_ERR_CONNECT; hold — publishes are completed only at stop (failed then), as a
// transport that never got to send them; hold_prefix — the same for events whose name starts
// with it; limits.receivers — the count reported on success;
// credentials.token — a secret, echoed nowhere.
#include <athomic/sdk/provider.hpp>

#include <mutex>
#include <string>
#include <vector>

namespace {

using athomic::sdk::setting;

constexpr athomic_setting kRefusePrefix =
    setting("refuse_prefix", ATHOMIC_SETTING_STRING, "\"refused.\"", "events that fail");
constexpr athomic_setting kHold =
    setting("hold", ATHOMIC_SETTING_BOOL, "false", "complete publishes only at stop");
constexpr athomic_setting kHoldPrefix = setting("hold_prefix", ATHOMIC_SETTING_STRING, "\"\"",
                                                "complete these events only at stop");
constexpr athomic_setting kReceivers = setting("limits.receivers", ATHOMIC_SETTING_INT, "1",
                                               "receivers reported per publish", 0, 1000);
constexpr athomic_setting kDelay = setting("limits.delay", ATHOMIC_SETTING_SECONDS, "0.5",
                                           "a duration, read back in tests", 0, 60);
constexpr const char* kModes[] = {"fast", "safe", nullptr};
constexpr athomic_setting kMode =
    setting("mode", ATHOMIC_SETTING_STRING, "\"fast\"", "one of two", 0, 0, 0, kModes);
constexpr athomic_setting kToken = setting("credentials.token", ATHOMIC_SETTING_STRING, nullptr,
                                           "a secret", 0, 0, ATHOMIC_SETTING_SECRET);
const athomic_setting* const kSettings[] = {&kRefusePrefix, &kHold, &kHoldPrefix, &kReceivers,
                                            &kDelay,        &kMode, &kToken,      nullptr};

class Acknowledging final : public athomic::sdk::Provider {
 public:
  Acknowledging(athomic::sdk::Host host, std::string_view)
      : host_(host),
        refuse_prefix_(host.setting<std::string>("refuse_prefix")),
        hold_(host.setting<bool>("hold")),
        hold_prefix_(host.setting<std::string>("hold_prefix")),
        receivers_(host.setting<int64_t>("limits.receivers")) {
    // Read back what the host validated, so tests can see it through the log.
    host_.info("delay " + std::to_string(host.setting<std::chrono::milliseconds>("limits.delay").count()) +
               " ms, mode " + host.setting<std::string>("mode") + ", token " +
               (host.has_setting("credentials.token") ? "set" : "unset"));
  }
  void start() override {
    running_ = true;
    host_.report_state(ATHOMIC_CONNECTION_UP, "ready");
  }
  void stop() noexcept override {
    std::vector<uint64_t> held;
    {
      std::lock_guard lock(mutex_);
      if (!running_) return;
      running_ = false;
      held.swap(held_);
    }
    for (uint64_t token : held) {
      host_.publish_done(token, ATHOMIC_ERR_CONNECT, -1, "stopped before it was sent");
    }
    host_.report_state(ATHOMIC_CONNECTION_DOWN, "stopped");
  }
  void publish(const athomic::sdk::Message& m) override {
    {
      std::lock_guard lock(mutex_);
      if (!running_) throw athomic::sdk::Error(ATHOMIC_ERR_STATE, "stopped");
      if (hold_ || (!hold_prefix_.empty() &&
                    m.event_name.substr(0, hold_prefix_.size()) == hold_prefix_)) {
        held_.push_back(m.publish_token);
        return;
      }
    }
    if (m.event_name == "test.outage") {
      host_.report_state(ATHOMIC_CONNECTION_RECONNECTING, "connection reset by the test");
      host_.report_state(ATHOMIC_CONNECTION_UP, "reconnected");
    }
    if (m.event_name == "test.drop") host_.report_dropped(m.event_name, 3, "simulated loss");
    if (m.event_name.substr(0, refuse_prefix_.size()) == refuse_prefix_) {
      host_.publish_done(m.publish_token, ATHOMIC_ERR_CONNECT, -1, "the server refused it");
      return;
    }
    host_.deliver_message(m.event_name, std::string(m.body));
    host_.publish_done(m.publish_token, ATHOMIC_OK, receivers_, {});
  }
  void interest_add(std::string_view, athomic_interest_kind) override {}
  void interest_remove(std::string_view, athomic_interest_kind) noexcept override {}

 private:
  athomic::sdk::Host host_;
  const std::string refuse_prefix_;
  const bool hold_;
  const std::string hold_prefix_;
  const int64_t receivers_;
  std::mutex mutex_;
  bool running_ = false;
  std::vector<uint64_t> held_;
};

}  // namespace

ATHOMIC_PROVIDER_WITH_SETTINGS(Acknowledging, "acknowledging", "0.0.1",
                               ATHOMIC_CAP_REMOTE | ATHOMIC_CAP_ORDERED | ATHOMIC_CAP_ACKNOWLEDGE,
                               kSettings);
