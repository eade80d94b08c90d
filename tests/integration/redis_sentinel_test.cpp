// Redis Sentinel with real servers: a master, a replica and three sentinels (quorum 2) on
// loopback ports. The provider asks the sentinels for the master, checks it with ROLE, and
// follows a failover without a restart of either bus.
#include "log_capture.h"
#include "redis_support.h"

#include <atomic>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

namespace athomic::test {
namespace {

using testing::HasSubstr;
using testing::Not;

constexpr const char* kMasterName = "athomic-master";

// The value after @p key in a flat key/value reply (SENTINEL MASTER), or "".
std::string field(const json& reply, const std::string& key) {
  if (!reply.is_array()) return "";
  for (std::size_t i = 0; i + 1 < reply.size(); i += 2) {
    if (reply[i] == key) return reply[i + 1].is_string() ? reply[i + 1].get<std::string>() : "";
  }
  return "";
}

std::string address_list(const std::vector<std::unique_ptr<SentinelServer>>& sentinels) {
  std::string list;
  for (const auto& s : sentinels)
    list += (list.empty() ? "" : ",") + ("127.0.0.1:" + std::to_string(s->port()));
  return list;
}

EventsSettings sentinel_settings(const std::string& sentinels) {
  return redis_sentinel_settings(sentinels, kMasterName);
}

// One master, one replica of it, three sentinels watching it with quorum 2, each knowing the
// replica and the two other sentinels: ready to fail over.
class SentinelSetup : public testing::Test {
 protected:
  void SetUp() override {
    master_ = std::make_unique<RedisServer>();
    replica_ = std::make_unique<RedisServer>(
        std::vector<std::string>{"--replicaof", "127.0.0.1", std::to_string(master_->port()),
                                 "--repl-diskless-load", "swapdb"});  // no dump.rdb in the cwd
    for (int i = 0; i < 3; ++i) {
      sentinels_.push_back(std::make_unique<SentinelServer>(kMasterName, master_->port(), 2));
    }
    ASSERT_TRUE(eventually([&] {
      RawClient r(replica_->port());
      const json info = r.command({"INFO", "replication"});
      return info.is_string() &&
             info.get<std::string>().find("master_link_status:up") != std::string::npos;
    })) << "the replica did not sync";
    for (const auto& s : sentinels_) {
      ASSERT_TRUE(eventually([&] {
        RawClient c(s->port());
        const json m = c.command({"SENTINEL", "MASTER", kMasterName});
        return field(m, "num-other-sentinels") == "2" && field(m, "num-slaves") == "1";
      })) << "sentinel "
          << s->port() << " did not find the replica and the other sentinels";
    }
  }

  std::string sentinels() const { return address_list(sentinels_); }

