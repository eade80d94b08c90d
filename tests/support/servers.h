// Real servers and processes for integration tests: each test starts its own redis-server (or
// nats-server) on a free loopback port and stops it when done.
#pragma once

#include "process.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace athomic::test {

class RedisServer {
 public:
  // Starts redis-server on a free port; @p extra are more command-line options.
  explicit RedisServer(std::vector<std::string> extra = {});
  ~RedisServer();

  int port() const { return port_; }
  std::string uri(const std::string& userinfo = "") const;
  void kill9();          // SIGKILL, no chance to clean up
  void start();          // (re)starts on the same port

 private:
  int port_;
  std::vector<std::string> extra_;
  std::unique_ptr<Process> process_;
};

// A redis-server in sentinel mode (what Debian's redis-sentinel runs) on a free port, watching
// the master named @p master_name at 127.0.0.1:@p master_port with @p quorum. The failure
// detection is quick (down-after-milliseconds @p down_after_ms) so that a failover takes
// seconds in a test. @p extra_lines are more lines of its config file.
class SentinelServer {
 public:
  SentinelServer(const std::string& master_name, int master_port, int quorum,
                 int down_after_ms = 500, int failover_timeout_ms = 2000,
                 const std::vector<std::string>& extra_lines = {});
  ~SentinelServer();

  int port() const { return port_; }
  void kill9();

 private:
  int port_;
  std::string dir_;  // holds its config file, which the sentinel rewrites
  std::unique_ptr<Process> process_;
};

}  // namespace athomic::test
