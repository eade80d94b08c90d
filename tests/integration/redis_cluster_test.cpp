// The redis provider on Redis Cluster, with real servers: three masters with one replica each
// on loopback ports (tests/support/servers.h). Sharded Pub/Sub: each channel is subscribed and
// published on the shard that owns its slot, a slot that moves and a shard that fails over are
// followed without a restart. Classic Pub/Sub: one node, the cluster broadcasts.
#include "cluster_map.h"
#include "log_capture.h"
#include "redis_support.h"


#include <atomic>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

namespace athomic::test {
namespace {

using testing::HasSubstr;

EventsSettings cluster_settings(const std::string& seeds, const std::string& pubsub = "sharded",
                                DispatchMode mode = DispatchMode::pool) {
  auto s = redis_settings("", json::object(), mode);
  auto& connection = s.provider_config["provider"]["provider"];
  connection.erase("uri");
  connection["cluster_nodes"] = seeds;
  connection["cluster_pubsub"] = pubsub;
  connection["socket_connect_timeout"] = 1;
  return s;
}

std::string channel(const std::string& name) { return "app_events:" + name; }

// Names whose channels fall on every shard: name i for i in [0, n).
std::vector<std::string> spread_names(int n) {
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) names.push_back("spread.e" + std::to_string(i));
  return names;
}

// One cluster for the tests that leave it as they found it.
class ClusterShared : public testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new RedisCluster(3, 1); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  static RedisCluster* cluster_;
};
RedisCluster* ClusterShared::cluster_ = nullptr;

TEST_F(ClusterShared, TheProvidersSlotIsTheServersForEveryKindOfName) {
  for (const std::string name :
       {"orders.created", "{orders}.paid", "x.{t}.a", "a{}{b}", "foo{{bar}}zap", "ümlaut.é",
        "spread.e17", "{}", "{", "}"}) {
    EXPECT_EQ(redis::cluster::key_slot(channel(name)), cluster_->key_slot(channel(name))) << name;
  }
}

TEST_F(ClusterShared, EventsOnNamesOverAllSlotsAreReceivedAndEachChannelLivesOnItsOwner) {
  for (const DispatchMode mode : {DispatchMode::pool, DispatchMode::inline_call}) {
    SCOPED_TRACE(mode == DispatchMode::pool ? "pool" : "inline");
    auto subscriber = started(cluster_settings(cluster_->seeds(), "sharded", mode));
    auto publisher = started(cluster_settings(cluster_->seeds(), "sharded", mode));
    EXPECT_TRUE(publisher->health().healthy()) << publisher->health().detail;
    EXPECT_THAT(publisher->health().detail, HasSubstr("3 shard(s)"));
    const auto names = spread_names(48);
    std::mutex mutex;
    std::map<std::string, int> got;
    std::vector<Subscription> subs;
    for (const auto& name : names) {
      subs.push_back(subscriber->subscribe(name, [&, name](const Event&) {
        std::lock_guard lock(mutex);
        ++got[name];
      }));
    }
    std::set<int> owners;
    for (const auto& name : names) {
      Completion c = publisher->publish(name, {{"n", name}});
      ASSERT_TRUE(c.wait_for(kGenerous));
      EXPECT_TRUE(c.delivered()) << name << ": " << c.error();
      EXPECT_EQ(c.receivers(), 1) << name;  // the subscriber, on the owner
      owners.insert(cluster_->port_of_slot_owner(cluster_->key_slot(channel(name))));
    }
    EXPECT_EQ(owners.size(), 3u) << "the names did not cover every shard";
    EXPECT_TRUE(eventually([&] {
      std::lock_guard lock(mutex);
      return got.size() == names.size();
    }));
    {
      std::lock_guard lock(mutex);
      for (const auto& name : names) EXPECT_EQ(got[name], 1) << name;
    }
    // Each channel is subscribed on the master that owns its slot, and nowhere else.
    for (const int master : cluster_->master_ports()) {
      RawClient c(master);
      const json listed = c.command({"PUBSUB", "SHARDCHANNELS", "app_events:*"});
      std::set<std::string> here;
      for (const auto& ch : listed) here.insert(ch.get<std::string>());
      for (const auto& name : names) {
        const bool owner =
            cluster_->port_of_slot_owner(cluster_->key_slot(channel(name))) == master;
        EXPECT_EQ(here.count(channel(name)), owner ? 1u : 0u)
            << channel(name) << " on " << master << (owner ? " (its owner)" : "");
      }
      // Nothing classic: no SUBSCRIBE, which every node would have to broadcast to.
      EXPECT_TRUE(c.command({"PUBSUB", "CHANNELS", "app_events:*"}).empty());
    }
  }
}

