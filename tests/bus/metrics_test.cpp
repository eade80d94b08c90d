// What EventBus::metrics() counts after a known sequence of publishes, failures and drops, in
// both dispatch modes; the cap on per-name labels; the Prometheus text, checked by promtool; the
// optional endpoint serving it.
#include "test_support.h"

#include <gmock/gmock.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <vector>
#include <fstream>

namespace athomic::test {
namespace {

using testing::HasSubstr;

const EventMetrics* find(const MetricsSnapshot& m, const std::string& event) {
  for (const auto& e : m.events) {
    if (e.event == event) return &e;
  }
  return nullptr;
}

uint64_t dropped(const EventMetrics& e, DropReason r) {
  return e.dropped[static_cast<std::size_t>(r)];
}

// Runs a shell command; its standard output, and its exit status in @p status.
std::string shell(const std::string& command, int& status) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (!p) {
    status = -1;
    return out;
  }
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  status = pclose(p);
  status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// A file the test writes and removes.
struct TempFile {
  explicit TempFile(const std::string& text) {
    char tmpl[] = "/tmp/athomic-metrics-XXXXXX";
    const int fd = mkstemp(tmpl);
    path = tmpl;
    ::close(fd);
    std::ofstream(path) << text;
  }
  ~TempFile() { std::remove(path.c_str()); }
  std::string path;
};

// `promtool check metrics` on @p text: its complaints, empty when it accepts the text.
std::string promtool_complaints(const std::string& text) {
  TempFile file(text);
  int status = 0;
  const std::string out = shell("promtool check metrics < " + file.path + " 2>&1", status);
  return status == 0 ? std::string() : "promtool exit " + std::to_string(status) + ": " + out;
}

class Metrics : public testing::TestWithParam<DispatchMode> {};

TEST_P(Metrics, CountsAKnownSequence) {
  auto s = local_settings(GetParam(), 2);
  s.metrics_latency_sample = 1;  // time every event
  auto bus = started(s);
  bus->subscribe("order.placed", [](const Event&) {});
  bus->subscribe("order.placed", [](const Event& e) {
    if (e.payload().value("i", 0) % 2 == 1) throw std::runtime_error("odd");
  });
  for (int i = 0; i < 10; ++i) bus->publish("order.placed", {{"i", i}}).wait();
  for (int i = 0; i < 3; ++i) bus->publish("nobody.listens", {}).wait();

  const MetricsSnapshot m = bus->metrics();
  EXPECT_EQ(m.backend, "local");
  const EventMetrics* placed = find(m, "order.placed");
  ASSERT_NE(placed, nullptr);
  EXPECT_EQ(placed->published, 10u);
  EXPECT_EQ(placed->delivered, 20u);
  EXPECT_EQ(placed->handler_failures, 5u);
  EXPECT_EQ(placed->received, 0u);  // in process: nothing comes from a transport
  EXPECT_EQ(placed->dispatch_latency.count, 20u);
  EXPECT_EQ(placed->handler_duration.count, 20u);
  uint64_t in_buckets = 0;
  for (uint64_t b : placed->handler_duration.buckets) in_buckets += b;
  EXPECT_EQ(in_buckets, 20u);
  const EventMetrics* nobody = find(m, "nobody.listens");
  ASSERT_NE(nobody, nullptr);
  EXPECT_EQ(nobody->published, 3u);
  EXPECT_EQ(nobody->delivered, 0u);
  EXPECT_EQ(m.total.published, 13u);
  EXPECT_EQ(m.total.delivered, 20u);
  EXPECT_EQ(m.total.handler_failures, 5u);
  EXPECT_EQ(find(m, "_other"), nullptr);  // under the cap: no aggregate row
  EXPECT_TRUE(m.started);
  EXPECT_EQ(m.connection, "up");
}

TEST_P(Metrics, CountsFromEveryThread) {
  auto bus = started(local_settings(GetParam(), 2));
  bus->subscribe("threads", [](const Event&) {});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) bus->publish("threads", {}).wait();
    });
  }
  // Snapshots while the threads count.
  for (int i = 0; i < 20; ++i) EXPECT_LE(bus->metrics().total.published, 2000u);
  for (auto& t : threads) t.join();
  const MetricsSnapshot m = bus->metrics();
  ASSERT_NE(find(m, "threads"), nullptr);
  EXPECT_EQ(find(m, "threads")->published, 2000u);
  EXPECT_EQ(find(m, "threads")->delivered, 2000u);
}

