// The redis provider's settings, parsed from the events.provider subtree (JSON). Pure.
#pragma once

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

// Parses "redis://[user[:password]@]host[:port][/db]".
// @throws std::invalid_argument naming what is wrong (never the password).
Endpoint parse_uri(std::string_view uri);

// Parses the events.provider object. @throws std::invalid_argument naming the key path, the
// value and what is allowed.
Config parse_config(std::string_view json);

}  // namespace athomic::redis
