#include "redis_config.h"

#include <charconv>
#include <stdexcept>

namespace athomic::redis {

namespace {

using sdk::setting;

constexpr double kMaxSeconds = 3600;
constexpr const char* kRedisOnly[] = {"redis", nullptr};

// Paths as users write them below events.provider. Keep docs/CONFIGURATION.md in step
// (RedisSettings.TheDocumentationListsEveryDeclaredKey).
constexpr athomic_setting kMaxBufferedEvents = setting(
    "max_buffered_events", ATHOMIC_SETTING_INT, "100000",
    "publishes kept until the server answers them (while disconnected, too); beyond it publish "
    "fails and keeps nothing",
    1, 100000000);
constexpr athomic_setting kMaxBufferedBytes = setting(
    "max_buffered_bytes", ATHOMIC_SETTING_INT, "67108864",
    "the same publishes in bytes (their PUBLISH commands); whichever limit is reached first", 1024,
    double(int64_t{1} << 40));
constexpr athomic_setting kReconnectInitialDelay =
    setting("reconnect_initial_delay", ATHOMIC_SETTING_SECONDS, "0.1",
            "first wait before reconnecting a lost connection; doubles each attempt", 0.001, 60);
constexpr athomic_setting kReconnectMaxDelay =
    setting("reconnect_max_delay", ATHOMIC_SETTING_SECONDS, "5",
            "longest wait between reconnect attempts", 0.001, kMaxSeconds);
constexpr athomic_setting kFlushTimeout = setting(
    "flush_timeout", ATHOMIC_SETTING_SECONDS, "2",
    "how long close() lets unanswered publishes reach the server; then they fail", 0, kMaxSeconds);
constexpr athomic_setting kKeepaliveInterval =
    setting("keepalive_interval", ATHOMIC_SETTING_SECONDS, "30",
            "a connection that sent nothing for this long sends PING (keep it below the server's "
            "timeout); 0: never",
            0, kMaxSeconds);
constexpr athomic_setting kReplyTimeout = setting(
    "reply_timeout", ATHOMIC_SETTING_SECONDS, "30",
    "a connection awaiting the server's answer (publishes, a subscription change, a keepalive "
    "PING) that receives nothing for this long is closed and made again; 0: never",
    0, kMaxSeconds);
constexpr athomic_setting kKvBackend =
    setting("provider.backend", ATHOMIC_SETTING_STRING, "\"redis\"",
            "the KV store the bus reuses (the Python framework's nesting); only redis", 0, 0, 0,
            kRedisOnly);
constexpr athomic_setting kKeyPrefix =
    setting("provider.key_prefix", ATHOMIC_SETTING_STRING, "\"events\"",
            "channel = {key_prefix}{channel_separator}{event name}; not empty");
constexpr athomic_setting kChannelSeparator =
    setting("provider.channel_separator", ATHOMIC_SETTING_STRING, "\":\"",
            "between key_prefix and the event name");
constexpr athomic_setting kBackend =
    setting("provider.provider.backend", ATHOMIC_SETTING_STRING, "\"redis\"",
            "the KV store's connection backend; only redis", 0, 0, 0, kRedisOnly);
constexpr athomic_setting kUri =
    setting("provider.provider.uri", ATHOMIC_SETTING_STRING, nullptr,
            "redis://[user[:password]@]host[:port][/db]: the server, instead of host, port, db; or "
            "redis+sentinel://[user[:password]@]host[:port][,host[:port]...]/master_name[/db]");
constexpr athomic_setting kHost =
    setting("provider.provider.host", ATHOMIC_SETTING_STRING, nullptr,
            "the server's host name or address, without a uri (then: localhost)");
constexpr athomic_setting kPort =
    setting("provider.provider.port", ATHOMIC_SETTING_INT, nullptr,
            "the server's port, without a uri (then: 6379)", 1, 65535);
constexpr athomic_setting kDb =
    setting("provider.provider.db", ATHOMIC_SETTING_INT, nullptr,
            "database number, without one in the uri (then: 0); Pub/Sub ignores it", 0, 1 << 20);
constexpr athomic_setting kUser =
    setting("provider.provider.user", ATHOMIC_SETTING_STRING, nullptr,
            "Redis 6 ACL user, without one in the uri; needs password");
constexpr athomic_setting kPassword =
    setting("provider.provider.password", ATHOMIC_SETTING_STRING, nullptr,
            "password (of user, or of the default user), without one in the uri", 0, 0,
            ATHOMIC_SETTING_SECRET);
constexpr athomic_setting kSentinels = setting(
    "provider.provider.sentinels", ATHOMIC_SETTING_STRING, nullptr,
    "Redis Sentinel: host[:port] of each sentinel, comma-separated (port: 26379), asked in turn "
    "for the master named master_name; instead of a uri, host and port");
constexpr athomic_setting kMasterName =
    setting("provider.provider.master_name", ATHOMIC_SETTING_STRING, nullptr,
            "Redis Sentinel: the name the sentinels monitor the master under");
constexpr athomic_setting kSentinelUser =
    setting("provider.provider.sentinel_user", ATHOMIC_SETTING_STRING, nullptr,
            "Redis Sentinel: the sentinels' ACL user; needs sentinel_password");
constexpr athomic_setting kSentinelPassword =
    setting("provider.provider.sentinel_password", ATHOMIC_SETTING_STRING, nullptr,
            "Redis Sentinel: the sentinels' password (requirepass of the sentinels), not the "
            "master's",
            0, 0, ATHOMIC_SETTING_SECRET);
constexpr athomic_setting kClusterNodes = setting(
    "provider.provider.cluster_nodes", ATHOMIC_SETTING_STRING, nullptr,
    "Redis Cluster: host[:port] of some of its nodes, comma-separated (port: 6379), asked in "
    "turn for the cluster's nodes and slots; instead of a uri, host and port");
constexpr const char* kPubsubModes[] = {"sharded", "classic", nullptr};
constexpr athomic_setting kClusterPubsub = setting(
    "provider.provider.cluster_pubsub", ATHOMIC_SETTING_STRING, nullptr,
    "Redis Cluster: \"sharded\" (SPUBLISH/SSUBSCRIBE on the shard of each channel's slot; the "
    "default) or \"classic\" (PUBLISH/SUBSCRIBE, broadcast to every node; patterns need it)",
    0, 0, 0, kPubsubModes);
constexpr athomic_setting kSocketConnectTimeout = setting(
    "provider.provider.socket_connect_timeout", ATHOMIC_SETTING_SECONDS, "5",
    "each step of connecting (resolving the host, the TCP connect, AUTH and PING) within this",
    0.001, kMaxSeconds);

std::string full(const athomic_setting& s) { return std::string("events.provider.") + s.path; }

[[noreturn]] void invalid(const std::string& message) {
  throw sdk::Error(ATHOMIC_ERR_INVALID_ARGUMENT, message);
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc() && p == s.data() + i + 3) {
        out += static_cast<char>(v);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

}  // namespace

std::string Endpoint::display() const {
  if (is_sentinel) return "sentinel " + host + ":" + std::to_string(port);
  std::string out = "redis://";
  if (!user.empty() || !password.empty()) {
    out += user;
    if (!password.empty()) out += ":***";
    out += "@";
  }
  out += host + ":" + std::to_string(port) + "/" + std::to_string(db);
  return out;
}

namespace {

int parse_port(std::string_view port, const char* where) {
  int v = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
  if (ec != std::errc() || p != port.data() + port.size() || v < 1 || v > 65535) {
    throw std::invalid_argument(std::string("the port ") + where + " must be 1 to 65535, got '" +
                                std::string(port) + "'");
  }
  return v;
}

int parse_db(std::string_view db) {
  int v = 0;
  auto [p, ec] = std::from_chars(db.data(), db.data() + db.size(), v);
  if (ec != std::errc() || p != db.data() + db.size() || v < 0) {
    throw std::invalid_argument("the database in the uri must be a number, got '" +
                                std::string(db) + "'");
  }
  return v;
}

// "host", "host:port", "[v6]" or "[v6]:port" into @p ep; whether a port was given.
bool parse_hostport(std::string_view hostport, Endpoint& ep, const char* where) {
  bool has_port = false;
  std::string_view host = hostport;
  if (hostport.starts_with('[')) {
    const auto close = hostport.find(']');
    if (close == std::string_view::npos) {
      throw std::invalid_argument("'" + std::string(hostport) + "' " + where +
                                  " opens '[' without closing it");
    }
    host = hostport.substr(1, close - 1);
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        throw std::invalid_argument("'" + std::string(hostport) + "' " + where +
                                    ": expected ':port' after ']'");
      }
      ep.port = parse_port(after.substr(1), where);
      has_port = true;
    }
  } else if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    ep.port = parse_port(hostport.substr(colon + 1), where);
    has_port = true;
    host = hostport.substr(0, colon);
  }
  if (host.empty()) throw std::invalid_argument(std::string("no host ") + where);
  ep.host = std::string(host);
  return has_port;
}

}  // namespace

