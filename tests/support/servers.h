// Real servers and processes for integration tests: each test starts its own redis-server (or
// nats-server) on a free loopback port and stops it when done.
#pragma once

#include "process.h"

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

struct redisContext;
struct redisReply;

namespace athomic::test {

// Sends @p args as one command on the hiredis connection @p c and returns its reply (the
// caller frees it with freeReplyObject), or nullptr when the connection failed.
redisReply* command_argv(redisContext* c, const std::vector<std::string>& args);

class RedisServer {
 public:
  // Starts redis-server on a free port; @p extra are more command-line options.
  explicit RedisServer(std::vector<std::string> extra = {});
  ~RedisServer();

  int port() const { return port_; }
  std::string uri(const std::string& userinfo = "") const;
  void kill9();          // SIGKILL, no chance to clean up
  void start();          // (re)starts on the same port
  void signal(int sig);  // e.g. SIGSTOP: it hangs, its connections stay open

 private:
  int port_;
  std::vector<std::string> extra_;
  std::unique_ptr<Process> process_;
};

// A redis-server in sentinel mode (what Debian's redis-sentinel runs) on a free port, watching
// the master named @p master_name at 127.0.0.1:@p master_port with @p quorum. The failure
// detection is quick (down-after-milliseconds @p down_after_ms) so that a failover takes
// seconds in a test. @p extra_lines are more lines of its config file.
class SentinelServer {
 public:
  SentinelServer(const std::string& master_name, int master_port, int quorum,
                 int down_after_ms = 500, int failover_timeout_ms = 2000,
                 const std::vector<std::string>& extra_lines = {});
  ~SentinelServer();

  int port() const { return port_; }
  void kill9();

 private:
  int port_;
  std::string dir_;  // holds its config file, which the sentinel rewrites
  std::unique_ptr<Process> process_;
};

// A Redis Cluster of @p masters cluster-enabled redis-servers with @p replicas_per_master
// replicas each, on free loopback ports (client and cluster-bus ports both picked), each node
// with a directory of its own and no persistence. The slots are split evenly among the masters
// (CLUSTER ADDSLOTSRANGE, MEET and REPLICATE issued directly); the constructor returns once every
// node says cluster_state:ok, agrees on the slot map and every replica is in sync. The node
// timeout is short (@p node_timeout_ms) so that a failover takes a few seconds.
// Every question (owner of a slot, masters) is asked of the live nodes at the time.
class RedisCluster {
 public:
  explicit RedisCluster(int masters = 3, int replicas_per_master = 1, int node_timeout_ms = 1000);
  ~RedisCluster();
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  // "127.0.0.1:p1,127.0.0.1:p2,..." of every node started (masters first), dead or alive.
  std::string seeds() const;
  std::vector<int> ports() const;               // every node started, masters first
  std::vector<int> live_ports() const;          // those not killed
  std::string node_id(int port) const;          // its cluster node id (40 hex digits)
  int port_of_id(const std::string& id) const;  // -1 when not one of ours

  // Masters that own slots, by client port, as the live nodes agree now (empty if they don't).
  std::vector<int> master_ports();
  // The replicas of the master on @p master_port, as the live nodes agree now.
  std::vector<int> replica_ports_of(int master_port);
  // The client port of the master owning @p slot, as every live node agrees now; -1 if they
  // don't (agree).
  int port_of_slot_owner(int slot);
  // The slot of @p key, as the server on a live node computes it (CLUSTER KEYSLOT).
  int key_slot(const std::string& key);

  void kill9(int port);  // SIGKILL that node, no chance to clean up
  // Moves @p slot (with its keys) to the master on @p to_port with the documented resharding
  // steps (SETSLOT IMPORTING, MIGRATING, MIGRATE, SETSLOT NODE on both and every master) and
  // waits until every live node agrees; throws if they don't within the limit.
  void migrate_slot(int slot, int to_port,
                    std::chrono::milliseconds limit = std::chrono::seconds(15));
  // Waits until a replica of the (killed) master on @p dead_port owns its slots, as every live
  // node agrees with cluster_state:ok; false after @p limit.
  bool wait_failover_of(int dead_port, std::chrono::milliseconds limit = std::chrono::seconds(20));
  // Waits until every live node has cluster_state:ok and the same slot map covering all 16384
  // slots; false after @p limit.
  bool wait_agreement(std::chrono::milliseconds limit = std::chrono::seconds(20));

 private:
  struct Node {
    int port = 0;
    int bus_port = 0;
    std::string dir;
    std::string id;
    std::unique_ptr<Process> process;
  };
  // Slot ranges of each master (by client port), as the node on @p port sees them; masters
  // without slots are left out.
  std::map<int, std::vector<std::pair<int, int>>> slot_map(int port);
  // The same map when every live node has cluster_state:ok and sees it; nullopt otherwise.
  std::optional<std::map<int, std::vector<std::pair<int, int>>>> agreed_map();
  Node* find(int port);
  const Node* find(int port) const;

  std::vector<Node> nodes_;
};

}  // namespace athomic::test
