// The redis provider's settings: declared to the host (ABI 1.2), which validates their types,
// bounds and names and fills in defaults, and read back with Host::setting<T>(). Checked here is
// only what a declaration cannot say: the uri's syntax and how the uri and the separate
// connection fields combine.
#pragma once

#include <athomic/sdk/provider.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace athomic::redis {

struct Endpoint {
  std::string host = "localhost";
  int port = 6379;
  int db = 0;
  std::string user;
  std::string password;
  double connect_timeout_s = 5.0;
  // The handshake also asks ROLE and refuses a server that is not a master (Sentinel: the
  // sentinels' answer may be stale, or the master demoted since).
  bool must_be_master = false;
  bool is_sentinel = false;  // a sentinel, not a data server (for messages)

  // "redis://user:***@host:port/db", or "sentinel host:port": never shows the password.
  std::string display() const;
};

// Redis Sentinel: the master is asked of these sentinels, each in turn, by its name.
struct SentinelConfig {
  std::vector<Endpoint> sentinels;  // user and password: the sentinels' own, not the master's
  std::string master_name;

  // "master 'mymaster' of the sentinels 10.0.0.1:26379, 10.0.0.2:26379": for messages.
  std::string display() const;
};

// Redis Cluster: the nodes first asked for the cluster's nodes and slots, and which Pub/Sub.
struct ClusterConfig {
  std::vector<Endpoint> seeds;  // with the data credentials and connect timeout
  // SPUBLISH/SSUBSCRIBE on the shard that owns each channel's slot; false: PUBLISH/SUBSCRIBE
  // on one node, which the cluster broadcasts to every node.
  bool sharded = true;

  // "cluster (sharded Pub/Sub) of the nodes 10.0.0.1:7000, ...": for messages.
  std::string display() const;
};

struct Config {
  // Without sentinel or cluster: the server. With them: the database and credentials (and the
  // connect timeout); host and port are the sentinels' or the cluster's answer.
  Endpoint endpoint;
  std::optional<SentinelConfig> sentinel;
  std::optional<ClusterConfig> cluster;
  std::string key_prefix = "events";
  std::string separator = ":";
  std::size_t max_buffered_events = 100000;
  std::size_t max_buffered_bytes = std::size_t{64} << 20;
  double reconnect_initial_delay_s = 0.1;
  double reconnect_max_delay_s = 5.0;
  double flush_timeout_s = 2.0;
  double keepalive_interval_s = 30.0;  // 0: no keepalive PING
  double reply_timeout_s = 30.0;       // 0: wait for answers for ever

  std::string channel(std::string_view event_name) const {
    std::string c;
    c.reserve(key_prefix.size() + separator.size() + event_name.size());
    c.append(key_prefix).append(separator).append(event_name);
    return c;
  }
};

// The settings the provider declares, relative to events.provider, NULL-terminated
// (ATHOMIC_PROVIDER_WITH_SETTINGS).
extern const athomic_setting* const kSettings[];

// Reads the settings the host validated. @throws sdk::Error naming the key, what is wrong and
// the fix, for what the host cannot check (never showing a password).
Config read_config(const sdk::Host& host);

// A uri as written: the endpoint, and which of its parts the uri itself names.
struct ParsedUri {
  Endpoint endpoint;  // with sentinel: host and port unused
  std::optional<SentinelConfig> sentinel;
  bool has_port = false, has_db = false, has_credentials = false;
};

// Parses "redis://[user[:password]@]host[:port][/db]" or
// "redis+sentinel://[user[:password]@]host[:port][,host[:port]...]/master_name[/db]" (the
// credentials are the master's; a sentinel's port defaults to 26379).
// @throws std::invalid_argument naming what is wrong (never the password).
ParsedUri parse_uri(std::string_view uri);

// Parses "host[:port][,host[:port]...]" ("[::1]:26379" for an IPv6 address), with @p
// default_port where a port is left out. @throws std::invalid_argument naming what is wrong.
std::vector<Endpoint> parse_addresses(std::string_view list, int default_port,
                                      const char* where = "in the list of sentinels");

// @p uri with the password in its user info replaced by "***", however malformed the rest is.
std::string masked_uri(std::string_view uri);

}  // namespace athomic::redis