TEST_P(Metrics, NamesPastTheCapShareOther) {
  auto s = local_settings(GetParam(), 2);
  s.metrics_max_events = 3;
  auto bus = started(s);
  for (int i = 0; i < 10; ++i) {
    const std::string name = "request." + std::to_string(i);
    bus->subscribe(name, [](const Event&) {});
    bus->publish(name, {}).wait();
    bus->publish(name, {}).wait();
  }
  const MetricsSnapshot m = bus->metrics();
  ASSERT_EQ(m.events.size(), 4u);
  EXPECT_EQ(m.events[0].event, "request.0");
  EXPECT_EQ(m.events[2].event, "request.2");
  EXPECT_EQ(m.events[3].event, "_other");
  EXPECT_EQ(m.events[3].published, 14u);
  EXPECT_EQ(m.events[3].delivered, 14u);
  EXPECT_EQ(m.total.published, 20u);
}

TEST_P(Metrics, OffCountsNothing) {
  auto s = local_settings(GetParam(), 2);
  s.metrics_enabled = false;
  auto bus = started(s);
  bus->subscribe("quiet", [](const Event&) {});
  bus->publish("quiet", {}).wait();
  const MetricsSnapshot m = bus->metrics();
  EXPECT_TRUE(m.events.empty());
  EXPECT_EQ(m.total.published, 0u);
  EXPECT_TRUE(promtool_complaints(prometheus_text(m)).empty());
}

TEST_P(Metrics, TransportFailuresLossesAndNoHandlerAreDropsByReason) {
  auto s = backend_settings("acknowledging", GetParam(), 2);
  auto bus = started(s);
  bus->subscribe("refused.order", [](const Event&) {});
  bus->subscribe("test.drop", [](const Event&) {});
  Completion refused_publish = bus->publish("refused.order", {});
  ASSERT_TRUE(refused_publish.wait_for(kGenerous));
  EXPECT_FALSE(refused_publish.delivered());
  bus->publish("test.drop", {}).wait();
  bus->publish("unheard", {}).wait();  // comes back from the transport; nobody here listens
  const MetricsSnapshot m = bus->metrics();
  const EventMetrics* refused = find(m, "refused.order");
  ASSERT_NE(refused, nullptr);
  EXPECT_EQ(refused->published, 1u);
  EXPECT_EQ(dropped(*refused, DropReason::transport), 1u);
  EXPECT_EQ(refused->received, 0u);
  const EventMetrics* lost = find(m, "test.drop");
  ASSERT_NE(lost, nullptr);
  EXPECT_EQ(dropped(*lost, DropReason::transport), 3u);  // as the provider reported
  EXPECT_EQ(lost->received, 1u);
  ASSERT_TRUE(eventually([&] {
    const MetricsSnapshot now = bus->metrics();
    const EventMetrics* e = find(now, "test.drop");
    return e && e->delivered == 1;
  }));
  const EventMetrics* unheard = find(m, "unheard");
  ASSERT_NE(unheard, nullptr);
  EXPECT_EQ(unheard->received, 1u);
  EXPECT_EQ(dropped(*unheard, DropReason::no_handler), 1u);
  EXPECT_EQ(m.total.dropped[static_cast<std::size_t>(DropReason::transport)], 4u);
}

INSTANTIATE_TEST_SUITE_P(Both, Metrics, testing::Values(DispatchMode::pool, DispatchMode::inline_call),
                         mode_name);

