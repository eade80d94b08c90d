#include "nats_session.h"

#include <cstdlib>
#include <vector>

namespace athomic_nats {

namespace {

// What the connection callbacks get: the session and which connection it is.
struct LinkClosure {
  std::shared_ptr<Session> session;
  Session::Link link;
};

const char* name_of(Session::Link link) {
  return link == Session::kPublishing ? "publishing" : "subscribing";
}

athomic_connection_state combined(const athomic_connection_state (&links)[2]) {
  if (links[0] == ATHOMIC_CONNECTION_DOWN || links[1] == ATHOMIC_CONNECTION_DOWN) {
    return ATHOMIC_CONNECTION_DOWN;
  }
  if (links[0] == ATHOMIC_CONNECTION_RECONNECTING || links[1] == ATHOMIC_CONNECTION_RECONNECTING) {
    return ATHOMIC_CONNECTION_RECONNECTING;
  }
  return ATHOMIC_CONNECTION_UP;
}

}  // namespace

bool Session::enter() noexcept {
  // Paired with close_gate(): either it sees us inside, or we see it closing.
  inside_.fetch_add(1, std::memory_order_seq_cst);
  if (closing_.load(std::memory_order_seq_cst)) {
    leave();
    return false;
  }
  return true;
}

void Session::leave() noexcept { inside_.fetch_sub(1, std::memory_order_seq_cst); }

bool Session::close_gate(std::chrono::steady_clock::time_point deadline) noexcept {
  closing_.store(true, std::memory_order_seq_cst);
  while (inside_.load(std::memory_order_seq_cst) != 0) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

natsStatus Session::configure(natsOptions* opts, Link link, void** closure) {
  std::vector<const char*> urls;
  for (const auto& u : config.servers) urls.push_back(u.c_str());
  natsStatus s = natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK) s = natsOptions_SetNoRandomize(opts, !config.randomize);
  if (s == NATS_OK)
    s = natsOptions_SetName(opts, link == kPublishing ? "athomic-pub" : "athomic-sub");
  if (s == NATS_OK && !config.user.empty()) {
    s = natsOptions_SetUserInfo(opts, config.user.c_str(), config.password.c_str());
  }
  if (s == NATS_OK && !config.token.empty()) s = natsOptions_SetToken(opts, config.token.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, config.connect_timeout_ms);
  if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, true);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, config.max_reconnect);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, config.reconnect_wait_ms);
  if (s == NATS_OK) {
    s = natsOptions_SetReconnectBufSize(opts, static_cast<int>(config.buffer_bytes));
  }
  // A server that stops reading must not hold the client's lock (and stop()) forever.
  if (s == NATS_OK) s = natsOptions_SetWriteDeadline(opts, config.write_deadline_ms);
  if (s != NATS_OK) return s;
  auto* c = new LinkClosure{shared_from_this(), link};
  s = natsOptions_SetDisconnectedCB(opts, &Session::on_disconnected, c);
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, &Session::on_reconnected, c);
  if (s == NATS_OK) s = natsOptions_SetClosedCB(opts, &Session::on_closed, c);
  if (s == NATS_OK) s = natsOptions_SetErrorHandler(opts, &Session::on_error, c);
  // The servers a cluster announces (INFO connect_urls) join the list the client reconnects
  // from, so one seed URL is enough; they are logged as they come.
  if (s == NATS_OK) s = natsOptions_SetDiscoveredServersCB(opts, &Session::on_discovered, c);
  if (s != NATS_OK) {
    delete c;
    return s;
  }
  *closure = c;
  return NATS_OK;
}

void Session::forget_link(void* closure) noexcept { delete static_cast<LinkClosure*>(closure); }

void Session::set_state(Link link, athomic_connection_state state,
                        const std::string& detail) noexcept {
  athomic_connection_state now;
  {
    std::lock_guard lock(state_mutex_);
    links_[link] = state;
    now = combined(links_);
  }
  host.report_state(now, detail);
}

