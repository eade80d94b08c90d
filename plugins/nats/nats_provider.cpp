// The `nats` provider: core NATS on the NATS C client. Subject = {subject_prefix}.{event name}.
// Written against the installed athomic SDK only (athomic/sdk/provider.hpp).
//
// The client library reconnects by itself, re-subscribes, and buffers publishes made while
// disconnected (reconnect_buffer_bytes); a publish that does not fit fails with backpressure.
// Message callbacks run on the client's threads and go straight to the host, which decodes and
// dispatches. Every subscription and the connection are closed with completion callbacks, so
// that after interest_remove / stop returns no callback of ours is running or will run.
#include <athomic/sdk/provider.hpp>

#include <nats/nats.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>

namespace {

using athomic::sdk::Error;
using nlohmann::json;

struct Config {
  std::string url = "nats://127.0.0.1:4222";
  std::string user, password, token;
  std::string subject_prefix = "events";
  double connect_timeout_s = 5.0;
  int max_reconnect = -1;  // forever
  double reconnect_wait_s = 0.1;
  int reconnect_buffer_bytes = 8 * 1024 * 1024;
};

[[noreturn]] void bad_setting(const std::string& key, const json& v, const std::string& allowed) {
  const std::string shown = (key == "password" || key == "token") ? "\"***\"" : v.dump();
  throw Error(ATHOMIC_ERR_INVALID_ARGUMENT,
              "events.provider." + key + " = " + shown + " is invalid: " + allowed);
}

Config parse_config(std::string_view text) {
  const json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (!j.is_object()) throw Error(ATHOMIC_ERR_INVALID_ARGUMENT, "events.provider must be a table");
  static const char* kKnown[] = {"backend", "url", "user", "password", "token", "subject_prefix",
                                 "connect_timeout", "max_reconnect", "reconnect_wait",
                                 "reconnect_buffer_bytes"};
  Config c;
  for (const auto& [key, v] : j.items()) {
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown)) {
      std::string known;
      for (const char* k : kKnown) known += (known.empty() ? "" : ", ") + std::string(k);
      throw Error(ATHOMIC_ERR_INVALID_ARGUMENT,
                  "unknown setting events.provider." + key + "; known keys: " + known);
    }
    auto text_of = [&](std::string& out) {
      if (!v.is_string()) bad_setting(key, v, "expected a string");
      out = v.get<std::string>();
    };
    auto seconds_of = [&](double& out) {
      if (!v.is_number() || v.get<double>() <= 0 || v.get<double>() > 3600) {
        bad_setting(key, v, "expected seconds, more than 0 and at most 3600");
      }
      out = v.get<double>();
    };
    if (key == "url") text_of(c.url);
    if (key == "user") text_of(c.user);
    if (key == "password") text_of(c.password);
    if (key == "token") text_of(c.token);
    if (key == "subject_prefix") text_of(c.subject_prefix);
    if (key == "connect_timeout") seconds_of(c.connect_timeout_s);
    if (key == "reconnect_wait") seconds_of(c.reconnect_wait_s);
    if (key == "max_reconnect") {
      if (!v.is_number_integer() || v.get<int64_t>() < -1 || v.get<int64_t>() > 1000000) {
        bad_setting(key, v, "expected -1 (forever) or a count up to 1000000");
      }
      c.max_reconnect = v.get<int>();
    }
    if (key == "reconnect_buffer_bytes") {
      // (0 would mean the client library's default of 8 MB, not "no buffer".)
      if (!v.is_number_integer() || v.get<int64_t>() < 1024 || v.get<int64_t>() > (1 << 30)) {
        bad_setting(key, v, "expected bytes from 1024 to 1073741824");
      }
      c.reconnect_buffer_bytes = v.get<int>();
    }
  }
  if (c.subject_prefix.empty() || c.subject_prefix.find_first_of(" \t*>") != std::string::npos) {
    bad_setting("subject_prefix", c.subject_prefix, "a non-empty subject without spaces or wildcards");
  }
  return c;
}