  std::unique_ptr<RedisServer> master_, replica_;
  std::vector<std::unique_ptr<SentinelServer>> sentinels_;
};

TEST_F(SentinelSetup, StartAsksTheSentinelsForTheMasterSkippingOneThatIsDown) {
  // The first address in the list answers nothing.
  const std::string list = "127.0.0.1:" + std::to_string(free_port()) + "," + sentinels();
  auto bus = started(sentinel_settings(list));
  EXPECT_TRUE(bus->health().healthy());
  EXPECT_THAT(bus->health().detail, HasSubstr(":" + std::to_string(master_->port())));
  std::atomic<int> got{0};
  bus->subscribe("hello", [&](const Event&) { ++got; });
  Completion c = bus->publish("hello", {{"n", 1}});
  ASSERT_TRUE(c.wait_for(kGenerous));
  EXPECT_TRUE(c.delivered());
  EXPECT_EQ(c.receivers(), 1);
  EXPECT_TRUE(eventually([&] { return got == 1; }));
  // The subscription is on the master itself.
  RawClient m(master_->port());
  EXPECT_EQ(m.command({"PUBSUB", "NUMSUB", "app_events:hello"})[1], 1);
}

// A failover while the host holds deliveries back (a slow handler, a dispatch queue of 4): the
// bus still follows it and subscribes on the new master, and what the old connection had
// received and not handed over is counted as dropped by the transport, never more than the
// server delivered. (What the old master still buffers for the connection is beyond reach, so
// "handled + counted = delivered" is not promised.) Leaving the old connection used to keep the
// "held" mark: the new connection's handshake was never read, and the bus stayed deaf, spinning.
TEST_F(SentinelSetup, AFailoverWhileDeliveryIsHeldBackIsFollowedAndWhatWasHeldIsCounted) {
  EventsSettings s = sentinel_settings(sentinels());
  s.dispatch_mode = DispatchMode::pool;
  s.workers = 1;
  s.max_queued_events = 4;
  auto subscriber = started(s);
  auto publisher = started(sentinel_settings(sentinels()));
  std::atomic<int> handled{0};
  subscriber->subscribe("held", [&](const Event&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ++handled;
  });
  const json payload = {{"pad", std::string(1000, 'x')}};
  int told_received = 0;
  for (int i = 0; i < 1500; ++i) {
    Completion c = publisher->publish("held", payload);
    ASSERT_TRUE(c.wait_for(kGenerous));
    told_received += c.receivers() > 0 ? 1 : 0;
  }
  ASSERT_GT(told_received, 0);
  RawClient(sentinels_[0]->port()).command({"SENTINEL", "FAILOVER", kMasterName});
  const int new_master = replica_->port();
  EXPECT_TRUE(eventually(
      [&] {
        try {
          return RawClient(new_master).command({"PUBSUB", "NUMSUB", "app_events:held"})[1] == 1;
        } catch (const std::runtime_error&) {
          return false;
        }
      },
      std::chrono::seconds(30)))
      << "the subscriber did not follow the failover: " << subscriber->health().detail;
  EXPECT_GT(subscriber->stats().dropped_by_transport, 0u)
      << "what the held connection had received was dropped uncounted";
  EXPECT_LE(static_cast<uint64_t>(handled.load()) + subscriber->stats().dropped_by_transport,
            static_cast<uint64_t>(told_received))
      << handled.load() << " handled and " << subscriber->stats().dropped_by_transport
      << " counted as dropped, of " << told_received << " the server delivered to it";
  // And events published now, on the new master, arrive.
  const int before = handled.load();
  Completion c = publisher->publish("held", {{"after", true}});
  ASSERT_TRUE(c.wait_for(kGenerous));
  EXPECT_TRUE(eventually([&] { return handled.load() > before; }, std::chrono::seconds(30)));
}

// A plain data server listed among the sentinels (a typo in a deployment) answers SUBSCRIBE like
// a sentinel, and anyone may PUBLISH a +switch-master there: the watch connection leaves a server
// that refuses SENTINEL before it acts on anything, and the forgery moves nothing.
TEST_F(SentinelSetup, APlainServerListedAsASentinelCannotMoveTheBus) {
  RedisServer decoy;
  const std::string list = "127.0.0.1:" + std::to_string(decoy.port()) + "," + sentinels();
  LogCapture log("athomic.provider.redis");
  auto bus = started(sentinel_settings(list));
  std::atomic<int> got{0};
  bus->subscribe("hello", [&](const Event&) { ++got; });
  const std::string forged = std::string(kMasterName) + " 127.0.0.1 " +
                             std::to_string(master_->port()) + " 127.0.0.1 " +
                             std::to_string(free_port());
  RawClient publisher(decoy.port());
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < until) {
    publisher.command({"PUBLISH", "+switch-master", forged});
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_THAT(log.text(), HasSubstr("it is not a sentinel"));
  EXPECT_THAT(log.text(), Not(HasSubstr("announced +switch-master")));
  EXPECT_TRUE(bus->health().healthy()) << bus->health().detail;
  Completion c = bus->publish("hello", {{"n", 1}});
  ASSERT_TRUE(c.wait_for(kGenerous));
  EXPECT_TRUE(c.delivered());
  EXPECT_TRUE(eventually([&] { return got == 1; }));
  EXPECT_EQ(RawClient(master_->port()).command({"PUBSUB", "NUMSUB", "app_events:hello"})[1], 1);
}

TEST_F(SentinelSetup, TheShippedConfigFileWorks) {
  std::ifstream in(ATHOMIC_SOURCE_DIR "/config/redis-sentinel.toml");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(text.empty());
  // Only where the sentinels are and the master's name change, as a deployment would set them.
  const EventsSettings s =
      Settings::from_toml(text, "redis-sentinel.toml", "development",
                          {{"NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__SENTINELS", sentinels()},
                           {"NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__MASTER_NAME", kMasterName}})
          .events();
  auto bus = started(s);
  Completion c = bus->publish("from.the.file", {});
  ASSERT_TRUE(c.wait_for(kGenerous));
  EXPECT_TRUE(c.delivered()) << c.error();
  EXPECT_THAT(bus->health().detail, HasSubstr(":" + std::to_string(master_->port())));
}

TEST_F(SentinelSetup, AStartWithoutAnySentinelNamesEachOneAsked) {
  const int a = free_port(), b = free_port();
  auto bus = EventBus::create(
      sentinel_settings("127.0.0.1:" + std::to_string(a) + ", 127.0.0.1:" + std::to_string(b)));
  try {
    bus->start();
    FAIL() << "start() succeeded without a sentinel";
  } catch (const EventBusError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no sentinel named the master 'athomic-master'"));
    EXPECT_THAT(e.what(), HasSubstr("127.0.0.1:" + std::to_string(a) + ": "));
    EXPECT_THAT(e.what(), HasSubstr("127.0.0.1:" + std::to_string(b) + ": "));
    EXPECT_THAT(e.what(), HasSubstr("refused"));
  }
}

// A sentinel with a stale view names a master that is gone; the next sentinel's answer is used.
TEST_F(SentinelSetup, AStaleSentinelNamingADeadMasterIsPassedOver) {
  const int dead = free_port();
  SentinelServer stale(kMasterName, dead, 1);
  auto bus = started(
      sentinel_settings("127.0.0.1:" + std::to_string(stale.port()) + "," + sentinels()));
  EXPECT_TRUE(bus->health().healthy());
  EXPECT_THAT(bus->health().detail, HasSubstr(":" + std::to_string(master_->port())));
  Completion c = bus->publish("past.the.stale.one", {});
  ASSERT_TRUE(c.wait_for(kGenerous));
  EXPECT_TRUE(c.delivered()) << c.error();
  // Only the stale one: start fails, naming what was tried and why.
  const std::string error =
      start_error(sentinel_settings("127.0.0.1:" + std::to_string(stale.port())));
  EXPECT_THAT(error, HasSubstr(":" + std::to_string(dead)));
  EXPECT_THAT(error, HasSubstr("which could not be used"));
}

TEST_F(SentinelSetup, AnUnknownMasterNameIsNamed) {
  auto s = sentinel_settings(sentinels());
  s.provider_config["provider"]["provider"]["master_name"] = "no-such-master";
  auto bus = EventBus::create(s);
  try {
    bus->start();
    FAIL() << "start() succeeded with an unknown master name";
  } catch (const EventBusError& e) {
    EXPECT_THAT(e.what(), HasSubstr("knows no master named 'no-such-master'"));
  }
}

// A sentinel that names a replica as the master (its answer is stale, or the master was
// demoted): ROLE tells, and the provider does not use it.
TEST(RedisSentinel, AServerThatIsNotTheMasterIsRefused) {
  RedisServer master;
  RedisServer replica({"--replicaof", "127.0.0.1", std::to_string(master.port()),
                       "--repl-diskless-load", "swapdb"});
  SentinelServer wrong(kMasterName, replica.port(), 1);
  auto bus = EventBus::create(sentinel_settings("127.0.0.1:" + std::to_string(wrong.port())));
  try {
    bus->start();
    FAIL() << "start() used a replica as the master";
  } catch (const EventBusError& e) {
    EXPECT_THAT(e.what(), HasSubstr("127.0.0.1:" + std::to_string(replica.port()) +
                                    "/0 is not the master: ROLE answered 'slave'"));
  }
}

// A listening socket on a free loopback port (set in @p port), for a scripted fake sentinel;
// -1 when it cannot be made.
int loopback_listener(int& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, 8) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  port = ntohs(addr.sin_port);
  return fd;
}

// A sentinel (broken, or not a sentinel at all) that names the master at a port no server can
// have: that is no address, and the next sentinel is asked.
TEST(RedisSentinel, AnAnswerWithAPortOutOfRangeIsNoAddress) {
  RedisServer master;
  SentinelServer good(kMasterName, master.port(), 1);
  int fake_port = 0;
  const int fd = loopback_listener(fake_port);
  ASSERT_GE(fd, 0);
  std::thread fake([fd] {  // answers PING, and names 127.0.0.1:99999 for any master
    const int c = ::accept(fd, nullptr, nullptr);
    char buf[4096];
    for (ssize_t n; c >= 0 && (n = ::recv(c, buf, sizeof buf, 0)) > 0;) {
      const std::string in(buf, static_cast<std::size_t>(n));
      std::string out;
      if (in.find("PING") != std::string::npos) out += "+PONG\r\n";
      if (in.find("get-master-addr-by-name") != std::string::npos)
        out += "*2\r\n$9\r\n127.0.0.1\r\n$5\r\n99999\r\n";
      ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
    }
    if (c >= 0) ::close(c);
  });
  const std::string list = "127.0.0.1:" + std::to_string(fake_port) +
                           ",127.0.0.1:" + std::to_string(good.port());
  {
    auto bus = EventBus::create(sentinel_settings(list));
    try {
      bus->start();
      EXPECT_THAT(bus->health().detail, HasSubstr(":" + std::to_string(master.port())));
    } catch (const EventBusError& e) {
      ADD_FAILURE() << e.what();
    }
  }
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
  fake.join();
}

// After a +switch-master, a sentinel asked before the announcing one may still name the old
// master (its view is stale for a moment, and a demoted master answers ROLE with `master` until
// it is converted). The bus must not go back to it. Here: a fake sentinel, asked first, that
// always names the old master (and drops the watch); a second fake, also stale, that keeps the
// watch subscribed and through which the test sends the announcement; a real sentinel naming
// the new master.
TEST(RedisSentinel, AnAnnouncedSwitchIsNotUndoneByAStaleSentinelAskedFirst) {
  RedisServer old_master, new_master;
  SentinelServer good(kMasterName, new_master.port(), 1);
  const std::string old_port = std::to_string(old_master.port());
  const std::string names_old =
      "*2\r\n$9\r\n127.0.0.1\r\n$" + std::to_string(old_port.size()) + "\r\n" + old_port + "\r\n";
  // A scripted sentinel naming the old master. With @p keep_watch it confirms SUBSCRIBE and
  // hands that connection to @p watch; without, it closes a connection that subscribes.
  auto fake_sentinel = [&](int fd, bool keep_watch, std::atomic<int>* watch) {
    for (int c; (c = ::accept(fd, nullptr, nullptr)) >= 0;) {
      char buf[4096];
      bool kept = false;
      for (ssize_t n; !kept && (n = ::recv(c, buf, sizeof buf, 0)) > 0;) {
        const std::string in(buf, static_cast<std::size_t>(n));
        const bool subscribes = in.find("SUBSCRIBE") != std::string::npos;
        if (subscribes && !keep_watch) break;
        std::string out;
        if (in.find("PING") != std::string::npos) out += "+PONG\r\n";
        if (in.find("get-master-addr-by-name") != std::string::npos) out += names_old;
        if (subscribes) {
          out += "*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n";
          kept = true;
        }
        ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
      }
      if (kept) {
        watch->store(c);
      } else {
        ::close(c);
      }
    }
  };
  int stale_port = 0, announcer_port = 0;
  const int stale_fd = loopback_listener(stale_port);
  const int announcer_fd = loopback_listener(announcer_port);
  ASSERT_GE(stale_fd, 0);
  ASSERT_GE(announcer_fd, 0);
  std::atomic<int> watch{-1};
  std::thread stale([&] { fake_sentinel(stale_fd, false, nullptr); });
  std::thread announcer([&] { fake_sentinel(announcer_fd, true, &watch); });
  auto announce = [&](const std::string& text) {
    const std::string push = "*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$" +
                             std::to_string(text.size()) + "\r\n" + text + "\r\n";
    ::send(watch.load(), push.data(), push.size(), MSG_NOSIGNAL);
  };
  const std::string list = "127.0.0.1:" + std::to_string(stale_port) +
                           ",127.0.0.1:" + std::to_string(announcer_port) +
                           ",127.0.0.1:" + std::to_string(good.port());
  {
    auto bus = started(sentinel_settings(list));
    EXPECT_THAT(bus->health().detail, HasSubstr(":" + old_port));
    ASSERT_TRUE(eventually([&] { return watch.load() >= 0; }))
        << "the watch did not subscribe on the announcer";
    // A malformed announcement is ignored: no outage.
    const uint64_t outages = bus->stats().outages;
    announce(std::string(kMasterName) + " a b c");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(bus->stats().outages, outages);
    announce(std::string(kMasterName) + " 127.0.0.1 " + old_port + " 127.0.0.1 " +
             std::to_string(new_master.port()));
    EXPECT_TRUE(eventually([&] {
      return bus->health().healthy() &&
             bus->health().detail.find(":" + std::to_string(new_master.port())) !=
                 std::string::npos;
    })) << bus->health().detail;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // and it stays there
    EXPECT_THAT(bus->health().detail, HasSubstr(":" + std::to_string(new_master.port())));
    bus->subscribe("moved", [](const Event&) {});
    RawClient n(new_master.port());
    EXPECT_EQ(n.command({"PUBSUB", "NUMSUB", "app_events:moved"})[1], 1);
  }
  for (int fd : {stale_fd, announcer_fd}) {
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
  }
  stale.join();
  announcer.join();
  if (watch.load() >= 0) ::close(watch.load());
}

// A scripted sentinel on a loopback port: it names the master at @p master_port (which may be a
// port nothing listens on), answers PING, and closes a connection that subscribes (so the bus
// cannot watch through it). Each connection is served on its own thread.
class ScriptedSentinel {
 public:
  explicit ScriptedSentinel(int master_port) : answer_(master_port) {
    listener_ = loopback_listener(port_);
    if (listener_ < 0) throw std::runtime_error("no loopback listener for a scripted sentinel");
    acceptor_ = std::thread([this] {
      for (int c; (c = ::accept(listener_, nullptr, nullptr)) >= 0;) {
        std::lock_guard lock(mutex_);
        clients_.push_back(c);
        served_.emplace_back([this, c] { serve(c); });
      }
    });
  }
  ~ScriptedSentinel() {
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    acceptor_.join();
    std::lock_guard lock(mutex_);
    for (int c : clients_) ::shutdown(c, SHUT_RDWR);
    for (auto& t : served_) t.join();
    for (int c : clients_) ::close(c);
  }
  ScriptedSentinel(const ScriptedSentinel&) = delete;
  ScriptedSentinel& operator=(const ScriptedSentinel&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int subscribes() const { return subscribes_.load(); }
  int asked() const { return asked_.load(); }  // by connections that did not subscribe

 private:
  // A connection that asked and then subscribed is the bus's watch, not counted in asked().
  void serve(int c) {
    char buf[4096];
    bool asked_here = false;
    for (ssize_t n; (n = ::recv(c, buf, sizeof buf, 0)) > 0;) {
      const std::string in(buf, static_cast<std::size_t>(n));
      if (in.find("SUBSCRIBE") != std::string::npos) {
        ++subscribes_;
        ::shutdown(c, SHUT_RDWR);
        return;
      }
      std::string out;
      if (in.find("PING") != std::string::npos) out += "+PONG\r\n";
      if (in.find("get-master-addr-by-name") != std::string::npos) {
        const std::string port = std::to_string(answer_);
        out += "*2\r\n$9\r\n127.0.0.1\r\n$" + std::to_string(port.size()) + "\r\n" + port + "\r\n";
        asked_here = true;
      }
      ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
    }
    if (asked_here) ++asked_;
  }

  const int answer_;
  int port_ = 0;
  int listener_ = -1;
  std::atomic<int> subscribes_{0};
  std::atomic<int> asked_{0};
  std::mutex mutex_;
  std::vector<int> clients_;
  std::vector<std::thread> served_;
  std::thread acceptor_;  // last: starts once the rest is made
};

// During a failover the sentinels do not all agree at once: one may still name a master that
// is gone. When the publishing connection reconnects and the first sentinel it asks names such
// a server, the subscribing connection, up on the live master, stays there: leaving it would
// lose what that master was already sending it (its publishers were told it was received), and
// a dead server is no better place. Here a scripted sentinel, asked first, names a port nothing
// listens on; a real one names the live master.
TEST(RedisSentinel, AStaleAnswerNamingADeadServerDoesNotTakeTheSubscriberOffALiveMaster) {
  RedisServer master;
  SentinelServer good(kMasterName, master.port(), 1);
  int dead_port = 0;
  ::close(loopback_listener(dead_port));  // a port nothing listens on
  ScriptedSentinel stale(dead_port);
  const std::string list = stale.address() + ",127.0.0.1:" + std::to_string(good.port());
  {
    LogCapture log("athomic.provider.redis");
    auto bus = started(sentinel_settings(list));
    std::atomic<int> got{0};
    bus->subscribe("kept", [&](const Event&) { ++got; });
    RawClient admin(master.port());
    ASSERT_TRUE(eventually(
        [&] { return admin.command({"PUBSUB", "NUMSUB", "app_events:kept"})[1] == 1; }));
    const int asked_before = stale.asked();
    // Only the publishing connection is a normal client of the bus's two: it reconnects.
    ASSERT_GE(admin.command({"CLIENT", "KILL", "TYPE", "normal"}).get<int64_t>(), 1);
    ASSERT_TRUE(eventually([&] {
      return log.text().find("reconnected the publishing connection to redis://127.0.0.1:" +
                             std::to_string(master.port())) != std::string::npos;
    })) << log.text();
    EXPECT_TRUE(eventually([&] { return stale.asked() > asked_before; }))
        << "the stale sentinel was not asked on reconnect";
    EXPECT_THAT(log.text(), Not(HasSubstr("lost the subscribing connection"))) << log.text();
    Completion c = bus->publish("kept", {{"n", 1}});
    ASSERT_TRUE(c.wait_for(kGenerous));
    EXPECT_TRUE(c.delivered()) << c.error();
    EXPECT_EQ(c.receivers(), 1);
    EXPECT_TRUE(eventually([&] { return got.load() == 1; }));
  }
}

// What the subscriber saw of the numbered stream.
struct Received {
  std::mutex mutex;
  std::vector<int> count;  // by event number
  int duplicates = 0;
  std::optional<std::chrono::steady_clock::time_point> first_after;  // of a number >= after
  int after = INT32_MAX;
  int total = 0;

