#include "metrics_endpoint.h"

#include <athomic/errors.h>

#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio.hpp>
#include <fmt/format.h>
#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace athomic::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// A request's head may not be larger; a client may not take longer to send it or read the
// answer; no more clients are served at once (the rest are closed as they connect).
constexpr std::size_t kMaxRequestHead = 8192;
constexpr auto kClientDeadline = std::chrono::seconds(5);
constexpr int kMaxClients = 16;

std::string response(int status, const char* reason, const char* type, const std::string& body,
                     bool head_only) {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n"
      "Cache-Control: no-store\r\n\r\n",
      status, reason, type, body.size());
  if (!head_only) out += body;
  return out;
}

}  // namespace

struct MetricsEndpoint::Impl {
  // Declared before the io_context: destroying it destroys the clients it still holds.
  std::function<std::string()> metrics;
  std::function<Health()> health;
  spdlog::logger* log = nullptr;
  std::atomic<int> clients{0};
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread thread;

  struct Client : std::enable_shared_from_this<Client> {
    Client(Impl& owner, tcp::socket s) : impl(owner), socket(std::move(s)), timer(owner.io),
                                         request(kMaxRequestHead) {}
    ~Client() { impl.clients.fetch_sub(1, std::memory_order_relaxed); }
    Impl& impl;
    tcp::socket socket;
    asio::steady_timer timer;
    asio::streambuf request;
    std::string answer;

    void run() {
      timer.expires_after(kClientDeadline);
      timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) {
          boost::system::error_code ignored;
          self->socket.close(ignored);  // too slow: the pending read or write ends
        }
      });
      asio::async_read_until(socket, request, "\r\n\r\n",
                             [self = shared_from_this()](boost::system::error_code ec,
                                                         std::size_t) { self->on_request(ec); });
    }

    void on_request(boost::system::error_code ec) {
      if (ec == asio::error::not_found) {
        answer = response(431, "Request Header Fields Too Large", "text/plain", "request too large\n",
                          false);
      } else if (ec) {
        timer.cancel();
        return;
      } else {
        std::istream in(&request);
        std::string method, target, version;
        in >> method >> target >> version;
        answer = answer_for(method, target);
      }
      asio::async_write(socket, asio::buffer(answer),
                        [self = shared_from_this()](boost::system::error_code, std::size_t) {
                          boost::system::error_code ignored;
                          self->socket.shutdown(tcp::socket::shutdown_both, ignored);
                          self->socket.close(ignored);
                          self->timer.cancel();
                        });
    }

    std::string answer_for(const std::string& method, std::string target) {
      const bool head = method == "HEAD";
      if (method != "GET" && !head) {
        return response(405, "Method Not Allowed", "text/plain", "only GET and HEAD\n", false);
      }
      if (const auto q = target.find('?'); q != std::string::npos) target.resize(q);
      try {
        if (target == "/metrics") {
          return response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", impl.metrics(),
                          head);
        }
        if (target == "/healthz") {
          const Health h = impl.health();
          return h.healthy ? response(200, "OK", "text/plain; charset=utf-8", h.text, head)
                           : response(503, "Service Unavailable", "text/plain; charset=utf-8",
                                      h.text, head);
        }
      } catch (const std::exception& e) {
        return response(500, "Internal Server Error", "text/plain",
                        fmt::format("{}\n", e.what()), head);
      }
      return response(404, "Not Found", "text/plain", "try /metrics or /healthz\n", head);
    }
  };

  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        if (clients.fetch_add(1, std::memory_order_relaxed) >= kMaxClients) {
          clients.fetch_sub(1, std::memory_order_relaxed);
          boost::system::error_code ignored;
          socket.close(ignored);
        } else {
          try {
            std::make_shared<Client>(*this, std::move(socket))->run();
          } catch (const std::exception& e) {
            log->warn("metrics endpoint: dropped a connection: {}", e.what());
          }
        }
      } else if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
        // Out of file descriptors: let them come back rather than spin.
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      accept();
    });
  }
};

MetricsEndpoint::MetricsEndpoint(const std::string& listen, std::function<std::string()> metrics,
                                 std::function<Health()> health, spdlog::logger& log)
    : impl_(std::make_unique<Impl>()) {
  impl_->metrics = std::move(metrics);
  impl_->health = std::move(health);
  impl_->log = &log;
  const auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port = listen.substr(colon + 1);
  try {
    tcp::resolver resolver(impl_->io);
    const auto results = resolver.resolve(host, port, tcp::resolver::numeric_service);
    boost::system::error_code last = asio::error::host_not_found;
    for (const auto& entry : results) {
      boost::system::error_code ec;
      impl_->acceptor.open(entry.endpoint().protocol(), ec);
      if (!ec) impl_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
      if (!ec) impl_->acceptor.bind(entry.endpoint(), ec);
      if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
      if (!ec) break;
      last = ec;
      boost::system::error_code ignored;
      impl_->acceptor.close(ignored);
    }
    if (!impl_->acceptor.is_open()) throw boost::system::system_error(last);
  } catch (const boost::system::system_error& e) {
    throw EventBusError(fmt::format("events.metrics.listen = \"{}\": cannot listen there: {}",
                                    listen, e.code().message()));
  }
  const tcp::endpoint bound = impl_->acceptor.local_endpoint();
  address_ = bound.address().is_v6() ? fmt::format("[{}]:{}", bound.address().to_string(), bound.port())
                                     : fmt::format("{}:{}", bound.address().to_string(), bound.port());
  impl_->accept();
  impl_->thread = std::thread([impl = impl_.get()] {
    for (;;) {
      try {
        impl->io.run();
        return;
      } catch (const std::exception& e) {
        impl->log->error("metrics endpoint: {}", e.what());
      }
    }
  });
}

MetricsEndpoint::~MetricsEndpoint() {
  asio::post(impl_->io, [impl = impl_.get()] {
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
  });
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace athomic::detail
