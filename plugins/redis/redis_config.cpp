#include "redis_config.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <vector>

namespace athomic::redis {

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& path, const json& value, const std::string& allowed) {
  std::string shown = value.dump();
  if (path.ends_with("password")) shown = "\"***\"";
  throw std::invalid_argument(path + " = " + shown + " is invalid: " + allowed);
}

void reject_unknown(const json& obj, const std::string& path,
                    const std::vector<std::string>& known) {
  for (const auto& [k, v] : obj.items()) {
    if (std::find(known.begin(), known.end(), k) != known.end()) continue;
    std::string msg = "unknown setting " + path + "." + k + "; known keys: ";
    for (std::size_t i = 0; i < known.size(); ++i) msg += (i ? ", " : "") + known[i];
    throw std::invalid_argument(msg);
  }
}

std::string get_string(const json& obj, const std::string& path, const char* key,
                       std::string dflt) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return dflt;
  if (!it->is_string()) bad(path + "." + key, *it, "expected a string");
  return it->get<std::string>();
}

double get_seconds(const json& obj, const std::string& path, const char* key, double dflt,
                   double lo, double hi) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return dflt;
  if (!it->is_number() || it->get<double>() < lo || it->get<double>() > hi) {
    bad(path + "." + key, *it,
        "expected seconds from " + json(lo).dump() + " to " + json(hi).dump());
  }
  return it->get<double>();
}

int64_t get_int(const json& obj, const std::string& path, const char* key, int64_t dflt, int64_t lo,
                int64_t hi) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return dflt;
  if (!it->is_number_integer() || it->get<int64_t>() < lo || it->get<int64_t>() > hi) {
    bad(path + "." + key, *it,
        "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  return it->get<int64_t>();
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
  std::string out = "redis://";
  if (!user.empty() || !password.empty()) {
    out += user;
    if (!password.empty()) out += ":***";
    out += "@";
  }
  out += host + ":" + std::to_string(port) + "/" + std::to_string(db);
  return out;
}

Endpoint parse_uri(std::string_view uri) {
  constexpr std::string_view kScheme = "redis://";
  if (!uri.starts_with(kScheme)) {
    throw std::invalid_argument(
        "uri must start with redis:// (TLS and unix sockets are not "
        "supported)");
  }
  Endpoint ep;
  std::string_view rest = uri.substr(kScheme.size());
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      ep.user = percent_decode(userinfo.substr(0, colon));
      ep.password = percent_decode(userinfo.substr(colon + 1));
    } else {
      ep.password = percent_decode(userinfo);  // redis://secret@host: a password alone
    }
  }
  std::string_view hostport = rest;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      auto [p, ec] = std::from_chars(db.data(), db.data() + db.size(), ep.db);
      if (ec != std::errc() || p != db.data() + db.size() || ep.db < 0) {
        throw std::invalid_argument("the database in the uri must be a number, got '" +
                                    std::string(db) + "'");
      }
    }
  }
  if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    std::string_view port = hostport.substr(colon + 1);
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), ep.port);
    if (ec != std::errc() || p != port.data() + port.size() || ep.port < 1 || ep.port > 65535) {
      throw std::invalid_argument("the port in the uri must be 1 to 65535, got '" +
                                  std::string(port) + "'");
    }
    hostport = hostport.substr(0, colon);
  }
  if (hostport.empty()) throw std::invalid_argument("the uri has no host");
  ep.host = std::string(hostport);
  return ep;
}

Config parse_config(std::string_view text) {
  const json root = json::parse(text.begin(), text.end(), nullptr, false);
  if (!root.is_object()) throw std::invalid_argument("events.provider must be a table");
  Config c;
  const std::string p0 = "events.provider";
  reject_unknown(
      root, p0,
      {"backend", "provider", "max_buffered_events", "max_buffered_bytes",
       "reconnect_initial_delay", "reconnect_max_delay", "flush_timeout", "keepalive_interval"});
  c.max_buffered_events =
      static_cast<std::size_t>(get_int(root, p0, "max_buffered_events", 100000, 1, 100000000));
  c.max_buffered_bytes = static_cast<std::size_t>(
      get_int(root, p0, "max_buffered_bytes", int64_t{64} << 20, 1024, int64_t{1} << 40));
  c.reconnect_initial_delay_s = get_seconds(root, p0, "reconnect_initial_delay", 0.1, 0.001, 60);
  c.reconnect_max_delay_s = get_seconds(root, p0, "reconnect_max_delay", 5.0, 0.001, 3600);
  c.flush_timeout_s = get_seconds(root, p0, "flush_timeout", 2.0, 0, 3600);
  c.keepalive_interval_s = get_seconds(root, p0, "keepalive_interval", 30.0, 0, 3600);

  // The KV-store connection the bus reuses, nested as in the Python framework.
  const std::string p1 = p0 + ".provider";
  const json kv = root.value("provider", json::object());
  if (!kv.is_object()) bad(p1, kv, "expected a table");
  reject_unknown(kv, p1, {"backend", "key_prefix", "channel_separator", "provider"});
  c.key_prefix = get_string(kv, p1, "key_prefix", c.key_prefix);
  c.separator = get_string(kv, p1, "channel_separator", c.separator);
  if (c.key_prefix.empty()) bad(p1 + ".key_prefix", kv["key_prefix"], "must not be empty");

  const std::string p2 = p1 + ".provider";
  const json conn = kv.value("provider", json::object());
  if (!conn.is_object()) bad(p2, conn, "expected a table");
  reject_unknown(
      conn, p2,
      {"backend", "uri", "host", "port", "db", "user", "password", "socket_connect_timeout"});
  const std::string backend = get_string(conn, p2, "backend", "redis");
  if (backend != "redis") bad(p2 + ".backend", conn["backend"], "expected \"redis\"");
  if (auto uri = get_string(conn, p2, "uri", ""); !uri.empty()) {
    try {
      c.endpoint = parse_uri(uri);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(p2 + ".uri is invalid: " + e.what());
    }
  } else {
    c.endpoint.host = get_string(conn, p2, "host", c.endpoint.host);
    c.endpoint.port = static_cast<int>(get_int(conn, p2, "port", 6379, 1, 65535));
    c.endpoint.db = static_cast<int>(get_int(conn, p2, "db", 0, 0, 1 << 20));
    c.endpoint.user = get_string(conn, p2, "user", "");
    c.endpoint.password = get_string(conn, p2, "password", "");
  }
  c.endpoint.connect_timeout_s = get_seconds(conn, p2, "socket_connect_timeout", 5.0, 0.001, 3600);
  return c;
}

}  // namespace athomic::redis
