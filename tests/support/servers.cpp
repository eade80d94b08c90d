#include "servers.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace athomic::test {

namespace {

// Waits until the server on @p port answers a connection (a NOAUTH error is an answer too), or
// throws naming @p what.
void wait_until_answering(int port, Process& process, const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
    const bool up = c && !c->err;
    if (c) redisFree(c);
    if (up) return;
    if (process.wait(std::chrono::milliseconds(0))) {
      throw std::runtime_error(what + " exited at start (port " + std::to_string(port) + ")");
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error(what + " did not start");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

RedisServer::RedisServer(std::vector<std::string> extra) : port_(free_port()), extra_(std::move(extra)) {
  start();
}

RedisServer::~RedisServer() { process_.reset(); }

std::string RedisServer::uri(const std::string& userinfo) const {
  return "redis://" + (userinfo.empty() ? "" : userinfo + "@") + "127.0.0.1:" +
         std::to_string(port_) + "/0";
}

void RedisServer::kill9() {
  if (!process_) return;
  process_->signal(SIGKILL);
  process_->wait(std::chrono::seconds(10));
  process_.reset();
}

void RedisServer::signal(int sig) {
  if (process_) process_->signal(sig);
}

void RedisServer::start() {
  std::vector<std::string> argv = {"redis-server", "--port", std::to_string(port_), "--bind",
                                   "127.0.0.1", "--save", "", "--appendonly", "no",
                                   "--protected-mode", "no", "--loglevel", "warning",
                                   "--logfile", ""};
  argv.insert(argv.end(), extra_.begin(), extra_.end());
  process_ = std::make_unique<Process>(argv, true);
  wait_until_answering(port_, *process_, "redis-server");
}

SentinelServer::SentinelServer(const std::string& master_name, int master_port, int quorum,
                               int down_after_ms, int failover_timeout_ms,
                               const std::vector<std::string>& extra_lines)
    : port_(free_port()) {
  char tmpl[] = "/tmp/athomic-sentinel-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  const std::string conf = dir_ + "/sentinel.conf";
  std::ofstream(conf) << "port " << port_ << "\nbind 127.0.0.1\nprotected-mode no\n"
                      << "dir " << dir_ << "\nlogfile \"\"\nloglevel warning\n"
                      << "sentinel monitor " << master_name << " 127.0.0.1 " << master_port << " "
                      << quorum << "\n"
                      << "sentinel down-after-milliseconds " << master_name << " " << down_after_ms
                      << "\nsentinel failover-timeout " << master_name << " " << failover_timeout_ms
                      << "\nsentinel parallel-syncs " << master_name << " 1\n";
  {
    std::ofstream more(conf, std::ios::app);
    for (const auto& line : extra_lines) more << line << "\n";
  }
  process_ =
      std::make_unique<Process>(std::vector<std::string>{"redis-server", conf, "--sentinel"}, true);
  wait_until_answering(port_, *process_, "redis-server --sentinel");
}

SentinelServer::~SentinelServer() {
  process_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void SentinelServer::kill9() {
  if (!process_) return;
  process_->signal(SIGKILL);
  process_->wait(std::chrono::seconds(10));
  process_.reset();
}

// ---------------------------------------------------------------------------------------------
// RedisCluster

redisReply* command_argv(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
}

namespace {

// One short-lived hiredis connection to a node, for the harness's own questions.
class NodeClient {
 public:
  explicit NodeClient(int port) {
    timeval tv{5, 0};
    c_ = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c_ || c_->err) {
      if (c_) redisFree(c_);
      throw std::runtime_error("cluster node on port " + std::to_string(port) + " unreachable");
    }
    redisSetTimeout(c_, tv);
  }
  ~NodeClient() { redisFree(c_); }
  NodeClient(const NodeClient&) = delete;
  NodeClient& operator=(const NodeClient&) = delete;

  // The reply as text: a string, status or error (errors prefixed by "-"), or an integer.
  std::string text(const std::vector<std::string>& args) {
    auto* r = command_argv(c_, args);
    if (!r) throw std::runtime_error("cluster node: no reply to " + args.front());
    std::string out;
    switch (r->type) {
      case REDIS_REPLY_INTEGER:
        out = std::to_string(r->integer);
        break;
      case REDIS_REPLY_ERROR:
        out = "-" + std::string(r->str, r->len);
        break;
      case REDIS_REPLY_STRING:
      case REDIS_REPLY_STATUS:
        out.assign(r->str, r->len);
        break;
      case REDIS_REPLY_ARRAY:
        for (size_t i = 0; i < r->elements; ++i) {
          const auto* e = r->element[i];
          if (e->type == REDIS_REPLY_STRING) out.append(e->str, e->len).append("\n");
        }
        break;
      default:
        break;
    }
    freeReplyObject(r);
    return out;
  }

  // Like text(), throwing on an error reply.
  std::string ok(const std::vector<std::string>& args) {
    std::string out = text(args);
    if (!out.empty() && out[0] == '-') {
      std::string cmd;
      for (const auto& a : args) cmd += a + " ";
      throw std::runtime_error("cluster node: " + cmd + "-> " + out);
    }
    return out;
  }

 private:
  redisContext* c_ = nullptr;
};

// One line of CLUSTER NODES.
struct NodesLine {
  std::string id;
  int port = 0;
  std::string flags;
  std::string master_id;  // "-" for a master
  std::vector<std::pair<int, int>> slots;
  bool has_flag(const std::string& f) const {
    std::istringstream in(flags);
    for (std::string one; std::getline(in, one, ',');)
      if (one == f) return true;
    return false;
  }
};

std::vector<NodesLine> parse_cluster_nodes(const std::string& text) {
  std::vector<NodesLine> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    NodesLine n;
    std::string addr, ping, pong, epoch, link;
    if (!(fields >> n.id >> addr >> n.flags >> n.master_id >> ping >> pong >> epoch >> link))
      continue;
    // ip:port@cport[,hostname]
    const auto colon = addr.rfind(':', addr.find('@'));
    if (colon != std::string::npos) n.port = std::atoi(addr.c_str() + colon + 1);
    for (std::string range; fields >> range;) {
      if (range.empty() || range[0] == '[') continue;  // [slot->-id] / [slot-<-id]: in migration
      const auto dash = range.find('-');
      const int first = std::atoi(range.c_str());
      const int last = dash == std::string::npos ? first : std::atoi(range.c_str() + dash + 1);
      n.slots.emplace_back(first, last);
    }
    out.push_back(std::move(n));
  }
  return out;
}

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

}  // namespace

RedisCluster::RedisCluster(int masters, int replicas_per_master, int node_timeout_ms) {
  if (masters < 1 || replicas_per_master < 0) throw std::invalid_argument("RedisCluster sizes");
  const int count = masters * (1 + replicas_per_master);
  std::set<int> taken;
  auto pick = [&taken] {
    for (;;) {
      const int p = free_port();
      if (taken.insert(p).second) return p;
    }
  };
  try {
    for (int i = 0; i < count; ++i) {
      Node n;
      n.port = pick();
      n.bus_port = pick();
      char tmpl[] = "/tmp/athomic-cluster-XXXXXX";
      if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
      n.dir = tmpl;
      nodes_.push_back(std::move(n));
      Node& node = nodes_.back();
      const std::vector<std::string> argv = {
          "redis-server", "--port", std::to_string(node.port), "--bind", "127.0.0.1",
          "--cluster-enabled", "yes", "--cluster-port", std::to_string(node.bus_port),
          "--cluster-config-file", node.dir + "/nodes.conf", "--cluster-node-timeout",
          std::to_string(node_timeout_ms), "--dir", node.dir, "--save", "", "--appendonly", "no",
          "--repl-diskless-sync-delay", "0", "--protected-mode", "no", "--loglevel", "notice",
          "--logfile", node.dir + "/redis.log"};
      node.process = std::make_unique<Process>(argv);
    }
    for (auto& n : nodes_) wait_until_answering(n.port, *n.process, "cluster redis-server");
    for (auto& n : nodes_) n.id = NodeClient(n.port).ok({"CLUSTER", "MYID"});

    // Slots split evenly among the masters, each with an epoch of its own; then everybody meets.
    constexpr int kSlots = 16384;
    for (int m = 0; m < masters; ++m) {
      NodeClient c(nodes_[m].port);
      c.ok({"CLUSTER", "SET-CONFIG-EPOCH", std::to_string(m + 1)});
      const int first = kSlots * m / masters, last = kSlots * (m + 1) / masters - 1;
      c.ok({"CLUSTER", "ADDSLOTSRANGE", std::to_string(first), std::to_string(last)});
    }
    {
      NodeClient first(nodes_[0].port);
      for (std::size_t i = 1; i < nodes_.size(); ++i)
        first.ok({"CLUSTER", "MEET", "127.0.0.1", std::to_string(nodes_[i].port),
                  std::to_string(nodes_[i].bus_port)});
    }
    // Every node knows every other (no handshake left) before the replicas pick their masters.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (bool met = false; !met;) {
      met = true;
      for (auto& n : nodes_) {
        const auto lines = parse_cluster_nodes(NodeClient(n.port).ok({"CLUSTER", "NODES"}));
        std::size_t known = 0;
        for (const auto& l : lines) known += !l.has_flag("handshake") && !l.has_flag("noaddr");
        if (known != nodes_.size()) met = false;
      }
      if (met) break;
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("cluster nodes did not meet");
      sleep_ms(50);
    }
    for (int r = masters; r < count; ++r) {
      const int m = (r - masters) % masters;
      NodeClient(nodes_[r].port).ok({"CLUSTER", "REPLICATE", nodes_[m].id});
    }
    // Ready: the slot map agreed, every replica seen as one by everybody, and in sync.
    for (;;) {
      bool ready = agreed_map().has_value();
      for (int r = masters; ready && r < count; ++r) {
        const std::string master = nodes_[(r - masters) % masters].id;
        for (auto& n : nodes_) {
          for (const auto& l : parse_cluster_nodes(NodeClient(n.port).ok({"CLUSTER", "NODES"}))) {
            if (l.id == nodes_[r].id && (!l.has_flag("slave") || l.master_id != master))
              ready = false;
          }
        }
        const std::string info = NodeClient(nodes_[r].port).ok({"INFO", "replication"});
        if (info.find("master_link_status:up") == std::string::npos) ready = false;
      }
      if (ready) break;
      if (std::chrono::steady_clock::now() > deadline + std::chrono::seconds(10))
        throw std::runtime_error("the cluster did not become ready");
      sleep_ms(50);
    }
  } catch (...) {
    for (auto& n : nodes_) {
      n.process.reset();
      std::error_code ignored;
      std::filesystem::remove_all(n.dir, ignored);
    }
    throw;
  }
}

RedisCluster::~RedisCluster() {
  for (auto& n : nodes_) n.process.reset();  // SIGKILL and reap
  for (auto& n : nodes_) {
    std::error_code ignored;
    std::filesystem::remove_all(n.dir, ignored);
  }
}

std::string RedisCluster::seeds() const {
  std::string out;
  for (const auto& n : nodes_)
    out += (out.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(n.port);
  return out;
}

std::vector<int> RedisCluster::ports() const {
  std::vector<int> out;
  for (const auto& n : nodes_) out.push_back(n.port);
  return out;
}

std::vector<int> RedisCluster::live_ports() const {
  std::vector<int> out;
  for (const auto& n : nodes_)
    if (n.process) out.push_back(n.port);
  return out;
}

RedisCluster::Node* RedisCluster::find(int port) {
  for (auto& n : nodes_)
    if (n.port == port) return &n;
  return nullptr;
}

const RedisCluster::Node* RedisCluster::find(int port) const {
  for (const auto& n : nodes_)
    if (n.port == port) return &n;
  return nullptr;
}

std::string RedisCluster::node_id(int port) const {
  const Node* n = find(port);
  return n ? n->id : std::string();
}

int RedisCluster::port_of_id(const std::string& id) const {
  for (const auto& n : nodes_)
    if (n.id == id) return n.port;
  return -1;
}

std::map<int, std::vector<std::pair<int, int>>> RedisCluster::slot_map(int port) {
  std::map<int, std::vector<std::pair<int, int>>> out;
  for (auto& l : parse_cluster_nodes(NodeClient(port).ok({"CLUSTER", "NODES"}))) {
    if (!l.has_flag("master") || l.slots.empty()) continue;
    std::sort(l.slots.begin(), l.slots.end());
    out[l.port] = l.slots;
  }
  return out;
}

std::optional<std::map<int, std::vector<std::pair<int, int>>>> RedisCluster::agreed_map() {
  std::optional<std::map<int, std::vector<std::pair<int, int>>>> agreed;
  try {
    for (int port : live_ports()) {
      const std::string info = NodeClient(port).ok({"CLUSTER", "INFO"});
      if (info.find("cluster_state:ok") == std::string::npos) return std::nullopt;
      auto map = slot_map(port);
      if (agreed && *agreed != map) return std::nullopt;
      agreed = std::move(map);
    }
  } catch (const std::runtime_error&) {
    return std::nullopt;  // a node busy or going away: not agreed (yet)
  }
  if (!agreed) return std::nullopt;
  int covered = 0;
  for (const auto& [port, ranges] : *agreed)
    for (const auto& [first, last] : ranges) covered += last - first + 1;
  if (covered != 16384) return std::nullopt;
  return agreed;
}

bool RedisCluster::wait_agreement(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!agreed_map()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    sleep_ms(50);
  }
  return true;
}

std::vector<int> RedisCluster::master_ports() {
  std::vector<int> out;
  if (auto map = agreed_map())
    for (const auto& [port, ranges] : *map) out.push_back(port);
  return out;
}

std::vector<int> RedisCluster::replica_ports_of(int master_port) {
  const std::string master = node_id(master_port);
  std::optional<std::set<int>> agreed;
  for (int port : live_ports()) {
    std::set<int> mine;
    for (const auto& l : parse_cluster_nodes(NodeClient(port).ok({"CLUSTER", "NODES"})))
      if (l.has_flag("slave") && !l.has_flag("fail") && l.master_id == master) mine.insert(l.port);
    if (agreed && *agreed != mine) return {};
    agreed = std::move(mine);
  }
  return agreed ? std::vector<int>(agreed->begin(), agreed->end()) : std::vector<int>{};
}

int RedisCluster::port_of_slot_owner(int slot) {
  auto map = agreed_map();
  if (!map) return -1;
  for (const auto& [port, ranges] : *map)
    for (const auto& [first, last] : ranges)
      if (first <= slot && slot <= last) return port;
  return -1;
}

int RedisCluster::key_slot(const std::string& key) {
  return std::stoi(NodeClient(live_ports().at(0)).ok({"CLUSTER", "KEYSLOT", key}));
}

void RedisCluster::kill9(int port) {
  Node* n = find(port);
  if (!n || !n->process) return;
  n->process->signal(SIGKILL);
  n->process->wait(std::chrono::seconds(10));
  n->process.reset();
}

void RedisCluster::migrate_slot(int slot, int to_port, std::chrono::milliseconds limit) {
  const int from_port = port_of_slot_owner(slot);
  if (from_port < 0) throw std::runtime_error("migrate_slot: the nodes disagree on the owner");
  if (from_port == to_port) return;
  const std::string s = std::to_string(slot);
  NodeClient to(to_port), from(from_port);
  to.ok({"CLUSTER", "SETSLOT", s, "IMPORTING", node_id(from_port)});
  from.ok({"CLUSTER", "SETSLOT", s, "MIGRATING", node_id(to_port)});
  for (;;) {
    std::istringstream keys(from.ok({"CLUSTER", "GETKEYSINSLOT", s, "100"}));
    std::vector<std::string> args = {"MIGRATE", "127.0.0.1", std::to_string(to_port), "", "0",
                                     "5000",    "KEYS"};
    for (std::string k; std::getline(keys, k);) args.push_back(k);
    if (args.size() == 7) break;
    from.ok(args);
  }
  const std::string to_id = node_id(to_port);
  to.ok({"CLUSTER", "SETSLOT", s, "NODE", to_id});
  from.ok({"CLUSTER", "SETSLOT", s, "NODE", to_id});
  // Every other live master too, so that none keeps answering with the old owner.
  for (const auto& l : parse_cluster_nodes(to.ok({"CLUSTER", "NODES"}))) {
    const Node* n = find(l.port);
    if (!l.has_flag("master") || l.has_flag("fail") || l.port == to_port || l.port == from_port ||
        !n || !n->process)
      continue;
    NodeClient(l.port).ok({"CLUSTER", "SETSLOT", s, "NODE", to_id});
  }
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (port_of_slot_owner(slot) != to_port) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("migrate_slot: the nodes do not agree on the new owner");
    sleep_ms(50);
  }
}

bool RedisCluster::wait_failover_of(int dead_port, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (auto map = agreed_map(); map && !map->count(dead_port)) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    sleep_ms(50);
  }
}

}  // namespace athomic::test