std::vector<Endpoint> parse_addresses(std::string_view list, int default_port, const char* where) {
  std::vector<Endpoint> out;
  for (std::size_t start = 0; start <= list.size();) {
    std::size_t end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    std::string_view item = list.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) {
      throw std::invalid_argument("address " + std::to_string(out.size() + 1) +
                                  " of the list is empty (expected host[:port], comma-separated)");
    }
    Endpoint ep;
    ep.port = default_port;
    parse_hostport(item, ep, where);
    out.push_back(std::move(ep));
    start = end + 1;
  }
  return out;
}

ParsedUri parse_uri(std::string_view uri) {
  constexpr std::string_view kScheme = "redis://", kSentinelScheme = "redis+sentinel://";
  const bool sentinel = uri.starts_with(kSentinelScheme);
  if (!sentinel && !uri.starts_with(kScheme)) {
    throw std::invalid_argument(
        "expected redis://[user[:password]@]host[:port][/db] or "
        "redis+sentinel://[user[:password]@]host[:port][,host[:port]...]/master_name[/db] (TLS "
        "and unix sockets are not supported)");
  }
  ParsedUri parsed;
  Endpoint& ep = parsed.endpoint;
  std::string_view rest = uri.substr(sentinel ? kSentinelScheme.size() : kScheme.size());
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    parsed.has_credentials = true;
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      ep.user = percent_decode(userinfo.substr(0, colon));
      ep.password = percent_decode(userinfo.substr(colon + 1));
    } else {
      ep.password = percent_decode(userinfo);  // redis://secret@host: a password alone
    }
  }
  std::string_view hosts = rest, path;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    hosts = rest.substr(0, slash);
    path = rest.substr(slash + 1);
  }
  if (sentinel) {
    // /master_name[/db]
    std::string_view name = path, db;
    if (auto slash = path.find('/'); slash != std::string_view::npos) {
      name = path.substr(0, slash);
      db = path.substr(slash + 1);
    }
    if (name.empty()) {
      throw std::invalid_argument(
          "the uri names no master: expected redis+sentinel://host[:port][,host[:port]...]/"
          "master_name[/db]");
    }
    if (!db.empty()) {
      ep.db = parse_db(db);
      parsed.has_db = true;
    }
    parsed.sentinel = SentinelConfig{parse_addresses(hosts, 26379), std::string(name)};
    ep.host.clear();
    return parsed;
  }
  if (!path.empty()) {
    ep.db = parse_db(path);
    parsed.has_db = true;
  }
  if (hosts.empty()) throw std::invalid_argument("the uri has no host");
  parsed.has_port = parse_hostport(hosts, ep, "in the uri");
  return parsed;
}