TEST_F(ClusterShared, HashTagsKeepRelatedEventsOnOneShard) {
  auto bus = started(cluster_settings(cluster_->seeds()));
  std::atomic<int> got{0};
  auto a = bus->subscribe("{orders}.created", [&](const Event&) { ++got; });
  auto b = bus->subscribe("{orders}.paid", [&](const Event&) { ++got; });
  const int owner = cluster_->port_of_slot_owner(cluster_->key_slot(channel("{orders}.created")));
  EXPECT_EQ(owner, cluster_->port_of_slot_owner(cluster_->key_slot(channel("{orders}.paid"))));
  RawClient c(owner);
  const json listed = c.command({"PUBSUB", "SHARDCHANNELS", "app_events:{orders}*"});
  EXPECT_EQ(listed.size(), 2u) << listed.dump();
  ASSERT_TRUE(bus->publish("{orders}.created", {}).wait_for(kGenerous));
  ASSERT_TRUE(bus->publish("{orders}.paid", {}).wait_for(kGenerous));
  EXPECT_TRUE(eventually([&] { return got == 2; }));
}

TEST_F(ClusterShared, PatternsAreRefusedInShardedModeNamingTheFix) {
  auto bus = started(cluster_settings(cluster_->seeds()));
  try {
    bus->subscribe("orders.*", [](const Event&) {});
    FAIL() << "a pattern was accepted on sharded Pub/Sub";
  } catch (const EventBusError& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot subscribe to patterns"));
    EXPECT_THAT(e.what(), HasSubstr("with its settings"));
  }
}

TEST_F(ClusterShared, ClassicPubSubCarriesEventsAndPatternsBetweenNodes) {
  // Two buses on different nodes: the first seed each is given.
  const auto ports = cluster_->ports();
  const std::string a = "127.0.0.1:" + std::to_string(ports[0]);
  const std::string b = "127.0.0.1:" + std::to_string(ports[1]);
  auto subscriber = started(cluster_settings(a + "," + b, "classic"));
  auto publisher = started(cluster_settings(b + "," + a, "classic"));
  std::atomic<int> exact{0}, pattern{0};
  auto s1 = subscriber->subscribe("classic.one", [&](const Event&) { ++exact; });
  auto s2 = subscriber->subscribe("classic.*", [&](const Event&) { ++pattern; });
  for (int i = 0; i < 20; ++i) {
    Completion c = publisher->publish("classic.one", {{"i", i}});
    ASSERT_TRUE(c.wait_for(kGenerous));
    EXPECT_TRUE(c.delivered()) << c.error();
  }
  EXPECT_TRUE(eventually([&] { return exact == 20 && pattern == 20; }))
      << exact << " exact, " << pattern << " by pattern";
  // The subscriber is on its first seed, the publisher on its own: the cluster carried them.
  EXPECT_EQ(RawClient(ports[0]).command({"PUBSUB", "NUMSUB", channel("classic.one")})[1], 1);
  EXPECT_EQ(RawClient(ports[1]).command({"PUBSUB", "NUMSUB", channel("classic.one")})[1], 0);
}

TEST_F(ClusterShared, TheShippedConfigFileWorks) {
  std::ifstream in(ATHOMIC_SOURCE_DIR "/config/redis-cluster.toml");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(text.empty());
  const EventsSettings s =
      Settings::from_toml(text, "redis-cluster.toml", "development",
                          {{"NALA_EVENTS__PROVIDER__PROVIDER__PROVIDER__CLUSTER_NODES",
                            cluster_->seeds()}})
          .events();
  auto bus = started(s);
  std::atomic<int> got{0};
  auto sub = bus->subscribe("from.the.file", [&](const Event&) { ++got; });
  Completion c = bus->publish("from.the.file", {});
  ASSERT_TRUE(c.wait_for(kGenerous));
  EXPECT_TRUE(c.delivered()) << c.error();
  EXPECT_TRUE(eventually([&] { return got == 1; }));
}

TEST_F(ClusterShared, StartNamesEveryNodeAskedWhenNoneAnswers) {
  const int a = free_port(), b = free_port();
  const std::string error = start_error(cluster_settings(
      "127.0.0.1:" + std::to_string(a) + ",127.0.0.1:" + std::to_string(b)));
  EXPECT_THAT(error, HasSubstr("no node of the cluster"));
  EXPECT_THAT(error, HasSubstr("127.0.0.1:" + std::to_string(a) + ": "));
  EXPECT_THAT(error, HasSubstr("127.0.0.1:" + std::to_string(b) + ": "));
  EXPECT_THAT(error, HasSubstr("refused"));
}

