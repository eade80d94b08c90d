#include "process.h"

#include <algorithm>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace athomic::test {

namespace {

// The kernel's ephemeral range (outgoing connections' local ports), as [low, high].
void ephemeral_range(int& low, int& high) {
  low = 32768;
  high = 60999;
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  int l = 0, h = 0;
  if (range >> l >> h && 0 < l && l <= h && h <= 65535) {
    low = l;
    high = h;
  }
}

bool bind_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// The kernel's choice of port (inside the ephemeral range): the fallback when nothing is left
// outside it.
int kernel_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot bind a loopback port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// "PID STARTTIME" of process @p pid (field 22 of /proc/PID/stat: a pid alone may be reused), or
// "" when it is gone.
std::string process_identity(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return "";
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos) return "";
  std::istringstream fields(stat.substr(paren + 1));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return std::to_string(pid) + " " + field;
  }
  return "";
}

// Claims @p port for this process as scripts/lib/ports.sh's claim_port does (the same files,
// under the same lock): true when no live process of the test suite holds it. A server stopped
// and started again on its port must find it still free, whatever other tests picked meanwhile.
bool claim(int port) {
  const char* dir_env = std::getenv("ATHOMIC_PORT_CLAIMS");
  const char* tmp = std::getenv("TMPDIR");
  const std::string dir = dir_env && *dir_env ? dir_env
                                              : std::string(tmp && *tmp ? tmp : "/tmp") + "/athomic-test-ports";
  if (::mkdir(dir.c_str(), 01777) == 0) ::chmod(dir.c_str(), 01777);
  const int lock = ::open((dir + "/.lock").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
  if (lock < 0) return true;  // no claims directory to share: the bind check alone
  if (::flock(lock, LOCK_EX) != 0) {
    ::close(lock);
    return false;
  }
  const std::string file = dir + "/" + std::to_string(port);
  std::string owner;
  {
    std::ifstream in(file);
    std::getline(in, owner);
  }
  bool claimed = false;
  // Free when unclaimed, or claimed by a process that is gone (or by a writer killed mid-way).
  if (owner.empty() || process_identity(std::atol(owner.c_str())) != owner) {
    std::ofstream out(file, std::ios::trunc);
    out << process_identity(::getpid()) << "\n";
    claimed = static_cast<bool>(out.flush());
  }
  ::close(lock);  // releases the lock
  return claimed;
}

}  // namespace

// Chosen outside the ephemeral range (below it, or above it when the range starts low), so
// that no outgoing connection can hold it: a client that keeps reconnecting to a stopped test
// server on an ephemeral port is, now and then, given that very port as its own and connected
// to itself (TCP simultaneous open), and the server cannot start on it again. A machine whose
// range leaves too little room outside it gets the kernel's choice, as before.
int free_port() {
  constexpr int kFloor = 10000;
  int low = 0, high = 0;
  ephemeral_range(low, high);
  // [kFloor, low), less 32000 and up, which tests/e2e/readme_redis.sh keeps for itself.
  const int top = std::min(low, 32000);
  const int below = top > kFloor ? top - kFloor : 0;
  const int above = 65535 - high;                       // (high, 65535]
  if (below + above < 1000) return kernel_port();
  std::mt19937 pick(static_cast<unsigned>(::getpid()) ^
                    static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int n = static_cast<int>(pick() % static_cast<unsigned>(below + above));
    const int port = n < below ? kFloor + n : high + 1 + (n - below);
    if (claim(port) && bind_loopback(port)) return port;
  }
  return kernel_port();
}

Process::Process(const std::vector<std::string>& argv, bool capture_stdout,
                 const std::vector<std::string>& extra_env) {
  int pipefd[2] = {-1, -1};
  if (capture_stdout && ::pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    if (capture_stdout) ::dup2(pipefd[1], STDOUT_FILENO);
    for (const auto& kv : extra_env) ::putenv(const_cast<char*>(kv.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  if (capture_stdout) {
    ::close(pipefd[1]);
    out_fd_ = pipefd[0];
  }
}

Process::~Process() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (out_fd_ >= 0) ::close(out_fd_);
}

std::optional<std::string> Process::read_line(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || out_fd_ < 0) return std::nullopt;
    pollfd p{out_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    char buf[4096];
    const ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n <= 0) return std::nullopt;
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
}

void Process::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

std::optional<int> Process::wait(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string this_binary_dir() {
  return std::filesystem::canonical("/proc/self/exe").parent_path().string();
}

}  // namespace athomic::test
