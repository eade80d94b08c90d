// The `redis` provider: Redis Pub/Sub, channel = {key_prefix}{separator}{event name}.
//
// One I/O thread owns two connections — one publishes, one is in subscribe mode — and drives
// both from a poll() loop, woken through an eventfd. The loop reads and writes the sockets
// itself (redis_connection.h) and parses replies in place (resp.h), so neither a publish nor a
// received event costs an allocation here.
//
// Publishes are formatted on the caller's thread straight into one shared byte buffer; the loop
// takes the whole buffer at once and writes it pipelined. A publish stays in the loop's queue
// until the server has answered it, so on a lost connection the unanswered ones are sent again,
// after every channel has been re-subscribed. The queue is bounded: when it is full, publish
// fails and nothing is kept.
//
// Publishing and subscribing use two connections, which the server serves in no particular
// order. So that a subscription change and this process's publishes take effect in the order
// they were made, a change is sent only once the publishes made before it are answered, and the
// publishes made after it wait for its confirmation. (Changes are rare; this costs a round trip
// each, never on the publish path otherwise.)
#include "redis_connection.h"

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
#include <string>
#include <thread>
#include <vector>

namespace athomic::redis {
namespace {

class RedisProvider final : public sdk::Provider {
 public:
  RedisProvider(sdk::Host host, std::string_view json) : host_(host) {
    try {
      config_ = parse_config(json);
    } catch (const std::invalid_argument& e) {
      throw sdk::Error(ATHOMIC_ERR_INVALID_ARGUMENT, e.what());
    }
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) throw sdk::Error(ATHOMIC_ERR_INTERNAL, "eventfd failed");
  }

  ~RedisProvider() override {
    stop();
    ::close(wake_fd_);
  }

  void start() override {
    std::lock_guard life(lifecycle_);
    if (io_.joinable()) return;
    // The first connection is made on the caller's thread so that start() reports its error.
    std::string error;
    if (!pub_.open(config_.endpoint, error) || !sub_.open(config_.endpoint, error)) {
      pub_.close();
      throw sdk::Error(ATHOMIC_ERR_CONNECT, error);
    }
    {
      std::lock_guard lock(mutex_);
      stopping_ = false;
      running_ = true;
      connected_ = true;
    }
    host_.info("connected to " + config_.endpoint.display() + "; channels " + config_.key_prefix +
               config_.separator + "<event>");
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
    std::lock_guard lock(mutex_);
    running_ = false;
    connected_ = false;
    const std::size_t lost = buffered_.load();
    if (lost) {
      host_.warn(std::to_string(lost) + " published events were not delivered to " +
                 config_.endpoint.display() + " before stop");
    }
    pending_.clear();
    pending_lengths_.clear();
    queue_.clear();
    lengths_.clear();
    head_ = sent_ = 0;
    buffered_ = 0;
    answered_ = published_;  // what was lost is not waited for
    ops_.clear();
    ops_in_flight_ = 0;
    resubscriptions_due_ = 0;
    for (auto& [ch, confirmed] : channels_) confirmed = false;
    pub_.close();
    sub_.close();
  }

  void publish(const sdk::Message& m) override {
    const std::string_view channel_parts[] = {config_.key_prefix, config_.separator, m.event_name};
    bool need_wake;
    {
      std::lock_guard lock(mutex_);
      if (!running_ || stopping_) throw sdk::Error(ATHOMIC_ERR_STATE, "the redis provider is stopped");
      const std::size_t buffered = buffered_.load(std::memory_order_relaxed);
      if (buffered >= config_.max_buffered_events) {
        throw sdk::Error(
            ATHOMIC_ERR_BACKPRESSURE,
            std::to_string(buffered) + " events are already waiting for " +
                config_.endpoint.display() +
                (connected_ ? " (the server is not keeping up)" : " (disconnected, reconnecting)") +
                "; events.provider.max_buffered_events is " +
                std::to_string(config_.max_buffered_events));
      }
      const std::size_t before = pending_.size();
      append_publish(pending_, channel_parts, m.body);
      pending_lengths_.push_back(static_cast<uint32_t>(pending_.size() - before));
      ++published_;
      buffered_.fetch_add(1, std::memory_order_relaxed);
      need_wake = !wake_pending_;
      wake_pending_ = true;
    }
    if (need_wake) wake();
  }

