// Redis Cluster. The provider keeps the cluster's slot map (CLUSTER NODES) and, for sharded
// Pub/Sub, one ServerBus — the publishing and subscribing connections of redis_provider.cpp —
// per shard: each channel's publishes and subscription go to the shard that owns its slot
// (cluster_map.h), as SPUBLISH and SSUBSCRIBE. A shard that fails over is found again by its
// nodes (the promoted replica); a slot that moves is followed through the server's answers:
// MOVED to a publish (which the server did not run: it is sent again to the new owner, never
// lost or doubled) and the sunsubscribe a node pushes for the channels of a slot it gave away
// (subscribed again on the new owner). Classic Pub/Sub uses one ServerBus on any node, moving
// to another node of the cluster when that one is lost.
#pragma once

#include "redis_config.h"
#include "redis_connection.h"

#include <athomic/sdk/provider.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace athomic::redis {

// What a ServerBus that serves a part of a cluster asks of, and tells, the cluster provider.
// Called on the ServerBus's I/O thread.
class ShardOwner {
 public:
  virtual ~ShardOwner() = default;
  // Before reconnecting: the node to connect to now (the shard's master, or for classic
  // Pub/Sub any node), asked of the cluster; blocking, each step within the connect timeout,
  // given up when @p cancel is requested. False with @p error when no node could tell.
  virtual bool locate(Endpoint& node, std::string& error, const Connection::Cancel& cancel) = 0;
  // The server answered a publish with MOVED or ASK (@p why): it did not run it. The owner now
  // completes publish @p token, whose command is @p command; the ServerBus forgets it.
  virtual void redirected(uint64_t token, std::string_view command, std::string_view why) = 0;
  // The server refused or dropped the subscription of @p topic (its slot is served elsewhere,
  // @p why); the ServerBus no longer has it.
  virtual void channel_moved(std::string topic, std::string_view why) = 0;
  // The ServerBus's connection state changed.
  virtual void state(athomic_connection_state state, std::string_view detail) = 0;
};

// The connections to one Redis server (redis_provider.cpp).
class ServerBus : public sdk::Provider {
 public:
  // Publishes @p command — made by PublishQueue::format — as publish @p token, which
  // another ServerBus of the cluster accepted. Never throws: a failure completes the token.
  virtual void publish_command(std::string_view command, uint64_t token) = 0;
  // While stopped: the server the next start() connects to.
  virtual void move_to(const Endpoint& node) = 0;
  // While running: the cluster names @p node the server to use now (a failover whose old
  // master is still up, a replica now, keeping the connections open). Connections open or
  // opening elsewhere are dropped, and come back where locate() says.
  virtual void follow(const Endpoint& node) = 0;
};

// A ServerBus for the server @p config names (Sentinel included): the standalone provider.
std::unique_ptr<ServerBus> make_server_bus(sdk::Host host, const Config& config);
// A ServerBus for one node of a cluster, first at @p node, reporting to @p owner.
std::unique_ptr<ServerBus> make_shard_bus(sdk::Host host, const Config& config, Endpoint node,
                                          ShardOwner& owner);

// The provider for config.cluster.
std::unique_ptr<sdk::Provider> make_cluster_provider(sdk::Host host, const Config& config);

}  // namespace athomic::redis
