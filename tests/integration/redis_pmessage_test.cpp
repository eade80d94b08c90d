// The redis provider reading pmessages no real server sends: a scripted server answers the
// provider's commands and, once a pattern is subscribed, sends malformed and foreign pmessages
// before a good one. Each bad one is skipped by the provider, or refused by the host (a name no
// publisher could use: undeliverable; a body that does not decode: malformed); the connection is
// kept and the good one arrives.
#include "redis_support.h"

#include <atomic>
#include <mutex>
#include <thread>

namespace athomic::test {
namespace {

std::string bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}
std::string array(std::initializer_list<std::string> items) {
  std::string out = "*" + std::to_string(items.size()) + "\r\n";
  for (const auto& i : items) out += i;
  return out;
}

// Answers PING, PUBLISH, AUTH and (P)SUBSCRIBE like Redis, on every connection it accepts. On a
// PUBLISH it sends @p script(glob) on the connection that last PSUBSCRIBEd: the bus installs a
// handler only once its subscription is confirmed, so what came with the confirmation could
// find none.
class ScriptedRedis {
 public:
  explicit ScriptedRedis(std::function<std::string(const std::string&)> script)
      : script_(std::move(script)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 8)) {
      throw std::runtime_error(std::string("scripted redis: ") + std::strerror(errno));
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~ScriptedRedis() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    acceptor_.join();
    std::lock_guard lock(m_);
    for (int fd : conns_) ::shutdown(fd, SHUT_RDWR);
    for (auto& t : threads_) t.join();
    for (int fd : conns_) ::close(fd);
    ::close(fd_);
  }
  std::string uri() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }
  int accepted() const { return accepted_.load(); }

 private:
  void accept_loop() {
    while (!stop_) {
      const int fd = ::accept(fd_, nullptr, nullptr);
      if (fd < 0) return;
      accepted_++;
      std::lock_guard lock(m_);
      conns_.push_back(fd);
      threads_.emplace_back([this, fd] { serve(fd); });
    }
  }
  void serve(int fd) {
    std::string in;
    char buf[4096];
    for (;;) {
      std::vector<std::string> cmd;
      while (!parse(in, cmd)) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return;
        in.append(buf, static_cast<std::size_t>(n));
      }
      if (cmd.empty()) continue;
      const std::string& c = cmd[0];
      if (c == "PING") {
        send(fd, "+PONG\r\n");
      } else if (c == "PUBLISH") {
        send(fd, ":0\r\n");
        std::lock_guard lock(m_);
        if (subscriber_ >= 0) send(subscriber_, script_(glob_));
      } else if ((c == "PSUBSCRIBE" || c == "SUBSCRIBE") && cmd.size() == 2) {
        const std::string kind = c == "PSUBSCRIBE" ? "psubscribe" : "subscribe";
        {
          // Recorded before the confirmation goes out: the bus may publish as soon as it has
          // it, and that PUBLISH is served by another connection's thread.
          std::lock_guard lock(m_);
          if (c == "PSUBSCRIBE") subscriber_ = fd, glob_ = cmd[1];
        }
        send(fd, array({bulk(kind), bulk(cmd[1]), ":1\r\n"}));
      } else {
        send(fd, "+OK\r\n");
      }
    }
  }
  void send(int fd, const std::string& out) {
    std::lock_guard lock(write_m_);
    if (::write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size())) {
      ADD_FAILURE() << "scripted redis: a write failed";
    }
  }
  // One command (an array of bulk strings) from the front of @p in, consumed.
  static bool parse(std::string& in, std::vector<std::string>& cmd) {
    cmd.clear();
    std::size_t at = 0;
    auto line = [&](std::string& s) {
      const auto end = in.find("\r\n", at);
      if (end == std::string::npos) return false;
      s = in.substr(at, end - at);
      at = end + 2;
      return true;
    };
    std::string head;
    if (!line(head) || head.empty() || head[0] != '*') return false;
    const int n = std::stoi(head.substr(1));
    for (int i = 0; i < n; ++i) {
      std::string len;
      if (!line(len)) return false;
      const auto size = static_cast<std::size_t>(std::stoul(len.substr(1)));
      if (in.size() < at + size + 2) return false;
      cmd.push_back(in.substr(at, size));
      at += size + 2;
    }
    in.erase(0, at);
    return true;
  }

  std::function<std::string(const std::string&)> script_;
  std::mutex write_m_;
  int subscriber_ = -1;  // guarded by m_
  std::string glob_;     // guarded by m_
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::mutex m_;
  std::vector<int> conns_;
  std::vector<std::thread> threads_;
};

class RedisPmessages : public testing::TestWithParam<DispatchMode> {};

TEST_P(RedisPmessages, MalformedAndForeignPmessagesAreSkippedAndTheConnectionKept) {
  ScriptedRedis server([](const std::string& glob) {
    const std::string good = R"({"n":1})";
    return array({bulk("pmessage"), bulk(glob), bulk("app_events:orders.a")}) +  // no body
           array({bulk("pmessage"), bulk(glob)}) +                               // no channel
           array({bulk("pmessage"), bulk(glob), ":5\r\n", bulk(good)}) +         // not a channel
           array({bulk("pmessage"), bulk("app_events:other.*"), bulk("app_events:other.x"),
                  bulk(good)}) +  // a glob never subscribed
           array({bulk("pmessage"), bulk(glob), bulk("app_events:"), bulk(good)}) +
           array({bulk("pmessage"), bulk(glob), bulk("app_events:orders..x"), bulk(good)}) +
           array({bulk("pmessage"), bulk(glob), bulk("app_events:orders.a.b"), bulk(good)}) +
           array({bulk("pmessage"), bulk(glob), bulk("app_events:orders.a b"), bulk(good)}) +
           array({bulk("pmessage"), bulk(glob), bulk("app_events:orders.bad"), bulk("{not json")}) +
           array({bulk("pmessage"), bulk(glob), bulk("app_events:orders.good"), bulk(good)});
  });
  auto bus = started(redis_settings(server.uri(), json::object(), GetParam()));
  std::mutex m;
  std::vector<std::string> names;
  bus->subscribe("orders.*", [&](const Event& e) {
    std::lock_guard lock(m);
    names.push_back(std::string(e.name()) + "=" + e.payload().dump());
  });
  bus->publish("go", {});  // the server sends the script
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(m);
    return !names.empty();
  }));
  EXPECT_TRUE(eventually([&] { return bus->stats().malformed_messages == 1; }))
      << "the pmessage whose body is not JSON was not counted as malformed";
  // The name with a space passes the provider's part-by-part check; the host refuses it
  // (counted as it is dispatched: waited for, on a busy machine).
  EXPECT_TRUE(eventually([&] { return bus->stats().undeliverable == 1u; }))
      << bus->stats().undeliverable << " undeliverable";
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::lock_guard lock(m);
  EXPECT_THAT(names, testing::ElementsAre(R"(orders.good={"n":1})"));
  EXPECT_EQ(bus->stats().undeliverable, 1u);
  EXPECT_EQ(server.accepted(), 2) << "a connection was dropped and made again";
  EXPECT_TRUE(bus->health().healthy());
}

INSTANTIATE_TEST_SUITE_P(Modes, RedisPmessages,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

}  // namespace
}  // namespace athomic::test
