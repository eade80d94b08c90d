#include "servers.h"

#include <hiredis/hiredis.h>

#include <signal.h>

#include <stdexcept>
#include <thread>

namespace athomic::test {

RedisServer::RedisServer(std::vector<std::string> extra) : port_(free_port()), extra_(std::move(extra)) {
  start();
}

RedisServer::~RedisServer() { process_.reset(); }

std::string RedisServer::uri(const std::string& userinfo) const {
  return "redis://" + (userinfo.empty() ? "" : userinfo + "@") + "127.0.0.1:" +
         std::to_string(port_) + "/0";
}

void RedisServer::kill9() {
  if (!process_) return;
  process_->signal(SIGKILL);
  process_->wait(std::chrono::seconds(10));
  process_.reset();
}

void RedisServer::start() {
  std::vector<std::string> argv = {"redis-server", "--port", std::to_string(port_), "--bind",
                                   "127.0.0.1", "--save", "", "--appendonly", "no",
                                   "--protected-mode", "no", "--loglevel", "warning",
                                   "--logfile", ""};
  argv.insert(argv.end(), extra_.begin(), extra_.end());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  process_ = std::make_unique<Process>(argv, true);
  // Ready when it answers (a NOAUTH error is an answer too).
  for (;;) {
    timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    const bool up = c && !c->err;
    if (c) redisFree(c);
    if (up) return;
    if (process_->wait(std::chrono::milliseconds(0))) {
      throw std::runtime_error("redis-server exited at start (port " + std::to_string(port_) + ")");
    }
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("redis-server did not start");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace athomic::test