// events.metrics.latency_sample is a bus's setting: one thread publishing to two buses in turn
// must time one event in N of each, not let one bus's events use up the other's samples.
TEST(MetricsSampling, EachBusOfOneThreadTimesItsOwnShare) {
  auto s = local_settings(DispatchMode::inline_call, 1);
  s.metrics_latency_sample = 2;
  auto a = started(s);
  auto b = started(s);
  a->subscribe("tick", [](const Event&) {});
  b->subscribe("tick", [](const Event&) {});
  for (int i = 0; i < 100; ++i) {
    a->publish("tick", {}).wait();
    b->publish("tick", {}).wait();
  }
  const MetricsSnapshot ma = a->metrics();
  const MetricsSnapshot mb = b->metrics();
  ASSERT_NE(find(ma, "tick"), nullptr);
  ASSERT_NE(find(mb, "tick"), nullptr);
  EXPECT_EQ(find(ma, "tick")->dispatch_latency.count, 50u);
  EXPECT_EQ(find(mb, "tick")->dispatch_latency.count, 50u);
}

// Each name's first event on a thread is timed, then one in latency_sample: an event published
// a few times a day still shows its latency, however busy the thread is with others.
TEST_P(Metrics, TheFirstEventOfEachNameIsTimedThenOneInN) {
  auto s = local_settings(GetParam(), 1);
  s.metrics_latency_sample = 100;
  auto bus = started(s);
  const std::vector<std::string> rare{"audit.rotated", "tenant.created", "key.revoked"};
  for (const auto& name : rare) bus->subscribe(name, [](const Event&) {});
  bus->subscribe("tick", [](const Event&) {});
  for (int i = 0; i < 250; ++i) bus->publish("tick", {}).wait();
  for (const auto& name : rare) bus->publish(name, {}).wait();
  const MetricsSnapshot m = bus->metrics();
  for (const auto& name : rare) {
    const EventMetrics* e = find(m, name);
    ASSERT_NE(e, nullptr) << name;
    EXPECT_EQ(e->dispatch_latency.count, 1u) << name;
    EXPECT_EQ(e->handler_duration.count, 1u) << name;
  }
  const EventMetrics* tick = find(m, "tick");
  ASSERT_NE(tick, nullptr);
  EXPECT_EQ(tick->dispatch_latency.count, 3u);  // events 1, 101 and 201
  EXPECT_EQ(tick->handler_duration.count, 3u);
}

// Whatever latency_sample is, the first of every N events is timed: ceil(events / N) of them.
TEST_P(Metrics, TimesOneInNForOddAndLargeN) {
  for (const uint32_t n : {1u, 2u, 3u, 7u, 1000000u}) {
    auto s = local_settings(GetParam(), 1);
    s.metrics_latency_sample = n;
    auto bus = started(s);
    bus->subscribe("x", [](const Event&) {});
    constexpr uint32_t kEvents = 50;
    for (uint32_t i = 0; i < kEvents; ++i) bus->publish("x", {}).wait();
    bus->close();
    const MetricsSnapshot m = bus->metrics();
    const EventMetrics* x = find(m, "x");
    ASSERT_NE(x, nullptr);
    EXPECT_EQ(x->dispatch_latency.count, (kEvents + n - 1) / n) << "latency_sample " << n;
    EXPECT_EQ(x->handler_duration.count, (kEvents + n - 1) / n) << "latency_sample " << n;
  }
}

