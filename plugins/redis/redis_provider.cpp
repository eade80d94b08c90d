// The `redis` provider: Redis Pub/Sub, channel = {key_prefix}{separator}{event name}. A pattern
// subscription is a PSUBSCRIBE of the pattern's glob (channel_pattern.h).
//
// One I/O thread owns two connections — one publishes, one is in subscribe mode — and drives
// both from a poll() loop, woken through an eventfd. The loop reads and writes the sockets
// itself (redis_connection.h) and parses replies in place (resp.h), so neither a publish nor a
// received event costs an allocation here.
//
// Each connection fails and comes back on its own: the loop keeps serving the other one while
// it reconnects (with backoff, every step non-blocking). When the subscribing connection comes
// back, it subscribes every wanted channel again; when the publishing one does, it sends again
// the publishes the server had not answered. An idle connection sends PING every
// keepalive_interval, so that a server's `timeout` does not close it.
//
// Publishes are formatted on the caller's thread straight into one shared byte buffer; the loop
// takes the whole buffer at once and writes it pipelined. A publish stays in the loop's queue
// until the server has answered it; the answer completes it with the host (publish_done: the
// receiver count, or the server's error), and stop() fails every publish still unanswered. The
// queue is bounded in events and in bytes: when either is reached, publish fails and nothing
// is kept.
//
// Publishing and subscribing use two connections, which the server serves in no particular
// order. So that a subscription change and this process's publishes take effect in the order
// they were made, a change is sent only once the publishes made before it are answered, and the
// publishes made after it wait for its confirmation. (Changes are rare; this costs a round trip
// each, never on the publish path otherwise.) For the same reason publishes wait while the
// subscribing connection is down or re-subscribing, so this instance does not miss its own
// events. Pattern subscriptions follow the same rules as channels.
#include "channel_pattern.h"
#include "publish_queue.h"
#include "redis_cluster.h"
#include "redis_connection.h"
#include "redis_sentinel.h"

#include "redis_config.h"

#include <athomic/sdk/provider.hpp>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace athomic::redis {
namespace {

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// One of the two connections, and how it comes back when lost.
struct Link {
  explicit Link(const char* n) : name(n) {}
  const char* name;  // "publishing" or "subscribing", for the log
  Connection conn;
  Clock::time_point retry_at{};  // while down and not connecting: when the next attempt begins
  double delay = 0;              // the wait after the next failed attempt
  int attempts = 0;              // failed attempts since the connection was lost
  Endpoint at;                   // the server it is connected or connecting to, or was last
  std::string failed_at;         // host:port its last attempt failed on (while attempts > 0)
  std::string lost;              // while lost: how, for the host's health (empty while open)
  bool ping_due = false;         // a keepalive PING is unanswered
  Clock::time_point due_since{};  // since when an answer has been awaited (reply_timeout)
};

// The connections to one server: the whole provider for one Redis (or a Sentinel's master), one
// shard of a cluster (or its one node, for classic Pub/Sub) when @p owner is given.
class Server final : public ServerBus {
 public:
  Server(sdk::Host host, const Config& config, ShardOwner* owner = nullptr,
         std::optional<Endpoint> node = std::nullopt)
      : host_(host),
        config_(config),
        owner_(owner),
        sharded_(owner && config.cluster && config.cluster->sharded),
        node_(node ? std::move(*node) : config.endpoint),
        server_(config_.sentinel ? config_.sentinel->display() : node_.display()) {
    node_.must_be_master = sharded_;
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) throw sdk::Error(ATHOMIC_ERR_INTERNAL, "eventfd failed");
  }

  ~Server() override {
    stop();
    ::close(wake_fd_);
  }

  void start() override {
    std::lock_guard life(lifecycle_);
    if (io_.joinable()) return;
    // The first connections are made on the caller's thread so that start() reports the error.
    std::string error;
    master_ = node_;
    // With Sentinel: the masters named that could not be used, so that the next sentinel's
    // answer is tried (the first one's view may be stale).
    std::set<std::string> failed;
    for (;;) {
      if (config_.sentinel) {
        master_.must_be_master = true;
        std::string why;
        if (!ask_sentinels(*config_.sentinel, master_, why, nullptr, &failed)) {
          if (!failed.empty()) why = error + "; " + why;
          report(ATHOMIC_CONNECTION_DOWN, why);
          throw sdk::Error(ATHOMIC_ERR_CONNECT, why);
        }
      }
      if (pub_.conn.open(master_, error) && sub_.conn.open(master_, error)) break;
      pub_.conn.close();
      if (!config_.sentinel) {
        report(ATHOMIC_CONNECTION_DOWN, error);
        throw sdk::Error(ATHOMIC_ERR_CONNECT, error);
      }
      failed.insert(address_of(master_));
    }
    written_to_ = address_of(master_);
    pub_.at = sub_.at = master_;
    {
      std::lock_guard lock(mutex_);
      stopping_ = false;
      running_ = true;
      pub_up_ = sub_up_ = true;
    }
    if (!owner_) {
      host_.info("connected to " + master_.display() +
                 (config_.sentinel ? " (the " + server_ + ")" : std::string()) + "; channels " +
                 config_.key_prefix + config_.separator + "<event>");
    }
    report(ATHOMIC_CONNECTION_UP, "connected to " + master_.display());
    io_ = std::thread([this] { run(); });
  }

  void stop() noexcept override {
    std::lock_guard life(lifecycle_);
    if (!io_.joinable()) return;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake();
    io_.join();
    std::vector<PublishQueue::Entry> never_taken;
    uint64_t published;
    {
      std::lock_guard lock(mutex_);
      running_ = false;
      pub_up_ = sub_up_ = false;
      pending_.clear();
      never_taken.swap(pending_entries_);
      published = published_;
      buffered_ = 0;
      buffered_bytes_ = 0;
    }
    give_up_publishes(published, std::move(never_taken));
    ops_.clear();
    ops_in_flight_ = 0;
    resubscribing_.clear();
    routes_.clear();
    for (auto& [target, state] : channels_) state.confirmed = false;
    for (Link* link : {&pub_, &sub_, &watch_}) {
      link->conn.close();
      link->attempts = 0;
      link->lost.clear();
      link->ping_due = false;
      link->retry_at = {};
    }
    delivery_retry_at_ = {};
    sub_failure_.clear();
    announced_from_.clear();
    written_hung_ = false;
    report(ATHOMIC_CONNECTION_DOWN, "stopped");
  }

