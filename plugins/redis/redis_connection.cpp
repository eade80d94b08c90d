#include "redis_connection.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace athomic::redis {

std::string seconds_text(double s) {
  std::string t = std::to_string(s);
  t.erase(t.find_last_not_of('0') + 1);
  if (t.back() == '.') t.pop_back();
  return t + " s";
}

namespace {

std::string connect_timeout_text(double s) {
  return seconds_text(s) + " (events.provider.provider.provider.socket_connect_timeout)";
}

Clock::time_point deadline_after(double seconds) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// TCP keepalive as hiredis sets it (15 s idle, then 3 probes 5 s apart), so that a peer that
// vanished is noticed even when nothing is written; and no Nagle delay on pipelined commands.
void tune_socket(int fd) {
  const int one = 1, idle = 15, interval = 5, count = 3;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

}  // namespace

void Connection::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  phase_ = Phase::closed;
  resolution_.reset();  // a resolver still running finishes alone
  addresses_.clear();
  handshake_replies_.clear();
  out_.clear();
  in_begin_ = in_end_ = 0;
}

void Connection::begin(const Endpoint& ep) {
  close();
  ep_ = &ep;
  deadline_ = deadline_after(ep.connect_timeout_s);
  phase_ = Phase::resolving;
  resolution_ = std::make_unique<Resolution>(ep.host, ep.port);
}

pollfd Connection::wait() const noexcept {
  switch (phase_) {
    case Phase::resolving:
      return {resolution_->fd(), POLLIN, 0};
    case Phase::connecting:
      return {fd_, POLLOUT, 0};
    case Phase::handshaking:
      return {fd_, static_cast<short>(POLLIN | (out_.empty() ? 0 : POLLOUT)), 0};
    default:
      return {-1, 0, 0};
  }
}

// Starts a non-blocking connect to the next address; false (with @p error) when none is left.
bool Connection::connect_next(std::string& error) {
  while (!addresses_.empty()) {
    const Address a = addresses_.front();
    addresses_.erase(addresses_.begin());
    if (fd_ >= 0) ::close(fd_);
    fd_ = ::socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      error = std::strerror(errno);
      continue;
    }
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&a.addr), a.len) == 0 ||
        errno == EINPROGRESS) {
      phase_ = Phase::connecting;
      return true;
    }
    error = std::strerror(errno);
  }
  return false;
}

Connection::Step Connection::advance(short revents, std::string& error) {
  const Endpoint& ep = *ep_;
  auto fail = [&](std::string why) {
    close();
    error = std::move(why);
    return Step::failed;
  };
  const bool late = Clock::now() >= deadline_;
  switch (phase_) {
    case Phase::resolving: {
      if (!resolution_->done()) {
        if (!late) return Step::pending;
        return fail("cannot connect to " + ep.display() + ": cannot resolve host '" + ep.host +
                    "' within " + connect_timeout_text(ep.connect_timeout_s) +
                    "; check the host name and the name servers in /etc/resolv.conf");
      }
      addresses_ = resolution_->addresses();
      const std::string why = resolution_->error();
      resolution_.reset();
      if (addresses_.empty()) {
        return fail("cannot connect to " + ep.display() + ": cannot resolve host '" + ep.host +
                    "': " + (why.empty() ? "no address" : why));
      }
      std::string connect_error;
      deadline_ = deadline_after(ep.connect_timeout_s);
      if (!connect_next(connect_error)) {
        return fail("cannot connect to " + ep.display() + ": " + connect_error);
      }
      return Step::pending;
    }
    case Phase::connecting: {
      if (!revents) {
        if (!late) return Step::pending;
        return fail("cannot connect to " + ep.display() + ": timed out after " +
                    connect_timeout_text(ep.connect_timeout_s));
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err) {
        std::string next_error = std::strerror(err);
        if (connect_next(next_error)) return Step::pending;  // the host's next address
        return fail("cannot connect to " + ep.display() + ": " + next_error);
      }
      tune_socket(fd_);
      // AUTH (with a password) and PING, pipelined, answered within one more timeout.
      if (!ep.password.empty()) {
        if (ep.user.empty()) {
          resp::append_command(out_, "AUTH", ep.password);
        } else {
          resp::append_command(out_, "AUTH", ep.user, ep.password);
        }
      }
      resp::append_command(out_, "PING");
      if (ep.must_be_master) resp::append_command(out_, "ROLE");
      handshake_expected_ = (ep.password.empty() ? 1 : 2) + (ep.must_be_master ? 1 : 0);
      deadline_ = deadline_after(ep.connect_timeout_s);
      phase_ = Phase::handshaking;
      revents = POLLOUT;
      [[fallthrough]];
    }
    case Phase::handshaking: {
      std::string io_error;
      if ((revents & POLLOUT) && !flush(io_error)) {
        return fail("no answer from " + ep.display() + ": " + io_error);
      }
      if ((revents & (POLLIN | POLLERR | POLLHUP)) && !read(io_error)) {
        return fail("no answer from " + ep.display() + ": " + io_error);
      }
      bool complete = false;
      if (!handshake_replies(io_error, complete)) return fail(io_error);
      if (complete) {
        phase_ = Phase::ready;
        handshake_replies_.clear();
        return Step::ready;
      }
      if (!late) return Step::pending;
      const std::size_t auth = ep.password.empty() ? 0 : 1;
      return fail("no answer from " + ep.display() + ": timed out waiting for " +
                  (handshake_replies_.size() < auth       ? "AUTH"
                   : handshake_replies_.size() < auth + 1 ? "PING"
                                                          : "ROLE") +
                  " (" + connect_timeout_text(ep.connect_timeout_s) + ")");
    }
    case Phase::ready:
      return Step::ready;
    case Phase::closed:
      break;
  }
  error = "connecting to " + ep.display() + " was abandoned";
  return Step::failed;
}