TEST(MetricsPool, RefusedPublishesAndCloseDropsAreCounted) {
  auto s = local_settings(DispatchMode::pool, 1);
  s.max_queued_events = 5;
  s.when_full = WhenFull::fail;
  auto bus = EventBus::create(s);
  bus->start();
  Gate gate;
  bus->subscribe("slow", [&](const Event&) { gate.wait(); });
  int refused = 0;
  for (int i = 0; i < 8; ++i) {
    try {
      bus->publish("slow", {});
    } catch (const EventBusError&) {
      ++refused;
    }
  }
  EXPECT_EQ(refused, 3);
  MetricsSnapshot m = bus->metrics();
  const EventMetrics* slow = find(m, "slow");
  ASSERT_NE(slow, nullptr);
  EXPECT_EQ(slow->published, 5u);
  EXPECT_EQ(dropped(*slow, DropReason::queue_full), 3u);
  EXPECT_EQ(m.queued_events, 5u);
  EXPECT_EQ(m.max_queued_events, 5u);
  // The worker takes the first event when it gets round to it.
  EXPECT_TRUE(eventually([&] { return bus->metrics().handlers_running == 1; }));
  // close gives up on the four that wait; the one running finishes when the gate opens.
  std::thread opener([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    gate.open();
  });
  bus->close(std::chrono::milliseconds(50));
  opener.join();
  ASSERT_TRUE(eventually([&] {
    const MetricsSnapshot now = bus->metrics();
    const EventMetrics* e = find(now, "slow");
    return e && dropped(*e, DropReason::close) == 4;
  }));
  m = bus->metrics();
  EXPECT_FALSE(m.started);
  EXPECT_EQ(find(m, "slow")->delivered, 1u);
}

