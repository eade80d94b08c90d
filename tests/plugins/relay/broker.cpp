// A tiny publish/subscribe server for the relay test providers (wire.h): the "server" the
// conformance suite's faulty providers talk to, so that they are real remote providers with a
// second process on the other side. One thread, one poll() loop, loopback only.
//
// Usage: athomic-relay-broker [--port N]   prints "port <N>" on stdout once it listens.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "wire.h"

namespace {

using athomic::relay::Frame;

struct Client {
  int fd = -1;
  std::string in, out;
  std::size_t out_sent = 0;  // bytes of `out` already written
  std::set<std::string, std::less<>> topics;
};

// A listening socket on 127.0.0.1:port, or -1.
int try_listen(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Port 0: the kernel's choice. tests/conformance/with_relay.sh passes a port claimed for it,
// outside the ephemeral range, which it can start the broker on again after stopping it.
int listen_on(int port) {
  int fd = try_listen(port);
  if (fd >= 0 && port == 0) {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  if (fd < 0) {
    std::fprintf(stderr, "athomic-relay-broker: cannot listen on 127.0.0.1:%d: %s\n", port,
                 std::strerror(errno));
    std::exit(1);
  }
  std::printf("port %d\n", port);
  std::fflush(stdout);
  return fd;
}

class Broker {
 public:
  explicit Broker(int listen_fd) : listen_fd_(listen_fd) {}

  [[noreturn]] void run() {
    for (;;) {
      std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
      for (auto& c : clients_) {
        fds.push_back({c->fd, static_cast<short>(POLLIN | (c->out.empty() ? 0 : POLLOUT)), 0});
      }
      if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) std::exit(1);
      if (fds[0].revents & POLLIN) accept_one();
      std::vector<Client*> gone;
      for (std::size_t i = 1; i < fds.size(); ++i) {
        Client* c = find(fds[i].fd);
        if (!c) continue;
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) && !read_from(*c))
          gone.push_back(c);
        else if ((fds[i].revents & POLLOUT) && !write_to(*c))
          gone.push_back(c);
      }
      for (Client* c : gone) drop(c);
      // Replies and messages made while reading go out at once where the socket takes them.
      gone.clear();
      for (auto& c : clients_) {
        if (!c->out.empty() && !write_to(*c)) gone.push_back(c.get());
      }
      for (Client* c : gone) drop(c);
    }
  }

 private:
  void accept_one() {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_unique<Client>();
    c->fd = fd;
    clients_.push_back(std::move(c));
  }

  Client* find(int fd) {
    for (auto& c : clients_) {
      if (c->fd == fd) return c.get();
    }
    return nullptr;
  }

  void drop(Client* c) {
    ::close(c->fd);
    std::erase_if(clients_, [c](const auto& p) { return p.get() == c; });
  }

  bool read_from(Client& c) {
    char buf[65536];
    const ssize_t n = ::read(c.fd, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return false;
    if (n < 0) return true;
    c.in.append(buf, static_cast<std::size_t>(n));
    std::size_t used = 0;
    for (;;) {
      Frame f;
      const auto r = athomic::relay::parse_frame(std::string_view(c.in).substr(used), f);
      if (!r) return false;  // not our protocol: hang up
      if (*r == 0) break;
      handle(c, f);
      used += *r;
    }
    c.in.erase(0, used);
    return true;
  }

  void handle(Client& c, const Frame& f) {
    switch (f.op) {
      case 'S':
        c.topics.emplace(f.topic);
        athomic::relay::append_frame(c.out, 's', f.topic);
        break;
      case 'U':
        if (auto it = c.topics.find(f.topic); it != c.topics.end()) c.topics.erase(it);
        athomic::relay::append_frame(c.out, 'u', f.topic);
        break;
      case 'P': {
        int receivers = 0;
        for (auto& other : clients_) {
          if (other->topics.count(f.topic) == 0) continue;
          athomic::relay::append_frame(other->out, 'm', f.topic, f.body);
          ++receivers;
        }
        athomic::relay::append_frame(c.out, 'p', f.topic, std::to_string(receivers));
        break;
      }
      default:
        break;
    }
  }

  bool write_to(Client& c) {
    while (c.out_sent < c.out.size()) {
      const ssize_t n =
          ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) return false;
        break;
      }
      c.out_sent += static_cast<std::size_t>(n);
    }
    if (c.out_sent == c.out.size()) {
      c.out.clear();
      c.out_sent = 0;
    } else if (c.out_sent > (std::size_t{1} << 20)) {
      c.out.erase(0, c.out_sent);
      c.out_sent = 0;
    }
    return true;
  }

  int listen_fd_;
  std::vector<std::unique_ptr<Client>> clients_;
};

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--port") port = std::atoi(argv[i + 1]);
  }
  ::signal(SIGPIPE, SIG_IGN);
  Broker(listen_on(port)).run();
}
