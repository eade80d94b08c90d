// A remote provider without a server: publish hands the encoded message straight back to the
// host on the publishing thread, as a transport that delivers synchronously would. It exercises
// the host's remote paths (encoding, decoding, limits, backpressure) and publishes made from
// handlers while an outer publish is still inside the provider.
#include <athomic/sdk/provider.hpp>

#include <atomic>
#include <string>

namespace {

class Loopback final : public athomic::sdk::Provider {
 public:
  Loopback(athomic::sdk::Host host, std::string_view) : host_(host) {}
  void start() override { running_ = true; }
  void stop() noexcept override { running_ = false; }
  void publish(const athomic::sdk::Message& m) override {
    if (!running_) throw athomic::sdk::Error(ATHOMIC_ERR_STATE, "the loopback provider is stopped");
    // The host may reuse its buffer once publish returns: a copy is what a transport would keep.
    const std::string body(m.body);
    const athomic_status st = host_.deliver_message(m.event_name, body);
    if (st == ATHOMIC_ERR_BACKPRESSURE) {
      throw athomic::sdk::Error(st, "the receiving side's queue is full");
    }
    // The host checks what arrives against its view of the body it sent: a body changed under
    // the provider during delivery shows up as a mismatch here.
    if (std::string_view(body) != m.body) {
      throw athomic::sdk::Error(ATHOMIC_ERR_INTERNAL, "the message body changed during delivery");
    }
  }
  void interest_add(std::string_view, athomic_interest_kind) override {}
  void interest_remove(std::string_view, athomic_interest_kind) noexcept override {}

 private:
  athomic::sdk::Host host_;
  std::atomic<bool> running_{false};
};

}  // namespace

ATHOMIC_PROVIDER(Loopback, "loopback", "0.0.1", ATHOMIC_CAP_REMOTE | ATHOMIC_CAP_ORDERED);
