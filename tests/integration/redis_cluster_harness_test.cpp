// The Redis Cluster test harness (RedisCluster), and the behaviour of Redis 7.0's cluster that
// the redis provider relies on, pinned down with plain hiredis clients (no athomic provider):
// sharded pub/sub and its redirections, a slot moving away under a subscriber, classic pub/sub
// across nodes, a failover, and the CLUSTER NODES lines the provider parses. Each observation is
// printed as a "FACT:" line too.
#include <poll.h>

#include <chrono>
#include <iostream>
#include <regex>
#include <thread>

#include "redis_support.h"

namespace athomic::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A plain hiredis client that can wait for pushes with a limit and tell a closed connection
// from a quiet one. Error replies come back as {"error": text}.
class Client {
 public:
  explicit Client(int port) : port_(port) {
    timeval tv{5, 0};
    c_ = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c_ || c_->err)
      throw std::runtime_error("client cannot connect to " + std::to_string(port));
    redisSetTimeout(c_, tv);
  }
  ~Client() { redisFree(c_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  json command(const std::vector<std::string>& args) {
    auto* r = command_argv(c_, args);
    if (!r) throw std::runtime_error("client: no reply (" + std::string(c_->errstr) + ")");
    json out = to_json(r);
    freeReplyObject(r);
    return out;
  }

  // The next reply or push within @p limit; nullopt when none came, or the connection closed
  // (then closed() is true).
  std::optional<json> next(milliseconds limit = seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      void* reply = nullptr;
      if (redisReaderGetReply(c_->reader, &reply) != REDIS_OK) return std::nullopt;
      if (reply) {
        json out = to_json(static_cast<redisReply*>(reply));
        freeReplyObject(reply);
        return out;
      }
      const auto left =
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || closed_) return std::nullopt;
      pollfd p{c_->fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      if (redisBufferRead(c_) != REDIS_OK) {
        closed_ = true;
        return std::nullopt;
      }
    }
  }
  bool closed() const { return closed_; }
  int port() const { return port_; }

  static json to_json(const redisReply* r) { return RawClient::to_json(r, true); }

 private:
  int port_;
  redisContext* c_ = nullptr;
  bool closed_ = false;
};

void fact(const std::string& text) { std::cout << "FACT: " << text << std::endl; }

std::string moved(int slot, int port) {
  return "MOVED " + std::to_string(slot) + " 127.0.0.1:" + std::to_string(port);
}

const std::string kChannel = "app_events:orders.created";

class RedisClusterHarness : public ::testing::Test {
 protected:
  RedisCluster cluster_;
  int slot_ = cluster_.key_slot(kChannel);
  int owner_ = cluster_.port_of_slot_owner(slot_);
};

TEST_F(RedisClusterHarness, StartsAnAgreedClusterOfThreeMastersWithAReplicaEach) {
  EXPECT_EQ(cluster_.ports().size(), 6u);
  const auto masters = cluster_.master_ports();
  ASSERT_EQ(masters.size(), 3u);
  for (int m : masters) EXPECT_EQ(cluster_.replica_ports_of(m).size(), 1u) << m;
  EXPECT_NE(owner_, -1);
  const std::string seeds = cluster_.seeds();
  EXPECT_EQ(seeds.find("127.0.0.1:" + std::to_string(cluster_.ports()[0])), 0u);
  EXPECT_EQ(std::count(seeds.begin(), seeds.end(), ','), 5);
  Client c(owner_);
  EXPECT_EQ(c.command({"CLUSTER", "KEYSLOT", kChannel}), slot_);
  fact("CLUSTER KEYSLOT " + kChannel + " -> " + std::to_string(slot_));
}

