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

}  // namespace athomic::test
