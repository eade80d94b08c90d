// One connection driven by the provider's poll() loop. hiredis opens the socket (it resolves the
// host); everything after — waiting for the connection, AUTH and PING, then every read and
// write — is done here on the non-blocking socket, with replies parsed in place (resp.h).
#pragma once

#include "redis_config.h"
#include "resp.h"

#include <hiredis/hiredis.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace athomic::redis {

class Connection {
 public:
  Connection() = default;
  Connection(Connection&& o) noexcept { *this = std::move(o); }
  Connection& operator=(Connection&& o) noexcept;
  ~Connection() { close(); }

  // What lets another thread give up a connection attempt: a readable @p fd (an eventfd, which
  // is drained) after which @p requested() says true.
  struct Cancel {
    int fd;
    std::function<bool()> requested;
  };

  // Connects within endpoint.connect_timeout_s, authenticates, checks the server answers.
  // On failure returns false and @p error names the masked address and the cause. With
  // @p cancel, the wait for the connection also ends when it is cancelled.
  bool open(const Endpoint& ep, std::string& error, const Cancel* cancel = nullptr);
  void close() noexcept;
  bool is_open() const noexcept { return c_ != nullptr; }
  int fd() const noexcept { return c_ ? c_->fd : -1; }

  // Writes what the socket takes now of @p data; returns how much (0 when it is full), or -1
  // with @p error when the connection failed.
  long write_some(std::string_view data, std::string& error);

  // Commands of this connection's own output buffer (small: subscription changes).
  std::string& output() noexcept { return out_; }
  bool wants_write() const noexcept { return !out_.empty(); }
  bool flush(std::string& error);

  // Reads what is available into the input buffer. False (with @p error) when the connection
  // failed or the server closed it.
  bool read(std::string& error);
  // Calls @p on_reply for each complete reply in the input buffer, then drops them from it.
  // False (with @p error) on a protocol error.
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
      in_begin_ += used;
      on_reply(static_cast<const resp::Reply&>(reply));
    }
  }

 private:
  redisContext* c_ = nullptr;  // hiredis connects and authenticates; then we own the socket
  std::string out_;
  std::vector<char> in_;
  std::size_t in_begin_ = 0, in_end_ = 0;
};

}  // namespace athomic::redis