  void publish(const sdk::Message& m) override {
    const std::string_view channel_parts[] = {config_.key_prefix, config_.separator, m.event_name};
    bool need_wake;
    {
      std::lock_guard lock(mutex_);
      if (!running_ || stopping_)
        throw sdk::Error(ATHOMIC_ERR_STATE, "the redis provider is stopped");
      const std::size_t buffered = buffered_.load(std::memory_order_relaxed);
      const std::size_t bytes = buffered_bytes_.load(std::memory_order_relaxed);
      // The command's size, within a few bytes of the length headers.
      const std::size_t size = 48 + config_.key_prefix.size() + config_.separator.size() +
                               m.event_name.size() + m.body.size();
      if (buffered >= config_.max_buffered_events) {
        refuse(buffered, bytes,
               "max_buffered_events is " + std::to_string(config_.max_buffered_events));
      }
      if (bytes + size > config_.max_buffered_bytes) {
        refuse(buffered, bytes,
               "max_buffered_bytes is " + std::to_string(config_.max_buffered_bytes) +
                   " and this event needs " + std::to_string(size));
      }
      const std::size_t before = pending_.size();
      PublishQueue::format(pending_, channel_parts, m.body, sharded_);
      const std::size_t length = pending_.size() - before;
      pending_entries_.push_back({static_cast<uint32_t>(length), m.publish_token});
      ++published_;
      buffered_.fetch_add(1, std::memory_order_relaxed);
      buffered_bytes_.fetch_add(length, std::memory_order_relaxed);
      need_wake = !wake_pending_;
      wake_pending_ = true;
    }
    if (need_wake) wake();
  }

  // A publish another shard's server redirected here: accepted already, so not refused by this
  // queue's bounds (the cluster's redirections are few and brief).
  void publish_command(std::string_view command, uint64_t token) override {
    bool accepted = false, need_wake = false;
    {
      std::lock_guard lock(mutex_);
      if (running_ && !stopping_) {
        pending_.append(command);
        pending_entries_.push_back({static_cast<uint32_t>(command.size()), token});
        ++published_;
        buffered_.fetch_add(1, std::memory_order_relaxed);
        buffered_bytes_.fetch_add(command.size(), std::memory_order_relaxed);
        need_wake = !wake_pending_;
        wake_pending_ = true;
        accepted = true;
      }
    }
    if (!accepted) {
      host_.publish_done(token, ATHOMIC_ERR_CONNECT, -1,
                         "redirected to " + server_ + ", whose connections are stopped");
    } else if (need_wake) {
      wake();
    }
  }

  void move_to(const Endpoint& node) override {
    std::lock_guard life(lifecycle_);
    if (io_.joinable()) return;
    const bool must_be_master = node_.must_be_master;
    node_ = node;
    node_.must_be_master = must_be_master;
  }

  void follow(const Endpoint& node) override {
    {
      std::lock_guard lock(mutex_);
      if (!running_ || stopping_) return;
      follow_ = address_of(node);
      wake_pending_ = true;
    }
    wake();
  }

  void interest_add(std::string_view topic, athomic_interest_kind kind) override {
    const Target target = target_of(topic, kind);
    std::unique_lock lock(mutex_);
    channels_[target] = ChannelState{false, {}, std::string(topic)};
    sub_ops_.push_back({true, target, std::string(topic), published_});
    wake_pending_ = true;
    lock.unlock();
    wake();
    lock.lock();
    // Wait for the server's confirmation so that an event published right after subscribe()
    // returns reaches this handler. Not from the I/O thread itself (a handler subscribing in
    // inline mode), and not while the subscribing connection is down: it re-subscribes when
    // it is back.
    if (std::this_thread::get_id() == io_.get_id()) return;
    const auto limit = std::chrono::duration<double>(config_.endpoint.connect_timeout_s);
    if (!cv_.wait_for(lock, limit, [&] {
          auto it = channels_.find(target);
          return stopping_ || !sub_up_ || it == channels_.end() || it->second.confirmed ||
                 !it->second.refused.empty();
        })) {
      host_.warn("no confirmation of " + target.text(true) + " within socket_connect_timeout");
    }
    if (auto it = channels_.find(target); it != channels_.end() && !it->second.refused.empty()) {
      const std::string why = std::move(it->second.refused);
      channels_.erase(it);  // the server did not subscribe it: nothing to undo
      throw sdk::Error(ATHOMIC_ERR_INVALID_ARGUMENT, "the server at " + server_ + " refused " +
                                                         target.text(true) + ": " + why +
                                                         refusal_hint(why));
    }
  }

  void interest_remove(std::string_view topic, athomic_interest_kind kind) noexcept override {
    try {
      const Target target = target_of(topic, kind);
      {
        std::lock_guard lock(mutex_);
        channels_.erase(target);
        sub_ops_.push_back({false, target, std::string(topic), published_});
        wake_pending_ = true;
      }
      wake();
    } catch (...) {
    }
  }

 private:
  // A channel (SUBSCRIBE; SSUBSCRIBE in a sharded cluster) or a channel pattern (PSUBSCRIBE: a
  // Redis glob) to listen to.
  struct Target {
    bool pattern = false;
    std::string name;  // the channel, or the glob
    bool sharded = false;
    auto operator<=>(const Target&) const = default;
    const char* command(bool subscribe) const {
      if (sharded) return subscribe ? "SSUBSCRIBE" : "SUNSUBSCRIBE";
      return pattern ? (subscribe ? "PSUBSCRIBE" : "PUNSUBSCRIBE")
                     : (subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE");
    }
    // "SUBSCRIBE app_events:x", for messages.
    std::string text(bool subscribe) const { return command(subscribe) + (" " + name); }
  };

  Target target_of(std::string_view topic, athomic_interest_kind kind) const {
    if (kind == ATHOMIC_INTEREST_PATTERN) {
      if (sharded_) {
        throw sdk::Error(ATHOMIC_ERR_UNSUPPORTED,
                         "pattern subscriptions need cluster_pubsub = \"classic\": Redis has no "
                         "sharded PSUBSCRIBE");
      }
      return {true, channel_glob(config_.key_prefix + config_.separator, topic)};
    }
    if (kind != ATHOMIC_INTEREST_EXACT) {
      throw sdk::Error(ATHOMIC_ERR_UNSUPPORTED,
                       "unknown interest kind " + std::to_string(static_cast<int>(kind)));
    }
    return {false, config_.channel(topic), sharded_};
  }

  void report(athomic_connection_state state, const std::string& detail) {
    if (owner_) {
      owner_->state(state, detail);
    } else {
      host_.report_state(state, detail);
    }
  }

  static bool is_redirection(std::string_view error) {
    return error.starts_with("MOVED ") || error.starts_with("ASK ");
  }

  // What to check when the server refuses a command on a channel.
  std::string refusal_hint(std::string_view why) const {
    if (!why.starts_with("NOPERM")) return "";
    return " (check the channel permissions of the ACL user " +
           (config_.endpoint.user.empty() ? std::string("default")
                                          : "'" + config_.endpoint.user + "'") +
           " of events.provider.provider.provider)";
  }

  // With mutex_ held.
  [[noreturn]] void refuse(std::size_t events, std::size_t bytes, const std::string& limit) const {
    throw sdk::Error(
        ATHOMIC_ERR_BACKPRESSURE,
        std::to_string(events) + " events (" + std::to_string(bytes) +
            " bytes) are already waiting for " + server_ +
            (pub_up_ ? " (the server is not keeping up)" : " (disconnected, reconnecting)") +
            "; events.provider." + limit + "; nothing was kept: retry later, or raise the limit");
  }

  void wake() noexcept {
    const uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }

