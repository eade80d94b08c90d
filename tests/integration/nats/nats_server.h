// A real nats-server for one test, on a free loopback port: started, frozen (SIGSTOP) and
// thawed, killed and restarted on the same port. NatsCluster: three of them, routed together.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <initializer_list>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "process.h"

namespace athomic::test {

class NatsServer {
 public:
  // @p extra: more nats-server arguments (e.g. the cluster's).
  explicit NatsServer(std::vector<std::string> extra = {})
      : port_(free_port()), extra_(std::move(extra)) {
    start();
  }
  ~NatsServer() {
    if (frozen_) thaw();
  }
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

  // (Re)starts on the same port; returns once it accepts connections.
  void start() {
    std::vector<std::string> argv{"nats-server", "-a",         "127.0.0.1", "-p",
                                  std::to_string(port_), "-l", "/dev/null"};
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    process_ = std::make_unique<Process>(argv);
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
  std::vector<std::string> extra_;
  std::unique_ptr<Process> process_;
  bool frozen_ = false;
};

// Three nats-servers in one cluster on loopback: each routes to the other two, and announces
// the others' client URLs to its clients (INFO connect_urls).
class NatsCluster {
 public:
  static constexpr int kSize = 3;

  NatsCluster() {
    int route_ports[kSize], monitor_ports[kSize];
    for (int i = 0; i < kSize; ++i) {
      route_ports[i] = free_port();
      monitor_ports[i] = free_port();
    }
    for (int i = 0; i < kSize; ++i) {
      std::string routes;
      for (int j = 0; j < kSize; ++j) {
        if (j == i) continue;
        if (!routes.empty()) routes += ",";
        routes += "nats://127.0.0.1:" + std::to_string(route_ports[j]);
      }
      monitor_[i] = monitor_ports[i];
      servers_[i] = std::make_unique<NatsServer>(std::vector<std::string>{
          "--cluster_name", "athomic", "--cluster",
          "nats://127.0.0.1:" + std::to_string(route_ports[i]), "--routes", routes, "-m",
          std::to_string(monitor_ports[i])});
    }
    // Until every server routes to the two others, clients hear of fewer servers and
    // interest does not reach everywhere.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (int i = 0; i < kSize; ++i) {
      while (routes_of(i) < kSize - 1) {
        if (std::chrono::steady_clock::now() > deadline) {
          throw std::runtime_error("the nats-server cluster did not form (server " +
                                   std::to_string(i) + ": " + std::to_string(routes_of(i)) +
                                   " routes)");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }

  NatsServer& operator[](int i) { return *servers_[i]; }
  // The client URLs of @p indexes, comma-separated, in that order.
  std::string urls(std::initializer_list<int> indexes) const {
    std::string out;
    for (int i : indexes) out += (out.empty() ? "" : ",") + servers_[i]->url();
    return out;
  }

 private:
  // "num_routes" from the server's monitoring endpoint /routez; -1 when it does not answer.
  int routes_of(int i) const {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(monitor_[i]));
    timeval limit{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    std::string reply;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      const std::string request = "GET /routez HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
      if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
        char buf[4096];
        for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) reply.append(buf, n);
      }
    }
    ::close(fd);
    const auto key = reply.find("\"num_routes\":");
    if (key == std::string::npos) return -1;
    return std::atoi(reply.c_str() + key + 13);
  }

  std::unique_ptr<NatsServer> servers_[kSize];
  int monitor_[kSize] = {};
};

}  // namespace athomic::test
