// The optional HTTP endpoint (events.metrics.listen): GET /metrics (Prometheus text) and
// GET /healthz, served by one thread of its own so that a slow scraper never holds up the bus.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace athomic::detail {

// True for "" (no endpoint) and for "host:port" with a port from 0 to 65535.
bool valid_metrics_listen(std::string_view listen) noexcept;
// What valid_metrics_listen wants, for error messages.
inline constexpr const char* kMetricsListenForm =
    "expected \"host:port\" (e.g. \"127.0.0.1:9464\"; port 0 picks a free one), or \"\" for "
    "no endpoint";

class MetricsEndpoint {
 public:
  struct Health {
    bool healthy = false;
    std::string text;  // one line per fact, for a person reading the response
  };
  // Binds @p listen ("host:port"; port 0 picks a free one) and starts serving; throws
  // EventBusError naming the setting when the address cannot be used.
  MetricsEndpoint(const std::string& listen, std::function<std::string()> metrics,
                  std::function<Health()> health, spdlog::logger& log);
  // Stops serving; connections in progress are closed.
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  // "host:port" as bound.
  const std::string& address() const noexcept { return address_; }

 private:
  void stop() noexcept;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string address_;
};

}  // namespace athomic::detail