  void drain_wake() noexcept {
    uint64_t v;
    while (::read(wake_fd_, &v, sizeof v) > 0) {
    }
  }

  // Takes queued work: subscription changes, and every publish made since the last time.
  // Returns whether publishes may be written: only while the subscribing connection is up and
  // has every channel subscribed again (or nothing is subscribed), so that nothing is published
  // before we listen. (Only those: a channel subscribed since then waits for the publishes
  // made before it.)
  bool take_work() {
    bool may_publish;
    {
      std::lock_guard lock(mutex_);
      wake_pending_ = false;
      if (sub_.conn.is_open()) {
        ops_.insert(ops_.end(), std::make_move_iterator(sub_ops_.begin()),
                    std::make_move_iterator(sub_ops_.end()));
      }
      sub_ops_.clear();  // while down: the channels are all subscribed again when it is back
      may_publish = resubscribing_.empty() && (sub_.conn.is_open() || channels_.empty());
      queue_.take(pending_, pending_entries_);
    }
    // Send the next subscription changes once every publish made before them is answered;
    // changes made with no publish in between go together.
    if (ops_in_flight_ == 0 && !ops_.empty() && queue_.answered() >= ops_.front().after) {
      for (const auto& op : ops_) {
        if (op.after != ops_.front().after) break;
        resp::append_command(sub_.conn.output(), op.target.command(op.subscribe), op.target.name);
        if (op.subscribe && op.target.pattern) route_sent(op.target.name, op.topic);
        ++ops_in_flight_;
      }
    }
    return may_publish;
  }

  // End of the bytes of queue_ that may be written now: the publishes made before the first
  // subscription change that is still waiting to be sent or confirmed.
  std::size_t publish_limit() const {
    return queue_.limit(ops_.empty() ? UINT64_MAX : ops_.front().after);
  }

  bool flush_publishes(std::string& error) {
    // A keepalive PING first: it was queued between two whole commands.
    if (!pub_.conn.flush(error)) return false;
    if (pub_.conn.wants_write()) return true;
    const std::string_view unwritten = queue_.unwritten(publish_limit());
    if (unwritten.empty()) return true;
    const long n = pub_.conn.write_some(unwritten, error);
    if (n < 0) return false;
    queue_.wrote(static_cast<std::size_t>(n));
    return true;
  }

  // PING on a connection that has written nothing for keepalive_interval (the server counts
  // only what it receives). On the publishing connection only between whole commands; its
  // answer (+PONG) is told from PUBLISH's (an integer or an error) by its type.
  // (When it may not, something else wakes the loop: a write the socket takes, or the reply
  // that lets publishes go.)
  bool may_ping(const Link& link, bool may_publish) const noexcept {
    if (config_.keepalive_interval_s <= 0 || !link.conn.is_open() || link.conn.wants_write()) {
      return false;
    }
    if (&link == &sub_) return sub_failure_.empty();
    return may_publish && queue_.all_written();
  }

  void keepalive(Link& link, bool may_publish, Clock::time_point now) {
    if (may_ping(link, may_publish) &&
        now - link.conn.last_write() >= seconds(config_.keepalive_interval_s)) {
      resp::append_command(link.conn.output(), "PING");
      link.ping_due = true;
    }
  }

  // A reply to (P)SUBSCRIBE or (P)UNSUBSCRIBE on the subscriber connection, or an error
  // (@p refused) in its place. Replies come in the order the commands went: the
  // re-subscriptions sent on reconnect first, then the subscription changes in flight. A
  // refused subscription is marked on its channel, for interest_add to report, and never
  // re-subscribed.
  void subscription_answered(std::string_view refused = {}) {
    bool subscribe = true;
    Target target;
    if (!resubscribing_.empty()) {
      target = std::move(resubscribing_.front());
      resubscribing_.pop_front();
    } else if (ops_in_flight_ > 0) {
      subscribe = ops_.front().subscribe;
      target = std::move(ops_.front().target);
      ops_.pop_front();
      --ops_in_flight_;
    }
    if (target.pattern && (!subscribe || !refused.empty())) route_done(target.name);
    if (refused.empty()) return;
    if (owner_ && is_redirection(refused)) {  // the slot is served elsewhere now
      if (subscribe) channel_gone(target, refused);
      return;
    }
    host_.error("the server at " + sub_.at.display() + " refused " +
                (target.name.empty() ? std::string("a subscription change (no command was waiting)")
                                     : target.text(subscribe)) +
                ": " + std::string(refused) + refusal_hint(refused));
    if (!subscribe || target.name.empty()) return;
    std::lock_guard lock(mutex_);
    if (auto it = channels_.find(target); it != channels_.end() && !it->second.confirmed) {
      it->second.refused = refused;
      cv_.notify_all();
    }
  }

  // Cluster: the server does not serve @p target's slot (any more): the channel is no longer
  // this server's; the cluster provider subscribes it where it lives now.
  void channel_gone(const Target& target, std::string_view why) {
    std::string topic;
    {
      std::lock_guard lock(mutex_);
      const auto it = channels_.find(target);
      if (it == channels_.end()) return;  // unsubscribed meanwhile
      topic = std::move(it->second.topic);
      channels_.erase(it);
      cv_.notify_all();
    }
    owner_->channel_moved(std::move(topic), why);
  }

  // A sunsubscribe that answers no SUNSUBSCRIBE of ours: the server dropped the channel, as a
  // node does for the channels of a slot it gave away.
  bool unsubscribed_by_server(std::string_view channel) const {
    if (!resubscribing_.empty()) return true;  // only SSUBSCRIBEs are being answered
    return ops_in_flight_ == 0 || ops_.front().subscribe || ops_.front().target.name != channel;
  }

  void route_sent(const std::string& glob, const std::string& pattern) {
    Route& route = routes_[glob];
    route.pattern = pattern;
    ++route.subscribes;
  }

  void route_done(const std::string& glob) {
    if (auto it = routes_.find(glob); it != routes_.end() && --it->second.subscribes <= 0) {
      routes_.erase(it);
    }
  }

  // A pmessage: @p channel matched the PSUBSCRIBE glob @p glob. The glob's `*` crosses dots, so
  // the athomic pattern decides; a channel it does not match is not this subscription's, and
  // whichever subscriptions it is for get messages of their own (a pmessage per matching glob,
  // a message for a channel). False when the host did not take it.
  bool deliver_matched(std::string_view glob, std::string_view channel, std::string_view body) {
    const auto route = routes_.find(glob);
    if (route == routes_.end()) {
      host_.warn("skipped a message on " + std::string(channel) + " for the pattern " +
                 std::string(glob) + ", which this connection did not subscribe to");
      return true;
    }
    const std::size_t prefix = config_.key_prefix.size() + config_.separator.size();
    if (channel.size() <= prefix) return true;
    const std::string_view name = channel.substr(prefix);
    if (!pattern_matches(route->second.pattern, name)) return true;
    return taken(host_.deliver_message_to(name, body, route->second.pattern), name);
  }