std::string ClusterConfig::display() const {
  std::string out = std::string("cluster (") + (sharded ? "sharded" : "classic") +
                    " Pub/Sub) of the nodes ";
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    if (i) out += ", ";
    out += seeds[i].host + ":" + std::to_string(seeds[i].port);
  }
  return out;
}

std::string SentinelConfig::display() const {
  std::string out = "master '" + master_name + "' of the sentinels ";
  for (std::size_t i = 0; i < sentinels.size(); ++i) {
    if (i) out += ", ";
    out += sentinels[i].host + ":" + std::to_string(sentinels[i].port);
  }
  return out;
}

std::string masked_uri(std::string_view uri) {
  const auto scheme = uri.find("://");
  const std::size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
  const auto at = uri.rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(uri);
  const std::string_view userinfo = uri.substr(start, at - start);
  const auto colon = userinfo.find(':');
  // "user:password@" keeps the user; "password@" (a password alone) keeps nothing.
  const std::string_view user =
      colon == std::string_view::npos ? std::string_view() : userinfo.substr(0, colon + 1);
  return std::string(uri.substr(0, start)) + std::string(user) + "***" +
         std::string(uri.substr(at));
}

const athomic_setting* const kSettings[] = {&kMaxBufferedEvents,
                                            &kMaxBufferedBytes,
                                            &kReconnectInitialDelay,
                                            &kReconnectMaxDelay,
                                            &kFlushTimeout,
                                            &kKeepaliveInterval,
                                            &kReplyTimeout,
                                            &kKvBackend,
                                            &kKeyPrefix,
                                            &kChannelSeparator,
                                            &kBackend,
                                            &kUri,
                                            &kHost,
                                            &kPort,
                                            &kDb,
                                            &kUser,
                                            &kPassword,
                                            &kSocketConnectTimeout,
                                            &kSentinels,
                                            &kMasterName,
                                            &kSentinelUser,
                                            &kSentinelPassword,
                                            &kClusterNodes,
                                            &kClusterPubsub,
                                            nullptr};