TEST(RedisClusterSettings, AServerThatIsNotAClusterNodeIsNamed) {
  RedisServer plain;
  const std::string error =
      start_error(cluster_settings("127.0.0.1:" + std::to_string(plain.port())));
  EXPECT_THAT(error, HasSubstr("cluster support disabled"));
  EXPECT_THAT(error, HasSubstr("instead of cluster_nodes"));
}

TEST(RedisClusterSettings, ContradictionsAreRefusedNamingBothKeys) {
  const auto refused = [](const std::function<void(json&)>& change) {
    auto s = cluster_settings("127.0.0.1:7000");
    change(s.provider_config["provider"]["provider"]);
    try {
      EventBus::create(s);
      return std::string("accepted");
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
  };
  EXPECT_THAT(refused([](json& c) { c["host"] = "localhost"; }),
              HasSubstr("provider.host is set, and so is events.provider.provider.provider."
                        "cluster_nodes"));
  EXPECT_THAT(refused([](json& c) { c["sentinels"] = "localhost:26379"; }),
              HasSubstr("sentinels is set, and so is"));
  EXPECT_THAT(refused([](json& c) { c["uri"] = "redis://localhost"; }),
              HasSubstr("cluster_nodes is set, and so is events.provider.provider.provider.uri"));
  EXPECT_THAT(refused([](json& c) { c["db"] = 2; }),
              HasSubstr("a cluster has database 0 only"));
  EXPECT_THAT(refused([](json& c) { c["cluster_nodes"] = "a:1,,b:2"; }),
              HasSubstr("cluster_nodes = \"a:1,,b:2\" is invalid"));
  EXPECT_THAT(refused([](json& c) { c["cluster_nodes"] = "a:1,b:99999"; }),
              HasSubstr("the port in the list of cluster nodes must be 1 to 65535, got '99999'"));
  EXPECT_THAT(refused([](json& c) { c["cluster_nodes"] = "[::1"; }),
              HasSubstr("in the list of cluster nodes opens '['"));
  EXPECT_THAT(refused([](json& c) { c["cluster_pubsub"] = "broadcast"; }),
              HasSubstr("cluster_pubsub"));
  EXPECT_THAT(refused([](json& c) {
                c.erase("cluster_nodes");
                c["uri"] = "redis://localhost";
              }),
              HasSubstr("cluster_pubsub is set, but events.provider.provider.provider."
                        "cluster_nodes is not"));
}

// A numbered stream from one bus to another on one channel, through @p change of the cluster
// (then @p settled), the checks a user relies on and @p check (while both buses still run), and
// the figures printed labelled @p what.
struct StreamResult {
  int published = 0, failed = 0, to_nobody = 0, lost_unreported = 0, duplicates = 0;
  long resumed_ms = -1;
};

StreamResult stream_through(const std::string& seeds, const std::string& name,
                            const std::function<void()>& change,
                            const std::function<bool()>& settled,
                            const std::function<void()>& check, const char* what) {
  StreamResult r;
  auto subscriber = started(cluster_settings(seeds));
  auto publisher = started(cluster_settings(seeds));
  std::mutex mutex;
  std::vector<int> count;
  int received = 0;
  std::optional<std::chrono::steady_clock::time_point> first_after;
  int after = INT32_MAX;
  auto sub = subscriber->subscribe(name, [&](const Event& e) {
    const int n = e.payload().at("n").get<int>();
    std::lock_guard lock(mutex);
    if (n >= static_cast<int>(count.size())) count.resize(n + 1);
    if (++count[n] > 1) ++r.duplicates;
    ++received;
    if (n >= after && !first_after) first_after = std::chrono::steady_clock::now();
  });
  const auto total = [&] {
    std::lock_guard lock(mutex);
    return received;
  };
  NumberedFeeder feeder(*publisher, name);
  std::mutex& sent_mutex = feeder.mutex;
  std::vector<Completion>& sent = feeder.sent;  // by event number
  EXPECT_TRUE(eventually([&] { return total() >= 200; }));
  {
    std::lock_guard lock(sent_mutex);
    std::lock_guard g(mutex);
    after = static_cast<int>(sent.size());
  }
  const auto changed_at = std::chrono::steady_clock::now();
  change();
  EXPECT_TRUE(eventually(settled, std::chrono::seconds(60))) << what << ": did not settle";
  const int at_settled = total();
  EXPECT_TRUE(eventually([&] { return total() >= at_settled + 200; }, std::chrono::seconds(60)))
      << what << ": delivery did not resume";
  feeder.stop();
  for (auto& c : sent) EXPECT_TRUE(c.wait_for(kGenerous)) << "a publish never completed";
  int last_acknowledged = -1;
  for (std::size_t n = 0; n < sent.size(); ++n) {
    if (sent[n].delivered() && sent[n].receivers() > 0) last_acknowledged = static_cast<int>(n);
  }
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(mutex);
    return static_cast<int>(count.size()) > last_acknowledged && count[last_acknowledged] > 0;
  }));
  std::lock_guard lock(mutex);
  count.resize(std::max(count.size(), sent.size()));
  r.published = static_cast<int>(sent.size());
  for (std::size_t n = 0; n < sent.size(); ++n) {
    const bool got = count[n] > 0;
    if (!sent[n].delivered()) {
      ++r.failed;
    } else if (!got && sent[n].receivers() == 0) {
      ++r.to_nobody;
    } else if (!got) {
      ++r.lost_unreported;
    }
  }
  if (first_after) {
    r.resumed_ms = static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(*first_after - changed_at).count());
  }
  EXPECT_EQ(r.duplicates, 0) << what;
  EXPECT_EQ(r.lost_unreported, 0) << what << ": events told delivered and never received";
  for (auto* bus : {subscriber.get(), publisher.get()}) {
    EXPECT_TRUE(eventually([&] { return bus->health().healthy(); })) << bus->health().detail;
  }
  check();
  std::cout << "figure: " << what << ": " << r.published << " events published; the first "
            << "published after it received " << r.resumed_ms << " ms after it; " << r.failed
            << " failed (the publisher was told), " << r.to_nobody
            << " published to nobody (told receivers = 0), " << r.lost_unreported
            << " lost unreported, " << r.duplicates << " duplicates" << std::endl;
  return r;
}