  // False when the host did not take the message and wants it again (backpressure). A bus that
  // is closing takes nothing more: what still arrives then is counted, not dropped silently
  // (the server counted this bus among its receivers).
  bool taken(athomic_status status, std::string_view name) {
    if (status == ATHOMIC_ERR_BACKPRESSURE) return false;
    if (status == ATHOMIC_ERR_STATE) host_.report_dropped(name, 1, "received while the bus was closing");
    return true;
  }

  // False when the host did not take a message (see deliver_received).
  bool on_subscriber_reply(const resp::Reply& r) {
    if (!r.is_array) {
      if (r.value.type == '-') subscription_answered(r.value.text.empty() ? "error" : r.value.text);
      if (r.value.type == '+') sub_.ping_due = false;  // +PONG outside subscribe mode
      return true;
    }
    if (r.count < 2) return true;
    const std::string_view kind = r.items[0].text;
    const std::string_view ch = r.items[1].text;
    if ((kind == "message" || kind == "smessage") && r.count >= 3) {
      const std::size_t prefix = config_.key_prefix.size() + config_.separator.size();
      if (ch.size() <= prefix) return true;
      return taken(host_.deliver_message(ch.substr(prefix), r.items[2].text), ch.substr(prefix));
    } else if (kind == "pmessage" && r.count >= 4) {
      return deliver_matched(ch, r.items[2].text, r.items[3].text);
    } else if (kind == "subscribe" || kind == "psubscribe" || kind == "ssubscribe") {
      subscription_answered();
      std::lock_guard lock(mutex_);
      if (auto it = channels_.find(Target{kind == "psubscribe", std::string(ch), sharded_});
          it != channels_.end())
        it->second.confirmed = true;
      cv_.notify_all();
    } else if (kind == "sunsubscribe" && owner_ && unsubscribed_by_server(ch)) {
      channel_gone(Target{false, std::string(ch), true}, "the server unsubscribed it");
    } else if (kind == "unsubscribe" || kind == "punsubscribe" || kind == "sunsubscribe") {
      subscription_answered();
    } else if (kind == "pong") {
      sub_.ping_due = false;
    }
    return true;
  }

  // ---- The host's backpressure ----
  // When its dispatch queue is full, the host answers deliver_message with
  // ATHOMIC_ERR_BACKPRESSURE and has not taken the message. The message then stays where it
  // is, at the front of the receive buffer (the parser works in place: the reply is simply not
  // consumed), the subscribing socket is not read, so TCP pushes back on the server, and the
  // loop offers the same bytes again kDeliveryRetry later, through its poll timeout, serving
  // the publishing connection, subscription changes and stop() meanwhile.
  static constexpr auto kDeliveryRetry = std::chrono::milliseconds(1);
  // At most this much more is read from a subscribing connection being left, to deliver it (or
  // count it, when the host holds deliveries back).
  static constexpr std::size_t kDrainLimit = std::size_t{16} << 20;

  bool delivery_held() const noexcept { return delivery_retry_at_ != Clock::time_point{}; }

  // Hands on the replies in the subscriber's receive buffer, until the host refuses one.
  bool deliver_received(std::string& error) {
    delivery_retry_at_ = {};
    return sub_.conn.each_reply(error, [&](const resp::Reply& r) {
      if (on_subscriber_reply(r)) return true;
      delivery_retry_at_ = Clock::now() + kDeliveryRetry;
      return false;
    });
  }

  // Reads and delivers, or retries a held delivery when due. A failure of the connection
  // (@p ok false, or one found here) waits until what was received before it is delivered.
  void serve_subscriber(short revents, Clock::time_point now, bool ok, std::string& error) {
    if (!ok && sub_failure_.empty()) sub_failure_ = error;
    if (delivery_held()) {
      // Retried when due, even once the connection failed: its failure waits for these.
      if (now >= delivery_retry_at_ && !deliver_received(error) && sub_failure_.empty())
        sub_failure_ = error;
    } else if (sub_failure_.empty() && (revents & (POLLIN | POLLERR | POLLHUP))) {
      if (!(sub_.conn.read(error) && deliver_received(error))) sub_failure_ = error;
    }
    if (!sub_failure_.empty() && !delivery_held()) {
      const std::string why = std::move(sub_failure_);
      sub_failure_.clear();
      lose(sub_, why);
    }
  }

  // When the subscribing connection goes (lost, or at stop) while the host holds its delivery
  // back: what it received and did not hand over goes with it, counted as dropped by the
  // transport (report_dropped, per event) and said, not dropped silently.
  void drop_undelivered(const std::string& when) {
    if (!delivery_held()) return;
    delivery_retry_at_ = {};
    // What the socket already holds is counted too (bounded: the server may hold more).
    std::string ignored;
    if (sub_.conn.is_open()) sub_.conn.read_available(kDrainLimit, ignored);
    const std::size_t prefix = config_.key_prefix.size() + config_.separator.size();
    uint64_t messages = 0;
    std::string error;
    sub_.conn.each_reply(error, [&](const resp::Reply& r) {
      if (!r.is_array || r.count < 3) return true;
      const std::string_view kind = r.items[0].text;
      std::string_view channel;
      if (kind == "message" || kind == "smessage") channel = r.items[1].text;
      else if (kind == "pmessage" && r.count >= 4) channel = r.items[2].text;
      else return true;
      ++messages;
      host_.report_dropped(channel.size() > prefix ? channel.substr(prefix) : std::string_view(),
                           1, "received, not yet taken by the full dispatch queue " + when);
      return true;
    });
    host_.warn(std::to_string(messages) + " received events were not delivered " + when +
               ": the host's dispatch queue stayed full (counted as dropped by the transport)");
  }

  // The server's answer to one publish, the @p index-th unanswered one (@p offset bytes after
  // the oldest): the number of receivers, or an error. This is where a publish's outcome is
  // known, and the one place it is handed to the host, which counts and logs failures. A
  // publish sent again after its connection was lost is answered here once, by its resend.
  void publish_answered(std::size_t index, std::size_t offset, const resp::Reply& reply) {
    const uint64_t token = queue_.token(index);
    if (!reply.is_array && reply.value.type == ':') {
      host_.publish_done(token, ATHOMIC_OK, reply.value.integer);
      return;
    }
    const std::string channel(PublishQueue::channel_of(queue_.command(index, offset)));
    if (reply.is_array || reply.value.type != '-') {
      host_.publish_done(token, ATHOMIC_ERR_INTERNAL, -1,
                         "the server at " + pub_.at.display() + " answered PUBLISH to " + channel +
                             " with a reply of type '" + (reply.is_array ? '*' : reply.value.type) +
                             "', not a count");
      return;
    }
    const std::string_view why = reply.value.text;
    if (owner_ && is_redirection(why)) {
      owner_->redirected(token, queue_.command(index, offset), why);
      return;
    }
    host_.publish_done(
        token, why.starts_with("NOPERM") ? ATHOMIC_ERR_INVALID_ARGUMENT : ATHOMIC_ERR_STATE, -1,
        "the server at " + pub_.at.display() + " refused PUBLISH to " + channel + ": " +
            std::string(why) + refusal_hint(why));
  }

