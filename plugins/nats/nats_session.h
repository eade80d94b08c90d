// One run of the provider, from start() to stop(): everything the NATS client library's
// callbacks touch. The callbacks hold it by shared ownership, so whatever a late callback
// touches is still alive after stop() returns — and its gate keeps them from calling into the
// host by then.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nats_config.h"

namespace athomic_nats {

class Session;

// One event name or pattern the host has handlers for: a client subscription whose own thread
// delivers its messages. Owned by the session's table and by the client's closure, which the client
// releases in its completion callback.
struct Subscription {
  std::shared_ptr<Session> session;
  std::string event_name;  // or the pattern
  bool pattern = false;
  natsSubscription* handle = nullptr;
  std::atomic<bool> removed{false};
  std::mutex drops_mutex;
  int64_t drops_reported = 0;  // guarded by drops_mutex

  ~Subscription();
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  enum Link { kPublishing = 0, kSubscribing = 1 };

  Session(athomic::sdk::Host host, const Config& config) : host(host), config(config) {}

  const athomic::sdk::Host host;
  const Config config;

  // ---- the gate: calls into the host from the client's threads
  bool enter() noexcept;
  void leave() noexcept;
  bool closing() const noexcept { return closing_.load(std::memory_order_seq_cst); }
  // Shuts out further calls and waits until @p deadline for those under way; false if some
  // are still running then.
  bool close_gate(std::chrono::steady_clock::time_point deadline) noexcept;

  // ---- connections
  // Options both connections share: servers, credentials, reconnection, callbacks. The
  // callbacks' closure is freed by the closed callback, or by forget_link() when the
  // connection never came up.
  natsStatus configure(natsOptions* opts, Link link, void** closure);
  static void forget_link(void* closure) noexcept;
  void set_state(Link link, athomic_connection_state state, const std::string& detail) noexcept;
  // Remembers which server @p conn is on (for the messages when it is lost); returns its URL,
  // masked. Empty when it is not connected.
  std::string note_server(Link link, natsConnection* conn) noexcept;
  // The servers the cluster announced to @p conn (INFO connect_urls), comma-separated; empty
  // for none.
  static std::string discovered_servers(natsConnection* conn) noexcept;
  // The publishing connection is closed for good (the client gave up reconnecting).
  bool publishing_closed() const noexcept { return publishing_closed_.load(); }

  // ---- subscriptions (nats_subscriptions.cpp)
  // @p topic is an event name, or a pattern when @p pattern: the same subject syntax.
  void subscribe(natsConnection* conn, std::string_view topic, bool pattern);
  // Never waits: it may run on the very thread that delivers @p topic (an inline handler).
  void unsubscribe(std::string_view topic) noexcept;
  void unsubscribe_all() noexcept;
  void start_drop_watch();
  void stop_drop_watch() noexcept;

 private:
  static void on_disconnected(natsConnection*, void* closure);
  static void on_reconnected(natsConnection*, void* closure);
  static void on_closed(natsConnection*, void* closure);
  static void on_discovered(natsConnection*, void* closure);
  static void on_error(natsConnection*, natsSubscription* sub, natsStatus err, void* closure);
  static void on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  static void on_complete(void* closure);

  void slow_consumer(natsSubscription* handle) noexcept;
  // Reports what the client dropped for @p s since the last report.
  void account_drops(Subscription& s) noexcept;
  void drop_watch_loop();

  std::atomic<int> inside_{0};
  std::atomic<bool> closing_{false};

  std::mutex state_mutex_;
  athomic_connection_state links_[2] = {ATHOMIC_CONNECTION_UP, ATHOMIC_CONNECTION_UP};
  std::string servers_[2];  // the server each link is (or was last) on, masked
  std::atomic<bool> publishing_closed_{false};
  std::atomic<int64_t> last_error_log_ms_{0};
  // Messages whose header block the client could not parse, and when that was last logged.
  std::atomic<uint64_t> unparsed_headers_{0};
  std::atomic<int64_t> last_header_log_ms_{0};

  std::mutex subs_mutex_;
  std::map<std::string, std::shared_ptr<Subscription>, std::less<>> subs_;  // by topic
  // Subscriptions the client reported as slow consumers: checked until they stop dropping.
  std::vector<std::shared_ptr<Subscription>> watched_;  // guarded by subs_mutex_
  std::condition_variable watch_cv_;
  bool watch_stop_ = false;  // guarded by subs_mutex_
  std::thread watcher_;
};

}  // namespace athomic_nats
