// The relay providers: small remote providers on the test broker (broker.cpp, wire.h), one
// loopback TCP connection each, with everything ABI 1.2 asks — publishes acknowledged by the
// broker, a bounded buffer that refuses with backpressure, subscriptions confirmed before
// interest_add returns, received messages kept and retried when the host refuses them.
//
// Built once as it should be (`relay`, the control) and once per deliberate defect, to prove
// that the conformance suite notices each one:
//   RELAY_SKIPS_CONFIRMATION  interest_add returns at once, and the client sends its
//                             subscriptions lazily (it holds its output for half a second
//                             after one), so the subscription is not in place when it returns;
//   RELAY_IGNORES_REMOVE      interest_remove does nothing: the broker keeps sending;
//   RELAY_DROPS_AT_STOP       stop() leaves at once, forgetting publishes not yet acknowledged
//                             (they are never completed with publish_done). It batches its
//                             writes (linger 100 ms by default), as many clients do, so that
//                             there are always some: a provider with nothing in flight could
//                             not lose anything at stop;
//   RELAY_REORDERS            received messages are delivered in swapped pairs.
//
// Settings (events.provider.*): port — the broker's loopback port; max_buffered — how many
// publishes may wait for the broker's acknowledgement before publish refuses; linger — how long
// a publish may wait to be written with the ones after it (0: written at once).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <athomic/sdk/provider.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "wire.h"

#ifndef RELAY_NAME
#define RELAY_NAME "relay"
#endif

namespace {

using athomic::sdk::Error;
using athomic::sdk::setting;
using Clock = std::chrono::steady_clock;

constexpr athomic_setting kPort =
    setting("port", ATHOMIC_SETTING_INT, nullptr, "the relay broker's loopback port", 1, 65535);
constexpr athomic_setting kMaxBuffered =
    setting("max_buffered", ATHOMIC_SETTING_INT, "1000",
            "publishes that may wait for the broker's acknowledgement", 1, 10000000);
#ifndef RELAY_DEFAULT_LINGER
#define RELAY_DEFAULT_LINGER "0"
#endif
constexpr athomic_setting kLinger =
    setting("linger", ATHOMIC_SETTING_SECONDS, RELAY_DEFAULT_LINGER,
            "how long a publish may wait to be written with the ones after it", 0, 1);
const athomic_setting* const kSettings[] = {&kPort, &kMaxBuffered, &kLinger, nullptr};

constexpr auto kFlushAtStop = std::chrono::seconds(2);
constexpr auto kConfirmTimeout = std::chrono::seconds(5);
constexpr auto kRetryRefused = std::chrono::milliseconds(1);
#ifdef RELAY_SKIPS_CONFIRMATION
constexpr auto kLazySubscribe = std::chrono::milliseconds(500);
#endif
#ifdef RELAY_REORDERS
constexpr auto kHoldAlone = std::chrono::milliseconds(20);
#endif

struct Received {
  std::string topic;
  std::string body;
};

class Relay final : public athomic::sdk::Provider {
 public:
  Relay(athomic::sdk::Host host, std::string_view)
      : host_(host),
        port_(host.setting<int>("port")),
        max_buffered_(host.setting<std::size_t>("max_buffered")),
        linger_(host.setting<Clock::duration>("linger")),
        where_("the relay broker at 127.0.0.1:" + std::to_string(port_)),
        // Open for the instance's whole life: a publish racing stop() may still signal it.
        wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (wake_fd_ < 0) throw Error(ATHOMIC_ERR_INTERNAL, "eventfd failed");
  }
  ~Relay() override {
    stop();
    ::close(wake_fd_);
  }

  void start() override {
    std::lock_guard life(lifecycle_);
    if (io_.joinable()) return;
    std::string error;
    const int fd = connect_broker(error);
    if (fd < 0) throw Error(ATHOMIC_ERR_CONNECT, "cannot connect to " + where_ + ": " + error);
    fd_ = fd;
    {
      std::lock_guard lock(mutex_);
      running_ = true;
      stopping_ = false;
      broken_.clear();
      out_.clear();
      tokens_.clear();
      subscribed_.clear();
      requested_ = confirmed_ = 0;
      hold_until_.reset();
    }
    io_ = std::thread([this] { run(); });
    host_.report_state(ATHOMIC_CONNECTION_UP, "connected to " + where_);
  }

