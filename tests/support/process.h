// Child processes and free ports for tests that need more than one process.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace athomic::test {

// A loopback TCP port that was free a moment ago, claimed for this process until it exits (no
// other test process picks it meanwhile: see scripts/lib/ports.sh).
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

// The directory holding the running binary (to find helper programs next to it).
std::string this_binary_dir();

}  // namespace athomic::test
