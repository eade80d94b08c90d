#include "redis_connection.h"

#include <cerrno>
#include <cmath>
#include <fcntl.h>
#include <sys/time.h>

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
    want_write_ = o.want_write_;
    o.c_ = nullptr;
  }
  return *this;
}

void Connection::close() noexcept {
  if (c_) redisFree(c_);
  c_ = nullptr;
  want_write_ = false;
}

bool Connection::open(const Endpoint& ep, std::string& error) {
  close();
  const timeval tv = to_timeval(ep.connect_timeout_s);
  redisContext* c = redisConnectWithTimeout(ep.host.c_str(), ep.port, tv);
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

void Connection::append(const std::string& command) {
  redisAppendFormattedCommand(c_, command.data(), command.size());
  want_write_ = true;
}

bool Connection::flush(std::string& error) {
  while (want_write_) {
    int done = 0;
    errno = 0;
    if (redisBufferWrite(c_, &done) == REDIS_ERR) {
      error = c_->errstr;
      return false;
    }
    if (done) {
      want_write_ = false;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      break;  // the socket is full; poll() says when to go on
    }
  }
  return true;
}

bool Connection::read(std::string& error, const std::function<void(redisReply*)>& on_reply) {
  if (redisBufferRead(c_) == REDIS_ERR) {
    error = c_->errstr;
    return false;
  }
  for (;;) {
    void* reply = nullptr;
    if (redisReaderGetReply(c_->reader, &reply) == REDIS_ERR) {
      error = "protocol error from the server";
      return false;
    }
    if (!reply) return true;
    on_reply(static_cast<redisReply*>(reply));
    freeReplyObject(reply);
  }
}

}  // namespace athomic::redis