  // stop(): fails every publish accepted and not answered (the I/O thread has ended). Called
  // without mutex_ held, as publish_done requires.
  void give_up_publishes(uint64_t published, std::vector<PublishQueue::Entry> never_taken) {
    const std::string server = master_.display();
    const std::string unsent = "stopped before it was sent to " + server;
    const std::string unanswered =
        "stopped before " + server + " answered it (the server may have published it)";
    std::size_t lost = 0;
    queue_.give_up(published, [&](uint64_t token, bool written) {
      host_.publish_done(token, ATHOMIC_ERR_CONNECT, -1, written ? unanswered : unsent);
      ++lost;
    });
    for (const auto& e : never_taken) {
      host_.publish_done(e.token, ATHOMIC_ERR_CONNECT, -1, unsent);
      ++lost;
    }
    if (lost) {
      host_.warn(std::to_string(lost) + " published event(s) were not confirmed by " + server +
                 " before stop; their publishes failed");
    }
  }

  // @p answered replies came for the oldest unanswered publishes.
  void on_publisher_replies(std::size_t answered) {
    if (answered == 0) return;
    buffered_bytes_.fetch_sub(queue_.pop_answered(answered), std::memory_order_relaxed);
    buffered_.fetch_sub(answered, std::memory_order_relaxed);
  }

  // Closes @p link after a failure; it reconnects at once, then with backoff.
  void lose(Link& link, const std::string& why) {
    if (&link == &sub_) {
      drop_undelivered("when the subscribing connection was closed (" + why + ")");
      sub_failure_.clear();
    }
    link.conn.close();
    link.ping_due = false;
    link.due_since = {};
    link.retry_at = Clock::now();
    link.delay = config_.reconnect_initial_delay_s;
    link.attempts = 0;
    link.lost =
        "lost the " + std::string(link.name) + " connection to " + link.at.display() + ": " + why;
    {
      std::lock_guard lock(mutex_);
      if (&link == &pub_) {
        pub_up_ = false;
        queue_.rewind();
      } else {
        sub_up_ = false;
        // Every wanted channel is subscribed again on reconnect; pending changes are moot.
        resubscribing_.clear();
        routes_.clear();
        ops_.clear();
        ops_in_flight_ = 0;
        for (auto& [target, state] : channels_) state.confirmed = false;
        cv_.notify_all();
      }
    }
    host_.warn(link.lost + "; " + std::to_string(buffered_.load()) +
               " events buffered; reconnecting");
    report(ATHOMIC_CONNECTION_RECONNECTING, link.lost);
  }

  // Closes @p link, open and working, because the master moved. What the server already sent
  // the subscribing connection is delivered first: it counted this bus among the receivers of
  // those publishes, and told their publishers so. The server still runs what the publishing
  // connection wrote to it: those publishes are not written again (abandon_if_moved), even if
  // the connection comes back to this server.
  void leave(Link& link, const std::string& why) {
    if (&link == &pub_) written_hung_ = true;
    if (&link == &sub_ && sub_failure_.empty() && !delivery_held()) {
      std::string error;
      sub_.conn.read_available(kDrainLimit, error);
      deliver_received(error);
    }
    lose(link, why);
  }

  void attempt_failed(Link& link, const std::string& error) {
    link.delay = std::max(link.delay, config_.reconnect_initial_delay_s);  // never a busy loop
    ++link.attempts;
    if (link.attempts == 1 || link.attempts % 10 == 0) {
      host_.warn("reconnect attempt " + std::to_string(link.attempts) + " of the " + link.name +
                 " connection failed: " + error);
    }
    link.retry_at = Clock::now() + seconds(link.delay);
    link.delay = std::min(link.delay * 2, config_.reconnect_max_delay_s);
  }

  void reconnected(Link& link) {
    // Connecting checked that this server is the master (ROLE; with Cluster, the slot's owner):
    // the other connection, elsewhere, leaves for it. Not before: an answer naming a server
    // that cannot be reached must not take a working connection off a live one.
    master_ = link.at;
    Link& other = &link == &pub_ ? sub_ : pub_;
    if (address_of(other.at) != address_of(link.at)) {
      if (other.conn.is_open()) {
        leave(other, "the master moved to " + link.at.display());
      } else if (other.conn.connecting()) {
        other.conn.close();  // an attempt elsewhere; it starts again here
        other.retry_at = Clock::now();
      }
    }
    if (&link == &pub_) abandon_if_moved();
    const int attempts = link.attempts + 1;
    link.attempts = 0;
    link.lost.clear();
    {
      std::lock_guard lock(mutex_);
      if (&link == &pub_) {
        pub_up_ = true;
        host_.info("reconnected the publishing connection to " + master_.display() + " after " +
                   std::to_string(attempts) + " attempt(s); sending " +
                   std::to_string(buffered_.load()) + " buffered event(s)");
      } else {
        sub_up_ = true;
        sub_ops_.clear();  // the wanted channels say it all
        for (const auto& [target, state] : channels_) {
          if (!state.refused.empty()) continue;  // refused before: it would be again
          resp::append_command(sub_.conn.output(), target.command(true), target.name);
          if (target.pattern) route_sent(target.name, state.topic);
          resubscribing_.push_back(target);
        }
        host_.info("reconnected the subscribing connection to " + master_.display() + " after " +
                   std::to_string(attempts) + " attempt(s); re-subscribing " +
                   std::to_string(resubscribing_.size()) + " channel(s) and pattern(s)");
      }
    }
    // Up for the host only once both are.
    if (other.lost.empty()) {
      announced_from_.clear();  // both are on the master now
      report(ATHOMIC_CONNECTION_UP, "reconnected to " + master_.display());
    } else {
      report(ATHOMIC_CONNECTION_RECONNECTING, other.lost);
    }
  }

  static std::string address_of(const Endpoint& ep) {
    return ep.host + ":" + std::to_string(ep.port);
  }

  // Sentinel: asks the sentinels for the master before @p link connects (blocking the loop for
  // at most the connect timeout per sentinel step; stop() cancels it), and sets link.at. The
  // other connection follows once this one has connected there (reconnected()). False when no
  // sentinel answered: the attempt failed, and is retried with backoff.
  bool locate_master(Link& link) {
    Endpoint found = master_;
    std::string error;
    const Connection::Cancel cancel{wake_fd_, [this] {
                                      std::lock_guard lock(mutex_);
                                      return stopping_;
                                    }};
    // After a failed attempt, another sentinel's answer than the server it failed on is
    // preferred: the one asked first may have a stale view. (When they all name it, it is tried
    // again.)
    // After a +switch-master, the master announced as left is passed over too: a sentinel asked
    // before the announcing one may not know of the switch yet, and a demoted master answers
    // ROLE with `master` for a while.
    std::set<std::string> failed;
    if (link.attempts > 0 && !link.failed_at.empty()) failed.insert(link.failed_at);
    if (!announced_from_.empty()) failed.insert(announced_from_);
    const bool avoid = link.attempts > 0 || !announced_from_.empty();
    const bool ok = owner_ ? owner_->locate(found, error, cancel)
                           : ask_sentinels(*config_.sentinel, found, error, &cancel,
                                           avoid ? &failed : nullptr) ||
                                 (avoid && !cancel.requested() &&
                                  ask_sentinels(*config_.sentinel, found, error, &cancel));
    if (!ok) {
      attempt_failed(link, error);
      return false;
    }
    link.at = found;
    if (address_of(found) == address_of(master_)) return true;
    if (owner_) {
      host_.warn("the cluster now serves these channels at " + found.display() + " (it was " +
                 master_.display() + ")");
    } else {
      host_.warn("the sentinels name " + found.display() + " the master of '" +
                 config_.sentinel->master_name + "' (it was " + master_.display() + ")");
    }
    master_ = std::move(found);
    return true;
  }

