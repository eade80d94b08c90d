#include "redis_connection.h"

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace athomic::redis {

namespace {

using Clock = std::chrono::steady_clock;

std::string timeout_text(const Endpoint& ep) {
  return "timed out after " + std::to_string(ep.connect_timeout_s).substr(0, 5) +
         " s (events.provider.provider.provider.socket_connect_timeout)";
}

Clock::time_point deadline_after(double seconds) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

enum class Wait { ready, timeout, cancelled };

// Waits until @p fd is ready for @p events, the deadline passes, or @p cancel (if any) asks.
Wait wait_for(int fd, short events, Clock::time_point deadline,
              const Connection::Cancel* cancel) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd fds[2] = {{fd, events, 0}, {cancel ? cancel->fd : -1, POLLIN, 0}};
    const int n = ::poll(fds, cancel ? 2 : 1, static_cast<int>(std::max<int64_t>(0, left)));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return Wait::timeout;
    if (n < 0) return Wait::ready;  // the read or write that follows reports the error
    if (cancel && fds[1].revents) {
      uint64_t v;
      while (::read(cancel->fd, &v, sizeof v) > 0) {
      }
      if (cancel->requested()) return Wait::cancelled;
    }
    if (fds[0].revents) return Wait::ready;
  }
}

}  // namespace

Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    close();
    c_ = o.c_;
    o.c_ = nullptr;
    out_ = std::move(o.out_);
    in_ = std::move(o.in_);
    in_begin_ = o.in_begin_;
    in_end_ = o.in_end_;
    o.out_.clear();
    o.in_begin_ = o.in_end_ = 0;
  }
  return *this;
}

void Connection::close() noexcept {
  if (c_) redisFree(c_);
  c_ = nullptr;
  out_.clear();
  in_begin_ = in_end_ = 0;
}

bool Connection::open(const Endpoint& ep, std::string& error, const Cancel* cancel) {
  close();
  // Non-blocking from the start, so that every wait below ends at the deadline or on cancel.
  redisContext* c = redisConnectNonBlock(ep.host.c_str(), ep.port);
  if (!c || c->err) {
    std::string why = c ? c->errstr : "out of memory";
    if (c && c->err == REDIS_ERR_OTHER) why = "cannot resolve host '" + ep.host + "': " + why;
    if (c) redisFree(c);
    error = "cannot connect to " + ep.display() + ": " + why;
    return false;
  }
  c_ = c;
  auto fail = [&](std::string why) {
    close();
    error = std::move(why);
    return false;
  };
  const std::string cancelled = "connecting to " + ep.display() + " was cancelled";
  switch (wait_for(c->fd, POLLOUT, deadline_after(ep.connect_timeout_s), cancel)) {
    case Wait::timeout: return fail("cannot connect to " + ep.display() + ": " + timeout_text(ep));
    case Wait::cancelled: return fail(cancelled);
    case Wait::ready: break;
  }
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) return fail("cannot connect to " + ep.display() + ": " + std::strerror(err));

  // AUTH (with a password) and PING, pipelined, answered within one more timeout.
  std::string commands;
  if (!ep.password.empty()) {
    if (ep.user.empty()) {
      resp::append_command(commands, "AUTH", ep.password);
    } else {
      resp::append_command(commands, "AUTH", ep.user, ep.password);
    }
  }
  resp::append_command(commands, "PING");
  const std::size_t expected = ep.password.empty() ? 1 : 2;
  const auto deadline = deadline_after(ep.connect_timeout_s);
  std::string io_error;
  for (std::size_t written = 0; written < commands.size();) {
    const long n = write_some(std::string_view(commands).substr(written), io_error);
    if (n < 0) return fail("no answer from " + ep.display() + ": " + io_error);
    written += static_cast<std::size_t>(n);
    if (written == commands.size()) break;
    const Wait w = wait_for(c->fd, POLLOUT, deadline, cancel);
    if (w == Wait::cancelled) return fail(cancelled);
    if (w == Wait::timeout) return fail("no answer from " + ep.display() + ": " + timeout_text(ep));
  }
  std::vector<std::pair<char, std::string>> replies;  // (type, text)
  for (;;) {
    if (!each_reply(io_error, [&](const resp::Reply& r) {
          replies.emplace_back(r.is_array ? '*' : r.value.type, std::string(r.value.text));
        })) {
      return fail("no answer from " + ep.display() + ": " + io_error);
    }
    if (replies.size() >= expected) break;
    const Wait w = wait_for(c->fd, POLLIN, deadline, cancel);
    if (w == Wait::cancelled) return fail(cancelled);
    if (w == Wait::timeout) {
      return fail("no answer from " + ep.display() + ": timed out waiting for " +
                  (replies.empty() && expected == 2 ? "AUTH" : "PING") + " (" +
                  timeout_text(ep) + ")");
    }
    if (!read(io_error)) return fail("no answer from " + ep.display() + ": " + io_error);
  }
  if (expected == 2 && replies.front().first == '-') {
    return fail("authentication failed at " + ep.display() + ": " + replies.front().second);
  }
  if (replies.back().first == '-') {
    std::string why = replies.back().second;
    if (why.rfind("NOAUTH", 0) == 0) {
      why += " (set a password in events.provider.provider.provider)";
      return fail("authentication failed at " + ep.display() + ": " + why);
    }
    return fail("the server at " + ep.display() + " refused PING: " + why);
  }
  redisEnableKeepAlive(c);
  in_begin_ = in_end_ = 0;  // nothing follows the two answers
  return true;
}

long Connection::write_some(std::string_view data, std::string& error) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(c_->fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;  // the socket is full; poll() says when to go on
    } else {
      error = std::string("write failed: ") + std::strerror(errno);
      return -1;
    }
  }
  return static_cast<long>(done);
}

bool Connection::flush(std::string& error) {
  if (out_.empty()) return true;
  const long n = write_some(out_, error);
  if (n < 0) return false;
  out_.erase(0, static_cast<std::size_t>(n));
  return true;
}

bool Connection::read(std::string& error) {
  // Room for at least this much per read; a reply larger than the buffer grows it.
  constexpr std::size_t kReadChunk = std::size_t{64} << 10;
  if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;
  if (in_.size() - in_end_ < kReadChunk) {
    if (in_begin_ > 0) {
      std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
      in_end_ -= in_begin_;
      in_begin_ = 0;
    }
    if (in_.size() - in_end_ < kReadChunk) in_.resize(std::max(in_.size() * 2, kReadChunk * 4));
  }
  for (;;) {
    const ssize_t n = ::read(c_->fd, in_.data() + in_end_, in_.size() - in_end_);
    if (n > 0) {
      in_end_ += static_cast<std::size_t>(n);
      return true;
    }
    if (n == 0) {
      error = "the server closed the connection";
      return false;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    error = std::string("read failed: ") + std::strerror(errno);
    return false;
  }
}

}  // namespace athomic::redis
