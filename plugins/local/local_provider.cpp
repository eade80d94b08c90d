// The `local` provider: events stay in this process and pass by handle, never serialised.
// Publishing hands the host's own event straight back for dispatch, on the publishing thread.
#include <athomic/sdk/provider.hpp>

#include <atomic>

namespace {

class LocalProvider final : public athomic::sdk::Provider {
 public:
  LocalProvider(athomic::sdk::Host host, std::string_view /*config_json*/) : host_(host) {}

  void start() override { running_.store(true, std::memory_order_release); }
  void stop() noexcept override { running_.store(false, std::memory_order_release); }

  void publish(const athomic::sdk::Message& m) override {
    if (!running_.load(std::memory_order_acquire)) {
      throw athomic::sdk::Error(ATHOMIC_ERR_STATE, "the local provider is stopped");
    }
    if (host_.deliver_event(m.event) != ATHOMIC_OK) {
      throw athomic::sdk::Error(ATHOMIC_ERR_STATE, "the host refused the event");
    }
  }

  // Every handler lives in this process: interest needs no bookkeeping.
  void interest_add(std::string_view, athomic_interest_kind) override {}
  void interest_remove(std::string_view, athomic_interest_kind) noexcept override {}

 private:
  athomic::sdk::Host host_;
  std::atomic<bool> running_{false};
};

}  // namespace

// Loopback: the host may skip publish (which only hands the event back) and dispatch at once.
ATHOMIC_PROVIDER(LocalProvider, "local", "0.1.0",
                 ATHOMIC_CAP_IN_PROCESS | ATHOMIC_CAP_ORDERED | ATHOMIC_CAP_LOOPBACK);