  void interest_add(std::string_view topic, athomic_interest_kind kind) override {
    if (kind != ATHOMIC_INTEREST_EXACT) {
      throw sdk::Error(ATHOMIC_ERR_UNSUPPORTED, "pattern subscriptions are not supported yet");
    }
    const std::string ch = config_.channel(topic);
    std::unique_lock lock(mutex_);
    channels_[ch] = false;
    sub_ops_.push_back({true, ch, published_});
    wake_pending_ = true;
    lock.unlock();
    wake();
    lock.lock();
    // Wait for the server's confirmation so that an event published right after subscribe()
    // returns reaches this handler. Not from the I/O thread itself (a handler subscribing in
    // inline mode), and not while disconnected: re-subscription happens on reconnect.
    if (std::this_thread::get_id() == io_.get_id()) return;
    const auto limit = std::chrono::duration<double>(config_.endpoint.connect_timeout_s);
    if (!cv_.wait_for(lock, limit, [&] {
          auto it = channels_.find(ch);
          return stopping_ || !connected_ || it == channels_.end() || it->second;
        })) {
      host_.warn("no confirmation of SUBSCRIBE " + ch + " within socket_connect_timeout");
    }
  }

  void interest_remove(std::string_view topic, athomic_interest_kind) noexcept override {
    try {
      const std::string ch = config_.channel(topic);
      {
        std::lock_guard lock(mutex_);
        channels_.erase(ch);
        sub_ops_.push_back({false, ch, published_});
        wake_pending_ = true;
      }
      wake();
    } catch (...) {
    }
  }

 private:
  void wake() noexcept {
    const uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }

  void drain_wake() noexcept {
    uint64_t v;
    while (::read(wake_fd_, &v, sizeof v) > 0) {
    }
  }

  // PUBLISH <prefix><separator><name> <body>, formatted in place (the channel is never built
  // as a string of its own).
  static void append_publish(std::string& out, const std::string_view (&channel)[3],
                             std::string_view body) {
    out.append("*3\r\n$7\r\nPUBLISH\r\n");
    resp::append_header(out, '$', channel[0].size() + channel[1].size() + channel[2].size());
    for (auto part : channel) out.append(part);
    out.append("\r\n", 2);
    resp::append_header(out, '$', body.size());
    out.append(body);
    out.append("\r\n", 2);
  }

