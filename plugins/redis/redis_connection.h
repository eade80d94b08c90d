// One connection to the server, as a non-blocking state machine that a poll() loop drives:
// resolving the host (redis_resolve.h), the TCP connect, AUTH and PING, then reads and writes
// with replies parsed in place (resp.h). Each step of an attempt waits at most
// endpoint.connect_timeout_s, and nothing in it blocks, so one loop can serve a connection
// while another one is being (re)made, and stop() cancels an attempt at once.
#pragma once

#include "redis_config.h"
#include "redis_resolve.h"
#include "resp.h"

#include <poll.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace athomic::redis {

// @p s seconds as people write them: "0.5 s", "30 s".
std::string seconds_text(double s);

using Clock = std::chrono::steady_clock;

class Connection {
 public:
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { close(); }

  // ---- Making the connection ----

  // Starts an attempt to connect to @p ep; advance() reports how it goes. (Closes any open
  // connection first.)
  void begin(const Endpoint& ep);
  bool connecting() const noexcept { return phase_ != Phase::closed && phase_ != Phase::ready; }
  // While connecting: what to poll for, and when the current step gives up.
  pollfd wait() const noexcept;
  Clock::time_point deadline() const noexcept { return deadline_; }
  enum class Step { pending, ready, failed };
  // Moves the attempt on with what poll() reported for wait() (0 at the deadline). On failed,
  // @p error names the masked address and the cause, and the connection is closed.
  Step advance(short revents, std::string& error);

  // What lets another thread give up a blocking open(): a readable @p fd (an eventfd, which is
  // drained) after which @p requested() says true.
  struct Cancel {
    int fd;
    std::function<bool()> requested;
  };
  // begin() and advance() until connected (true) or failed (false, with @p error).
  bool open(const Endpoint& ep, std::string& error, const Cancel* cancel = nullptr);

  // Once open: sends @p command and waits, within endpoint.connect_timeout_s, for its reply,
  // which @p on_reply reads (its views valid during the call). False (with @p error, the
  // connection closed) when the connection failed, timed out or was cancelled.
  bool call(std::string_view command, std::string& error, const Cancel* cancel,
            const std::function<void(const resp::Reply&)>& on_reply);

  void close() noexcept;
  bool is_open() const noexcept { return phase_ == Phase::ready; }
  int fd() const noexcept { return fd_; }

  // ---- Once open ----

  // Writes what the socket takes now of @p data; returns how much (0 when it is full), or -1
  // with @p error when the connection failed.
  long write_some(std::string_view data, std::string& error);
  // When this connection last wrote a byte (for keepalive), and last received one (since it
  // was opened: reply_timeout).
  Clock::time_point last_write() const noexcept { return last_write_; }
  Clock::time_point last_read() const noexcept { return last_read_; }
  // Bytes received and not yet consumed by each_reply.
  std::size_t unconsumed() const noexcept { return in_end_ - in_begin_; }
  // Reads what the socket holds now, up to @p limit bytes more in the input buffer (reads stop
  // at the first that brings nothing). False on a failure of the connection.
  bool read_available(std::size_t limit, std::string& error) {
    const std::size_t start = unconsumed();
    while (unconsumed() - start < limit) {
      const std::size_t before = unconsumed();
      if (!read(error)) return false;
      if (unconsumed() == before) break;
    }
    return true;
  }

  // Commands of this connection's own output buffer (small: subscription changes, PING).
  std::string& output() noexcept { return out_; }
  bool wants_write() const noexcept { return !out_.empty(); }
  bool flush(std::string& error);

  // Reads what is available into the input buffer. False (with @p error) when the connection
  // failed or the server closed it.
  bool read(std::string& error);
  // Calls @p on_reply for each complete reply in the input buffer and drops it from the
  // buffer, until @p on_reply returns false: that reply stays, to be offered again by the next
  // call. Returns false (with @p error) on a protocol error.
  template <typename F>
  bool each_reply(std::string& error, F&& on_reply) {
    resp::Reply reply;
    for (;;) {
      std::size_t used = 0;
      const std::string_view in(in_.data() + in_begin_, in_end_ - in_begin_);
      const resp::Parse p = resp::parse_reply(in, reply, used, error);
      if (p == resp::Parse::incomplete) return true;
      if (p == resp::Parse::error) {
        error = "protocol error from the server: " + error;
        return false;
      }
      if (!on_reply(static_cast<const resp::Reply&>(reply))) return true;
      in_begin_ += used;
    }
  }

 private:
  enum class Phase { closed, resolving, connecting, handshaking, ready };
  bool connect_next(std::string& error);
  bool handshake_replies(std::string& error, bool& complete);
  // poll() for @p events on fd() and on @p cancel's fd until the deadline: the revents of fd()
  // (0 at the deadline), or -1 with @p error when poll failed or the wait was cancelled.
  int wait_until(short events, const Cancel* cancel, std::string& error);

  Phase phase_ = Phase::closed;
  int fd_ = -1;
  const Endpoint* ep_ = nullptr;  // the endpoint of the attempt (the provider's, outlives it)
  std::unique_ptr<Resolution> resolution_;
  std::vector<Address> addresses_;  // still to try, in order
  Clock::time_point deadline_{};
  std::size_t handshake_expected_ = 0;
  std::vector<std::pair<char, std::string>> handshake_replies_;  // (type, text)
  Clock::time_point last_write_{};
  Clock::time_point last_read_{};
  std::string out_;
  std::vector<char> in_;
  std::size_t in_begin_ = 0, in_end_ = 0;
};

}  // namespace athomic::redis