// Collects the answers to AUTH and PING; @p complete once both (or the one) came and were good.
bool Connection::handshake_replies(std::string& error, bool& complete) {
  const Endpoint& ep = *ep_;
  std::string parse_error;
  if (!each_reply(parse_error, [&](const resp::Reply& r) {
        if (handshake_replies_.size() < handshake_expected_) {
          // ROLE's answer is an array whose first element is the role.
          handshake_replies_.emplace_back(
              r.is_array ? '*' : r.value.type,
              std::string(r.is_array ? (r.count ? r.items[0].text : "") : r.value.text));
        }
        return true;
      })) {
    error = "no answer from " + ep.display() + ": " + parse_error;
    return false;
  }
  if (handshake_replies_.size() < handshake_expected_) return true;
  const std::size_t auth = ep.password.empty() ? 0 : 1;
  if (auth && handshake_replies_.front().first == '-') {
    error = "authentication failed at " + ep.display() + ": " + handshake_replies_.front().second;
    return false;
  }
  if (handshake_replies_[auth].first == '-') {
    std::string why = handshake_replies_[auth].second;
    if (why.rfind("NOAUTH", 0) == 0) {
      error = "authentication failed at " + ep.display() + ": " + why +
              (ep.is_sentinel ? " (set events.provider.provider.provider.sentinel_password)"
                              : " (set a password in events.provider.provider.provider)");
    } else {
      error = "the server at " + ep.display() + " refused PING: " + why;
    }
    return false;
  }
  if (ep.must_be_master) {
    const auto& [type, role] = handshake_replies_[auth + 1];
    if (type != '*' || role != "master") {
      error = "the server at " + ep.display() + " is not the master: ROLE answered " +
              (type == '*' ? "'" + role + "'" : std::string("\"") + type + role + "\"");
      return false;
    }
  }
  complete = true;
  return true;
}

bool Connection::open(const Endpoint& ep, std::string& error, const Cancel* cancel) {
  begin(ep);
  for (short revents = 0;;) {
    switch (advance(revents, error)) {
      case Step::ready:
        return true;
      case Step::failed:
        return false;
      case Step::pending:
        break;
    }
    const int r = wait_until(wait().events, cancel, error);
    if (r < 0) {
      error = "connecting to " + ep.display() +
              (error == "cancelled" ? " was cancelled" : ": " + error);
      return false;
    }
    revents = static_cast<short>(r);  // advance() sees the deadline by itself
  }
}

int Connection::wait_until(short events, const Cancel* cancel, std::string& error) {
  for (;;) {
    pollfd fds[2] = {{phase_ == Phase::resolving ? resolution_->fd() : fd_, events, 0},
                     {cancel ? cancel->fd : -1, POLLIN, 0}};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count() + 1;
    const int n = ::poll(fds, cancel ? 2 : 1, static_cast<int>(std::max<int64_t>(0, left)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close();
      error = std::string("poll failed: ") + std::strerror(errno);
      return -1;
    }
    if (cancel && n > 0 && fds[1].revents) {
      uint64_t v;
      while (::read(cancel->fd, &v, sizeof v) > 0) {
      }
      if (cancel->requested()) {
        close();
        error = "cancelled";
        return -1;
      }
      if (!fds[0].revents) continue;  // woken for something else: keep waiting
    }
    return n > 0 ? fds[0].revents : 0;
  }
}

bool Connection::call(std::string_view command, std::string& error, const Cancel* cancel,
                      const std::function<void(const resp::Reply&)>& on_reply) {
  const Endpoint& ep = *ep_;
  out_.append(command);
  deadline_ = deadline_after(ep.connect_timeout_s);
  for (bool answered = false;;) {
    std::string io_error;
    if (!flush(io_error)) {
      close();
      error = "no answer from " + ep.display() + ": " + io_error;
      return false;
    }
    const int r =
        wait_until(static_cast<short>(POLLIN | (out_.empty() ? 0 : POLLOUT)), cancel, io_error);
    if (r < 0) {
      error = "asking " + ep.display() + ": " + io_error;
      return false;
    }
    if (r == 0) {
      close();
      error = "no answer from " + ep.display() + " within " + connect_timeout_text(ep.connect_timeout_s);
      return false;
    }
    if ((r & (POLLIN | POLLERR | POLLHUP)) &&
        (!read(io_error) || !each_reply(io_error, [&](const resp::Reply& reply) {
          if (answered) return false;
          on_reply(reply);
          answered = true;
          return true;
        }))) {
      close();
      error = "no answer from " + ep.display() + ": " + io_error;
      return false;
    }
    if (answered) return true;
  }
}

long Connection::write_some(std::string_view data, std::string& error) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
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
  if (done > 0) last_write_ = Clock::now();
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
    const ssize_t n = ::read(fd_, in_.data() + in_end_, in_.size() - in_end_);
    if (n > 0) {
      in_end_ += static_cast<std::size_t>(n);
      last_read_ = Clock::now();
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
