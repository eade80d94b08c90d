// `athomic stats`: the bus's metrics as a person reads them — from a running service's /metrics
// endpoint, or from a short publish/receive run of this process's own bus. Both go through the
// Prometheus text, so what is printed is what a scraper sees.
#include "cli.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string_view>
#include <thread>

namespace athomic::cli {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kFetchTimeout = std::chrono::seconds(5);
constexpr auto kRunTimeout = std::chrono::seconds(10);

// Closes the socket on every way out.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(left.count(), 0));
}

// The payload of a chunked HTTP body. @throws std::runtime_error when it is not one.
std::string unchunk(const std::string& body, const std::string& endpoint) {
  std::string out;
  std::size_t i = 0;
  for (;;) {
    const std::size_t eol = body.find("\r\n", i);
    if (eol == std::string::npos) break;
    char* end = nullptr;
    const unsigned long size = std::strtoul(body.c_str() + i, &end, 16);
    if (end == body.c_str() + i) break;
    if (size == 0) return out;
    if (eol + 2 + size > body.size()) break;
    out.append(body, eol + 2, size);
    i = eol + 2 + size + 2;  // the chunk's own CRLF
  }
  throw std::runtime_error(endpoint + " sent a chunked answer that is cut short or malformed");
}

// GET http://@p endpoint@p path; the body of a 200 answer.
// @throws std::runtime_error naming the endpoint and what went wrong.
std::string http_get(const std::string& endpoint, const std::string& path) {
  const auto deadline = Clock::now() + kFetchTimeout;
  const auto colon = endpoint.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == endpoint.size()) {
    throw UsageError("--endpoint " + endpoint + ": expected HOST:PORT, e.g. 127.0.0.1:9464");
  }
  std::string host = endpoint.substr(0, colon);
  const std::string port = endpoint.substr(colon + 1);
  const bool port_ok = port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos &&
                       std::stoul(port) >= 1 && std::stoul(port) <= 65535;
  if (!port_ok || endpoint.find('/') != std::string::npos) {
    throw UsageError("--endpoint " + endpoint +
                     ": expected HOST:PORT with a port from 1 to 65535, e.g. 127.0.0.1:9464");
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    throw std::runtime_error("cannot resolve " + endpoint + ": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, freeaddrinfo);
  Fd s;
  std::string why = "no address";
  for (addrinfo* a = found; a; a = a->ai_next) {
    Fd c{::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol)};
    if (c.fd < 0) continue;
    if (::connect(c.fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      why = std::strerror(errno);
      continue;
    }
    pollfd p{c.fd, POLLOUT, 0};
    if (::poll(&p, 1, remaining_ms(deadline)) != 1) {
      why = "no answer within 5 s";
      continue;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      why = std::strerror(err);
      continue;
    }
    std::swap(s.fd, c.fd);
    break;
  }
  if (s.fd < 0) throw std::runtime_error("cannot connect to " + endpoint + ": " + why);
  const std::string request =
      // HTTP/1.0: the answer ends when the server closes, without chunked encoding.
      "GET " + path + " HTTP/1.0\r\nHost: " + endpoint + "\r\nConnection: close\r\n\r\n";
  for (std::size_t sent = 0; sent < request.size();) {
    pollfd p{s.fd, POLLOUT, 0};
    if (::poll(&p, 1, remaining_ms(deadline)) != 1) {
      throw std::runtime_error(endpoint + " did not take the request within 5 s");
    }
    const ssize_t n = ::send(s.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) throw std::runtime_error(endpoint + ": " + std::strerror(errno));
    if (n > 0) sent += static_cast<std::size_t>(n);
  }
  constexpr std::size_t kMaxAnswerBytes = std::size_t{64} << 20;
  std::string answer;
  for (;;) {
    pollfd p{s.fd, POLLIN, 0};
    if (::poll(&p, 1, remaining_ms(deadline)) != 1) {
      throw std::runtime_error(endpoint + (answer.empty() ? " did not answer within 5 s"
                                                          : " did not finish its answer within 5 s"));
    }
    char buf[16384];
    const ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0 && errno != EAGAIN) throw std::runtime_error(endpoint + ": " + std::strerror(errno));
    if (n > 0) answer.append(buf, static_cast<std::size_t>(n));
    // A scrape of the bus's own endpoint is kilobytes (its labels are capped); more than this
    // is not one, and is not kept.
    if (answer.size() > kMaxAnswerBytes) {
      throw std::runtime_error(endpoint + " sent more than " +
                               std::to_string(kMaxAnswerBytes >> 20) +
                               " MiB: is that a service with events.metrics.listen?");
    }
  }
  const auto head_end = answer.find("\r\n\r\n");
  std::string status = answer.substr(0, std::min(answer.find("\r\n"), std::size_t{120}));
  // What a stranger sent is shown, not obeyed: no control or non-ASCII bytes reach the terminal.
  for (char& c : status) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  // "HTTP/1.1 200 OK", or with no reason phrase at all.
  const bool ok = status.starts_with("HTTP/") && status.find(' ') != std::string::npos &&
                  status.compare(status.find(' ') + 1, 3, "200") == 0 &&
                  (status.size() == status.find(' ') + 4 || status[status.find(' ') + 4] == ' ');
  if (head_end == std::string::npos || !ok) {
    throw std::runtime_error("http://" + endpoint + path + " answered " +
                             (status.empty() ? std::string("nothing") : "\"" + status + "\"") +
                             ", not 200 OK: is that a service with events.metrics.listen?");
  }
  std::string body = answer.substr(head_end + 4);
  // A server that chunks its answer all the same (HTTP/1.0 clients are not to be sent it).
  std::string head = answer.substr(0, head_end);
  for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (head.find("\r\ntransfer-encoding: chunked") != std::string::npos) body = unchunk(body, endpoint);
  return body;
}