std::string Session::note_server(Link link, natsConnection* conn) noexcept {
  char url[512] = "";
  if (natsConnection_GetConnectedUrl(conn, url, sizeof url) != NATS_OK || !*url) return {};
  std::string server = masked(url);
  std::lock_guard lock(state_mutex_);
  servers_[link] = server;
  return server;
}

void Session::on_disconnected(natsConnection*, void* closure) {
  auto* c = static_cast<LinkClosure*>(closure);
  Session& self = *c->session;
  if (!self.enter()) return;  // stop() closes the connections: not an outage
  std::string lost;
  {
    std::lock_guard lock(self.state_mutex_);
    lost = self.servers_[c->link];
  }
  const std::string detail = std::string(name_of(c->link)) + " connection to " +
                             (lost.empty() ? masked(self.config.url) : lost) +
                             " lost; reconnecting";
  self.host.warn(detail +
                 (c->link == kPublishing
                      ? " (publishes are kept, up to events.provider.reconnect_buffer_bytes)"
                      : ""));
  self.set_state(c->link, ATHOMIC_CONNECTION_RECONNECTING, detail);
  self.leave();
}

void Session::on_reconnected(natsConnection* conn, void* closure) {
  auto* c = static_cast<LinkClosure*>(closure);
  Session& self = *c->session;
  if (!self.enter()) return;
  // In a cluster, usually another server than the one lost.
  std::string server = self.note_server(c->link, conn);
  const std::string detail = std::string(name_of(c->link)) + " connection reconnected to " +
                             (server.empty() ? masked(self.config.url) : server);
  self.host.info(detail + (c->link == kSubscribing ? "; subscriptions restored" : ""));
  self.set_state(c->link, ATHOMIC_CONNECTION_UP, detail);
  self.leave();
}

void Session::on_closed(natsConnection*, void* closure) {
  std::unique_ptr<LinkClosure> c(static_cast<LinkClosure*>(closure));  // the last callback
  Session& self = *c->session;
  if (c->link == kPublishing) self.publishing_closed_ = true;
  if (!self.enter()) return;
  const std::string detail = std::string(name_of(c->link)) + " connection to " +
                             masked(self.config.url) + " closed: gave up after " +
                             std::to_string(self.config.max_reconnect) +
                             " reconnect attempt(s) (events.provider.max_reconnect)";
  self.host.error(detail);
  self.set_state(c->link, ATHOMIC_CONNECTION_DOWN, detail);
  self.leave();
}

std::string Session::discovered_servers(natsConnection* conn) noexcept {
  char** servers = nullptr;
  int count = 0;
  if (natsConnection_GetDiscoveredServers(conn, &servers, &count) != NATS_OK) return {};
  std::string list;
  for (int i = 0; i < count; ++i) {
    if (i) list += ", ";
    list += masked(servers[i]);
    free(servers[i]);  // the client's allocation, released as it documents
  }
  free(servers);
  return list;
}

// The client calls this for servers announced after the connection came up (those in its
// first INFO are in start()'s log line).
void Session::on_discovered(natsConnection* conn, void* closure) {
  auto* c = static_cast<LinkClosure*>(closure);
  Session& self = *c->session;
  const std::string list = discovered_servers(conn);
  if (list.empty() || !self.enter()) return;
  self.host.info(std::string(name_of(c->link)) +
                 " connection: the cluster announced server(s) to fail over to: " + list);
  self.leave();
}

// Asynchronous errors; above all a slow consumer, whose messages the client drops. Other errors
// are logged at most once a second.
void Session::on_error(natsConnection*, natsSubscription* sub, natsStatus err, void* closure) {
  Session& self = *static_cast<LinkClosure*>(closure)->session;
  if (err == NATS_SLOW_CONSUMER && sub) {
    self.slow_consumer(sub);
    return;
  }
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t last = self.last_error_log_ms_.load();
  if (now - last < 1000 || !self.last_error_log_ms_.compare_exchange_strong(last, now)) return;
  if (!self.enter()) return;
  std::string text = std::string("NATS reported: ") + natsStatus_GetText(err);
  if (sub) text += std::string(" on subject ") + natsSubscription_GetSubject(sub);
  self.host.error(text);
  self.leave();
}

}  // namespace athomic_nats