  // The publishing connection is back, on another server than the one its unanswered publishes
  // were written to (Sentinel: a new master). Those the old master may have run are failed, not
  // sent again, so that no subscriber receives one twice; the publisher is told.
  void abandon_if_moved() {
    const std::string now_at = address_of(master_);
    const bool hung = written_hung_;
    written_hung_ = false;
    if (written_to_ == now_at && !hung) return;
    const std::string why =
        written_to_ == now_at
            ? "the connection to " + now_at + " was given up before it answered (no answer " +
                  "within events.provider.reply_timeout, or the bus left it for another master); " +
                  "it may have published it, or will: not sent again, where it could be a " +
                  "duplicate"
            : "the master " + written_to_ + " was lost before it answered (it may " +
                  "have published it); not sent again to the new master " + now_at +
                  ", where it could be a duplicate";
    written_to_ = now_at;
    std::size_t bytes = 0;
    const std::size_t n = queue_.abandon_written(
        bytes, [&](uint64_t token) { host_.publish_done(token, ATHOMIC_ERR_CONNECT, -1, why); });
    if (n == 0) return;
    buffered_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
    buffered_.fetch_sub(n, std::memory_order_relaxed);
    host_.warn(std::to_string(n) + " published event(s) failed: " + why);
  }

  // Cluster: follow() named another server than this one's: the connections leave it.
  void leave_if_elsewhere(Clock::time_point now) {
    std::string to;
    {
      std::lock_guard lock(mutex_);
      to.swap(follow_);
    }
    if (to.empty() || to == address_of(master_)) return;
    const std::string why = "the cluster serves these channels at " + to + " now";
    for (Link* link : {&pub_, &sub_}) {
      if (link->conn.is_open()) {
        leave(*link, why);
      } else if (link->conn.connecting()) {
        link->conn.close();  // an attempt on the old address; it starts again on the new one
        link->retry_at = now;
      }
    }
  }

  // A link that is down: starts an attempt when due, moves one on after poll().
  void drive_reconnect(Link& link, short revents, Clock::time_point now) {
    if (!link.conn.connecting()) {
      if (now < link.retry_at) return;
      try {
        if (config_.sentinel || owner_) {
          if (!locate_master(link)) return;
        } else {
          link.at = master_;
        }
        link.conn.begin(link.at);
      } catch (const std::exception& e) {  // no eventfd or thread for the resolver
        attempt_failed(link, std::string("cannot start connecting: ") + e.what());
        return;
      }
      revents = 0;
    } else if (!revents && now < link.conn.deadline()) {
      return;
    }
    std::string error;
    switch (link.conn.advance(revents, error)) {
      case Connection::Step::ready:
        reconnected(link);
        break;
      case Connection::Step::failed:
        link.failed_at = address_of(link.at);
        attempt_failed(link, error);
        break;
      case Connection::Step::pending:
        break;
    }
  }

  // What to poll for on @p link, and the time by which the loop must look at it again.
  pollfd poll_entry(const Link& link, short open_events, bool may_publish,
                    Clock::time_point& wake_at) const {
    if (link.conn.is_open()) {
      if (may_ping(link, may_publish)) {
        wake_at = std::min(wake_at, link.conn.last_write() + seconds(config_.keepalive_interval_s));
      }
      return {link.conn.fd(), open_events, 0};
    }
    if (link.conn.connecting()) {
      wake_at = std::min(wake_at, link.conn.deadline());
      return link.conn.wait();
    }
    wake_at = std::min(wake_at, link.retry_at);
    return {-1, 0, 0};
  }

  // ---- reply_timeout ----
  // A server that hangs, or a network that drops everything without a reset, closes nothing:
  // a connection that awaits an answer (publishes written, a subscription change, a keepalive
  // PING) and receives nothing for reply_timeout is given up and made again.
  bool awaits_reply(const Link& link) const noexcept {
    if (&link == &pub_) return link.ping_due || queue_.reply_due();
    if (&link == &watch_) return link.ping_due;
    // A subscriber the host holds back does not read: its silence is ours.
    return !delivery_held() && sub_failure_.empty() &&
           (link.ping_due || ops_in_flight_ > 0 || !resubscribing_.empty());
  }

  // When @p link must have received something, or max while it awaits nothing.
  Clock::time_point reply_deadline(Link& link, Clock::time_point now) const noexcept {
    if (config_.reply_timeout_s <= 0 || !link.conn.is_open() || !awaits_reply(link)) {
      link.due_since = {};
      return Clock::time_point::max();
    }
    if (link.due_since == Clock::time_point{}) link.due_since = now;
    return std::max(link.due_since, link.conn.last_read()) + seconds(config_.reply_timeout_s);
  }

  void check_replies(Link& link, Clock::time_point now) {
    if (now < reply_deadline(link, now)) return;
    // The server took what was written (it is in its socket) and runs it when it resumes:
    // written again, each would be published twice. Those are failed instead.
    if (&link == &pub_) written_hung_ = true;
    lose(link, "no answer from the server for " + seconds_text(config_.reply_timeout_s) +
                   " (events.provider.reply_timeout): it hangs, or the network to it is cut");
  }

  // ---- Sentinel: +switch-master ----
  // A third connection, to one sentinel at a time, subscribed to the sentinels' announcements,
  // so that a failover is followed the moment it is announced — also when the old master keeps
  // its clients a while (a SENTINEL FAILOVER makes it a replica, which still takes PUBLISH).
  // It does not count for the bus's health: the data connections do.
  bool watching() const noexcept { return config_.sentinel.has_value() && !owner_; }

  pollfd watch_entry(Clock::time_point now, Clock::time_point& wake_at) {
    if (!watching()) return {-1, 0, 0};
    Link& w = watch_;
    if (w.conn.is_open()) {
      if (config_.keepalive_interval_s > 0 && !w.conn.wants_write() && !w.ping_due) {
        const auto due = w.conn.last_write() + seconds(config_.keepalive_interval_s);
        if (now >= due) {
          resp::append_command(w.conn.output(), "PING");
          w.ping_due = true;
        } else {
          wake_at = std::min(wake_at, due);
        }
      }
      wake_at = std::min(wake_at, reply_deadline(w, now));
      return {w.conn.fd(), static_cast<short>(POLLIN | (w.conn.wants_write() ? POLLOUT : 0)), 0};
    }
    if (w.conn.connecting()) {
      wake_at = std::min(wake_at, w.conn.deadline());
      return w.conn.wait();
    }
    wake_at = std::min(wake_at, w.retry_at);
    return {-1, 0, 0};
  }

