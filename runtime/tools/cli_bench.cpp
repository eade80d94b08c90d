// `athomic bench`: publishes events in this process and receives them in another (this tool,
// started again with --receiver-fd), on the configured backend; prints events/s and the
// publish→handler latency percentiles. An in-process backend is measured within the process.
//
// The receiver reports on a pipe, one line each: "ready", "received N" every 100 ms, and at the
// end "done {json}" with its count and latency percentiles. Latency compares steady_clock
// readings of the two processes: CLOCK_MONOTONIC, shared by every process on one machine.
#include "cli.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <thread>

extern char** environ;

namespace athomic::cli {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kReadyTimeout = std::chrono::seconds(10);
// The receiver gives up when nothing arrives for this long (events lost, a publisher gone).
constexpr auto kIdleTimeout = std::chrono::seconds(5);
constexpr auto kProgressEvery = std::chrono::milliseconds(100);

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// Counts events and records each one's latency from the "t" its publisher stamped.
class Receiver {
 public:
  explicit Receiver(int expected) { latencies_.reserve(static_cast<std::size_t>(expected)); }

  void on_event(const Event& e) {
    const int64_t now = now_ns();
    const auto t = e.payload().find("t");
    std::lock_guard lock(m_);
    if (t != e.payload().end() && t->is_number_integer()) latencies_.push_back(now - t->get<int64_t>());
    last_ns_ = now;
    ++received_;
    cv_.notify_all();
  }
  // Waits until @p count arrived or nothing did for kIdleTimeout, up to @p step; the count.
  int wait(int count, std::chrono::milliseconds step) {
    std::unique_lock lock(m_);
    cv_.wait_for(lock, step, [&] { return received_ >= count; });
    return received_;
  }
  bool idle() const {
    std::lock_guard lock(m_);
    const int64_t since = last_ns_ ? last_ns_ : started_ns_;
    return now_ns() - since > std::chrono::nanoseconds(kIdleTimeout).count();
  }
  nlohmann::json result() {
    std::lock_guard lock(m_);
    std::sort(latencies_.begin(), latencies_.end());
    auto at = [&](double q) -> int64_t {
      if (latencies_.empty()) return -1;
      return latencies_[std::min(latencies_.size() - 1,
                                 static_cast<std::size_t>(q * static_cast<double>(latencies_.size())))];
    };
    return {{"received", received_}, {"last_ns", last_ns_},   {"p50", at(0.5)},
            {"p90", at(0.9)},        {"p99", at(0.99)},       {"max", at(1.0)}};
  }

 private:
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::vector<int64_t> latencies_;
  int received_ = 0;
  int64_t last_ns_ = 0;
  const int64_t started_ns_ = now_ns();
};

void write_line(int fd, const std::string& line) {
  const std::string text = line + "\n";
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the publisher is gone: nobody to tell
    done += static_cast<std::size_t>(n);
  }
}

// The receiving process.
int run_receiver(const Settings& settings, const BenchOptions& o) {
  std::signal(SIGPIPE, SIG_IGN);
  Receiver receiver(o.count);
  auto bus = start_bus(settings);
  bus->subscribe(o.event, [&](const Event& e) { receiver.on_event(e); });
  write_line(o.receiver_fd, "ready");
  for (;;) {
    const int n = receiver.wait(o.count, kProgressEvery);
    if (n >= o.count || receiver.idle()) break;
    write_line(o.receiver_fd, "received " + std::to_string(n));
  }
  bus->close();
  write_line(o.receiver_fd, "done " + receiver.result().dump());
  return kExitOk;
}

// The receiver's side of the pipe, read line by line.
class ReceiverPipe {
 public:
  explicit ReceiverPipe(int fd) : fd_(fd) {}
  ~ReceiverPipe() { ::close(fd_); }
  // The next line, waiting up to @p timeout; nullopt on timeout or end of file.
  std::optional<std::string> line(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string l = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return l;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0))) != 1) return std::nullopt;
      char buf[4096];
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return std::nullopt;
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buffer_;
};

