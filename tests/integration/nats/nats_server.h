// A real nats-server for one test, on a free loopback port: started, frozen (SIGSTOP) and
// thawed, killed and restarted on the same port.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "process.h"

namespace athomic::test {

class NatsServer {
 public:
  NatsServer() : port_(free_port()) { start(); }
  ~NatsServer() {
    if (frozen_) thaw();
  }
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

  // (Re)starts on the same port; returns once it accepts connections.
  void start() {
    process_ = std::make_unique<Process>(std::vector<std::string>{
        "nats-server", "-a", "127.0.0.1", "-p", std::to_string(port_), "-l", "/dev/null"});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!accepts()) {
      if (process_->wait(std::chrono::milliseconds(0))) {
        throw std::runtime_error("nats-server exited at start (port " + std::to_string(port_) +
                                 ")");
      }
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("nats-server did not start");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  void kill9() {
    if (!process_) return;
    process_->signal(SIGKILL);
    process_->wait(std::chrono::seconds(10));
    process_.reset();
    frozen_ = false;
  }
  // The server stops reading and answering, its connections stay open. Returns once it is
  // stopped (the signal takes effect asynchronously).
  void freeze() {
    process_->signal(SIGSTOP);
    frozen_ = true;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (state() != 'T') {
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("nats-server did not stop");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  void thaw() {
    process_->signal(SIGCONT);
    frozen_ = false;
  }

 private:
  // The process state letter from /proc/<pid>/stat ('T': stopped).
  char state() const {
    std::ifstream stat("/proc/" + std::to_string(process_->pid()) + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto paren = line.rfind(')');
    return paren != std::string::npos && paren + 2 < line.size() ? line[paren + 2] : '?';
  }

  bool accepts() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
  }

  int port_;
  std::unique_ptr<Process> process_;
  bool frozen_ = false;
};

}  // namespace athomic::test