TEST_F(RedisClusterHarness, ShardedPublishIsServedByTheOwnerShardOnlyAndRedirectedElsewhere) {
  Client sub(owner_), pub(owner_);
  EXPECT_EQ(sub.command({"SSUBSCRIBE", kChannel}), json::array({"ssubscribe", kChannel, 1}));
  EXPECT_EQ(pub.command({"SPUBLISH", kChannel, "one"}), 1);
  EXPECT_EQ(sub.next(), json::array({"smessage", kChannel, "one"}));

  // Other masters and their replicas redirect, to the owner's client port.
  for (int m : cluster_.master_ports()) {
    if (m == owner_) continue;
    Client other(m);
    const json r = other.command({"SPUBLISH", kChannel, "x"});
    fact("SPUBLISH on a non-owner master -> " + r.dump());
    EXPECT_EQ(r, json({{"error", moved(slot_, owner_)}}));
    EXPECT_EQ(other.command({"SSUBSCRIBE", kChannel}), json({{"error", moved(slot_, owner_)}}));
    for (int replica : cluster_.replica_ports_of(m)) {
      Client rc(replica);
      EXPECT_EQ(rc.command({"SPUBLISH", kChannel, "x"}), json({{"error", moved(slot_, owner_)}}));
    }
  }

  // Only the owner lists the shard channel.
  for (int port : cluster_.ports()) {
    Client c(port);
    const json listed = c.command({"PUBSUB", "SHARDCHANNELS"});
    EXPECT_EQ(listed, port == owner_ ? json::array({kChannel}) : json::array()) << port;
    const json numsub = c.command({"PUBSUB", "SHARDNUMSUB", kChannel});
    fact("PUBSUB SHARDCHANNELS on " + std::string(port == owner_ ? "owner" : "other node") +
         " -> " + listed.dump() + "; SHARDNUMSUB -> " + numsub.dump());
  }

  // The owner's replica: accepts SPUBLISH and SSUBSCRIBE (no READONLY), and the shard's nodes
  // pass messages to each other's subscribers.
  const auto replicas = cluster_.replica_ports_of(owner_);
  ASSERT_EQ(replicas.size(), 1u);
  Client rsub(replicas[0]), rpub(replicas[0]);
  const json on_replica = rpub.command({"SPUBLISH", kChannel, "from-replica"});
  fact("SPUBLISH on the owner's replica -> " + on_replica.dump());
  EXPECT_EQ(on_replica, 0);  // counts the replica's own subscribers only
  const auto relayed = sub.next(seconds(2));
  fact("SPUBLISH on the owner's replica reaches the owner's SSUBSCRIBE client -> " +
       (relayed ? relayed->dump() : std::string("nothing")));
  EXPECT_EQ(relayed, json::array({"smessage", kChannel, "from-replica"}));
  const json rs = rsub.command({"SSUBSCRIBE", kChannel});
  fact("SSUBSCRIBE on the owner's replica -> " + rs.dump());
  EXPECT_EQ(rs, json::array({"ssubscribe", kChannel, 1}));
  EXPECT_EQ(pub.command({"SPUBLISH", kChannel, "two"}), 1);  // the owner's one local subscriber
  EXPECT_EQ(sub.next(), json::array({"smessage", kChannel, "two"}));
  const auto to_replica = rsub.next(seconds(2));
  fact("SPUBLISH on the owner reaches an SSUBSCRIBE client of its replica -> " +
       (to_replica ? to_replica->dump() : std::string("nothing")));
  EXPECT_EQ(to_replica, json::array({"smessage", kChannel, "two"}));
  // Nothing reaches other shards' nodes: their SHARDCHANNELS stay empty (checked above).
}

