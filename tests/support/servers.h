// Real servers and processes for integration tests: each test starts its own redis-server (or
// nats-server) on a free loopback port and stops it when done.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace athomic::test {

// A loopback TCP port that was free a moment ago.
int free_port();

// A child process, killed (SIGKILL) and reaped on destruction if still running.
class Process {
 public:
  // Starts @p argv (argv[0] searched in PATH). With @p capture_stdout the child's stdout can be
  // read with read_line().
  explicit Process(const std::vector<std::string>& argv, bool capture_stdout = false,
                   const std::vector<std::string>& extra_env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // The next line of stdout, or nullopt at EOF or after @p limit.
  std::optional<std::string> read_line(std::chrono::milliseconds limit);
  void signal(int sig);
  // Waits for exit; returns the exit status (128+signal when killed), or nullopt after limit.
  std::optional<int> wait(std::chrono::milliseconds limit);

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
};

class RedisServer {
 public:
  // Starts redis-server on a free port; @p extra are more command-line options.
  explicit RedisServer(std::vector<std::string> extra = {});
  ~RedisServer();

  int port() const { return port_; }
  std::string uri(const std::string& userinfo = "") const;
  void kill9();          // SIGKILL, no chance to clean up
  void start();          // (re)starts on the same port
  bool running() const { return process_ != nullptr; }

 private:
  int port_;
  std::vector<std::string> extra_;
  std::unique_ptr<Process> process_;
};

// The directory holding the test binaries (to find helper programs next to them).
std::string this_binary_dir();

}  // namespace athomic::test
