#include "metrics_endpoint.h"

#include <athomic/errors.h>

#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio.hpp>
#include <fmt/format.h>
#include <spdlog/logger.h>

#include <array>
#include <atomic>
#include <list>
#include <string_view>
#include <vector>
#include <chrono>
#include <thread>

namespace athomic::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// A request's head may not be larger; a client may not take longer to send it, or to take each
// piece of the answer; no more clients are served at once.
constexpr std::size_t kMaxRequestHead = 8192;
constexpr auto kClientDeadline = std::chrono::seconds(5);
constexpr int kMaxClients = 16;
constexpr std::size_t kWriteChunk = 64 * 1024;

std::string response(int status, const char* reason, const char* type, const std::string& body,
                     bool head_only, const char* extra_headers = "") {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n"
      "Cache-Control: no-store\r\n{}\r\n",
      status, reason, type, body.size(), extra_headers);
  if (!head_only) out += body;
  return out;
}

// Where the request's head ends (after its blank line; bare LF line ends accepted, as RFC 9112
// allows), or npos.
std::size_t head_end(const std::string& head) {
  const auto crlf = head.find("\r\n\r\n");
  const auto lf = head.find("\n\n");
  const auto after_crlf = crlf == std::string::npos ? std::string::npos : crlf + 4;
  const auto after_lf = lf == std::string::npos ? std::string::npos : lf + 2;
  return std::min(after_crlf, after_lf);
}

}  // namespace

bool valid_metrics_listen(std::string_view listen) noexcept {
  if (listen.empty()) return true;
  const auto colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const std::string_view port = listen.substr(colon + 1);
  if (port.empty() || port.size() > 5) return false;
  uint32_t value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  return value <= 65535;
}

struct MetricsEndpoint::Impl {
  struct Client;
  // Declared before the io_contexts: destroying those destroys the clients they still hold.
  std::function<std::string()> metrics;
  std::function<Health()> health;
  spdlog::logger* log = nullptr;
  std::atomic<int> clients{0};
  // Clients still sending their request, oldest first (the I/O thread's only): when every place
  // is taken, the oldest of them makes room, so idle connections cannot lock scrapers out.
  std::list<std::weak_ptr<Client>> reading;
  asio::io_context io;
  // Renders /metrics off the I/O thread, so that /healthz answers during a long render.
  asio::io_context render_io;
  asio::executor_work_guard<asio::io_context::executor_type> render_work =
      asio::make_work_guard(render_io);
  tcp::acceptor acceptor{io};
  std::thread thread;
  std::thread render_thread;

  struct Client : std::enable_shared_from_this<Client> {
    Client(Impl& owner, tcp::socket s) : impl(owner), socket(std::move(s)), timer(owner.io) {
      impl.clients.fetch_add(1, std::memory_order_relaxed);
    }
    ~Client() {
      if (in_reading) impl.reading.erase(place);
      impl.clients.fetch_sub(1, std::memory_order_relaxed);
    }
    Impl& impl;
    tcp::socket socket;
    asio::steady_timer timer;
    std::string head;
    std::array<char, 1024> chunk{};
    std::string answer;
    std::size_t written = 0;
    std::list<std::weak_ptr<Client>>::iterator place;
    bool in_reading = false;