TEST_F(RedisClusterHarness, ASlotMovedAwayUnsubscribesItsSubscribersAndRedirects) {
  Client sub(owner_);
  const auto replicas = cluster_.replica_ports_of(owner_);
  ASSERT_EQ(replicas.size(), 1u);
  Client rsub(replicas[0]);
  ASSERT_EQ(sub.command({"SSUBSCRIBE", kChannel}), json::array({"ssubscribe", kChannel, 1}));
  ASSERT_EQ(rsub.command({"SSUBSCRIBE", kChannel}), json::array({"ssubscribe", kChannel, 1}));
  // A second channel in another slot of the same owner stays subscribed.
  std::string other_channel;
  for (int i = 0; other_channel.empty() && i < 10000; ++i) {
    const std::string ch = "app_events:other." + std::to_string(i);
    const int s = cluster_.key_slot(ch);
    if (s != slot_ && cluster_.port_of_slot_owner(s) == owner_) other_channel = ch;
  }
  ASSERT_FALSE(other_channel.empty());
  ASSERT_EQ(sub.command({"SSUBSCRIBE", other_channel}),
            json::array({"ssubscribe", other_channel, 2}));
  Client(owner_).command({"SET", kChannel, "a key in the moving slot"});

  int target = -1;
  for (int m : cluster_.master_ports())
    if (m != owner_) target = m;
  const auto t0 = std::chrono::steady_clock::now();
  cluster_.migrate_slot(slot_, target);
  fact(
      "migrate_slot took " +
      std::to_string(
          std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0).count()) +
      " ms");
  EXPECT_EQ(cluster_.port_of_slot_owner(slot_), target);
  EXPECT_EQ(Client(target).command({"GET", kChannel}), "a key in the moving slot");

  const auto pushed = sub.next(seconds(3));
  fact("old owner's SSUBSCRIBE client after the slot moved -> " +
       (pushed ? pushed->dump() : std::string(sub.closed() ? "connection closed" : "nothing")));
  EXPECT_EQ(pushed, json::array({"sunsubscribe", kChannel, 1}));
  EXPECT_FALSE(sub.closed());
  const auto rpushed = rsub.next(seconds(3));
  fact("old owner's replica's SSUBSCRIBE client after the slot moved -> " +
       (rpushed ? rpushed->dump() : std::string(rsub.closed() ? "connection closed" : "nothing")));
  EXPECT_EQ(rpushed, json::array({"sunsubscribe", kChannel, 0}));

  Client old_owner(owner_);
  const json r = old_owner.command({"SPUBLISH", kChannel, "x"});
  fact("SPUBLISH on the old owner after the move -> " + r.dump());
  EXPECT_EQ(r, json({{"error", moved(slot_, target)}}));
  EXPECT_EQ(old_owner.command({"PUBSUB", "SHARDCHANNELS"}), json::array({other_channel}));
  // The other channel still works on the old owner.
  EXPECT_EQ(old_owner.command({"SPUBLISH", other_channel, "still"}), 1);
  EXPECT_EQ(sub.next(), json::array({"smessage", other_channel, "still"}));

  Client new_sub(target), new_pub(target);
  EXPECT_EQ(new_sub.command({"SSUBSCRIBE", kChannel}), json::array({"ssubscribe", kChannel, 1}));
  EXPECT_EQ(new_pub.command({"SPUBLISH", kChannel, "moved"}), 1);
  EXPECT_EQ(new_sub.next(), json::array({"smessage", kChannel, "moved"}));
}

TEST_F(RedisClusterHarness, ClassicPublishOnAnyNodeReachesSubscribersOnEveryNode) {
  std::vector<std::unique_ptr<Client>> subs;
  for (int port : cluster_.ports()) {
    subs.push_back(std::make_unique<Client>(port));
    ASSERT_EQ(subs.back()->command({"SUBSCRIBE", kChannel}),
              json::array({"subscribe", kChannel, 1}));
  }
  for (int from : cluster_.ports()) {
    Client pub(from);
    const json n = pub.command({"PUBLISH", kChannel, "from " + std::to_string(from)});
    EXPECT_EQ(n, 1) << "PUBLISH counts the local subscribers only";
    for (auto& s : subs)
      EXPECT_EQ(s->next(), json::array({"message", kChannel, "from " + std::to_string(from)}))
          << "published on " << from << ", subscribed on " << s->port();
  }
  fact(
      "classic PUBLISH on any node (master or replica) reaches SUBSCRIBE clients on every node; "
      "its reply counts the local subscribers only -> 1 here");
}

