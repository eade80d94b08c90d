// The redis provider's settings: declared to the host (ABI 1.2), which validates their types,
// bounds and names and fills in defaults, and read back with Host::setting<T>(). Checked here is
// only what a declaration cannot say: the uri's syntax and how the uri and the separate
// connection fields combine.
#pragma once

#include <athomic/sdk/provider.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace athomic::redis {

struct Endpoint {
  std::string host = "localhost";
  int port = 6379;
  int db = 0;
  std::string user;
  std::string password;
  double connect_timeout_s = 5.0;

  // "redis://user:***@host:port/db": never shows the password.
  std::string display() const;
};

struct Config {
  Endpoint endpoint;
  std::string key_prefix = "events";
  std::string separator = ":";
  std::size_t max_buffered_events = 100000;
  std::size_t max_buffered_bytes = std::size_t{64} << 20;
  double reconnect_initial_delay_s = 0.1;
  double reconnect_max_delay_s = 5.0;
  double flush_timeout_s = 2.0;
  double keepalive_interval_s = 30.0;  // 0: no keepalive PING

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
  Endpoint endpoint;
  bool has_port = false, has_db = false, has_credentials = false;
};

// Parses "redis://[user[:password]@]host[:port][/db]".
// @throws std::invalid_argument naming what is wrong (never the password).
ParsedUri parse_uri(std::string_view uri);

// @p uri with the password in its user info replaced by "***", however malformed the rest is.
std::string masked_uri(std::string_view uri);

}  // namespace athomic::redis
