// Helpers of the redis integration tests: settings for a bus on a real server, a plain hiredis
// client to watch and poke that server, and loopback listeners that never answer.
#pragma once

#include "servers.h"
#include "test_support.h"

#include <hiredis/hiredis.h>

#include <gmock/gmock.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace athomic::test {

using nlohmann::json;

// Publishes {"n": 0}, {"n": 1}, ... on one name every 2 ms from a thread of its own, until
// stop() (or destruction), keeping each publish's Completion by event number: the numbered
// stream of the failover tests.
class NumberedFeeder {
 public:
  NumberedFeeder(EventBus& bus, std::string name)
      : thread_([this, &bus, name = std::move(name)] {
          for (int n = 0; !stop_; ++n) {
            Completion c = bus.publish(name, {{"n", n}});
            {
              std::lock_guard lock(mutex);
              sent.push_back(std::move(c));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
          }
        }) {}
  ~NumberedFeeder() { stop(); }
  NumberedFeeder(const NumberedFeeder&) = delete;
  NumberedFeeder& operator=(const NumberedFeeder&) = delete;

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  std::mutex mutex;              // guards sent while the thread runs
  std::vector<Completion> sent;  // by event number

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: starts once the rest is made
};

inline json redis_config(const std::string& uri, const json& top = json::object()) {
  json c = {{"backend", "redis"},
            {"reconnect_initial_delay", 0.05},
            {"reconnect_max_delay", 0.2},
            {"provider",
             {{"key_prefix", "app_events"},
              {"provider", {{"backend", "redis"}, {"uri", uri}, {"socket_connect_timeout", 2}}}}}};
  c.update(top);
  return c;
}

inline EventsSettings redis_settings(const std::string& uri, const json& top = json::object(),
                                     DispatchMode mode = DispatchMode::pool) {
  auto s = local_settings(mode);
  s.backend = "redis";
  s.provider_config = redis_config(uri, top);
  return s;
}

// Settings for a bus that asks the sentinels at @p sentinels ("host:port,...") for the master
// named @p master_name.
inline EventsSettings redis_sentinel_settings(const std::string& sentinels,
                                              const std::string& master_name) {
  auto s = redis_settings("");
  auto& connection = s.provider_config["provider"]["provider"];
  connection.erase("uri");
  connection["sentinels"] = sentinels;
  connection["master_name"] = master_name;
  connection["socket_connect_timeout"] = 1;
  return s;
}

// A plain hiredis client, as any other Redis user would be.
class RawClient {
 public:
  explicit RawClient(int port) {
    timeval tv{5, 0};
    c_ = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c_ || c_->err) throw std::runtime_error("raw client cannot connect");
    redisSetTimeout(c_, tv);
  }
  ~RawClient() { redisFree(c_); }

  json command(const std::vector<std::string>& args) {
    auto* r = command_argv(c_, args);
    if (!r) throw std::runtime_error("raw client: no reply");
    json out = to_json(r);
    freeReplyObject(r);
    return out;
  }

  // Writes @p commands in one go without reading their replies, so that the server takes them
  // together (DEBUG SLEEP, then what must happen at its end).
  void pipeline(const std::vector<std::vector<std::string>>& commands) {
    for (const auto& args : commands) {
      std::vector<const char*> argv;
      std::vector<size_t> lengths;
      for (const auto& a : args) {
        argv.push_back(a.data());
        lengths.push_back(a.size());
      }
      redisAppendCommandArgv(c_, static_cast<int>(args.size()), argv.data(), lengths.data());
    }
    for (int done = 0; !done;) {
      if (redisBufferWrite(c_, &done) != REDIS_OK) throw std::runtime_error("raw client: write");
    }
  }