  void stop() noexcept override {
    std::lock_guard life(lifecycle_);
    if (!io_.joinable()) return;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      stop_by_ = Clock::now() + kFlushAtStop;
    }
    wake();
    io_.join();
    std::deque<uint64_t> unanswered;
    {
      std::lock_guard lock(mutex_);
      running_ = false;
      unanswered.swap(tokens_);
      out_.clear();
    }
#ifdef RELAY_DROPS_AT_STOP
    unanswered.clear();  // the defect: accepted publishes vanish without an answer
#endif
    for (uint64_t token : unanswered) {
      host_.publish_done(token, ATHOMIC_ERR_CONNECT, -1,
                         "the relay provider stopped before " + where_ + " acknowledged it");
    }
    ::close(fd_);
    fd_ = -1;
    host_.report_state(ATHOMIC_CONNECTION_DOWN, "stopped");
  }

  void publish(const athomic::sdk::Message& m) override {
    {
      std::lock_guard lock(mutex_);
      if (!running_ || stopping_) throw Error(ATHOMIC_ERR_STATE, "the relay provider is stopped");
      if (!broken_.empty()) throw Error(ATHOMIC_ERR_CONNECT, broken_);
      if (tokens_.size() >= max_buffered_) {
        throw Error(ATHOMIC_ERR_BACKPRESSURE,
                    std::to_string(tokens_.size()) + " publishes wait for " + where_ +
                        "; events.provider.max_buffered is " + std::to_string(max_buffered_));
      }
      athomic::relay::append_frame(out_, 'P', m.event_name, m.body);
      tokens_.push_back(m.publish_token);
      if (linger_.count() > 0 && !hold_until_) hold_until_ = Clock::now() + linger_;
    }
    wake();
  }

  void interest_add(std::string_view topic, athomic_interest_kind kind) override {
    if (kind != ATHOMIC_INTEREST_EXACT) throw Error(ATHOMIC_ERR_UNSUPPORTED, "no patterns");
    std::unique_lock lock(mutex_);
    if (!broken_.empty()) throw Error(ATHOMIC_ERR_CONNECT, broken_);
    athomic::relay::append_frame(out_, 'S', topic);
    subscribed_.emplace(topic);
    const uint64_t mine = ++requested_;
#ifdef RELAY_SKIPS_CONFIRMATION
    // The defect: a lazy client that sends its subscriptions a while later, and returns now.
    if (!hold_until_) hold_until_ = Clock::now() + kLazySubscribe;
    lock.unlock();
    wake();
    (void)mine;
#else
    lock.unlock();
    wake();
    // Not on our own thread (a handler subscribing, in inline dispatch): it cannot wait for
    // itself.
    if (std::this_thread::get_id() == io_.get_id()) return;
    lock.lock();
    if (!cv_.wait_for(lock, kConfirmTimeout,
                      [&] { return confirmed_ >= mine || !broken_.empty() || stopping_; })) {
      throw Error(ATHOMIC_ERR_CONNECT, where_ + " did not confirm the subscription to " +
                                           std::string(topic) + " within 5 s");
    }
    if (!broken_.empty()) throw Error(ATHOMIC_ERR_CONNECT, broken_);
#endif
  }

  void interest_remove(std::string_view topic, athomic_interest_kind) noexcept override {
#ifdef RELAY_IGNORES_REMOVE
    (void)topic;  // the defect: the broker keeps sending, and we keep delivering
#else
    try {
      {
        std::lock_guard lock(mutex_);
        if (auto it = subscribed_.find(topic); it != subscribed_.end()) subscribed_.erase(it);
        athomic::relay::append_frame(out_, 'U', topic);
      }
      wake();
    } catch (...) {
    }
#endif
  }

 private:
  int connect_broker(std::string& error) const {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      error = std::strerror(errno);
      ::close(fd);
      return -1;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
  }

  void wake() noexcept {
    const uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }

  // The I/O thread: writes what publish and interest changes queued, reads the broker's
  // answers and messages, hands messages to the host (again later when it refuses them).
  void run() {
    std::string sending;  // taken from out_, being written
    std::size_t sent = 0;
    std::string in;
    std::deque<Received> inbox;  // received, not yet taken by the host
    std::optional<Clock::time_point> retry_at;
#ifdef RELAY_REORDERS
    std::optional<Received> held;
    Clock::time_point held_since;
#endif
    std::string failure;
    for (;;) {
      std::optional<Clock::time_point> next_timer;
      {
        std::lock_guard lock(mutex_);
        if (stopping_) {
#ifdef RELAY_DROPS_AT_STOP
          return;
#else
          if ((tokens_.empty() && out_.empty() && sent == sending.size()) ||
              Clock::now() >= stop_by_) {
            return;
          }
          next_timer = stop_by_;
          hold_until_.reset();  // what waits is written now
#endif
        }
        if (hold_until_ && Clock::now() >= *hold_until_) hold_until_.reset();
        if (hold_until_) {
          next_timer = *hold_until_;
        } else if (!out_.empty()) {
          if (sent == sending.size()) {
            sending.clear();
            sent = 0;
          }
          sending.append(out_);
          out_.clear();
        }
      }
      // Write what the socket takes.
      while (sent < sending.size()) {
        const ssize_t n =
            ::send(fd_, sending.data() + sent, sending.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EAGAIN || errno == EINTR) break;
          failure = std::string("write failed: ") + std::strerror(errno);
          break;
        }
        sent += static_cast<std::size_t>(n);
      }
      if (!failure.empty()) break;
#ifdef RELAY_REORDERS
      if (held && Clock::now() - held_since >= kHoldAlone) {
        inbox.push_back(std::move(*held));
        held.reset();
      }
      if (held) next_timer = earliest(next_timer, held_since + kHoldAlone);
#endif
      // Hand received messages to the host; keep what it refuses, and read no more meanwhile
      // so that the broker (and the publisher behind it) feels the pressure.
      if (!retry_at || Clock::now() >= *retry_at) {
        retry_at.reset();
        while (!inbox.empty()) {
          const Received& r = inbox.front();
          if (host_.deliver_message(r.topic, r.body) == ATHOMIC_ERR_BACKPRESSURE) {
            retry_at = Clock::now() + kRetryRefused;
            break;
          }
          inbox.pop_front();
        }
      }
      if (retry_at) next_timer = earliest(next_timer, *retry_at);

      pollfd fds[2] = {
          {wake_fd_, POLLIN, 0},
          {fd_,
           static_cast<short>((inbox.empty() ? POLLIN : 0) | (sent < sending.size() ? POLLOUT : 0)),
           0}};
      int timeout = -1;
      if (next_timer) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(*next_timer - Clock::now());
        timeout = static_cast<int>(std::max<int64_t>(0, left.count()));
      }
      ::poll(fds, 2, timeout);
      if (fds[0].revents & POLLIN) {
        uint64_t v;
        while (::read(wake_fd_, &v, sizeof v) > 0) {
        }
      }
      if (!(fds[1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        failure = n == 0 ? "the broker closed the connection" : std::strerror(errno);
        break;
      }
      if (n < 0) continue;
      in.append(buf, static_cast<std::size_t>(n));
      std::vector<std::pair<uint64_t, int64_t>> answered;  // publish tokens and receivers
      std::size_t used = 0;
      {
        std::lock_guard lock(mutex_);
        for (;;) {
          athomic::relay::Frame f;
          const auto r = athomic::relay::parse_frame(std::string_view(in).substr(used), f);
          if (!r) {
            failure = "the broker sent something that is not a frame";
            break;
          }
          if (*r == 0) break;
          used += *r;
          if (f.op == 'm') {
            // After interest_remove, nothing more for that topic reaches the host.
            if (subscribed_.count(f.topic) == 0) continue;
            Received got{std::string(f.topic), std::string(f.body)};
#ifdef RELAY_REORDERS
            // The defect: every second message overtakes the one before it.
            if (!held) {
              held = std::move(got);
              held_since = Clock::now();
              continue;
            }
            inbox.push_back(std::move(got));
            inbox.push_back(std::move(*held));
            held.reset();
#else
            inbox.push_back(std::move(got));
#endif
          } else if (f.op == 's') {
            ++confirmed_;
            cv_.notify_all();
          } else if (f.op == 'p' && !tokens_.empty()) {
            int64_t receivers = -1;
            std::from_chars(f.body.data(), f.body.data() + f.body.size(), receivers);
            answered.emplace_back(tokens_.front(), receivers);
            tokens_.pop_front();
          }
        }
      }
      in.erase(0, used);
      // Never while holding the lock publish takes.
      for (const auto& [token, receivers] : answered) {
        host_.publish_done(token, ATHOMIC_OK, receivers, {});
      }
      if (!failure.empty()) break;
    }
    // The connection is gone: fail what waits for it, refuse what comes.
    std::deque<uint64_t> unanswered;
    {
      std::lock_guard lock(mutex_);
      broken_ = "lost the connection to " + where_ + ": " + failure;
      unanswered.swap(tokens_);
      cv_.notify_all();
    }
    for (uint64_t token : unanswered) host_.publish_done(token, ATHOMIC_ERR_CONNECT, -1, broken_);
    host_.report_state(ATHOMIC_CONNECTION_DOWN, broken_);
  }

  static std::optional<Clock::time_point> earliest(std::optional<Clock::time_point> a,
                                                   Clock::time_point b) {
    return a && *a < b ? a : std::optional<Clock::time_point>(b);
  }

  athomic::sdk::Host host_;
  const int port_;
  const std::size_t max_buffered_;
  const Clock::duration linger_;
  const std::string where_;
  std::mutex lifecycle_;
  const int wake_fd_;
  std::thread io_;
  int fd_ = -1;

  std::mutex mutex_;
  std::condition_variable cv_;
  bool running_ = false;
  bool stopping_ = false;
  Clock::time_point stop_by_;
  std::string broken_;           // why the connection is gone; empty: it is not
  std::string out_;              // frames not yet taken by the I/O thread
  std::deque<uint64_t> tokens_;  // publishes the broker has not acknowledged
  std::set<std::string, std::less<>> subscribed_;
  uint64_t requested_ = 0;                       // subscriptions asked for
  uint64_t confirmed_ = 0;                       // and confirmed, in the same order
  std::optional<Clock::time_point> hold_until_;  // output held until then (linger, lazy subscribe)
};

}  // namespace

ATHOMIC_PROVIDER_WITH_SETTINGS(Relay, RELAY_NAME, "0.0.1",
                               ATHOMIC_CAP_REMOTE | ATHOMIC_CAP_ORDERED | ATHOMIC_CAP_ACKNOWLEDGE,
                               kSettings);
