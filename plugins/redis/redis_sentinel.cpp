#include "redis_sentinel.h"

#include <charconv>

namespace athomic::redis {

namespace {

// One sentinel's answer: true with @p host and @p port, or false with @p why.
bool ask_one(const Endpoint& at, const std::string& master_name, std::string& host, int& port,
             std::string& why, const Connection::Cancel* cancel) {
  Connection c;
  if (!c.open(at, why, cancel)) return false;
  std::string command;
  resp::append_command(command, "SENTINEL", "get-master-addr-by-name", master_name);
  bool ok = false;
  if (!c.call(command, why, cancel, [&](const resp::Reply& r) {
        if (!r.is_array) {
          why = r.value.type == '-' ? "answered " + std::string(r.value.text)
                                    : "answered with a reply that is not an address";
          return;
        }
        if (r.value.null || r.count == 0) {
          why = "knows no master named '" + master_name + "' (check master_name)";
          return;
        }
        const std::string_view p = r.items[1].text;
        if (r.count != 2 || r.items[0].text.empty() ||
            std::from_chars(p.data(), p.data() + p.size(), port).ptr != p.data() + p.size()) {
          why = "answered with a reply that is not an address";
          return;
        }
        if (port < 1 || port > 65535) {
          why = "named the master at port '" + std::string(p) + "', which is not 1 to 65535";
          return;
        }
        host = std::string(r.items[0].text);
        ok = true;
      })) {
    return false;
  }
  return ok;
}

}  // namespace

bool ask_sentinels(const SentinelConfig& sentinel, Endpoint& master, std::string& error,
                   const Connection::Cancel* cancel, const std::set<std::string>* failed) {
  std::string asked;
  for (const Endpoint& at : sentinel.sentinels) {
    std::string host, why;
    int port = 0;
    if (ask_one(at, sentinel.master_name, host, port, why, cancel)) {
      const std::string address = host + ":" + std::to_string(port);
      if (!failed || !failed->count(address)) {
        master.host = std::move(host);
        master.port = port;
        return true;
      }
      why = "names " + address + ", which could not be used";
    }
    if (cancel && cancel->requested()) {
      error = "asking the sentinels for the master was cancelled";
      return false;
    }
    asked += (asked.empty() ? "" : "; ") + at.host + ":" + std::to_string(at.port) + ": " + why;
  }
  error = "no sentinel named the " + sentinel.display() + " (" + asked + ")";
  return false;
}

}  // namespace athomic::redis
