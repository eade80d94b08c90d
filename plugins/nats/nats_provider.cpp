// The `nats` provider: core NATS on the NATS C client (cnats). Subject =
// {subject_prefix}.{event name}; a pattern is subscribed as {subject_prefix}.{pattern}, since
// NATS subjects have the same wildcards (`*` one token, `>` the rest). Written against the
// installed athomic SDK only (athomic/sdk/provider.hpp), ABI 1.3: declared settings, acknowledged
// publishes, connection state, transport losses, and message headers both ways (NATS headers:
// the host's W3C traceparent travels there).
//
// Two connections, so that neither direction can stall the other: one publishes (nats_outbox),
// one subscribes (nats_subscriptions). The client library reconnects and re-subscribes by
// itself, to any server of a cluster (those configured and those the cluster announces);
// everything its callbacks touch lives in a Session (nats_session) they share.
#include <nats/nats.h>

#include <athomic/sdk/provider.hpp>

#include "nats_config.h"
#include "nats_outbox.h"
#include "nats_session.h"

namespace athomic_nats {
namespace {

using athomic::sdk::Error;

// How long stop() waits for deliveries under way (the host calls it once none is running).
constexpr auto kStopGrace = std::chrono::seconds(5);

class NatsProvider final : public athomic::sdk::Provider {
 public:
  NatsProvider(athomic::sdk::Host host, std::string_view /*config_json: read via settings*/)
      : host_(host), config_(read_config(host)) {}
  ~NatsProvider() override { stop(); }

  void start() override {
    if (session_) return;
    auto session = std::make_shared<Session>(host_, config_);
    natsConnection* pub = connect(*session, Session::kPublishing);
    natsConnection* sub = nullptr;
    try {
      sub = connect(*session, Session::kSubscribing);
      outbox_.start(session, pub);
      session->start_drop_watch();
    } catch (...) {
      outbox_.stop();
      session->close_gate(std::chrono::steady_clock::now());  // nothing to report: never started
      close(pub);
      close(sub);
      throw;
    }
    session_ = std::move(session);
    pub_ = pub;
    sub_ = sub;
    const std::string pub_server = session_->note_server(Session::kPublishing, pub_);
    const std::string sub_server = session_->note_server(Session::kSubscribing, sub_);
    const std::string where = pub_server == sub_server
                                  ? pub_server
                                  : pub_server + " (publishing), " + sub_server + " (subscribing)";
    host_.report_state(ATHOMIC_CONNECTION_UP, "connected to " + where);
    const std::string announced = Session::discovered_servers(sub_);
    host_.info("connected to " + where +
               (config_.servers.size() > 1 ? " of " + masked(config_.url) : std::string()) +
               (announced.empty() ? std::string() : "; the cluster announced " + announced) +
               "; subjects " + config_.subject_prefix + ".<event>");
  }

  void stop() noexcept override {
    if (!session_) return;
    outbox_.stop();  // every accepted publish is completed
    session_->unsubscribe_all();
    session_->stop_drop_watch();
    if (!session_->close_gate(std::chrono::steady_clock::now() + kStopGrace)) {
      host_.error("stop: a delivery into the host is still running after 5 s");
    }
    host_.report_state(ATHOMIC_CONNECTION_DOWN, "stopped");
    close(pub_);
    close(sub_);
    pub_ = sub_ = nullptr;
    session_.reset();
  }

  void publish(const athomic::sdk::Message& m) override {
    outbox_.put(m.event_name, m.body, m.publish_token, m.headers);
  }

  void interest_add(std::string_view topic, athomic_interest_kind kind) override {
    if (kind != ATHOMIC_INTEREST_EXACT && kind != ATHOMIC_INTEREST_PATTERN) {
      throw Error(ATHOMIC_ERR_UNSUPPORTED,
                  "unknown interest kind " + std::to_string(static_cast<int>(kind)));
    }
    if (!session_) throw Error(ATHOMIC_ERR_STATE, "the nats provider is stopped");
    // Events published before the subscription reach the server first: it must not see them.
    // (Not while reconnecting: then nothing orders the two connections, and nothing moves.)
    if (natsConnection_Status(pub_) == NATS_CONN_STATUS_CONNECTED) {
      outbox_.fence(std::chrono::milliseconds(config_.connect_timeout_ms));
    }
    session_->subscribe(sub_, topic, kind == ATHOMIC_INTEREST_PATTERN);
  }

  void interest_remove(std::string_view topic, athomic_interest_kind) noexcept override {
    if (session_) session_->unsubscribe(topic);
  }

 private:
  natsConnection* connect(Session& session, Session::Link link) {
    natsOptions* opts = nullptr;
    void* closure = nullptr;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK) s = session.configure(opts, link, &closure);
    if (s != NATS_OK) {
      natsOptions_Destroy(opts);
      throw Error(ATHOMIC_ERR_INVALID_ARGUMENT, "invalid NATS options: " + status_text(s));
    }
    natsConnection* conn = nullptr;
    s = natsConnection_Connect(&conn, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
      Session::forget_link(closure);  // a connection that never came up calls nothing back
      throw Error(ATHOMIC_ERR_CONNECT,
                  "cannot connect to " + masked(config_.url) + ": " + status_text(s));
    }
    return conn;
  }

  static void close(natsConnection* conn) noexcept {
    if (!conn) return;
    natsConnection_Close(conn);
    natsConnection_Destroy(conn);
  }

  athomic::sdk::Host host_;
  const Config config_;
  Outbox outbox_;                     // lives as long as the provider: publish() may overlap stop()
  std::shared_ptr<Session> session_;  // between start and stop
  natsConnection* pub_ = nullptr;
  natsConnection* sub_ = nullptr;
};

}  // namespace
}  // namespace athomic_nats

ATHOMIC_PROVIDER_WITH_SETTINGS(athomic_nats::NatsProvider, "nats", ATHOMIC_NATS_VERSION,
                               ATHOMIC_CAP_REMOTE | ATHOMIC_CAP_ORDERED | ATHOMIC_CAP_ACKNOWLEDGE |
                                   ATHOMIC_CAP_PATTERN | ATHOMIC_CAP_HEADERS,
                               athomic_nats::kSettings);