struct Buckets {
  std::vector<std::pair<double, double>> cumulative;  // (upper bound, count), +Inf last
};

struct EventRow {
  double published = 0, received = 0, delivered = 0, failures = 0;
  std::map<std::string, double> dropped;  // by reason
  Buckets latency, duration;
};

struct Summary {
  std::map<std::string, EventRow> events;
  std::map<std::string, double> gauges;  // unlabelled
  std::string backend, connection = "unknown";
  double outages = 0;
};

// `name{a="x",b="y"} value [timestamp]` -> name, labels, value (Prometheus' text format; a
// line may end in CRLF). False for anything else, and for a value that is no count (NaN, an
// infinity).
bool parse_sample(std::string_view line, std::string& name,
                  std::map<std::string, std::string>& labels, double& value) {
  labels.clear();
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::size_t i = line.find_first_of("{ ");
  if (i == std::string_view::npos || i == 0) return false;
  name.assign(line.substr(0, i));
  if (line[i] == '{') {
    ++i;
    for (;;) {
      while (i < line.size() && (line[i] == ' ' || line[i] == ',')) ++i;
      if (i >= line.size()) return false;
      if (line[i] == '}') {
        ++i;
        break;
      }
      const std::size_t eq = line.find('=', i);
      if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') return false;
      std::string key(line.substr(i, eq - i)), v;
      std::size_t end = eq + 2;
      for (; end < line.size() && line[end] != '"'; ++end) {
        if (line[end] == '\\' && end + 1 < line.size()) ++end;
        v += line[end];
      }
      if (end >= line.size()) return false;  // no closing quote
      labels[std::move(key)] = std::move(v);
      i = end + 1;
    }
  }
  while (i < line.size() && line[i] == ' ') ++i;
  const std::size_t value_end = std::min(line.find(' ', i), line.size());
  const std::string number(line.substr(i, value_end - i));  // a timestamp may follow
  char* stop = nullptr;
  value = std::strtod(number.c_str(), &stop);
  return !number.empty() && stop && *stop == '\0' && std::isfinite(value);
}