TEST_F(RedisClusterHarness, AKilledMasterIsReplacedByItsReplica) {
  const auto replicas = cluster_.replica_ports_of(owner_);
  ASSERT_EQ(replicas.size(), 1u);
  Client sub(owner_), rsub(replicas[0]), classic(owner_);
  ASSERT_EQ(sub.command({"SSUBSCRIBE", kChannel}), json::array({"ssubscribe", kChannel, 1}));
  ASSERT_EQ(rsub.command({"SSUBSCRIBE", kChannel}), json::array({"ssubscribe", kChannel, 1}));
  ASSERT_EQ(classic.command({"SUBSCRIBE", kChannel}), json::array({"subscribe", kChannel, 1}));

  int other_master = -1;
  for (int m : cluster_.master_ports())
    if (m != owner_) other_master = m;
  Client watcher(other_master);
  const std::string dead_id = cluster_.node_id(owner_);

  const auto t0 = std::chrono::steady_clock::now();
  cluster_.kill9(owner_);
  EXPECT_FALSE(sub.next(milliseconds(500)).has_value());
  EXPECT_TRUE(sub.closed());
  EXPECT_FALSE(classic.next(milliseconds(500)).has_value());
  EXPECT_TRUE(classic.closed());

  // The flags another master gives the dead one, as they change.
  std::vector<std::string> seen;
  for (auto until = t0 + seconds(10); std::chrono::steady_clock::now() < until;) {
    std::istringstream lines(watcher.command({"CLUSTER", "NODES"}).get<std::string>());
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind(dead_id, 0) != 0) continue;
      std::istringstream fields(line);
      std::string id, addr, flags;
      fields >> id >> addr >> flags;
      if (seen.empty() || seen.back() != flags) seen.push_back(flags);
    }
    if (!seen.empty() && seen.back() == "master,fail") break;
    std::this_thread::sleep_for(milliseconds(20));
  }
  std::string sequence;
  for (const auto& f : seen) sequence += (sequence.empty() ? "" : " -> ") + f;
  fact("flags of the killed master seen by another master, in order: " + sequence);
  EXPECT_EQ(seen.back(), "master,fail");
  ASSERT_TRUE(cluster_.wait_failover_of(owner_, seconds(20)));
  const auto took = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
  fact("failover after kill -9 of a master (node-timeout 1000) took " +
       std::to_string(took.count()) + " ms until every live node agreed");
  EXPECT_LT(took, seconds(10));
  EXPECT_EQ(cluster_.port_of_slot_owner(slot_), replicas[0]);
  EXPECT_EQ(cluster_.master_ports().size(), 3u);

  // The promoted replica's subscriber kept its subscription through the promotion.
  const auto during = rsub.next(milliseconds(200));
  fact("SSUBSCRIBE client of the promoted replica during the failover got -> " +
       (during ? during->dump() : std::string(rsub.closed() ? "connection closed" : "nothing")));
  Client pub(replicas[0]);
  const json n = pub.command({"SPUBLISH", kChannel, "after"});
  fact("SPUBLISH on the promoted replica -> " + n.dump());
  EXPECT_EQ(n, 1);
  EXPECT_EQ(rsub.next(), json::array({"smessage", kChannel, "after"}));

  // The dead master as the others see it now.
  Client survivor(replicas[0]);
  std::istringstream lines(survivor.command({"CLUSTER", "NODES"}).get<std::string>());
  for (std::string line; std::getline(lines, line);)
    if (line.rfind(cluster_.node_id(owner_), 0) == 0) {
      fact("CLUSTER NODES line of the killed master after the failover: " + line);
      EXPECT_NE(line.find(" master,fail "), std::string::npos) << line;
    }
}

TEST_F(RedisClusterHarness, ClusterNodesLinesCarryWhatTheProviderParses) {
  // <id> <ip:port@cport[,hostname]> <flags> <master id|-> <ping-sent> <pong-recv> <epoch>
  // <link-state> <slot ranges...>
  const std::regex line_re(
      R"(^([0-9a-f]{40}) 127\.0\.0\.1:(\d+)@(\d+) ((?:myself,)?(?:master|slave)) ([0-9a-f]{40}|-) \d+ \d+ \d+ connected((?: \d+(?:-\d+)?)*)$)");
  for (int port : cluster_.ports()) {
    Client c(port);
    const std::string text = c.command({"CLUSTER", "NODES"}).get<std::string>();
    if (port == owner_) fact("CLUSTER NODES (seen from the owner):\n" + text);
    std::istringstream lines(text);
    int count = 0, myself = 0, covered = 0;
    for (std::string line; std::getline(lines, line);) {
      ++count;
      std::smatch m;
      ASSERT_TRUE(std::regex_match(line, m, line_re)) << line;
      const int node_port = std::stoi(m[2]);
      EXPECT_EQ(m[1], cluster_.node_id(node_port)) << line;
      const std::string flags = m[4];
      if (flags.rfind("myself,", 0) == 0) {
        ++myself;
        EXPECT_EQ(node_port, port);
      }
      const bool master = flags.find("master") != std::string::npos;
      const std::string slots = m[6];
      if (master) {
        EXPECT_EQ(m[5], "-");
        EXPECT_FALSE(slots.empty()) << line;
        std::istringstream ranges(slots);
        for (std::string r; ranges >> r;) {
          const auto dash = r.find('-');
          const int first = std::stoi(r),
                    last = dash == std::string::npos ? first : std::stoi(r.substr(dash + 1));
          covered += last - first + 1;
        }
      } else {
        EXPECT_NE(cluster_.port_of_id(m[5]), -1) << line;
        EXPECT_TRUE(slots.empty()) << line;
      }
    }
    EXPECT_EQ(count, 6);
    EXPECT_EQ(myself, 1);
    EXPECT_EQ(covered, 16384);
  }

  // During a migration the source's own line carries [slot->-id], the target's [slot-<-id].
  int target = -1;
  for (int m : cluster_.master_ports())
    if (m != owner_) target = m;
  Client from(owner_), to(target);
  const std::string s = std::to_string(slot_);
  ASSERT_EQ(to.command({"CLUSTER", "SETSLOT", s, "IMPORTING", cluster_.node_id(owner_)}), "OK");
  ASSERT_EQ(from.command({"CLUSTER", "SETSLOT", s, "MIGRATING", cluster_.node_id(target)}), "OK");
  const std::string from_text = from.command({"CLUSTER", "NODES"}).get<std::string>();
  const std::string to_text = to.command({"CLUSTER", "NODES"}).get<std::string>();
  const std::string migrating = "[" + s + "->-" + cluster_.node_id(target) + "]";
  const std::string importing = "[" + s + "-<-" + cluster_.node_id(owner_) + "]";
  EXPECT_NE(from_text.find(migrating), std::string::npos) << from_text;
  EXPECT_NE(to_text.find(importing), std::string::npos) << to_text;
  fact("CLUSTER NODES mid-migration: the source's myself line ends with " + migrating +
       ", the target's with " + importing + " (skip tokens starting with '[')");
  // SPUBLISH on the source while MIGRATING: still served there (pub/sub has no keys to miss).
  const json r = from.command({"SPUBLISH", kChannel, "x"});
  fact("SPUBLISH on the source while the slot is MIGRATING -> " + r.dump());
  const json rt = to.command({"SPUBLISH", kChannel, "x"});
  fact("SPUBLISH on the target while the slot is IMPORTING (no ASKING) -> " + rt.dump());

  // CLUSTER SHARDS and CLUSTER SLOTS shapes (RESP2).
  const json shards = from.command({"CLUSTER", "SHARDS"});
  fact("CLUSTER SHARDS first entry -> " + shards.at(0).dump());
  const json slots = from.command({"CLUSTER", "SLOTS"});
  fact("CLUSTER SLOTS first entry -> " + slots.at(0).dump());
}