TEST(PrometheusText, PromtoolAcceptsItWithAwkwardNames) {
  auto s = local_settings(DispatchMode::pool, 2);
  s.metrics_latency_sample = 1;
  auto bus = started(s);
  const std::string awkward = R"(quote"back\slash.é)";
  bus->subscribe(awkward, [](const Event&) {});
  bus->subscribe("plain", [](const Event&) { throw std::runtime_error("no"); });
  bus->publish(awkward, {}).wait();
  bus->publish("plain", {}).wait();
  const std::string text = prometheus_text(bus->metrics());
  EXPECT_EQ(promtool_complaints(text), "");
  EXPECT_THAT(text, HasSubstr(R"(athomic_events_published_total{event="quote\"back\\slash.é"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(athomic_handler_failures_total{event="plain"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(athomic_dispatch_latency_seconds_bucket{event="plain",le="+Inf"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(athomic_events_dropped_total{event="plain",reason="queue_full"} 0)"));
  EXPECT_THAT(text, HasSubstr(R"(athomic_connection_state{backend="local",state="up"} 1)"));
}

// "127.0.0.1:port" as a socket address.
sockaddr_in endpoint_of(const std::string& address) {
  const auto colon = address.rfind(':');
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &to.sin_addr);
  return to;
}

// A plain HTTP/1.1 request; the whole response (status line, headers, body).
std::string http(const std::string& address, const std::string& request) {
  const sockaddr_in to = endpoint_of(address);
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd);
    return "connect failed";
  }
  (void)!write(fd, request.data(), request.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

TEST(MetricsEndpoint, ServesMetricsAndHealthThatPromtoolAccepts) {
  auto s = backend_settings("acknowledging", DispatchMode::pool, 2);
  s.metrics_listen = "127.0.0.1:0";
  auto bus = started(s);
  const std::string address = bus->metrics_address();
  ASSERT_THAT(address, testing::StartsWith("127.0.0.1:"));
  bus->subscribe("user.created", [](const Event&) {});
  bus->publish("user.created", {{"id", 1}}).wait();
  ASSERT_TRUE(eventually([&] { return bus->metrics().total.delivered == 1; }));

  int status = 0;
  const std::string text = shell("curl -sf http://" + address + "/metrics", status);
  ASSERT_EQ(status, 0) << text;
  EXPECT_EQ(promtool_complaints(text), "");
  EXPECT_THAT(text, HasSubstr(R"(athomic_events_published_total{event="user.created"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(athomic_events_received_total{event="user.created"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(athomic_connection_state{backend="acknowledging",state="up"} 1)"));

  const std::string health = shell("curl -s -w '%{http_code}' http://" + address + "/healthz", status);
  EXPECT_THAT(health, HasSubstr("ok\nstarted: yes"));
  EXPECT_THAT(health, testing::EndsWith("200"));
  // A connection that goes away: the provider's report reaches /healthz.
  bus->publish("test.outage", {}).wait();
  EXPECT_THAT(shell("curl -s http://" + address + "/healthz", status), HasSubstr("connection: up"));

  EXPECT_THAT(http(address, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"), HasSubstr("404 Not Found"));
  EXPECT_THAT(http(address, "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
              HasSubstr("405 Method Not Allowed"));
  EXPECT_THAT(http(address, "GET /metrics HTTP/1.1\r\nX: " + std::string(10000, 'x') + "\r\n\r\n"),
              HasSubstr("431"));
  const std::string head = http(address, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(head, HasSubstr("200 OK"));
  EXPECT_THAT(head, testing::EndsWith("\r\n\r\n"));  // no body

  bus->close();
  EXPECT_EQ(bus->metrics_address(), "");
  EXPECT_EQ(http(address, "GET /metrics HTTP/1.1\r\n\r\n"), "connect failed");
}

TEST(MetricsEndpoint, ASlowClientDoesNotHoldUpOthers) {
  auto s = local_settings(DispatchMode::pool, 2);
  s.metrics_listen = "127.0.0.1:0";
  auto bus = started(s);
  const std::string address = bus->metrics_address();
  // A client that connects and never sends its request.
  const sockaddr_in to = endpoint_of(address);
  const int idle = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(connect(idle, reinterpret_cast<const sockaddr*>(&to), sizeof to), 0);
  EXPECT_THAT(http(address, "GET /healthz HTTP/1.1\r\n\r\n"), HasSubstr("200 OK"));
  ::close(idle);
}

TEST(MetricsEndpoint, IdleConnectionsCannotLockScrapersOut) {
  auto s = local_settings(DispatchMode::pool, 2);
  s.metrics_listen = "127.0.0.1:0";
  auto bus = started(s);
  const std::string address = bus->metrics_address();
  const sockaddr_in to = endpoint_of(address);
  // Far more half-sent requests than the endpoint serves at once.
  std::vector<int> idle;
  for (int i = 0; i < 40; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to), 0);
    (void)!write(fd, "GET /metr", 9);
    idle.push_back(fd);
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(http(address, "GET /healthz HTTP/1.1\r\n\r\n"), HasSubstr("200 OK"));
    EXPECT_THAT(http(address, "GET /metrics HTTP/1.1\r\n\r\n"), HasSubstr("200 OK"));
  }
  for (int fd : idle) ::close(fd);
}

TEST(MetricsEndpoint, AnswersWhatIsNotARequestWithAStatus) {
  auto s = local_settings(DispatchMode::pool, 2);
  s.metrics_listen = "127.0.0.1:0";
  auto bus = started(s);
  const std::string address = bus->metrics_address();
  // Bare LF line ends, and the absolute form a proxy sends.
  EXPECT_THAT(http(address, "GET /healthz HTTP/1.0\n\n"), HasSubstr("200 OK"));
  EXPECT_THAT(http(address, "GET http://" + address + "/metrics HTTP/1.1\r\n\r\n"),
              HasSubstr("200 OK"));
  EXPECT_THAT(http(address, "\r\n\r\n"), HasSubstr("400 Bad Request"));
  EXPECT_THAT(http(address, "GET\r\n\r\n"), HasSubstr("400 Bad Request"));
  EXPECT_THAT(http(address, std::string("\x16\x03\x01\x00\xa5\x01 x y\r\n\r\n", 14)),
              HasSubstr("400 Bad Request"));
  const std::string put = http(address, "PUT /metrics HTTP/1.1\r\n\r\n");
  EXPECT_THAT(put, HasSubstr("405 Method Not Allowed"));
  EXPECT_THAT(put, HasSubstr("Allow: GET, HEAD\r\n"));
}

TEST(PrometheusText, NamesThatAreNotUtf8OrLookLikeTheAggregateStayValid) {
  auto s = local_settings(DispatchMode::inline_call, 0);
  s.metrics_max_events = 2;
  auto bus = started(s);
  for (const std::string& name : {std::string("user.created"), std::string("caf\xe9.latin1"), std::string("_other"),
                                 std::string("past.the.cap")}) {
    bus->subscribe(name, [](const Event&) {});
    bus->publish(name, {});
  }
  const auto m = bus->metrics();
  // "_other" is the aggregate's label: an event of that name is counted in it.
  EXPECT_EQ(std::count_if(m.events.begin(), m.events.end(),
                          [](const EventMetrics& e) { return e.event == "_other"; }),
            1);
  EXPECT_EQ(find(m, "_other")->published, 2u);
  const std::string text = prometheus_text(m);
  EXPECT_EQ(promtool_complaints(text), "");
  EXPECT_THAT(text, HasSubstr("athomic_events_published_total{event=\"caf\xEF\xBF\xBD.latin1\"} 1"));
}

TEST(MetricsSettings, SettingsFilledInCodeAreCheckedToo) {
  for (auto change : std::vector<std::function<void(EventsSettings&)>>{
           [](EventsSettings& s) { s.metrics_listen = "127.0.0.1:99999"; },
           [](EventsSettings& s) { s.metrics_listen = ":9464"; },
           [](EventsSettings& s) { s.metrics_max_events = 4000000000u; },
           [](EventsSettings& s) { s.metrics_max_events = 0; },
           [](EventsSettings& s) { s.metrics_latency_sample = 0; }}) {
    auto s = local_settings(DispatchMode::pool, 1);
    change(s);
    try {
      EventBus::create(s);
      ADD_FAILURE() << "accepted";
    } catch (const EventBusError& e) {
      EXPECT_THAT(e.what(), HasSubstr("events.metrics."));
    }
  }
}

TEST(MetricsEndpoint, UnhealthyWhenTheBusIsNotStarted) {
  auto s = local_settings(DispatchMode::pool, 2);
  s.metrics_listen = "127.0.0.1:0";
  auto bus = started(s);
  const std::string address = bus->metrics_address();
  // Served only while started: close takes it down with the bus.
  EXPECT_THAT(http(address, "GET /healthz HTTP/1.1\r\n\r\n"), HasSubstr("200 OK"));
  bus->close();
  EXPECT_EQ(http(address, "GET /healthz HTTP/1.1\r\n\r\n"), "connect failed");
}

TEST(MetricsEndpoint, AnAddressInUseFailsStartNamingTheSetting) {
  auto s = local_settings(DispatchMode::pool, 2);
  s.metrics_listen = "127.0.0.1:0";
  auto first = started(s);
  s.metrics_listen = first->metrics_address();
  auto second = EventBus::create(s);
  try {
    second->start();
    FAIL() << "start() succeeded on an address in use";
  } catch (const EventBusError& e) {
    EXPECT_THAT(e.what(), HasSubstr("events.metrics.listen = \"" + s.metrics_listen + "\""));
    EXPECT_THAT(e.what(), HasSubstr("in use"));
  }
  // Nothing half-started: the bus refuses publishes as one that never started.
  EXPECT_THROW(second->publish("x", {}), EventBusError);
}

TEST(MetricsSettings, BadValuesNameTheKey) {
  auto load = [](const std::string& toml) {
    try {
      Settings::from_toml("[default.events]\nenabled = true\n" + toml, "metrics.toml");
      return std::string("loaded");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
  };
  EXPECT_THAT(load("[default.events.metrics]\nlisten = \"9464\"\n"), HasSubstr("events.metrics.listen"));
  EXPECT_THAT(load("[default.events.metrics]\nlisten = \"127.0.0.1:70000\"\n"),
              HasSubstr("events.metrics.listen"));
  EXPECT_THAT(load("[default.events.metrics]\nmax_events = 0\n"), HasSubstr("events.metrics.max_events"));
  EXPECT_THAT(load("[default.events.metrics]\nlatency_sample = -1\n"),
              HasSubstr("events.metrics.latency_sample"));
  EXPECT_THAT(load("[default.events.metrics]\nlisen = \"x\"\n"), HasSubstr("listen"));
  EXPECT_EQ(load("[default.events.metrics]\nlisten = \"127.0.0.1:9464\"\nmax_events = 20\n"), "loaded");
}

}  // namespace
}  // namespace athomic::test
