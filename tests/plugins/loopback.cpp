// A remote provider without a server: publish hands the encoded message straight back to the
// host on the publishing thread, as a transport that delivers synchronously would. It exercises
// the host's remote paths (encoding, decoding, limits, backpressure) and publishes made from
// handlers while an outer publish is still inside the provider.
//
// Built a second time with LOOPBACK_PATTERNS as `loopback_patterns`: it then declares
// ATHOMIC_CAP_PATTERN and, like a broker with native wildcards, delivers each message once per
// matching subscription — to an exact interest with deliver_message, to a pattern with
// deliver_message_to.
#include <athomic/sdk/provider.hpp>

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace {

// NATS-style subject matching: `*` one part, a final `>` one or more.
bool matches(std::string_view pattern, std::string_view name) {
  for (;;) {
    const auto pd = pattern.find('.');
    const auto nd = name.find('.');
    const std::string_view p = pattern.substr(0, pd);
    const std::string_view n = name.substr(0, nd);
    if (p == ">") return !name.empty();
    if (p != "*" && p != n) return false;
    if (pd == std::string_view::npos || nd == std::string_view::npos) {
      return pd == std::string_view::npos && nd == std::string_view::npos;
    }
    pattern.remove_prefix(pd + 1);
    name.remove_prefix(nd + 1);
  }
}

class Loopback final : public athomic::sdk::Provider {
 public:
  Loopback(athomic::sdk::Host host, std::string_view) : host_(host) {}
  void start() override { running_ = true; }
  void stop() noexcept override { running_ = false; }
  void publish(const athomic::sdk::Message& m) override {
    if (!running_) throw athomic::sdk::Error(ATHOMIC_ERR_STATE, "the loopback provider is stopped");
    // The host may reuse its buffer once publish returns: a copy is what a transport would keep.
    const std::string body(m.body);
#ifdef LOOPBACK_PATTERNS
    std::vector<std::string> exact, patterns;
    {
      std::lock_guard lock(mutex_);
      for (const auto& i : interests_) {
        if (i.second && matches(i.first, m.event_name)) patterns.push_back(i.first);
        if (!i.second && i.first == m.event_name) exact.push_back(i.first);
      }
    }
    for (const auto& e : exact) check(host_.deliver_message(m.event_name, body));
    for (const auto& p : patterns) check(host_.deliver_message_to(m.event_name, body, p));
#else
    check(host_.deliver_message(m.event_name, body));
#endif
    // The host checks what arrives against its view of the body it sent: a body changed under
    // the provider during delivery shows up as a mismatch here.
    if (std::string_view(body) != m.body) {
      throw athomic::sdk::Error(ATHOMIC_ERR_INTERNAL, "the message body changed during delivery");
    }
  }
  void interest_add(std::string_view topic, athomic_interest_kind kind) override {
    std::lock_guard lock(mutex_);
    interests_.insert({std::string(topic), kind == ATHOMIC_INTEREST_PATTERN});
  }
  void interest_remove(std::string_view topic, athomic_interest_kind kind) noexcept override {
    std::lock_guard lock(mutex_);
    interests_.erase({std::string(topic), kind == ATHOMIC_INTEREST_PATTERN});
  }

 private:
  static void check(athomic_status st) {
    if (st == ATHOMIC_ERR_BACKPRESSURE) {
      throw athomic::sdk::Error(st, "the receiving side's queue is full");
    }
  }

  athomic::sdk::Host host_;
  std::atomic<bool> running_{false};
  std::mutex mutex_;
  std::set<std::pair<std::string, bool>> interests_;  // (topic, is a pattern)
};

}  // namespace

#ifdef LOOPBACK_PATTERNS
ATHOMIC_PROVIDER(Loopback, "loopback_patterns", "0.0.1",
                 ATHOMIC_CAP_REMOTE | ATHOMIC_CAP_ORDERED | ATHOMIC_CAP_PATTERN);
#else
ATHOMIC_PROVIDER(Loopback, "loopback", "0.0.1", ATHOMIC_CAP_REMOTE | ATHOMIC_CAP_ORDERED);
#endif