  void serve_watch(short revents, Clock::time_point now) {
    if (!watching()) return;
    Link& w = watch_;
    std::string error;
    if (w.conn.is_open()) {
      bool ok = w.conn.flush(error);
      if (ok && (revents & (POLLIN | POLLERR | POLLHUP))) {
        ok = w.conn.read(error) && w.conn.each_reply(error, [&](const resp::Reply& r) {
               if (!watch_is_sentinel_) {
                 // The answer to SENTINEL, before anything it subscribed to: a plain server (a
                 // data server listed among the sentinels) refuses it, and whoever may PUBLISH
                 // there must not move the bus.
                 if (!r.is_array && r.value.type == '-') {
                   error = "it is not a sentinel (SENTINEL answered: " + std::string(r.value.text) +
                           ")";
                   return false;
                 }
                 if (!r.is_array || r.count != 2) {  // nil: it watches no master of that name
                   error = "it knows no master named '" + config_.sentinel->master_name + "'";
                   return false;
                 }
                 watch_is_sentinel_ = true;
                 w.attempts = 0;
                 w.delay = config_.reconnect_initial_delay_s;
                 return true;
               }
               on_announcement(r);
               return true;
             }) && error.empty();
      }
      if (ok && now >= reply_deadline(w, now)) {
        ok = false;
        error = "no answer to PING within reply_timeout";
      }
      if (!ok) {
        w.conn.close();
        w.ping_due = false;
        w.due_since = {};
        ++watch_next_;
        attempt_failed(w, error);
      }
      return;
    }
    if (!w.conn.connecting()) {
      if (now < w.retry_at) return;
      const auto& sentinels = config_.sentinel->sentinels;
      try {
        w.conn.begin(sentinels[watch_next_ % sentinels.size()]);
      } catch (const std::exception& e) {
        attempt_failed(w, std::string("cannot start connecting: ") + e.what());
        return;
      }
      revents = 0;
    } else if (!revents && now < w.conn.deadline()) {
      return;
    }
    switch (w.conn.advance(revents, error)) {
      case Connection::Step::ready:
        watch_is_sentinel_ = false;
        resp::append_command(w.conn.output(), "SENTINEL", "get-master-addr-by-name",
                             config_.sentinel->master_name);
        resp::append_command(w.conn.output(), "SUBSCRIBE", "+switch-master");
        break;
      case Connection::Step::failed:
        ++watch_next_;
        attempt_failed(w, error);
        break;
      case Connection::Step::pending:
        break;
    }
  }

  // "+switch-master <name> <old ip> <old port> <new ip> <new port>": both connections leave
  // for the new master (they ask the sentinels again as they reconnect).
  void on_announcement(const resp::Reply& r) {
    if (!r.is_array || r.count < 3 || r.items[0].text != "message" ||
        r.items[1].text != "+switch-master") {
      if (r.is_array && r.count >= 1 && r.items[0].text == "pong") watch_.ping_due = false;
      return;
    }
    std::string_view text = r.items[2].text;
    std::string_view parts[5];
    for (auto& part : parts) {
      const auto space = text.find(' ');
      part = text.substr(0, space);
      text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    }
    if (parts[0] != config_.sentinel->master_name) return;
    int port = 0;
    const auto [end, ec] =
        std::from_chars(parts[4].data(), parts[4].data() + parts[4].size(), port);
    if (parts[3].empty() || ec != std::errc() || end != parts[4].data() + parts[4].size() ||
        port < 1 || port > 65535) {
      host_.warn("ignored a malformed +switch-master announcement: '" +
                 std::string(r.items[2].text) + "'");
      return;
    }
    const std::string to = std::string(parts[3]) + ":" + std::string(parts[4]);
    if (to == address_of(master_)) return;
    announced_from_ = address_of(master_);
    host_.warn("the sentinels announced +switch-master of '" + config_.sentinel->master_name +
               "' to " + to + " (it was " + address_of(master_) + ")");
    for (Link* link : {&pub_, &sub_}) {
      if (link->conn.is_open()) {
        leave(*link, "the sentinels switched the master to " + to);
      } else if (link->conn.connecting()) {
        link->conn.close();
        link->retry_at = Clock::now();
      }
    }
  }