Config read_config(const sdk::Host& host) {
  Config c;
  c.max_buffered_events = host.setting<std::size_t>(kMaxBufferedEvents.path);
  c.max_buffered_bytes = host.setting<std::size_t>(kMaxBufferedBytes.path);
  c.reconnect_initial_delay_s = host.setting<double>(kReconnectInitialDelay.path);
  c.reconnect_max_delay_s = host.setting<double>(kReconnectMaxDelay.path);
  c.flush_timeout_s = host.setting<double>(kFlushTimeout.path);
  c.keepalive_interval_s = host.setting<double>(kKeepaliveInterval.path);
  c.reply_timeout_s = host.setting<double>(kReplyTimeout.path);
  c.key_prefix = host.setting<std::string>(kKeyPrefix.path);
  c.separator = host.setting<std::string>(kChannelSeparator.path);
  if (c.key_prefix.empty()) {
    invalid(full(kKeyPrefix) +
            " = \"\" is invalid: expected a prefix that keeps this bus's channels apart from "
            "others on the server, e.g. \"app_events\"");
  }

  Endpoint& ep = c.endpoint;
  const auto is_set = [&](const athomic_setting& s) { return host.has_setting(s.path); };
  const auto text = [&](const athomic_setting& s) { return host.setting<std::string>(s.path); };
  const std::string uri = is_set(kUri) ? text(kUri) : std::string();
  if (!uri.empty()) {
    ParsedUri parsed;
    try {
      parsed = parse_uri(uri);
    } catch (const std::invalid_argument& e) {
      invalid(full(kUri) + " = \"" + masked_uri(uri) + "\" is invalid: " + e.what());
    }
    // The separate fields complete a uri; they may not contradict it.
    const struct {
      const athomic_setting& field;
      bool in_uri;
      const char* what;
    } overlaps[] = {{kHost, true, "host"},
                    {kPort, parsed.has_port || parsed.sentinel.has_value(), "port"},
                    {kDb, parsed.has_db, "database"},
                    {kUser, parsed.has_credentials, "credentials"},
                    {kPassword, parsed.has_credentials, "credentials"}};
    for (const auto& o : overlaps) {
      if (o.in_uri && is_set(o.field)) {
        invalid(full(o.field) + " is set, and so is " + full(kUri) + " (\"" + masked_uri(uri) +
                "\"), which names the " + o.what + " already: set it in one place");
      }
    }
    if (is_set(kClusterNodes)) {
      invalid(full(kClusterNodes) + " is set, and so is " + full(kUri) + " (\"" + masked_uri(uri) +
              "\"): a cluster is named by its nodes alone. Drop the uri (its credentials go in " +
              full(kUser) + " and " + full(kPassword) + ")");
    }
    for (const athomic_setting* field : {&kSentinels, &kMasterName}) {
      if (parsed.sentinel && is_set(*field)) {
        invalid(full(*field) + " is set, and so is " + full(kUri) + " (\"" + masked_uri(uri) +
                "\"), which names the sentinels and the master already: set them in one place");
      }
      if (!parsed.sentinel && is_set(*field)) {
        invalid(full(*field) + " is set, and so is " + full(kUri) + " (\"" + masked_uri(uri) +
                "\"), which names one server: with sentinels, the sentinels name the master. "
                "Drop the uri, or write it as redis+sentinel://host[:port][,host[:port]...]/"
                "master_name[/db]");
      }
    }
    ep = parsed.endpoint;
    c.sentinel = std::move(parsed.sentinel);
    if (!parsed.has_port && is_set(kPort)) ep.port = host.setting<int>(kPort.path);
    if (!parsed.has_db && is_set(kDb)) ep.db = host.setting<int>(kDb.path);
    if (!parsed.has_credentials) {
      if (is_set(kUser)) ep.user = text(kUser);
      if (is_set(kPassword)) ep.password = text(kPassword);
    }
  } else if (is_set(kClusterNodes)) {
    for (const athomic_setting* field : {&kHost, &kPort, &kSentinels, &kMasterName}) {
      if (is_set(*field)) {
        invalid(full(*field) + " is set, and so is " + full(kClusterNodes) +
                ": in a cluster, the cluster names the node of each channel. Drop " +
                full(*field));
      }
    }
    if (is_set(kDb) && host.setting<int>(kDb.path) != 0) {
      invalid(full(kDb) + " = " + std::to_string(host.setting<int>(kDb.path)) +
              " is invalid with " + full(kClusterNodes) + ": a cluster has database 0 only");
    }
    ClusterConfig cluster;
    const std::string list = text(kClusterNodes);
    try {
      cluster.seeds = parse_addresses(list, 6379, "in the list of cluster nodes");
    } catch (const std::invalid_argument& e) {
      invalid(full(kClusterNodes) + " = \"" + list + "\" is invalid: " + e.what());
    }
    cluster.sharded = !is_set(kClusterPubsub) || text(kClusterPubsub) == "sharded";
    c.cluster = std::move(cluster);
    ep.host.clear();
    if (is_set(kUser)) ep.user = text(kUser);
    if (is_set(kPassword)) ep.password = text(kPassword);
  } else if (is_set(kSentinels) || is_set(kMasterName)) {
    if (!is_set(kSentinels) || !is_set(kMasterName)) {
      const athomic_setting& missing = is_set(kSentinels) ? kMasterName : kSentinels;
      const athomic_setting& present = is_set(kSentinels) ? kSentinels : kMasterName;
      invalid(full(present) + " is set but " + full(missing) +
              " is not: Redis Sentinel needs both the sentinels and the name of the master");
    }
    for (const athomic_setting* field : {&kHost, &kPort}) {
      if (is_set(*field)) {
        invalid(full(*field) + " is set, and so is " + full(kSentinels) +
                ": with sentinels, the sentinels name the master's host and port. Drop " +
                full(*field));
      }
    }
    SentinelConfig sentinel;
    const std::string list = text(kSentinels);
    try {
      sentinel.sentinels = parse_addresses(list, 26379);
    } catch (const std::invalid_argument& e) {
      invalid(full(kSentinels) + " = \"" + list + "\" is invalid: " + e.what());
    }
    sentinel.master_name = text(kMasterName);
    if (sentinel.master_name.empty()) {
      invalid(full(kMasterName) +
              " = \"\" is invalid: expected the name the sentinels monitor the master under "
              "(sentinel monitor <name> ...)");
    }
    c.sentinel = std::move(sentinel);
    ep.host.clear();
    if (is_set(kDb)) ep.db = host.setting<int>(kDb.path);
    if (is_set(kUser)) ep.user = text(kUser);
    if (is_set(kPassword)) ep.password = text(kPassword);
  } else {
    if (is_set(kHost)) ep.host = text(kHost);
    if (is_set(kPort)) ep.port = host.setting<int>(kPort.path);
    if (is_set(kDb)) ep.db = host.setting<int>(kDb.path);
    if (is_set(kUser)) ep.user = text(kUser);
    if (is_set(kPassword)) ep.password = text(kPassword);
  }
  if (is_set(kClusterPubsub) && !c.cluster) {
    invalid(full(kClusterPubsub) + " is set, but " + full(kClusterNodes) +
            " is not: it chooses the Pub/Sub of a Redis Cluster; name some of its nodes");
  }
  if (!c.sentinel && !c.cluster && ep.host.empty()) {
    invalid(full(kHost) + " = \"\" is invalid: expected a host name or address");
  }
  if (!ep.user.empty() && ep.password.empty()) {
    invalid(full(kUser) + " = \"" + ep.user +
            "\" has no password: AUTH needs both (a nopass user takes any); set " +
            full(kPassword) + " (or give it in the uri)");
  }
  ep.connect_timeout_s = host.setting<double>(kSocketConnectTimeout.path);
  if (c.cluster) {
    for (Endpoint& node : c.cluster->seeds) {
      node.user = ep.user;
      node.password = ep.password;
      node.connect_timeout_s = ep.connect_timeout_s;
    }
  }
  const bool sentinel_credentials = is_set(kSentinelUser) || is_set(kSentinelPassword);
  if (sentinel_credentials && !c.sentinel) {
    invalid(full(is_set(kSentinelUser) ? kSentinelUser : kSentinelPassword) +
            " is set, but no sentinels are: it is used only with " + full(kSentinels) +
            " or a redis+sentinel:// uri");
  }
  if (c.sentinel) {
    const std::string user = is_set(kSentinelUser) ? text(kSentinelUser) : std::string();
    const std::string password =
        is_set(kSentinelPassword) ? text(kSentinelPassword) : std::string();
    if (!user.empty() && password.empty()) {
      invalid(full(kSentinelUser) + " = \"" + user + "\" has no password: AUTH needs both; set " +
              full(kSentinelPassword));
    }
    for (Endpoint& s : c.sentinel->sentinels) {
      s.user = user;
      s.password = password;
      s.connect_timeout_s = ep.connect_timeout_s;
      s.is_sentinel = true;
    }
  }
  return c;
}

}  // namespace athomic::redis
