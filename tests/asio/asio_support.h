// Helpers for the <athomic/asio.hpp> tests: an io_context run by threads, contexts, and the
// acknowledging test provider (its "refused." events fail; "held." ones complete at stop).
#pragma once

#include <athomic/asio.hpp>  // first: it includes <utility> before Boost 1.74's Asio headers

#include "test_support.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <ostream>
#include <string>
#include <thread>
#include <vector>

namespace athomic::test {

namespace net = boost::asio;

// Runs @p io on @p threads threads until destroyed (a work guard keeps run() going).
class IoThreads {
 public:
  IoThreads(net::io_context& io, unsigned threads) : io_(io), work_(io.get_executor()) {
    for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~IoThreads() { stop(); }
  // Lets run() return once the queued work is done, and joins.
  void finish() {
    work_.reset();
    join();
  }
  void stop() {
    work_.reset();
    io_.stop();
    join();
  }

 private:
  void join() {
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  net::io_context& io_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

// A backend and a dispatch mode, the parameter of most suites here.
struct Backend {
  std::string name;
  DispatchMode mode;
};
inline void PrintTo(const Backend& b, std::ostream* os) {
  *os << b.name << '/' << static_cast<int>(b.mode);
}
inline std::string backend_name(const testing::TestParamInfo<Backend>& info) {
  return info.param.name + (info.param.mode == DispatchMode::pool ? "Pool" : "Inline");
}
inline const auto kBackends = testing::Values(
    Backend{"local", DispatchMode::pool}, Backend{"local", DispatchMode::inline_call},
    Backend{"loopback", DispatchMode::pool}, Backend{"loopback", DispatchMode::inline_call});

inline ContextPtr trace(const std::string& id) {
  return ExecutionContext::Builder().trace_id(id).tenant_id("acme").build();
}

// Publishes inside @p ctx. A ContextScope must not stay open across a co_await (it is
// thread-local, and the coroutine may resume on another thread): scope the publish only.
inline Completion publish_in(EventBus& bus, const ContextPtr& ctx, std::string_view name,
                             nlohmann::json payload) {
  ContextScope scope(ctx);
  return bus.publish(name, std::move(payload));
}

inline std::string current_trace() {
  return std::string(ExecutionContext::current().trace_id().value_or("<none>"));
}

inline EventsSettings acknowledging(const nlohmann::json& keys = nlohmann::json::object(),
                                    DispatchMode mode = DispatchMode::pool) {
  auto s = backend_settings("acknowledging", mode);
  s.provider_config.update(keys);
  return s;
}

}  // namespace athomic::test