// Starts this tool again as the receiver, with the same settings; its logs below warnings are
// left out (the publisher's say the same).
pid_t spawn_receiver(const BenchOptions& o, int write_fd) {
  std::vector<std::string> args = {"athomic"};
  args.insert(args.end(), o.global_args.begin(), o.global_args.end());
  for (const char* a : {"bench", "--receiver-fd"}) args.emplace_back(a);
  args.push_back(std::to_string(write_fd));
  for (const std::string& a : {std::string("-n"), std::to_string(o.count), std::string("--event"), o.event}) {
    args.push_back(a);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  bool level_set = false;
  for (char** e = environ; *e; ++e) {
    env_strings.emplace_back(*e);
    if (env_strings.back().starts_with("ATHOMIC_LOG_LEVEL=")) level_set = true;
  }
  if (!level_set) env_strings.emplace_back("ATHOMIC_LOG_LEVEL=warn");
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  if (const int rc = posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), envp.data());
      rc != 0) {
    throw std::runtime_error(std::string("cannot start the receiving process: ") + std::strerror(rc));
  }
  return pid;
}

std::string ms(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f ms", static_cast<double>(ns) / 1e6);
  return buf;
}

std::string rate(int n, int64_t ns) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f s: %.0f events/s", static_cast<double>(ns) / 1e9,
                ns > 0 ? n * 1e9 / static_cast<double>(ns) : 0.0);
  return buf;
}

}  // namespace