TEST(RedisClusterChanges, ASlotMigratedToAnotherShardIsFollowedWithoutRestart) {
  RedisCluster cluster(3, 0);
  const std::string name = "moving.stream";
  const int slot = cluster.key_slot(channel(name));
  const int from = cluster.port_of_slot_owner(slot);
  int to = -1;
  for (int p : cluster.master_ports()) {
    if (p != from) to = p;
  }
  ASSERT_NE(to, -1);
  LogCapture log("athomic.provider.redis");
  const StreamResult r = stream_through(
      cluster.seeds(), name, [&] { cluster.migrate_slot(slot, to); },
      [&] {
        RawClient c(to);
        return c.command({"PUBSUB", "SHARDCHANNELS", channel(name)}).size() == 1;
      },
      [&] {
        RawClient old_owner(from);
        EXPECT_TRUE(old_owner.command({"PUBSUB", "SHARDCHANNELS", channel(name)}).empty());
      },
      "slot migration");
  // Nothing is lost or doubled by a migration: a publish answered MOVED was not run, and is
  // sent again to the new owner.
  EXPECT_EQ(r.failed, 0);
  // Both ways of learning it were taken: the publisher's MOVED, the subscriber's sunsubscribe.
  EXPECT_THAT(log.text(), HasSubstr("slot " + std::to_string(slot) + " (" + channel(name) +
                                    ") is served at 127.0.0.1:" + std::to_string(to) + " now (MOVED"));
  EXPECT_THAT(log.text(), HasSubstr("subscribing " + name + " again at 127.0.0.1:" +
                                    std::to_string(to) + " (the server unsubscribed it)"));
}

TEST(RedisClusterChanges, DeliveryResumesOnThePromotedReplicaAfterAShardMasterIsKilled) {
  RedisCluster cluster(3, 1);
  const std::string name = "failover.stream";
  const int slot = cluster.key_slot(channel(name));
  const int master = cluster.port_of_slot_owner(slot);
  const auto replicas = cluster.replica_ports_of(master);
  ASSERT_EQ(replicas.size(), 1u);
  stream_through(
      cluster.seeds(), name, [&] { cluster.kill9(master); },
      [&] { return cluster.port_of_slot_owner(slot) == replicas[0]; },
      [&] {
        RawClient promoted(replicas[0]);
        EXPECT_EQ(promoted.command({"PUBSUB", "SHARDCHANNELS", channel(name)}).size(), 1u);
      },
      "shard master SIGKILL");
}

