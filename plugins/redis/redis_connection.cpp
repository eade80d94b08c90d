#include "redis_connection.h"

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <cmath>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

namespace athomic::redis {

namespace {

timeval to_timeval(double seconds) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(seconds);
  tv.tv_usec = static_cast<suseconds_t>((seconds - std::floor(seconds)) * 1e6);
  return tv;
}

std::string reply_text(redisReply* r) {
  if (!r) return "no reply";
  if (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS) return std::string(r->str, r->len);
  return "unexpected reply";
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

bool Connection::finish_connect(redisContext* c, const Endpoint& ep, const Cancel& cancel,
                                std::string& error) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(ep.connect_timeout_s));
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd fds[2] = {{c->fd, POLLOUT, 0}, {cancel.fd, POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      error = "cannot connect to " + ep.display() + ": timed out after " +
              std::to_string(ep.connect_timeout_s).substr(0, 5) +
              " s (events.provider.provider.provider.socket_connect_timeout)";
      return false;
    }
    if (fds[1].revents) {
      uint64_t v;
      while (::read(cancel.fd, &v, sizeof v) > 0) {
      }
      if (cancel.requested()) {
        error = "connecting to " + ep.display() + " was cancelled";
        return false;
      }
    }
    if (fds[0].revents) break;
  }
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) {
    error = "cannot connect to " + ep.display() + ": " + std::strerror(err);
    return false;
  }
  // Blocking from here on, as after redisConnectWithTimeout, for AUTH and PING.
  const int flags = fcntl(c->fd, F_GETFL, 0);
  fcntl(c->fd, F_SETFL, flags & ~O_NONBLOCK);
  c->flags |= REDIS_BLOCK;
  return true;
}

void Connection::close() noexcept {
  if (c_) redisFree(c_);
  c_ = nullptr;
  out_.clear();
  in_begin_ = in_end_ = 0;
}

bool Connection::open(const Endpoint& ep, std::string& error, const Cancel* cancel) {
  close();
  const timeval tv = to_timeval(ep.connect_timeout_s);
  redisContext* c = cancel ? redisConnectNonBlock(ep.host.c_str(), ep.port)
                           : redisConnectWithTimeout(ep.host.c_str(), ep.port, tv);
  if (c && !c->err && cancel && !finish_connect(c, ep, *cancel, error)) {
    redisFree(c);
    return false;
  }
  if (!c || c->err) {
    std::string why = c ? c->errstr : "out of memory";
    if (c && c->err == REDIS_ERR_IO && (errno == EINPROGRESS || errno == ETIMEDOUT ||
                                        why.find("timed out") != std::string::npos)) {
      why = "timed out after " + std::to_string(ep.connect_timeout_s).substr(0, 5) +
            " s (events.provider.provider.provider.socket_connect_timeout)";
    } else if (c && c->err == REDIS_ERR_OTHER) {
      why = "cannot resolve host '" + ep.host + "': " + why;
    }
    if (c) redisFree(c);
    error = "cannot connect to " + ep.display() + ": " + why;
    return false;
  }
  redisSetTimeout(c, tv);  // bounds the AUTH and PING round trips below
  auto fail = [&](const std::string& why) {
    redisFree(c);
    error = why;
    return false;
  };
  if (!ep.password.empty()) {
    auto* r = static_cast<redisReply*>(
        ep.user.empty() ? redisCommand(c, "AUTH %b", ep.password.data(), ep.password.size())
                        : redisCommand(c, "AUTH %b %b", ep.user.data(), ep.user.size(),
                                       ep.password.data(), ep.password.size()));
    if (!r) return fail("cannot authenticate at " + ep.display() + ": " + c->errstr);
    if (r->type == REDIS_REPLY_ERROR) {
      const std::string why = reply_text(r);
      freeReplyObject(r);
      return fail("authentication failed at " + ep.display() + ": " + why);
    }
    freeReplyObject(r);
  }
  auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
  if (!r) {
    return fail("no answer from " + ep.display() + ": " +
                (c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)
                     ? std::string("timed out waiting for PING")
                     : std::string(c->errstr)));
  }
  if (r->type == REDIS_REPLY_ERROR) {
    std::string why = reply_text(r);
    freeReplyObject(r);
    if (why.rfind("NOAUTH", 0) == 0) {
      why += " (set a password in events.provider.provider.provider)";
      return fail("authentication failed at " + ep.display() + ": " + why);
    }
    return fail("the server at " + ep.display() + " refused PING: " + why);
  }
  freeReplyObject(r);
  redisEnableKeepAlive(c);
  // From here on the poll() loop drives the socket.
  const int flags = fcntl(c->fd, F_GETFL, 0);
  fcntl(c->fd, F_SETFL, flags | O_NONBLOCK);
  c->flags &= ~REDIS_BLOCK;
  c_ = c;
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
