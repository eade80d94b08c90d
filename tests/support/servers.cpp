#include "servers.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace athomic::test {

namespace {

// Waits until the server on @p port answers a connection (a NOAUTH error is an answer too), or
// throws naming @p what.
void wait_until_answering(int port, Process& process, const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
    const bool up = c && !c->err;
    if (c) redisFree(c);
    if (up) return;
    if (process.wait(std::chrono::milliseconds(0))) {
      throw std::runtime_error(what + " exited at start (port " + std::to_string(port) + ")");
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error(what + " did not start");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

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
  process_ = std::make_unique<Process>(argv, true);
  wait_until_answering(port_, *process_, "redis-server");
}

SentinelServer::SentinelServer(const std::string& master_name, int master_port, int quorum,
                               int down_after_ms, int failover_timeout_ms,
                               const std::vector<std::string>& extra_lines)
    : port_(free_port()) {
  char tmpl[] = "/tmp/athomic-sentinel-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  const std::string conf = dir_ + "/sentinel.conf";
  std::ofstream(conf) << "port " << port_ << "\nbind 127.0.0.1\nprotected-mode no\n"
                      << "dir " << dir_ << "\nlogfile \"\"\nloglevel warning\n"
                      << "sentinel monitor " << master_name << " 127.0.0.1 " << master_port << " "
                      << quorum << "\n"
                      << "sentinel down-after-milliseconds " << master_name << " " << down_after_ms
                      << "\nsentinel failover-timeout " << master_name << " " << failover_timeout_ms
                      << "\nsentinel parallel-syncs " << master_name << " 1\n";
  {
    std::ofstream more(conf, std::ios::app);
    for (const auto& line : extra_lines) more << line << "\n";
  }
  process_ =
      std::make_unique<Process>(std::vector<std::string>{"redis-server", conf, "--sentinel"}, true);
  wait_until_answering(port_, *process_, "redis-server --sentinel");
}

SentinelServer::~SentinelServer() {
  process_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void SentinelServer::kill9() {
  if (!process_) return;
  process_->signal(SIGKILL);
  process_->wait(std::chrono::seconds(10));
  process_.reset();
}

}  // namespace athomic::test
