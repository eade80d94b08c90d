// The `redis` provider: Redis Pub/Sub on hiredis, channel = {key_prefix}{separator}{event name}.
//
// One I/O thread owns two connections — one publishes, one is in subscribe mode — and drives
// both from a poll() loop, woken through an eventfd. Publishes are formatted on the caller's
// thread and queued; the loop writes them pipelined and matches replies in order. A publish
// stays in memory until the server has answered it, so on a lost connection the unanswered
// ones go back to the front of the queue and are sent again, after every channel has been
// re-subscribed. The queue is bounded: when it is full, publish fails and nothing is kept.
#include "redis_connection.h"

#include "redis_config.h"

#include <athomic/sdk/provider.hpp>

#include <hiredis/hiredis.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
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

using Clock = std::chrono::steady_clock;

// RESP array of bulk strings, built in one allocation (this runs for every publish).
std::string format_command(std::initializer_list<std::string_view> args) {
  std::size_t size = 16;
  for (auto a : args) size += a.size() + 24;
  std::string out;
  out.reserve(size);
  auto header = [&out](char kind, std::size_t n) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
    out.push_back(kind);
    out.append(digits, end);
    out.append("\r\n", 2);
  };
  header('*', args.size());
  for (auto a : args) {
    header('$', a.size());
    out.append(a.data(), a.size());
    out.append("\r\n", 2);
  }
  return out;
}

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
    Connection pub, sub;
    std::string error;
    if (!pub.open(config_.endpoint, error) || !sub.open(config_.endpoint, error)) {
      throw sdk::Error(ATHOMIC_ERR_CONNECT, error);
    }
    {
      std::lock_guard lock(mutex_);
      stopping_ = false;
      running_ = true;
      connected_ = true;
    }
    pub_ = std::move(pub);
    sub_ = std::move(sub);
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
    const std::size_t lost = pending_.size() + inflight_.size();
    if (lost) {
      host_.warn(std::to_string(lost) + " published events were not delivered to " +
                 config_.endpoint.display() + " before stop");
    }
    pending_.clear();
    inflight_.clear();
    buffered_ = 0;
    for (auto& [ch, confirmed] : channels_) confirmed = false;
    pub_.close();
    sub_.close();
  }

  void publish(const sdk::Message& m) override {
    std::string cmd = format_command({"PUBLISH", config_.channel(m.event_name), m.body});
    bool need_wake;
    {
      std::lock_guard lock(mutex_);
      if (!running_ || stopping_) throw sdk::Error(ATHOMIC_ERR_STATE, "the redis provider is stopped");
      if (buffered_ >= config_.max_buffered_events) {
        throw sdk::Error(
            ATHOMIC_ERR_BACKPRESSURE,
            std::to_string(buffered_) + " events are already waiting for " +
                config_.endpoint.display() +
                (connected_ ? " (the server is not keeping up)" : " (disconnected, reconnecting)") +
                "; events.provider.max_buffered_events is " +
                std::to_string(config_.max_buffered_events));
      }
      pending_.push_back(std::move(cmd));
      ++buffered_;
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
    sub_ops_.emplace_back(true, ch);
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
        sub_ops_.emplace_back(false, ch);
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

  // Takes queued work: subscription changes always; publishes only once every wanted channel
  // is confirmed, so that after a reconnect nothing is published before we listen again.
  void take_work() {
    std::vector<std::pair<bool, std::string>> ops;
    std::deque<std::string> publishes;
    {
      std::lock_guard lock(mutex_);
      wake_pending_ = false;
      ops.swap(sub_ops_);
      const bool all_confirmed = std::all_of(channels_.begin(), channels_.end(),
                                             [](const auto& c) { return c.second; });
      if (all_confirmed || !resubscribing_) {
        resubscribing_ = false;
        publishes.swap(pending_);
      }
    }
    for (const auto& [subscribe, ch] : ops) {
      sub_.append(format_command({subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE", ch}));
    }
    for (auto& cmd : publishes) {
      pub_.append(cmd);
      inflight_.push_back(std::move(cmd));
    }
  }

  void on_subscriber_reply(redisReply* r) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
    const std::string_view kind(r->element[0]->str, r->element[0]->len);
    const std::string_view ch(r->element[1]->str, r->element[1]->len);
    if (kind == "message") {
      const std::string_view body(r->element[2]->str, r->element[2]->len);
      const std::size_t prefix = config_.key_prefix.size() + config_.separator.size();
      if (ch.size() <= prefix) return;
      host_.deliver_message(ch.substr(prefix), body);
    } else if (kind == "subscribe") {
      std::lock_guard lock(mutex_);
      if (auto it = channels_.find(std::string(ch)); it != channels_.end()) it->second = true;
      cv_.notify_all();
    }
  }

  void on_publisher_replies(std::size_t answered) {
    if (answered == 0) return;
    inflight_.erase(inflight_.begin(), inflight_.begin() + static_cast<std::ptrdiff_t>(answered));
    std::lock_guard lock(mutex_);
    buffered_ -= answered;
  }

  // Marks the connection lost: unanswered publishes go back to the front of the queue.
  void lose_connection(const std::string& why) {
    pub_.close();
    sub_.close();
    std::lock_guard lock(mutex_);
    connected_ = false;
    resubscribing_ = true;
    sub_ops_.clear();
    for (auto& [ch, confirmed] : channels_) confirmed = false;
    for (auto it = inflight_.rbegin(); it != inflight_.rend(); ++it) {
      pending_.push_front(std::move(*it));
    }
    inflight_.clear();
    cv_.notify_all();
    host_.warn("lost the connection to " + config_.endpoint.display() + ": " + why + "; " +
               std::to_string(pending_.size()) + " events buffered; reconnecting");
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
      Connection pub, sub;
      if (pub.open(config_.endpoint, error) && sub.open(config_.endpoint, error)) {
        pub_ = std::move(pub);
        sub_ = std::move(sub);
        std::lock_guard lock(mutex_);
        connected_ = true;
        for (const auto& [ch, confirmed] : channels_) sub_ops_.emplace_back(true, ch);
        host_.info("reconnected to " + config_.endpoint.display() + " after " +
                   std::to_string(attempt) + " attempt(s); re-subscribing " +
                   std::to_string(channels_.size()) + " channel(s), then sending " +
                   std::to_string(pending_.size()) + " buffered event(s)");
        return true;
      }
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
        std::lock_guard lock(mutex_);
        if ((pending_.empty() && inflight_.empty()) || Clock::now() >= *flush_deadline) return;
      }
      if (!pub_.is_open()) {
        if (!reconnect()) return;
      }
      take_work();
      pollfd fds[3] = {{wake_fd_, POLLIN, 0},
                       {pub_.fd(), static_cast<short>(POLLIN | (pub_.wants_write() ? POLLOUT : 0)), 0},
                       {sub_.fd(), static_cast<short>(POLLIN | (sub_.wants_write() ? POLLOUT : 0)), 0}};
      ::poll(fds, 3, stopping ? 10 : -1);
      if (fds[0].revents) drain_wake();
      std::string error;
      std::size_t answered = 0;
      bool ok = pub_.flush(error) && sub_.flush(error);
      if (ok && (fds[1].revents & (POLLIN | POLLERR | POLLHUP))) {
        ok = pub_.read(error, [&](redisReply* r) {
          if (r->type == REDIS_REPLY_ERROR) host_.error("PUBLISH failed: " + std::string(r->str, r->len));
          ++answered;
        });
      }
      on_publisher_replies(answered);
      if (ok && (fds[2].revents & (POLLIN | POLLERR | POLLHUP))) {
        ok = sub_.read(error, [&](redisReply* r) { on_subscriber_reply(r); });
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
  std::deque<std::string> pending_;                     // formatted PUBLISH, not yet written
  std::size_t buffered_ = 0;                            // pending + written, unanswered
  std::map<std::string, bool> channels_;                // wanted channel -> confirmed
  std::vector<std::pair<bool, std::string>> sub_ops_;  // (subscribe?, channel) to send
  bool wake_pending_ = false;
  bool running_ = false;
  bool stopping_ = false;
  bool connected_ = false;
  bool resubscribing_ = false;

  // I/O thread only (and stop(), after joining it).
  Connection pub_, sub_;
  std::deque<std::string> inflight_;  // written, waiting for the server's answer, in order
};

}  // namespace
}  // namespace athomic::redis

ATHOMIC_PROVIDER(athomic::redis::RedisProvider, "redis", "0.1.0",
                 ATHOMIC_CAP_REMOTE | ATHOMIC_CAP_ORDERED);