TEST_F(RedisClusterHarness, ShardedSubscribeTakesOneSlotPerCommand) {
  // Two channels of the owner in different slots in one SSUBSCRIBE.
  std::string same_node, other_node;
  for (int i = 0; (same_node.empty() || other_node.empty()) && i < 10000; ++i) {
    const std::string ch = "app_events:other." + std::to_string(i);
    const int s = cluster_.key_slot(ch);
    if (s == slot_) continue;
    (cluster_.port_of_slot_owner(s) == owner_ ? same_node : other_node) = ch;
  }
  Client c(owner_);
  const json cross = c.command({"SSUBSCRIBE", kChannel, same_node});
  fact("SSUBSCRIBE of two channels in different slots (same node) -> " + cross.dump());
  EXPECT_EQ(cross, json({{"error", "CROSSSLOT Keys in request don't hash to the same slot"}}));
  Client d(owner_);
  const json cross_nodes = d.command({"SSUBSCRIBE", kChannel, other_node});
  fact("SSUBSCRIBE of two channels of different nodes -> " + cross_nodes.dump());
  EXPECT_EQ(cross_nodes,
            json({{"error", "CROSSSLOT Keys in request don't hash to the same slot"}}));
  // Hash tags put channels in one slot: "{app_events}:a" and "{app_events}:b".
  const int tagged = cluster_.key_slot("{app_events}:a");
  EXPECT_EQ(cluster_.key_slot("{app_events}:b"), tagged);
  Client t(cluster_.port_of_slot_owner(tagged));
  EXPECT_EQ(t.command({"SSUBSCRIBE", "{app_events}:a", "{app_events}:b"}),
            json::array({"ssubscribe", "{app_events}:a", 1}));
  EXPECT_EQ(t.next(), json::array({"ssubscribe", "{app_events}:b", 2}));

  // SUNSUBSCRIBE of a channel this client never subscribed, on a node that does not own it.
  int other_master = -1;
  for (int m : cluster_.master_ports())
    if (m != owner_) other_master = m;
  Client e(other_master);
  const json unsub = e.command({"SUNSUBSCRIBE", kChannel});
  fact("SUNSUBSCRIBE of a channel on a node that does not own its slot -> " + unsub.dump());
  EXPECT_EQ(unsub, json({{"error", moved(slot_, owner_)}}));
  Client f(owner_);
  ASSERT_EQ(f.command({"SSUBSCRIBE", kChannel}), json::array({"ssubscribe", kChannel, 1}));
  const json all = f.command({"SUNSUBSCRIBE"});
  fact("SUNSUBSCRIBE without channels on the owner -> " + all.dump());
  EXPECT_EQ(all, json::array({"sunsubscribe", kChannel, 0}));
}

}  // namespace
}  // namespace athomic::test