  void add(int n) {
    std::lock_guard lock(mutex);
    if (n >= static_cast<int>(count.size())) count.resize(n + 1);
    if (++count[n] > 1) ++duplicates;
    ++total;
    if (n >= after && !first_after) first_after = std::chrono::steady_clock::now();
  }
  int received() {
    std::lock_guard lock(mutex);
    return total;
  }
  std::optional<std::chrono::steady_clock::time_point> resumed() {
    std::lock_guard lock(mutex);
    return first_after;
  }
};

// A numbered stream from one bus to another, each with its own connections, through
// @p failure (which makes the replica the master); then the checks a user relies on. Prints
// the figures, labelled @p what.
void stream_through_failover(const std::string& sentinels, int old_master, int new_master,
                             const std::function<void()>& failure, const char* what) {
  auto subscriber = started(sentinel_settings(sentinels));
  auto publisher = started(sentinel_settings(sentinels));
  Received got;
  subscriber->subscribe("seq", [&](const Event& e) { got.add(e.payload().at("n").get<int>()); });

  NumberedFeeder feeder(*publisher, "seq");
  std::mutex& mutex = feeder.mutex;
  std::vector<Completion>& sent = feeder.sent;  // by event number
  ASSERT_TRUE(eventually([&] { return got.received() >= 200; }));

  // What the publisher was told had succeeded before the failure.
  std::vector<int> acknowledged;
  int published_before = 0;
  {
    std::lock_guard lock(mutex);
    for (std::size_t n = 0; n < sent.size(); ++n) {
      if (sent[n].done() && sent[n].delivered()) acknowledged.push_back(static_cast<int>(n));
    }
    published_before = static_cast<int>(sent.size());
    std::lock_guard g(got.mutex);
    got.after = published_before;
  }
  const auto failed_at = std::chrono::steady_clock::now();
  // When the replica becomes the master, to tell the sentinels' part of the outage from ours.
  std::optional<std::chrono::steady_clock::time_point> promoted_at;
  std::thread watcher([&] {
    const auto give_up = failed_at + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < give_up) {
      try {
        // A new client each time: Sentinel closes the clients of the replica it promotes.
        if (RawClient(new_master).command({"ROLE"})[0] == "master") {
          promoted_at = std::chrono::steady_clock::now();
          return;
        }
      } catch (const std::runtime_error&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  failure();
  watcher.join();
  ASSERT_TRUE(promoted_at) << "the sentinels did not promote the replica";

  // The sentinels promote the replica; both buses follow without a restart.
  for (auto* bus : {subscriber.get(), publisher.get()}) {
    ASSERT_TRUE(eventually(
        [&] {
          const BusHealth h = bus->health();
          return h.healthy() &&
                 h.detail.find(":" + std::to_string(new_master)) != std::string::npos;
        },
        std::chrono::seconds(60)))
        << "not on the new master: " << bus->health().detail;
  }
  const int at_switch = got.received();
  ASSERT_TRUE(eventually([&] { return got.received() >= at_switch + 200; }))
      << "delivery did not resume";
  const auto resumed_at = *got.resumed();
  feeder.stop();
  {
    std::lock_guard lock(mutex);
    for (auto& c : sent) ASSERT_TRUE(c.wait_for(kGenerous)) << "a publish never completed";
  }
  // Let what was acknowledged last arrive.
  int last_acknowledged = -1;
  for (std::size_t n = 0; n < sent.size(); ++n)
    if (sent[n].delivered() && sent[n].receivers() > 0) last_acknowledged = static_cast<int>(n);
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(got.mutex);
    return static_cast<int>(got.count.size()) > last_acknowledged &&
           got.count[last_acknowledged] > 0;
  }));

  std::lock_guard lock(got.mutex);
  got.count.resize(std::max(got.count.size(), sent.size()));
  EXPECT_EQ(got.duplicates, 0);
  for (int n : acknowledged) {
    EXPECT_EQ(got.count[n], 1) << "event " << n << " was acknowledged before the failure and lost";
  }
  int failed = 0, to_nobody = 0, lost_unreported = 0;
  for (std::size_t n = 0; n < sent.size(); ++n) {
    const bool received = got.count[n] > 0;
    if (!sent[n].delivered()) {
      ++failed;
      EXPECT_THAT(sent[n].error(), HasSubstr("was lost before it answered"));
    } else if (!received && sent[n].receivers() == 0) {
      ++to_nobody;  // the new master ran it before the subscriber was subscribed again: told 0
    } else if (!received) {
      ++lost_unreported;
    }
  }
  EXPECT_EQ(lost_unreported, 0) << "events told delivered to a receiver and never received";

  // The outage was reported through the connection state.
  for (auto* bus : {subscriber.get(), publisher.get()}) {
    EXPECT_GE(bus->health().outages, 1u);
    EXPECT_THAT(bus->health().detail, Not(HasSubstr(":" + std::to_string(old_master))));
  }
  using std::chrono::duration_cast;
  using ms = std::chrono::milliseconds;
  std::cout << what << ": " << sent.size() << " events published; the first event published "
            << "after the failure received " << duration_cast<ms>(resumed_at - failed_at).count()
            << " ms after it (the replica promoted after "
            << duration_cast<ms>(*promoted_at - failed_at).count() << " ms); " << failed
            << " failed (the publisher was told), " << to_nobody
            << " published to nobody (told receivers = 0), " << lost_unreported
            << " lost unreported, " << got.duplicates << " duplicates" << std::endl;
}

TEST_F(SentinelSetup, DeliveryResumesOnThePromotedReplicaAfterTheMasterIsKilled) {
  stream_through_failover(
      sentinels(), master_->port(), replica_->port(), [&] { master_->kill9(); },
      "SIGKILL of the master");
}

// Sentinel demotes a live master (it closes the master's clients as it does); the buses leave
// it for the promoted replica.
TEST_F(SentinelSetup, DeliveryFollowsAManualFailoverOffTheDemotedMaster) {
  const int old_master = master_->port();
  LogCapture log("athomic.provider.redis");
  stream_through_failover(
      sentinels(), old_master, replica_->port(),
      [&] {
        RawClient s(sentinels_[0]->port());
        ASSERT_EQ(s.command({"SENTINEL", "FAILOVER", kMasterName}), "OK");
      },
      "SENTINEL FAILOVER");
  // The buses left it when the sentinels announced the switch, not when the demoted master
  // closed their connections (which it does only later, and meanwhile takes PUBLISH as a
  // replica, where only its own subscribers see it).
  EXPECT_THAT(log.text(), HasSubstr("the sentinels announced +switch-master of '" +
                                    std::string(kMasterName) + "' to 127.0.0.1:" +
                                    std::to_string(replica_->port())));
  // Nothing of this test is subscribed on the old master any more, which the sentinels make a
  // replica (in their own time: the buses did not wait for it).
  // A new client for each try: the sentinels close the demoted master's clients when they
  // reconfigure it, maybe while one of ours waits for its answer.
  auto ask_old_master = [&](const std::vector<std::string>& command) -> std::optional<json> {
    try {
      return RawClient(old_master).command(command);
    } catch (const std::runtime_error&) {
      return std::nullopt;
    }
  };
  std::optional<json> numsub;
  ASSERT_TRUE(eventually(
      [&] { return (numsub = ask_old_master({"PUBSUB", "NUMSUB", "app_events:seq"})).has_value(); },
      std::chrono::seconds(20)));
  EXPECT_EQ((*numsub)[1], 0);
  EXPECT_TRUE(eventually(
      [&] {
        const auto role = ask_old_master({"ROLE"});
        return role && (*role)[0] == "slave";
      },
      std::chrono::seconds(60)));
}

// When no sentinel lets the watch subscribe, it tries again with backoff, not in a loop that
// burns a CPU and floods the log.
TEST(RedisSentinel, TheWatchBacksOffWhenNoSentinelLetsItSubscribe) {
  RedisServer master;
  ScriptedSentinel sentinel(master.port());
  LogCapture log("athomic.provider.redis");
  auto bus = started(sentinel_settings(sentinel.address()));
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  // reconnect_initial_delay 0.05 s doubling to reconnect_max_delay 0.2 s: about 8 in a second.
  EXPECT_LE(sentinel.subscribes(), 20) << log.text().substr(0, 2000);
  EXPECT_GE(sentinel.subscribes(), 2);
  EXPECT_TRUE(bus->health().healthy()) << bus->health().detail;
}

// The publishing connection leaves a server with publishes written and unanswered (the
// subscribing connection found the master elsewhere), then a stale sentinel sends it back to
// that server, which runs them when it resumes: they are failed, not written to it again, where
// every subscriber would receive them twice.
TEST(RedisSentinel, PublishesLeftUnansweredOnAServerAreNotWrittenAgainWhenTheBusReturnsToIt) {
  RedisServer stale({"--enable-debug-command", "yes"}), live;
  ScriptedSentinel names_stale(stale.port()), names_live(live.port());
  auto bus = started(sentinel_settings(names_stale.address() + "," + names_live.address()));
  bus->subscribe("twice", [](const Event&) {});
  RawClient admin(stale.port());
  ASSERT_TRUE(eventually(
      [&] { return admin.command({"PUBSUB", "NUMSUB", "app_events:twice"})[1] == 1; }));
  const std::string listing =
      admin.command({"CLIENT", "LIST", "TYPE", "pubsub"}).get<std::string>();
  const auto id_at = listing.find("id=") + 3;
  const std::string subscriber_id = listing.substr(id_at, listing.find(' ', id_at) - id_at);
  // An observer on the stale server counts what it publishes.
  auto observer = started(redis_settings(stale.uri()));
  Received seen;
  observer->subscribe("twice", [&](const Event& e) { seen.add(e.payload().at("n").get<int>()); });
  ASSERT_TRUE(eventually(
      [&] { return admin.command({"PUBSUB", "NUMSUB", "app_events:twice"})[1] == 2; }));
  NumberedFeeder feeder(*bus, "twice");
  ASSERT_TRUE(eventually([&] { return seen.received() >= 100; }));
  // In one write: the server stops answering, drops the bus's subscriber, then stops answering
  // for longer than socket_connect_timeout (1 s), so the subscriber reconnects to the live one.
  {
    RawClient raw(stale.port());
    raw.pipeline({{"DEBUG", "SLEEP", "0.3"},
                  {"CLIENT", "KILL", "ID", subscriber_id},
                  {"DEBUG", "SLEEP", "1.5"}});
    std::this_thread::sleep_for(std::chrono::seconds(4));
  }
  feeder.stop();
  {
    std::lock_guard lock(feeder.mutex);
    for (auto& c : feeder.sent) ASSERT_TRUE(c.wait_for(kGenerous)) << "a publish never completed";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::lock_guard lock(seen.mutex);
  EXPECT_EQ(seen.duplicates, 0) << "events the stale server ran twice";
}

}  // namespace
}  // namespace athomic::test