// CLUSTER FAILOVER on a replica: the old master stays up, a replica now, and keeps the
// provider's connections open; they must leave it for the new master (a replica accepts
// SSUBSCRIBE and SPUBLISH, so nothing would fail to tell).
TEST(RedisClusterChanges, AManualFailoverMovesTheConnectionsToTheNewMaster) {
  RedisCluster cluster(3, 1);
  const std::string name = "manual.failover.stream";
  const int slot = cluster.key_slot(channel(name));
  const int master = cluster.port_of_slot_owner(slot);
  const auto replicas = cluster.replica_ports_of(master);
  ASSERT_EQ(replicas.size(), 1u);
  const StreamResult r = stream_through(
      cluster.seeds(), name,
      [&] { EXPECT_EQ(RawClient(replicas[0]).command({"CLUSTER", "FAILOVER"}), "OK"); },
      [&] {
        return cluster.port_of_slot_owner(slot) == replicas[0] &&
               RawClient(replicas[0]).command({"PUBSUB", "SHARDCHANNELS", channel(name)}).size() ==
                   1;
      },
      [&] {
        EXPECT_TRUE(
            RawClient(master).command({"PUBSUB", "SHARDCHANNELS", channel(name)}).empty());
      },
      "manual failover");
  EXPECT_EQ(r.duplicates, 0);
}

// A bus that only publishes hears nothing of a manual failover (the demoted master, a replica
// now, keeps its connections and accepts SPUBLISH, answering 0 receivers): the slot map it
// re-reads every keepalive_interval moves it to the new master.
TEST(RedisClusterChanges, APublishOnlyBusFollowsAManualFailoverWithinTheKeepaliveInterval) {
  RedisCluster cluster(3, 1);
  const std::string name = "publish.only";
  const int slot = cluster.key_slot(channel(name));
  const int master = cluster.port_of_slot_owner(slot);
  const auto replicas = cluster.replica_ports_of(master);
  ASSERT_EQ(replicas.size(), 1u);
  auto settings = cluster_settings(cluster.seeds());
  settings.provider_config["keepalive_interval"] = 1;
  auto publisher = started(settings);
  auto subscriber = started(cluster_settings(cluster.seeds()));
  auto sub = subscriber->subscribe(name, [](const Event&) {});
  EXPECT_EQ(RawClient(replicas[0]).command({"CLUSTER", "FAILOVER"}), "OK");
  ASSERT_TRUE(eventually([&] { return cluster.port_of_slot_owner(slot) == replicas[0]; }));
  ASSERT_TRUE(eventually([&] {
    return RawClient(replicas[0]).command({"PUBSUB", "SHARDNUMSUB", channel(name)})[1] == 1;
  }));
  // Each try waits a bounded while, so that a publisher that stays stuck fails here, with its
  // message, well within the test's time limit.
  EXPECT_TRUE(eventually([&] {
    Completion c = publisher->publish(name, json::object());
    return c.wait_for(std::chrono::seconds(5)) && c.delivered() && c.receivers() == 1;
  }, std::chrono::seconds(20))) << "the publisher stayed on the demoted master";
}

// A channel whose slot no master serves for a while (CLUSTER DELSLOTS) is subscribed again
// once one does.
TEST(RedisClusterChanges, ASubscriptionWhoseSlotWasUnassignedComesBackWithTheSlot) {
  RedisCluster cluster(3, 0);
  const std::string name = "orphan.slot";
  const int slot = cluster.key_slot(channel(name));
  const int owner = cluster.port_of_slot_owner(slot);
  const auto masters = cluster.master_ports();
  ASSERT_EQ(masters.size(), 3u);
  for (int p : masters) {
    RawClient(p).command({"CONFIG", "SET", "cluster-require-full-coverage", "no"});
  }
  auto settings = cluster_settings(cluster.seeds());
  settings.provider_config["keepalive_interval"] = 1;
  auto subscriber = started(settings);
  std::atomic<int> got{0};
  auto sub = subscriber->subscribe(name, [&](const Event&) { ++got; });
  LogCapture log("athomic.provider.redis");
  for (int p : masters) RawClient(p).command({"CLUSTER", "DELSLOTS", std::to_string(slot)});
  ASSERT_TRUE(eventually([&] { return log.text().find("its subscription is lost") != std::string::npos; }));
  RawClient(owner).command({"CLUSTER", "ADDSLOTS", std::to_string(slot)});
  EXPECT_TRUE(eventually([&] {
    return RawClient(owner).command({"PUBSUB", "SHARDNUMSUB", channel(name)})[1] == 1;
  }, std::chrono::seconds(10))) << "the subscription did not come back with its slot";
  auto publisher = started(cluster_settings(cluster.seeds()));
  EXPECT_TRUE(eventually([&] {
    publisher->publish(name, json::object());
    return got > 0;
  }));
}

}  // namespace
}  // namespace athomic::test