// The URL as it may be shown: a password in it is masked.
std::string masked(const std::string& url) {
  const auto scheme = url.find("://");
  const auto at = url.rfind('@');
  if (scheme == std::string::npos || at == std::string::npos || at < scheme) return url;
  const auto colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

std::string last_error(natsStatus s) {
  std::string text = natsStatus_GetText(s);
  natsStatus ignored;
  if (const char* detail = nats_GetLastError(&ignored); detail && *detail && text != detail) {
    text += std::string(": ") + detail;
  }
  return text;
}

// A one-shot signal from a client thread.
struct Latch {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  void set() {
    std::lock_guard lock(m);
    done = true;
    cv.notify_all();
  }
  bool wait(std::chrono::milliseconds limit) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, limit, [&] { return done; });
  }
};

class NatsProvider;

struct Subscription {
  NatsProvider* owner;
  std::string event_name;
  natsSubscription* sub = nullptr;
  Latch complete;
};

class NatsProvider final : public athomic::sdk::Provider {
 public:
  NatsProvider(athomic::sdk::Host host, std::string_view config) : host_(host), config_(parse_config(config)) {}
  ~NatsProvider() override { stop(); }

  void start() override {
    std::lock_guard lock(mutex_);
    if (conn_) return;
    natsOptions* opts = nullptr;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK) s = natsOptions_SetURL(opts, config_.url.c_str());
    if (s == NATS_OK && !config_.user.empty()) {
      s = natsOptions_SetUserInfo(opts, config_.user.c_str(), config_.password.c_str());
    }
    if (s == NATS_OK && !config_.token.empty()) s = natsOptions_SetToken(opts, config_.token.c_str());
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts, static_cast<int64_t>(config_.connect_timeout_s * 1000));
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, true);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, config_.max_reconnect);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, static_cast<int64_t>(config_.reconnect_wait_s * 1000));
    if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(opts, config_.reconnect_buffer_bytes);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, &NatsProvider::on_disconnected, this);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, &NatsProvider::on_reconnected, this);
    if (s == NATS_OK) s = natsOptions_SetClosedCB(opts, &NatsProvider::on_closed, this);
    if (s == NATS_OK) s = natsOptions_SetErrorHandler(opts, &NatsProvider::on_async_error, this);
    if (s != NATS_OK) {
      natsOptions_Destroy(opts);
      throw Error(ATHOMIC_ERR_INVALID_ARGUMENT, "invalid NATS options: " + last_error(s));
    }
    closed_ = std::make_unique<Latch>();
    stopping_ = false;
    s = natsConnection_Connect(&conn_, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
      conn_ = nullptr;
      throw Error(ATHOMIC_ERR_CONNECT, "cannot connect to " + masked(config_.url) + ": " + last_error(s));
    }
    host_.info("connected to " + masked(config_.url) + "; subjects " + config_.subject_prefix + ".<event>");
  }

  void stop() noexcept override {
    std::unique_lock lock(mutex_);
    if (!conn_) return;
    stopping_ = true;  // the client reports the close as a disconnection: not worth a warning
    for (auto& [name, sub] : subs_) close_subscription(*sub);
    subs_.clear();
    natsConnection_FlushTimeout(conn_, 1000);
    natsConnection_Close(conn_);
    closed_->wait(std::chrono::seconds(10));  // the last connection callback has run
    natsConnection_Destroy(conn_);
    conn_ = nullptr;
  }

  void publish(const athomic::sdk::Message& m) override {
    // Shared: publishers run in parallel (the client is thread-safe); stop() takes the lock
    // exclusively, so the connection cannot be destroyed under a publish.
    std::shared_lock lock(mutex_);
    if (!conn_) throw Error(ATHOMIC_ERR_STATE, "the nats provider is stopped");
    const std::string subject = subject_of(m.event_name);
    const natsStatus s = natsConnection_Publish(conn_, subject.c_str(), m.body.data(),
                                                static_cast<int>(m.body.size()));
    if (s == NATS_INSUFFICIENT_BUFFER) {
      throw Error(ATHOMIC_ERR_BACKPRESSURE,
                  "disconnected from " + masked(config_.url) +
                      " and the reconnect buffer is full (events.provider.reconnect_buffer_bytes = " +
                      std::to_string(config_.reconnect_buffer_bytes) + ")");
    }
    if (s != NATS_OK) throw Error(ATHOMIC_ERR_CONNECT, "publish to " + subject + " failed: " + last_error(s));
  }

  void interest_add(std::string_view topic, athomic_interest_kind kind) override {
    if (kind != ATHOMIC_INTEREST_EXACT) {
      throw Error(ATHOMIC_ERR_UNSUPPORTED, "pattern subscriptions are not supported yet");
    }
    std::lock_guard lock(mutex_);
    if (!conn_) throw Error(ATHOMIC_ERR_STATE, "the nats provider is stopped");
    auto entry = std::make_unique<Subscription>();
    entry->owner = this;
    entry->event_name = std::string(topic);
    const std::string subject = subject_of(topic);
    natsStatus s = natsConnection_Subscribe(&entry->sub, conn_, subject.c_str(), &NatsProvider::on_message,
                                            entry.get());
    if (s == NATS_OK) s = natsSubscription_SetOnCompleteCB(entry->sub, &NatsProvider::on_complete, entry.get());
    if (s != NATS_OK) {
      if (entry->sub) natsSubscription_Destroy(entry->sub);
      throw Error(ATHOMIC_ERR_CONNECT, "cannot subscribe to " + subject + ": " + last_error(s));
    }
    // The server has the subscription once it answered a PING sent after it, so an event
    // published right after subscribe() returns is received. Not fatal while reconnecting.
    natsConnection_FlushTimeout(conn_, static_cast<int64_t>(config_.connect_timeout_s * 1000));
    subs_[entry->event_name] = std::move(entry);
  }

  void interest_remove(std::string_view topic, athomic_interest_kind) noexcept override {
    std::lock_guard lock(mutex_);
    auto it = subs_.find(std::string(topic));
    if (it == subs_.end()) return;
    close_subscription(*it->second);
    subs_.erase(it);
  }

 private:
  std::string subject_of(std::string_view event_name) const {
    return config_.subject_prefix + "." + std::string(event_name);
  }

  // Unsubscribes and waits until the client has returned from our last message callback.
  void close_subscription(Subscription& s) noexcept {
    if (natsSubscription_Unsubscribe(s.sub) == NATS_OK) s.complete.wait(std::chrono::seconds(10));
    natsSubscription_Destroy(s.sub);
  }

  static void on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* s = static_cast<Subscription*>(closure);
    s->owner->host_.deliver_message(
        s->event_name, std::string_view(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))));
    natsMsg_Destroy(msg);
  }
  static void on_complete(void* closure) { static_cast<Subscription*>(closure)->complete.set(); }
  static void on_disconnected(natsConnection*, void* closure) {
    auto* self = static_cast<NatsProvider*>(closure);
    if (self->stopping_) return;
    self->host_.warn("disconnected from " + masked(self->config_.url) + "; reconnecting, publishes are buffered");
  }
  static void on_reconnected(natsConnection*, void* closure) {
    auto* self = static_cast<NatsProvider*>(closure);
    self->host_.info("reconnected to " + masked(self->config_.url) + "; subscriptions restored");
  }
  static void on_closed(natsConnection*, void* closure) { static_cast<NatsProvider*>(closure)->closed_->set(); }

  // Asynchronous errors; above all a slow consumer, whose messages the client drops. Logged at
  // most once a second with the number of reports swallowed meanwhile, so nothing is dropped
  // without a trace.
  static void on_async_error(natsConnection*, natsSubscription* sub, natsStatus err, void* closure) {
    auto* self = static_cast<NatsProvider*>(closure);
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch()).count();
    int64_t last = self->last_error_ms_.load();
    if (now - last < 1000 || !self->last_error_ms_.compare_exchange_strong(last, now)) {
      self->suppressed_errors_++;
      return;
    }
    std::string text = std::string("NATS reported: ") + natsStatus_GetText(err);
    if (sub) text += std::string(" on subject ") + natsSubscription_GetSubject(sub);
    if (err == NATS_SLOW_CONSUMER) text += " (messages were dropped: handlers did not keep up)";
    if (const auto n = self->suppressed_errors_.exchange(0)) {
      text += "; " + std::to_string(n) + " more since the last report";
    }
    self->host_.error(text);
  }

  athomic::sdk::Host host_;
  Config config_;
  std::shared_mutex mutex_;  // exclusive: start, stop, interest changes; shared: publish
  natsConnection* conn_ = nullptr;
  std::unique_ptr<Latch> closed_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> last_error_ms_{0};
  std::atomic<uint64_t> suppressed_errors_{0};
  std::map<std::string, std::unique_ptr<Subscription>> subs_;
};

}  // namespace

ATHOMIC_PROVIDER(NatsProvider, "nats", "0.1.0", ATHOMIC_CAP_REMOTE | ATHOMIC_CAP_ORDERED);
