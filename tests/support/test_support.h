// Helpers shared by the test suites: buses on real plugins, and waits that fail a test instead
// of hanging it. Deadlines here are deadlock guards, never performance assertions.
#pragma once

#include <athomic/athomic.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace athomic::test {

inline constexpr auto kGenerous = std::chrono::seconds(30);

inline EventsSettings local_settings(DispatchMode mode = DispatchMode::pool, unsigned workers = 4) {
  EventsSettings s;
  s.backend = "local";
  s.dispatch_mode = mode;
  s.workers = workers;
  s.provider_config = {{"backend", "local"}};
  return s;
}

#ifdef ATHOMIC_TEST_PLUGIN_DIR
// A bus on any plugin the test build has (`loopback` is the synchronous remote one in
// tests/plugins, found through plugins_dir).
inline EventsSettings backend_settings(const std::string& backend, DispatchMode mode,
                                       unsigned workers = 4) {
  EventsSettings s = local_settings(mode, workers);
  s.backend = backend;
  s.provider_config = {{"backend", backend}};
  if (backend != "local") s.plugins_dir = ATHOMIC_TEST_PLUGIN_DIR;
  return s;
}
#endif

inline std::shared_ptr<EventBus> started(const EventsSettings& s) {
  auto bus = EventBus::create(s);
  bus->start();
  return bus;
}

// Polls @p pred until true or kGenerous passes.
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds limit = kGenerous) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// A count that threads can wait on.
class Counter {
 public:
  // Notifies under the lock: a waiter that then returns may destroy the counter at once.
  void add(int n = 1) {
    std::lock_guard lock(mutex_);
    value_ += n;
    cv_.notify_all();
  }
  int value() const {
    std::lock_guard lock(mutex_);
    return value_;
  }
  bool wait_for_at_least(int n, std::chrono::milliseconds limit = kGenerous) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, limit, [&] { return value_ >= n; });
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  int value_ = 0;
};

// A gate threads wait at until it is opened (the test's way to hold a handler).
class Gate {
 public:
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits until opened, or kGenerous passes (a deadlock guard): true when opened.
  bool wait() {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, kGenerous, [&] { return open_; });
  }
  bool is_open() const {
    std::lock_guard lock(mutex_);
    return open_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Sets an environment variable for the scope of the object.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    setenv(name_.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

inline std::string mode_name(const testing::TestParamInfo<DispatchMode>& info) {
  return info.param == DispatchMode::pool ? "Pool" : "Inline";
}

}  // namespace athomic::test