  void run() {
    std::optional<Clock::time_point> flush_deadline;
    for (;;) {
      bool stopping;
      {
        std::lock_guard lock(mutex_);
        stopping = stopping_;
      }
      if (stopping) {
        // Give queued publishes a bounded chance to reach the server, then leave.
        if (!flush_deadline) flush_deadline = Clock::now() + seconds(config_.flush_timeout_s);
        if (!pub_.conn.is_open() || buffered_.load() == 0 || Clock::now() >= *flush_deadline) {
          drop_undelivered("before stop");
          return;
        }
      }
      Clock::time_point now = Clock::now();
      if (!stopping) leave_if_elsewhere(now);
      for (Link* link : {&pub_, &sub_}) {
        if (!link->conn.is_open() && !stopping) drive_reconnect(*link, 0, now);
      }
      const bool may_publish = take_work();
      keepalive(sub_, may_publish, now);
      keepalive(pub_, may_publish, now);
      std::string pub_error, sub_error;
      bool pub_ok = !pub_.conn.is_open() || !may_publish || flush_publishes(pub_error);
      bool sub_ok = !sub_.conn.is_open() || !sub_failure_.empty() || sub_.conn.flush(sub_error);
      const bool pub_blocked =
          pub_.conn.is_open() && may_publish &&
          (!queue_.unwritten(publish_limit()).empty() || pub_.conn.wants_write());
      if (pub_ok && queue_.reply_due()) {
        // A reply is due and will wake this loop, which then takes what was published
        // meanwhile: publishers need not signal the eventfd, a system call each.
        std::lock_guard lock(mutex_);
        wake_pending_ = true;
      }
      Clock::time_point wake_at = Clock::time_point::max();
      pollfd fds[4] = {
          {wake_fd_, POLLIN, 0},
          poll_entry(pub_, static_cast<short>(POLLIN | (pub_blocked ? POLLOUT : 0)), may_publish,
                     wake_at),
          poll_entry(
              sub_,
              static_cast<short>((delivery_held() ? 0 : POLLIN) |
                                 (sub_.conn.wants_write() && sub_failure_.empty() ? POLLOUT : 0)),
              may_publish, wake_at),
          stopping ? pollfd{-1, 0, 0} : watch_entry(now, wake_at)};
      if (delivery_held() && sub_.conn.is_open()) {
        wake_at = std::min(wake_at, delivery_retry_at_);
        if (!(fds[2].events & POLLOUT)) fds[2].fd = -1;  // not even for POLLHUP: it would spin
      }
      wake_at = std::min({wake_at, reply_deadline(pub_, now), reply_deadline(sub_, now)});
      if (stopping) wake_at = std::min(wake_at, Clock::now() + std::chrono::milliseconds(10));
      int timeout_ms = -1;
      if (wake_at != Clock::time_point::max()) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(wake_at - Clock::now());
        timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, 60000));
      }
      if (pub_ok && sub_ok) ::poll(fds, 4, timeout_ms);
      if (fds[0].revents) drain_wake();
      now = Clock::now();
      constexpr short kReadable = POLLIN | POLLERR | POLLHUP;
      if (pub_.conn.is_open()) {
        if (pub_ok && (fds[1].revents & kReadable)) {
          std::size_t answered = 0;
          bool extra = false;
          std::size_t offset = 0;  // of the answered command from the oldest unanswered one
          pub_ok = pub_.conn.read(pub_error) &&
                   pub_.conn.each_reply(pub_error, [&](const resp::Reply& r) {
                     if (!r.is_array && r.value.type == '+') {  // PONG
                       pub_.ping_due = false;
                       return true;
                     }
                     if (answered == queue_.unanswered()) {
                       extra = true;
                       return false;
                     }
                     publish_answered(answered, offset, r);
                     offset += queue_.length(answered++);
                     return true;
                   });
          on_publisher_replies(answered);
          if (extra) {
            pub_ok = false;
            pub_error = "protocol error from the server: more replies than commands";
          }
        }
        if (!pub_ok) lose(pub_, pub_error);
      } else if (!stopping) {
        drive_reconnect(pub_, fds[1].revents, now);
      }
      if (sub_.conn.is_open()) {
        serve_subscriber(fds[2].revents, now, sub_ok, sub_error);
      } else if (!stopping) {
        drive_reconnect(sub_, fds[2].revents, now);
      }
      if (!stopping) {
        for (Link* link : {&pub_, &sub_}) check_replies(*link, now);
        serve_watch(fds[3].revents, now);
      }
    }
  }

  sdk::Host host_;
  const Config config_;
  ShardOwner* const owner_;  // the cluster provider, when this server is part of a cluster
  const bool sharded_;       // SPUBLISH and SSUBSCRIBE
  Endpoint node_;            // the server to connect to first (not with Sentinel)
  const std::string server_;  // what the provider connects to, for messages on any thread
  int wake_fd_ = -1;
  std::mutex lifecycle_;
  std::thread io_;

  // Shared with the I/O thread.
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string pending_;                               // formatted PUBLISH commands, not yet taken
  std::vector<PublishQueue::Entry> pending_entries_;  // the length and token of each
  std::atomic<std::size_t> buffered_{0};              // publishes not yet answered by the server
  std::atomic<std::size_t> buffered_bytes_{0};        // their size as commands
  struct SubOp {
    bool subscribe;
    Target target;
    std::string topic;  // the host's: the event name or the athomic pattern
    uint64_t after;     // how many publishes were made before it
  };
  struct ChannelState {
    bool confirmed = false;  // by the server, on the current subscribing connection
    std::string refused;     // the server's error, when it refused to subscribe
    std::string topic;       // the host's: the event name or the athomic pattern
  };
  std::map<Target, ChannelState> channels_;       // wanted channels and patterns
  std::vector<SubOp> sub_ops_;                    // subscription changes not yet taken by the loop
  uint64_t published_ = 0;                        // publishes accepted since the provider was made
  bool wake_pending_ = false;
  bool running_ = false;
  bool stopping_ = false;
  bool pub_up_ = false, sub_up_ = false;  // each connection is open (for waits and messages)

  // I/O thread only (and start() and stop(), while it does not run).
  Endpoint master_;         // the server both connections connect to (with Sentinel: the master)
  std::string written_to_;  // host:port of the server the publishes in queue_ were written to
  Link pub_{"publishing"}, sub_{"subscribing"};
  Link watch_{"sentinel watch"};  // Sentinel: subscribed to +switch-master
  std::size_t watch_next_ = 0;     // the sentinel it connects to next (in turn)
  bool watch_is_sentinel_ = false;  // it answered SENTINEL: its announcements are acted on
  bool written_hung_ = false;      // the publishing connection was given up by reply_timeout
  std::string announced_from_;     // host:port a +switch-master moved off, until both reconnect
  PublishQueue queue_;             // publishes taken from pending_, until answered
  std::deque<SubOp> ops_;          // subscription changes in order, the first ones maybe sent
  std::size_t ops_in_flight_ = 0;  // of ops_, sent and not yet confirmed
  std::string follow_;  // under mutex_: host:port follow() named, until the I/O thread saw it
  std::deque<Target> resubscribing_;  // (P)SUBSCRIBEs sent on reconnect, not yet answered
  // The athomic pattern of each glob the subscribing connection may receive pmessages for:
  // from its PSUBSCRIBE until as many PUNSUBSCRIBEs (or refusals) are answered, so that what
  // arrives meanwhile still finds its pattern.
  struct Route {
    std::string pattern;
    int subscribes = 0;  // PSUBSCRIBEs sent and not yet undone by an answer
  };
  std::map<std::string, Route, std::less<>> routes_;
  Clock::time_point delivery_retry_at_{};  // set while the host has not taken a message
  std::string sub_failure_;  // the subscriber's failure, kept until what it received is delivered
};

// The provider the host loads: one server (or Sentinel's master), or a cluster.
class RedisProvider final : public sdk::Provider {
 public:
  // The settings come from host.setting(), validated by the host, not from the JSON.
  RedisProvider(sdk::Host host, std::string_view) {
    const Config config = read_config(host);
    if (config.cluster) {
      impl_ = make_cluster_provider(host, config);
      // Redis has no sharded PSUBSCRIBE: the host refuses pattern subscriptions, naming why.
      if (config.cluster->sharded) capabilities_ &= ~uint64_t{ATHOMIC_CAP_PATTERN};
    } else {
      impl_ = make_server_bus(host, config);
    }
  }
  uint64_t instance_capabilities() const noexcept override { return capabilities_; }
  void start() override { impl_->start(); }
  void stop() noexcept override { impl_->stop(); }
  void publish(const sdk::Message& m) override { impl_->publish(m); }
  void interest_add(std::string_view topic, athomic_interest_kind kind) override {
    impl_->interest_add(topic, kind);
  }
  void interest_remove(std::string_view topic, athomic_interest_kind kind) noexcept override {
    impl_->interest_remove(topic, kind);
  }

 private:
  std::unique_ptr<sdk::Provider> impl_;
  uint64_t capabilities_ = ~uint64_t{0};
};

}  // namespace

std::unique_ptr<ServerBus> make_server_bus(sdk::Host host, const Config& config) {
  return std::make_unique<Server>(host, config);
}

std::unique_ptr<ServerBus> make_shard_bus(sdk::Host host, const Config& config, Endpoint node,
                                          ShardOwner& owner) {
  return std::make_unique<Server>(host, config, &owner, std::move(node));
}

}  // namespace athomic::redis

ATHOMIC_PROVIDER_WITH_SETTINGS(athomic::redis::RedisProvider, "redis", "0.1.0",
                               ATHOMIC_CAP_REMOTE | ATHOMIC_CAP_ORDERED | ATHOMIC_CAP_ACKNOWLEDGE |
                                   ATHOMIC_CAP_PATTERN,
                               athomic::redis::kSettings);
