// One hiredis connection driven by the provider's poll() loop: connect (with timeout, AUTH and
// a PING) on open, then non-blocking pipelined writes and reads.
#pragma once

#include "redis_config.h"

#include <hiredis/hiredis.h>

#include <functional>
#include <string>

namespace athomic::redis {

class Connection {
 public:
  Connection() = default;
  Connection(Connection&& o) noexcept : c_(o.c_), want_write_(o.want_write_) { o.c_ = nullptr; }
  Connection& operator=(Connection&& o) noexcept;
  ~Connection() { close(); }

  // Connects within endpoint.connect_timeout_s, authenticates, checks the server answers.
  // On failure returns false and @p error names the masked address and the cause.
  bool open(const Endpoint& ep, std::string& error);
  void close() noexcept;
  bool is_open() const noexcept { return c_ != nullptr; }
  int fd() const noexcept { return c_ ? c_->fd : -1; }

  // Queues a preformatted command.
  void append(const std::string& command);
  bool wants_write() const noexcept { return want_write_; }
  // Writes what the socket takes now. False (with @p error) when the connection failed.
  bool flush(std::string& error);
  // Reads what is available and calls @p on_reply for each complete reply.
  bool read(std::string& error, const std::function<void(redisReply*)>& on_reply);

 private:
  redisContext* c_ = nullptr;
  bool want_write_ = false;
};

}  // namespace athomic::redis