int cmd_bench(const Settings& settings, BenchOptions o) {
  if (o.receiver_fd >= 0) return run_receiver(settings, o);
  std::signal(SIGPIPE, SIG_IGN);
  o.event = "athomic.bench." + std::to_string(getpid());
  // Declared before the bus, so that it outlives every handler call.
  std::optional<Receiver> here;
  auto bus = start_bus(settings);
  const bool local = in_process_only(*bus);
  const bool progress = isatty(STDERR_FILENO) != 0;
  std::optional<ReceiverPipe> pipe_in;
  pid_t child = -1;
  if (local) {
    std::cerr << "athomic bench: backend '" << bus->provider().name
              << "' is in-process only: publishing and receiving in this process." << std::endl;
    here.emplace(o.count);
    bus->subscribe(o.event, [&](const Event& e) { here->on_event(e); });
  } else {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::strerror(errno));
    // The receiver inherits the write end alone.
    const int write_fd = ::fcntl(fds[1], F_DUPFD, 3);
    ::close(fds[1]);
    pipe_in.emplace(fds[0]);
    try {
      child = spawn_receiver(o, write_fd);
    } catch (...) {
      ::close(write_fd);
      throw;
    }
    ::close(write_fd);
    const auto ready = pipe_in->line(kReadyTimeout);
    if (!ready || *ready != "ready") {
      ::kill(child, SIGTERM);
      ::waitpid(child, nullptr, 0);
      std::cerr << "athomic bench: the receiving process did not become ready within "
                << kReadyTimeout.count() << " s (its errors are above)" << std::endl;
      return kExitFailed;
    }
  }

  std::string pad;
  {
    const auto base = nlohmann::json{{"seq", o.count}, {"t", now_ns()}, {"pad", ""}}.dump().size();
    if (static_cast<std::size_t>(o.size) > base) pad.assign(static_cast<std::size_t>(o.size) - base, 'x');
  }
  std::cout << "bench: " << o.count << " events of " << o.size << " bytes on backend '"
            << bus->provider().name << "', "
            << (local ? "published and received in this process"
                      : "published by this process, received by another")
            << (o.rate > 0 ? ", at most " + std::to_string(o.rate) + " events/s" : "") << std::endl;

  int received = 0;  // as last reported
  auto show_progress = [&](int published, bool last) {
    if (!progress) return;
    if (here) received = here->wait(0, std::chrono::milliseconds(0));
    std::fprintf(stderr, "\r\033[Kpublished %d/%d  received %d/%d", published, o.count, received, o.count);
    if (last) std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  };
  // Reads the receiver's progress lines that are waiting; the final report when it comes.
  std::optional<nlohmann::json> done;
  auto drain = [&](std::chrono::milliseconds wait) {
    if (!pipe_in || done) return;
    while (auto l = pipe_in->line(wait)) {
      if (l->starts_with("received ")) received = std::atoi(l->c_str() + 9);
      if (l->starts_with("done ")) {
        done = nlohmann::json::parse(l->substr(5), nullptr, false);
        return;
      }
      wait = std::chrono::milliseconds(0);
    }
  };

  std::vector<Completion> sent;
  sent.reserve(static_cast<std::size_t>(o.count));
  int refused = 0;
  std::string first_error;
  const int64_t start = now_ns();
  auto next_progress = Clock::now();
  for (int i = 0; i < o.count; ++i) {
    if (o.rate > 0) {
      std::this_thread::sleep_until(Clock::time_point(std::chrono::nanoseconds(
          start + static_cast<int64_t>(i * (1e9 / o.rate)))));
    }
    try {
      sent.push_back(bus->publish(o.event, nlohmann::json{{"seq", i}, {"t", now_ns()}, {"pad", pad}}));
    } catch (const EventBusError& e) {
      if (refused++ == 0) first_error = e.what();
    }
    if ((i & 255) == 0 && Clock::now() >= next_progress) {
      drain(std::chrono::milliseconds(0));
      show_progress(i + 1, false);
      next_progress = Clock::now() + kProgressEvery;
    }
  }
  const int64_t published_ns = now_ns() - start;
  const auto answers_by = Clock::now() + kIdleTimeout;
  for (auto& c : sent) {
    if (!c.wait_for(std::max(answers_by - Clock::now(), Clock::duration::zero())) ||
        !c.delivered()) {
      if (refused++ == 0) first_error = c.done() ? c.error() : "no answer within 5 s";
    }
  }

  nlohmann::json result;
  if (here) {
    while (here->wait(o.count, kProgressEvery) < o.count && !here->idle()) show_progress(o.count, false);
    show_progress(o.count, true);  // before close() logs
    bus->close();
    result = here->result();
  } else {
    // The receiver ends by itself: every event arrived, or none for kIdleTimeout.
    const auto until = Clock::now() + kIdleTimeout * 2 + std::chrono::milliseconds(o.count / 10);
    while (!done && Clock::now() < until) {
      drain(kProgressEvery);
      show_progress(o.count, false);
    }
    show_progress(o.count, true);
    bus->close();
    if (!done) ::kill(child, SIGTERM);
    ::waitpid(child, nullptr, 0);
    if (!done || done->is_discarded()) {
      std::cerr << "athomic bench: the receiving process did not report (its errors are above)"
                << std::endl;
      return kExitFailed;
    }
    result = *done;
  }

  const int got = result.value("received", 0);
  std::cout << "published " << o.count - refused << " of " << o.count << " in "
            << rate(o.count - refused, published_ns) << "\n";
  const int64_t last_ns = result.value("last_ns", int64_t{0});
  std::cout << "received  " << got << " of " << o.count << " in "
            << rate(got, got > 0 ? last_ns - start : 0) << "\n";
  if (result.value("p50", int64_t{-1}) >= 0) {
    std::cout << "latency   p50 " << ms(result["p50"]) << ", p90 " << ms(result["p90"]) << ", p99 "
              << ms(result["p99"]) << ", max " << ms(result["max"]) << " (publish to handler)\n";
  }
  std::cout << std::flush;
  if (refused > 0) {
    std::cerr << "athomic bench: " << refused << " of " << o.count
              << " event(s) were not delivered: " << first_error << std::endl;
  }
  if (got < o.count) {
    std::cerr << "athomic bench: " << o.count - got << " of " << o.count
              << " event(s) did not arrive (none for " << kIdleTimeout.count() << " s)" << std::endl;
  }
  return refused == 0 && got >= o.count ? kExitOk : kExitFailed;
}

}  // namespace athomic::cli