  // Next pub/sub message body, or nullopt after the timeout.
  std::optional<std::string> next_message() {
    void* reply = nullptr;
    if (redisGetReply(c_, &reply) != REDIS_OK || !reply) return std::nullopt;
    auto* r = static_cast<redisReply*>(reply);
    std::optional<std::string> body;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        std::string_view(r->element[0]->str, r->element[0]->len) == "message") {
      body = std::string(r->element[2]->str, r->element[2]->len);
    }
    freeReplyObject(r);
    return body;
  }

  // Next line of a MONITOR stream, or nullopt after the timeout.
  std::optional<std::string> next_status() {
    void* reply = nullptr;
    if (redisGetReply(c_, &reply) != REDIS_OK || !reply) return std::nullopt;
    auto* r = static_cast<redisReply*>(reply);
    std::optional<std::string> line;
    if (r->type == REDIS_REPLY_STATUS) line = std::string(r->str, r->len);
    freeReplyObject(r);
    return line;
  }

  // A reply as JSON: arrays, integers, null, and text for the rest — errors too, or, with
  // @p errors_as_objects, {"error": text}.
  static json to_json(const redisReply* r, bool errors_as_objects = false) {
    switch (r->type) {
      case REDIS_REPLY_ARRAY: {
        json a = json::array();
        for (size_t i = 0; i < r->elements; ++i) {
          a.push_back(to_json(r->element[i], errors_as_objects));
        }
        return a;
      }
      case REDIS_REPLY_INTEGER:
        return r->integer;
      case REDIS_REPLY_NIL:
        return nullptr;
      case REDIS_REPLY_ERROR:
        if (errors_as_objects) return json{{"error", std::string(r->str, r->len)}};
        return std::string(r->str, r->len);
      default:
        return std::string(r->str, r->len);
    }
  }

 private:
  redisContext* c_;
};

inline std::set<std::string> pubsub_channels(int port) {
  RawClient c(port);
  std::set<std::string> out;
  for (const auto& ch : c.command({"PUBSUB", "CHANNELS"})) out.insert(ch.get<std::string>());
  return out;
}

inline std::string start_error(const EventsSettings& s) {
  auto bus = EventBus::create(s);
  try {
    bus->start();
  } catch (const EventBusError& e) {
    return e.what();
  }
  ADD_FAILURE() << "start() succeeded";
  return "";
}

// A loopback listener that never answers. With a full accept queue the kernel drops further
// connection attempts, so connecting hangs as with an unroutable address; otherwise it completes
// them and nobody ever reads. Nothing leaves this machine either way.
class SilentListener {
 public:
  SilentListener(uint16_t port, bool drop_connections) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, drop_connections ? 0 : 16) != 0) {
      throw std::runtime_error(std::string("silent listener: ") + std::strerror(errno));
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    for (int i = 0; drop_connections && i < 3; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      fillers_.push_back(fd);
    }
  }
  ~SilentListener() {
    for (int fd : fillers_) ::close(fd);
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  std::string uri() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::vector<int> fillers_;
};

// One line of CLIENT LIST as key -> value ("id", "addr", "flags", "sub", "cmd", ...).
using ClientInfo = std::map<std::string, std::string>;

inline std::vector<ClientInfo> client_list(RawClient& c) {
  std::vector<ClientInfo> out;
  std::istringstream lines(c.command({"CLIENT", "LIST"}).get<std::string>());
  for (std::string line; std::getline(lines, line);) {
    ClientInfo info;
    std::istringstream fields(line);
    for (std::string f; fields >> f;) {
      if (const auto eq = f.find('='); eq != std::string::npos)
        info[f.substr(0, eq)] = f.substr(eq + 1);
    }
    if (!info.empty()) out.push_back(std::move(info));
  }
  return out;
}

// The ids of the bus's two connections, told apart from @p self (the test's own client) by the
// subscriber's channel count. Needs at least one channel subscribed.
struct BusClients {
  std::string publisher, subscriber;
};

inline BusClients bus_clients(RawClient& self) {
  const std::string self_id = std::to_string(self.command({"CLIENT", "ID"}).get<int64_t>());
  BusClients out;
  for (auto& c : client_list(self)) {
    if (c["id"] == self_id) continue;
    (c["sub"] != "0" ? out.subscriber : out.publisher) = c["id"];
  }
  return out;
}

inline int64_t connections_received(RawClient& c) {
  const std::string info = c.command({"INFO", "stats"}).get<std::string>();
  const std::string key = "total_connections_received:";
  const auto at = info.find(key);
  return at == std::string::npos ? -1 : std::stoll(info.substr(at + key.size()));
}

}  // namespace athomic::test