    void close() {
      boost::system::error_code ignored;
      socket.shutdown(tcp::socket::shutdown_both, ignored);
      socket.close(ignored);
      timer.cancel();
    }
    // (Re)starts the deadline of what the client is doing now.
    void arm() {
      timer.expires_after(kClientDeadline);
      timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->close();  // too slow: the pending read or write ends
      });
    }
    void run() {
      place = impl.reading.insert(impl.reading.end(), weak_from_this());
      in_reading = true;
      arm();
      read();
    }
    void stop_reading() {
      if (!in_reading) return;
      impl.reading.erase(place);
      in_reading = false;
    }
    void read() {
      socket.async_read_some(asio::buffer(chunk), [self = shared_from_this()](
                                                      boost::system::error_code ec, std::size_t n) {
        self->on_read(ec, n);
      });
    }
    void on_read(boost::system::error_code ec, std::size_t n) {
      if (ec) {
        stop_reading();
        timer.cancel();
        return;
      }
      head.append(chunk.data(), n);
      const std::size_t end = head_end(head);
      if (end == std::string::npos && head.size() <= kMaxRequestHead) return read();
      stop_reading();
      if (end == std::string::npos || end > kMaxRequestHead) {
        return send(response(431, "Request Header Fields Too Large", "text/plain",
                             "request too large\n", false));
      }
      answer_request();
    }
    void answer_request() {
      std::string_view line(head);
      line = line.substr(0, line.find('\n'));
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      std::vector<std::string_view> parts;
      while (!line.empty()) {
        const auto space = line.find(' ');
        if (space != 0) parts.push_back(line.substr(0, space));
        if (space == std::string_view::npos) break;
        line.remove_prefix(space + 1);
      }
      if (parts.size() != 3 || parts[2].substr(0, 5) != "HTTP/") {
        return send(response(400, "Bad Request", "text/plain",
                             "expected a request line such as GET /metrics HTTP/1.1\n", false));
      }
      const std::string_view method = parts[0];
      std::string_view target = parts[1];
      const bool head_only = method == "HEAD";
      if (method != "GET" && !head_only) {
        return send(response(405, "Method Not Allowed", "text/plain", "only GET and HEAD\n",
                             false, "Allow: GET, HEAD\r\n"));
      }
      // The absolute form (a request through a proxy) names the same path.
      for (std::string_view scheme : {"http://", "https://"}) {
        if (target.substr(0, scheme.size()) == scheme) {
          target.remove_prefix(scheme.size());
          const auto slash = target.find('/');
          target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
        }
      }
      if (const auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
      if (target == "/metrics") {
        // Rendered on the render thread; the answer is written from the I/O thread again.
        asio::post(impl.render_io, [self = shared_from_this(), head_only]() mutable {
          std::string out;
          try {
            out = response(200, "OK", "text/plain; version=0.0.4; charset=utf-8",
                           self->impl.metrics(), head_only);
          } catch (const std::exception& e) {
            out = response(500, "Internal Server Error", "text/plain",
                           fmt::format("{}\n", e.what()), head_only);
          }
          // The client is handed back whole: it is only ever released on the I/O thread.
          asio::io_context& io = self->impl.io;
          asio::post(io, [self = std::move(self), out = std::move(out)]() mutable {
            self->send(std::move(out));
          });
        });
        return;
      }
      if (target == "/healthz") {
        try {
          const Health h = impl.health();
          return send(h.healthy ? response(200, "OK", "text/plain; charset=utf-8", h.text, head_only)
                                : response(503, "Service Unavailable",
                                           "text/plain; charset=utf-8", h.text, head_only));
        } catch (const std::exception& e) {
          return send(response(500, "Internal Server Error", "text/plain",
                               fmt::format("{}\n", e.what()), head_only));
        }
      }
      send(response(404, "Not Found", "text/plain", "try /metrics or /healthz\n", head_only));
    }
    // Writes the answer a piece at a time, each piece under its own deadline: a large answer to
    // a slow but steady reader completes, a reader that stops is cut off.
    void send(std::string out) {
      answer = std::move(out);
      written = 0;
      write_next();
    }
    void write_next() {
      if (written == answer.size()) return close();
      arm();
      const std::size_t n = std::min(kWriteChunk, answer.size() - written);
      asio::async_write(socket, asio::buffer(answer.data() + written, n),
                        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                          if (ec) return self->close();
                          self->written += n;
                          self->write_next();
                        });
    }
  };

  // Room for one more client: the oldest one still sending its request is dropped.
  bool make_room() {
    if (clients.load(std::memory_order_relaxed) < kMaxClients) return true;
    while (!reading.empty()) {
      std::shared_ptr<Client> oldest = reading.front().lock();
      if (!oldest) {
        reading.pop_front();
        continue;
      }
      oldest->stop_reading();
      oldest->close();
      return true;
    }
    return false;
  }

  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        if (!make_room()) {
          // Every place is taken by a client being answered: this one is told so at once.
          static const std::string busy = response(503, "Service Unavailable", "text/plain",
                                                   "too many clients\n", false);
          boost::system::error_code ignored;
          socket.non_blocking(true, ignored);
          socket.send(asio::buffer(busy), 0, ignored);
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
  auto serve = [](Impl* impl, asio::io_context& io) {
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {
        impl->log->error("metrics endpoint: {}", e.what());
      }
    }
  };
  try {
    impl_->render_thread = std::thread(serve, impl_.get(), std::ref(impl_->render_io));
    impl_->thread = std::thread(serve, impl_.get(), std::ref(impl_->io));
  } catch (const std::system_error& e) {
    stop();
    throw EventBusError(fmt::format("events.metrics.listen = \"{}\": cannot start the endpoint's threads: {}",
                                    listen, e.what()));
  }
}

MetricsEndpoint::~MetricsEndpoint() { stop(); }

void MetricsEndpoint::stop() noexcept {
  impl_->render_work.reset();
  impl_->render_io.stop();
  if (impl_->render_thread.joinable()) impl_->render_thread.join();
  try {
    asio::post(impl_->io, [impl = impl_.get()] {
      boost::system::error_code ignored;
      impl->acceptor.close(ignored);
    });
  } catch (...) {
    // No memory for the post: stopping the io_context below ends the accepts as well.
  }
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace athomic::detail