Summary parse_metrics(const std::string& text) {
  Summary s;
  std::istringstream in(text);
  std::string line, name;
  std::map<std::string, std::string> labels;
  double value = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || !parse_sample(line, name, labels, value)) continue;
    if (!name.starts_with("athomic_")) continue;  // another program's metrics on the same page
    const auto event = labels.find("event");
    if (event == labels.end()) {
      if (name == "athomic_connection_state") {
        s.backend = labels["backend"];
        if (value == 1) s.connection = labels["state"];
      } else if (name == "athomic_connection_outages_total") {
        s.outages = value;
      } else if (labels.empty()) {
        s.gauges[name] = value;
      }
      continue;
    }
    EventRow& row = s.events[event->second];
    if (name == "athomic_events_published_total") row.published = value;
    else if (name == "athomic_events_received_total") row.received = value;
    else if (name == "athomic_handler_calls_total") row.delivered = value;
    else if (name == "athomic_handler_failures_total") row.failures = value;
    else if (name == "athomic_events_dropped_total") row.dropped[labels["reason"]] = value;
    else if (name.ends_with("_bucket")) {
      const std::string& le = labels["le"];
      const double bound = le == "+Inf" ? HUGE_VAL : std::strtod(le.c_str(), nullptr);
      (name == "athomic_dispatch_latency_seconds_bucket" ? row.latency : row.duration)
          .cumulative.emplace_back(bound, value);
    }
  }
  return s;
}

// The q-quantile as Prometheus' histogram_quantile estimates it: linear within the bucket.
// Negative when there are no observations; +inf when it lies above the last bound.
double quantile(const Buckets& b, double q) {
  if (b.cumulative.empty() || b.cumulative.back().second == 0) return -1;
  const double rank = q * b.cumulative.back().second;
  double lower = 0, below = 0;
  for (const auto& [bound, count] : b.cumulative) {
    if (count >= rank) {
      if (std::isinf(bound)) return HUGE_VAL;
      if (count == below) return bound;
      return lower + (bound - lower) * (rank - below) / (count - below);
    }
    lower = bound;
    below = count;
  }
  return HUGE_VAL;
}

std::string seconds_text(double s) {
  if (s < 0) return "-";
  if (std::isinf(s)) return ">1s";
  char buf[32];
  if (s < 1e-3) std::snprintf(buf, sizeof buf, "%.0fus", s * 1e6);
  else if (s < 1) std::snprintf(buf, sizeof buf, "%.2fms", s * 1e3);
  else std::snprintf(buf, sizeof buf, "%.2fs", s);
  return buf;
}

std::string percentiles(const Buckets& b) {
  if (quantile(b, 0.5) < 0) return "-";
  return seconds_text(quantile(b, 0.5)) + " " + seconds_text(quantile(b, 0.9)) + " " +
         seconds_text(quantile(b, 0.99));
}

std::string count_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

void print_summary(const Summary& s) {
  auto gauge = [&](const char* name) {
    auto it = s.gauges.find(name);
    return it == s.gauges.end() ? std::string("?") : count_text(it->second);
  };
  std::cout << "backend " << s.backend << ", connection " << s.connection << ", outages "
            << count_text(s.outages) << ", queue " << gauge("athomic_queue_events") << "/"
            << gauge("athomic_queue_max_events") << " events, handlers running "
            << gauge("athomic_handlers_running") << "\n";
  const std::vector<std::string> head = {"event",    "published", "received",
                                         "delivered", "failures", "dropped",
                                         "latency p50 p90 p99", "handler p50 p90 p99"};
  std::vector<std::vector<std::string>> table = {head};
  for (const auto& [name, r] : s.events) {
    double dropped = 0;
    std::string reasons;
    for (const auto& [reason, n] : r.dropped) {
      dropped += n;
      if (n > 0) reasons += (reasons.empty() ? "" : ",") + reason + "=" + count_text(n);
    }
    table.push_back({name, count_text(r.published), count_text(r.received),
                     count_text(r.delivered), count_text(r.failures),
                     count_text(dropped) + (reasons.empty() ? "" : " (" + reasons + ")"),
                     percentiles(r.latency), percentiles(r.duration)});
  }
  if (table.size() == 1) {
    std::cout << "no events counted yet\n" << std::flush;
    return;
  }
  std::vector<std::size_t> width(head.size(), 0);
  for (const auto& row : table) {
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : table) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
  std::cout << std::flush;
}

