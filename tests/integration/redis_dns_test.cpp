// Name resolution stays within socket_connect_timeout and stop() cancels it, with a DNS server
// that receives queries and never answers. Run by silent_dns.sh, which gives this process its
// own /etc/resolv.conf (naming that server) and /etc/hosts.
#include "redis_support.h"

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <poll.h>

namespace athomic::test {
namespace {

using testing::HasSubstr;

// A UDP "DNS server" on ATHOMIC_TEST_SILENT_DNS:53 that counts queries and answers none.
class SilentDns {
 public:
  SilentDns() {
    const char* addr = std::getenv("ATHOMIC_TEST_SILENT_DNS");
    if (!addr)
      throw std::runtime_error("ATHOMIC_TEST_SILENT_DNS is not set: run through silent_dns.sh");
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(53);
    ::inet_pton(AF_INET, addr, &sa.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      throw std::runtime_error(std::string("silent DNS server: bind ") + addr +
                               ":53: " + std::strerror(errno));
    }
    thread_ = std::thread([this] {
      char buf[1500];
      while (!done_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) > 0 && ::recv(fd_, buf, sizeof buf, 0) > 0) ++queries_;
      }
    });
  }
  ~SilentDns() {
    done_ = true;
    thread_.join();
    ::close(fd_);
  }
  int queries() const { return queries_; }

 private:
  int fd_ = -1;
  std::atomic<bool> done_{false};
  std::atomic<int> queries_{0};
  std::thread thread_;
};

void write_hosts(const std::string& extra) {
  const char* path = std::getenv("ATHOMIC_TEST_HOSTS_FILE");
  ASSERT_TRUE(path) << "ATHOMIC_TEST_HOSTS_FILE is not set: run through silent_dns.sh";
  std::ofstream(path, std::ios::trunc) << "127.0.0.1 localhost\n" << extra;
}

TEST(RedisDns, StartFailsWithinTheConnectTimeoutWhenNoNameServerAnswers) {
  SilentDns dns;
  auto s = redis_settings("redis://never-answers.invalid:6379/0");
  s.provider_config["provider"]["provider"]["socket_connect_timeout"] = 0.5;
  const auto before = std::chrono::steady_clock::now();
  const std::string error = start_error(s);
  const auto took = std::chrono::steady_clock::now() - before;
  EXPECT_THAT(error, HasSubstr("cannot resolve host 'never-answers.invalid'"));
  EXPECT_THAT(error, HasSubstr("socket_connect_timeout"));
  EXPECT_GE(dns.queries(), 1) << "the resolver never asked the silent server";
  // An upper bound only (10x the timeout): the resolver itself would wait a minute.
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(RedisDns, CloseDuringAReconnectThatIsResolvingReturns) {
  RedisServer server;
  write_hosts("127.0.0.1 redis-under-test\n");
  auto s = redis_settings("redis://redis-under-test:" + std::to_string(server.port()) + "/0");
  s.provider_config["provider"]["provider"]["socket_connect_timeout"] = 60;
  auto bus = started(s);
  bus->subscribe("x", [](const Event&) {});
  // From now on the name is known only to the silent DNS server.
  write_hosts("");
  SilentDns dns;
  server.kill9();
  bus->publish("x", {});  // buffered meanwhile
  ASSERT_TRUE(eventually([&] { return dns.queries() >= 1; })) << "no reconnect attempt resolved";
  const auto before = std::chrono::steady_clock::now();
  bus->close();
  // Not a measure of speed: only that close() did not wait out the resolver (a minute) or the
  // 60 s timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(30));
  EXPECT_THROW(bus->publish("x", {}), EventBusError);
}

TEST(RedisDns, ASentinelWhoseNameNoServerAnswersIsPassedOverWithinTheTimeout) {
  SilentDns dns;
  RedisServer master;
  SentinelServer sentinel("m", master.port(), 1);
  auto s = redis_sentinel_settings(
      "never-answers.invalid:26379,127.0.0.1:" + std::to_string(sentinel.port()), "m");
  s.provider_config["provider"]["provider"]["socket_connect_timeout"] = 0.5;
  const auto before = std::chrono::steady_clock::now();
  auto bus = started(s);
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(5));
  EXPECT_GE(dns.queries(), 1) << "the resolver never asked the silent server";
  EXPECT_THAT(bus->health().detail, HasSubstr(":" + std::to_string(master.port())));
  // With that sentinel alone, start() fails naming it, within the timeout too.
  s.provider_config["provider"]["provider"]["sentinels"] = "never-answers.invalid";
  const auto again = std::chrono::steady_clock::now();
  EXPECT_THAT(start_error(s), HasSubstr("never-answers.invalid:26379: cannot connect to sentinel "
                                        "never-answers.invalid:26379: cannot resolve host "
                                        "'never-answers.invalid' within 0.5 s"));
  EXPECT_LT(std::chrono::steady_clock::now() - again, std::chrono::seconds(5));
}

}  // namespace
}  // namespace athomic::test