  // Takes queued work: subscription changes, and every publish made since the last time.
  // Returns whether publishes may be written: not after a reconnect until the server has
  // answered every re-subscription, so that nothing is published before we listen again.
  // (Only those: a channel subscribed since then waits for the publishes made before it.)
  bool take_work() {
    bool may_publish;
    {
      std::lock_guard lock(mutex_);
      wake_pending_ = false;
      ops_.insert(ops_.end(), std::make_move_iterator(sub_ops_.begin()),
                  std::make_move_iterator(sub_ops_.end()));
      sub_ops_.clear();
      may_publish = resubscriptions_due_ == 0;
      if (!pending_lengths_.empty()) {
        if (head_ == queue_.size()) {
          // Everything before was answered: take the buffer itself, keep ours for next time.
          queue_.clear();
          head_ = sent_ = 0;
          queue_.swap(pending_);
        } else {
          queue_.append(pending_);
          pending_.clear();
        }
        lengths_.insert(lengths_.end(), pending_lengths_.begin(), pending_lengths_.end());
        pending_lengths_.clear();
      }
    }
    // Send the next subscription changes once every publish made before them is answered;
    // changes made with no publish in between go together.
    if (ops_in_flight_ == 0 && !ops_.empty() && answered_ >= ops_.front().after) {
      for (const auto& op : ops_) {
        if (op.after != ops_.front().after) break;
        resp::append_command(sub_.output(), op.subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE", op.channel);
        ++ops_in_flight_;
      }
    }
    return may_publish;
  }

  // End of the bytes of queue_ that may be written now: the publishes made before the first
  // subscription change that is still waiting to be sent or confirmed.
  std::size_t publish_limit() const noexcept {
    if (ops_.empty() || ops_.front().after >= answered_ + lengths_.size()) return queue_.size();
    std::size_t limit = head_;
    for (uint64_t i = answered_; i < ops_.front().after; ++i) limit += lengths_[i - answered_];
    return limit;
  }

  bool flush_publishes(std::string& error) {
    const std::size_t limit = publish_limit();
    if (sent_ >= limit) return true;
    const long n = pub_.write_some(std::string_view(queue_).substr(sent_, limit - sent_), error);
    if (n < 0) return false;
    sent_ += static_cast<std::size_t>(n);
    return true;
  }

  // A reply to SUBSCRIBE or UNSUBSCRIBE, or an error, on the subscriber connection. Replies
  // come in the order the commands went: the re-subscriptions sent on reconnect first, then the
  // subscription changes in flight.
  void subscription_answered() {
    if (resubscriptions_due_ > 0) {
      --resubscriptions_due_;
    } else if (ops_in_flight_ > 0) {
      ops_.pop_front();
      --ops_in_flight_;
    }
  }

  void on_subscriber_reply(const resp::Reply& r) {
    if (!r.is_array) {
      if (r.value.type == '-') {
        host_.error("the server refused a subscription change: " + std::string(r.value.text));
        subscription_answered();
      }
      return;
    }
    if (r.count < 3) return;
    const std::string_view kind = r.items[0].text;
    const std::string_view ch = r.items[1].text;
    if (kind == "message") {
      const std::size_t prefix = config_.key_prefix.size() + config_.separator.size();
      if (ch.size() <= prefix) return;
      host_.deliver_message(ch.substr(prefix), r.items[2].text);
    } else if (kind == "subscribe") {
      subscription_answered();
      std::lock_guard lock(mutex_);
      if (auto it = channels_.find(std::string(ch)); it != channels_.end()) it->second = true;
      cv_.notify_all();
    } else if (kind == "unsubscribe") {
      subscription_answered();
    }
  }

  // @p answered replies came for the oldest unanswered publishes.
  bool on_publisher_replies(std::size_t answered, std::string& error) {
    if (answered == 0) return true;
    if (answered > lengths_.size()) {
      error = "protocol error from the server: more replies than commands";
      return false;
    }
    for (std::size_t i = 0; i < answered; ++i) {
      head_ += lengths_.front();
      lengths_.pop_front();
    }
    answered_ += answered;
    if (head_ == queue_.size()) {
      queue_.clear();
      head_ = sent_ = 0;
    } else if (head_ >= (std::size_t{1} << 20)) {
      queue_.erase(0, head_);
      sent_ -= head_;
      head_ = 0;
    }
    buffered_.fetch_sub(answered, std::memory_order_relaxed);
    return true;
  }

  // Marks the connection lost: unanswered publishes will be written again, after the
  // channels are re-subscribed.
  void lose_connection(const std::string& why) {
    pub_.close();
    sub_.close();
    sent_ = head_;
    std::lock_guard lock(mutex_);
    connected_ = false;
    resubscriptions_due_ = 0;
    // Every wanted channel is subscribed again on reconnect; pending changes are moot.
    sub_ops_.clear();
    ops_.clear();
    ops_in_flight_ = 0;
    for (auto& [ch, confirmed] : channels_) confirmed = false;
    cv_.notify_all();
    host_.warn("lost the connection to " + config_.endpoint.display() + ": " + why + "; " +
               std::to_string(buffered_.load()) + " events buffered; reconnecting");
  }

  // Retries with exponential backoff until connected (true) or stopping (false).
  bool reconnect() {
    double delay = config_.reconnect_initial_delay_s;
    for (int attempt = 1;; ++attempt) {
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return false;
      }
      std::string error;
      // stop() must not wait for an attempt against an address that does not answer.
      const Connection::Cancel cancel{wake_fd_, [this] {
                                        std::lock_guard lock(mutex_);
                                        return stopping_;
                                      }};
      if (pub_.open(config_.endpoint, error, &cancel) && sub_.open(config_.endpoint, error, &cancel)) {
        std::lock_guard lock(mutex_);
        connected_ = true;
        for (const auto& [ch, confirmed] : channels_) {
          resp::append_command(sub_.output(), "SUBSCRIBE", ch);
        }
        resubscriptions_due_ = channels_.size();
        host_.info("reconnected to " + config_.endpoint.display() + " after " +
                   std::to_string(attempt) + " attempt(s); re-subscribing " +
                   std::to_string(channels_.size()) + " channel(s), then sending " +
                   std::to_string(buffered_.load()) + " buffered event(s)");
        return true;
      }
      pub_.close();
      if (cancel.requested()) return false;
      if (attempt == 1 || attempt % 10 == 0) {
        host_.warn("reconnect attempt " + std::to_string(attempt) + " failed: " + error);
      }
      // Sleep, but wake at once for stop().
      pollfd p{wake_fd_, POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(delay * 1000));
      drain_wake();
      delay = std::min(delay * 2, config_.reconnect_max_delay_s);
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
        if (!pub_.is_open()) return;
        if (!flush_deadline) {
          flush_deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(config_.flush_timeout_s));
        }
        if (buffered_.load() == 0 || Clock::now() >= *flush_deadline) return;
      }
      if (!pub_.is_open()) {
        if (!reconnect()) return;
      }
      const bool may_publish = take_work();
      std::string error;
      bool ok = sub_.flush(error) && (!may_publish || flush_publishes(error));
      const bool pub_blocked = may_publish && sent_ < publish_limit();
      if (ok && sent_ > head_) {
        // A reply is due and will wake this loop, which then takes what was published
        // meanwhile: publishers need not signal the eventfd, a system call each.
        std::lock_guard lock(mutex_);
        wake_pending_ = true;
      }
      pollfd fds[3] = {{wake_fd_, POLLIN, 0},
                       {pub_.fd(), static_cast<short>(POLLIN | (pub_blocked ? POLLOUT : 0)), 0},
                       {sub_.fd(), static_cast<short>(POLLIN | (sub_.wants_write() ? POLLOUT : 0)), 0}};
      if (ok) ::poll(fds, 3, stopping ? 10 : -1);
      if (fds[0].revents) drain_wake();
      if (ok && (fds[1].revents & (POLLIN | POLLERR | POLLHUP))) {
        std::size_t answered = 0;
        ok = pub_.read(error) && pub_.each_reply(error, [&](const resp::Reply& r) {
               if (r.value.type == '-') host_.error("PUBLISH failed: " + std::string(r.value.text));
               ++answered;
               return true;
             });
        ok = on_publisher_replies(answered, error) && ok;
      }
      if (ok && (fds[2].revents & (POLLIN | POLLERR | POLLHUP))) {
        ok = sub_.read(error) &&
             sub_.each_reply(error, [&](const resp::Reply& r) {
               on_subscriber_reply(r);
               return true;
             });
      }
      if (!ok) lose_connection(error);
    }
  }

  sdk::Host host_;
  Config config_;
  int wake_fd_ = -1;
  std::mutex lifecycle_;
  std::thread io_;

  // Shared with the I/O thread.
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string pending_;                     // formatted PUBLISH commands, not yet taken
  std::vector<uint32_t> pending_lengths_;   // the length of each
  std::atomic<std::size_t> buffered_{0};    // publishes not yet answered by the server
  struct SubOp {
    bool subscribe;
    std::string channel;
    uint64_t after;  // how many publishes were made before it
  };
  std::map<std::string, bool> channels_;  // wanted channel -> confirmed
  std::vector<SubOp> sub_ops_;            // subscription changes not yet taken by the loop
  uint64_t published_ = 0;                // publishes accepted since the provider was made
  bool wake_pending_ = false;
  bool running_ = false;
  bool stopping_ = false;
  bool connected_ = false;

  // I/O thread only (and stop(), after joining it).
  Connection pub_, sub_;
  std::string queue_;              // publishes not yet answered, oldest first, from head_
  std::deque<uint32_t> lengths_;   // the length of each, from head_
  std::size_t head_ = 0;           // start of the oldest unanswered publish in queue_
  std::size_t sent_ = 0;           // bytes of queue_ written on the current connection
  uint64_t answered_ = 0;          // publishes answered by the server (or given up by stop)
  std::deque<SubOp> ops_;          // subscription changes in order, the first ones maybe sent
  std::size_t ops_in_flight_ = 0;  // of ops_, sent and not yet confirmed
  std::size_t resubscriptions_due_ = 0;  // SUBSCRIBEs sent on reconnect, not yet answered
};

}  // namespace
}  // namespace athomic::redis

ATHOMIC_PROVIDER(athomic::redis::RedisProvider, "redis", "0.1.0",
                 ATHOMIC_CAP_REMOTE | ATHOMIC_CAP_ORDERED);