// Publishes @p count events to a name of its own, subscribed in this process, and returns the
// metrics once every one reached the handler (or kRunTimeout passed).
std::string short_run(Settings settings, int count) {
  auto& e = settings.events();
  e.metrics_enabled = true;
  e.metrics_latency_sample = 1;  // so few events: time every one
  e.metrics_listen.clear();      // the service's endpoint address may be taken
  auto bus = start_bus(settings);
  const std::string name = "athomic.stats." + std::to_string(getpid());
  std::mutex m;
  std::condition_variable cv;
  int received = 0;
  bus->subscribe(name, [&](const Event&) {
    std::lock_guard lock(m);
    ++received;
    cv.notify_all();
  });
  int delivered = 0;
  for (int i = 0; i < count; ++i) {
    Completion c = bus->publish(name, nlohmann::json{{"seq", i}});
    if (c.wait_for(kRunTimeout) && c.delivered()) ++delivered;
  }
  int arrived;
  {
    std::unique_lock lock(m);
    cv.wait_for(lock, kRunTimeout, [&] { return received >= count; });
    arrived = received;
  }
  // The bus counts a handler call when it returns, after the handler above counted it.
  MetricsSnapshot snapshot = bus->metrics();
  for (const auto until = Clock::now() + kRunTimeout; Clock::now() < until;) {
    const auto it = std::find_if(snapshot.events.begin(), snapshot.events.end(),
                                 [&](const EventMetrics& m) { return m.event == name; });
    if (it != snapshot.events.end() && it->delivered >= static_cast<uint64_t>(arrived)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    snapshot = bus->metrics();
  }
  std::string text = prometheus_text(snapshot);
  bus->close();
  if (arrived < count) {
    std::cerr << "athomic stats: " << arrived << " of " << count << " event(s) arrived within "
              << kRunTimeout.count() << " s (" << delivered << " delivered to the transport)"
              << std::endl;
  }
  return text;
}

}  // namespace

int cmd_stats(const Settings& settings, const StatsOptions& options) {
  std::string endpoint = options.endpoint;
  if (endpoint.empty()) endpoint = settings.events().metrics_listen;
  if (!endpoint.empty()) {
    std::string text;
    try {
      text = http_get(endpoint, "/metrics");
    } catch (const UsageError&) {
      throw;
    } catch (const std::exception& e) {
      std::cerr << "athomic stats: " << e.what()
                << (options.endpoint.empty() ? " (events.metrics.listen, " +
                                                   settings.events().origin_of(
                                                       "events.metrics.listen") +
                                                   ")"
                                             : std::string())
                << std::endl;
      return kExitFailed;
    }
    const Summary s = parse_metrics(text);
    if (s.events.empty() && s.backend.empty() && s.gauges.empty()) {
      std::cerr << "athomic stats: http://" << endpoint << "/metrics answered, but with no "
                << "athomic metrics: is that a service with events.metrics.listen?" << std::endl;
      return kExitFailed;
    }
    std::cout << "metrics of http://" << endpoint << "/metrics\n";
    print_summary(s);
    return kExitOk;
  }
  const std::string text = short_run(settings, options.count);
  const Summary s = parse_metrics(text);
  std::cout << "metrics of a run of " << options.count << " event(s) published and received by "
            << "this process\n";
  print_summary(s);
  const auto it = s.events.find("athomic.stats." + std::to_string(getpid()));
  return it != s.events.end() && it->second.delivered >= options.count ? kExitOk : kExitFailed;
}

}  // namespace athomic::cli
