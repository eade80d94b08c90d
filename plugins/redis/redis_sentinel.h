// Redis Sentinel: which server is the master now. The sentinels are asked in turn, each within
// the connect timeout, as redis-py's Sentinel.discover_master does; the first that names the
// master answers. The caller then connects with Endpoint::must_be_master, so that an answer
// gone stale (a failover under way, a master demoted since) is refused and asked again.
#pragma once

#include "redis_config.h"
#include "redis_connection.h"

#include <set>
#include <string>

namespace athomic::redis {

// Sets @p master's host and port to the master's address that a sentinel of @p sentinel gives,
// skipping answers naming a host:port in @p failed (a sentinel whose view is stale names a dead
// master while the next one knows the new one). False, with @p error naming each sentinel asked
// and its answer, when none could; also when @p cancel was requested (blocking: every step
// waits at most the connect timeout).
bool ask_sentinels(const SentinelConfig& sentinel, Endpoint& master, std::string& error,
                   const Connection::Cancel* cancel = nullptr,
                   const std::set<std::string>* failed = nullptr);

}  // namespace athomic::redis
