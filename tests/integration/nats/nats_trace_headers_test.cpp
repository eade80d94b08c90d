// W3C Trace Context as NATS message headers (events.context.traceparent), seen from outside
// athomic: a plain NATS C client on the same server reads what the provider publishes and
// publishes what an OpenTelemetry-instrumented service would — the trace in a `traceparent`
// header and nothing of it in `_nala_context`.
#include <athomic/sdk/provider.h>
#include <nats/nats.h>

#include <gmock/gmock.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "log_capture.h"
#include "nats_server.h"
#include "test_support.h"
#include "trace_seen.h"

namespace athomic::test {
namespace {

using nlohmann::json;

EventsSettings traced_settings(const NatsServer& server, DispatchMode mode) {
  EventsSettings s = local_settings(mode);
  s.backend = "nats";
  s.provider_config = {{"backend", "nats"}, {"url", server.url()}, {"reconnect_wait", 0.05}};
  s.traceparent = true;
  return s;
}

// A NATS C client of its own: what any other service on the server sees and sends.
class RawClient {
 public:
  explicit RawClient(const NatsServer& server) {
    const natsStatus s = natsConnection_ConnectTo(&conn_, server.url().c_str());
    if (s != NATS_OK) throw std::runtime_error(std::string("connect: ") + natsStatus_GetText(s));
  }
  ~RawClient() {
    if (sub_) natsSubscription_Destroy(sub_);
    natsConnection_Destroy(conn_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  // Subscribes and waits for the server to have the subscription.
  void subscribe(const std::string& subject) {
    ASSERT_EQ(natsConnection_SubscribeSync(&sub_, conn_, subject.c_str()), NATS_OK);
    ASSERT_EQ(natsConnection_FlushTimeout(conn_, 5000), NATS_OK);
  }
  // The next message's body and headers; fails the test after 10 s.
  struct Received {
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
  };
  Received next() {
    natsMsg* msg = nullptr;
    Received r;
    const natsStatus s = natsSubscription_NextMsg(&msg, sub_, 10000);
    EXPECT_EQ(s, NATS_OK) << "no message within 10 s";
    if (s != NATS_OK) return r;
    r.body.assign(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    const char** keys = nullptr;
    int count = 0;
    if (natsMsgHeader_Keys(msg, &keys, &count) == NATS_OK) {
      for (int i = 0; i < count; ++i) {
        const char* value = nullptr;
        natsMsgHeader_Get(msg, keys[i], &value);
        r.headers.emplace_back(keys[i], value ? value : "");
      }
      free(static_cast<void*>(keys));
    }
    natsMsg_Destroy(msg);
    return r;
  }
  void publish(const std::string& subject, const std::string& body,
               const std::vector<std::pair<std::string, std::string>>& headers) {
    natsMsg* msg = nullptr;
    ASSERT_EQ(natsMsg_Create(&msg, subject.c_str(), nullptr, body.data(),
                             static_cast<int>(body.size())),
              NATS_OK);
    for (const auto& [name, value] : headers) {
      ASSERT_EQ(natsMsgHeader_Add(msg, name.c_str(), value.c_str()), NATS_OK);
    }
    EXPECT_EQ(natsConnection_PublishMsg(conn_, msg), NATS_OK);
    natsMsg_Destroy(msg);
    EXPECT_EQ(natsConnection_FlushTimeout(conn_, 5000), NATS_OK);
  }

 private:
  natsConnection* conn_ = nullptr;
  natsSubscription* sub_ = nullptr;
};

class NatsTraceHeaders : public testing::TestWithParam<DispatchMode> {};

TEST_P(NatsTraceHeaders, ThePublishedTraceIsANatsHeader) {
  NatsServer server;
  RawClient raw(server);
  raw.subscribe("events.order.placed");
  auto bus = started(traced_settings(server, GetParam()));
  EXPECT_NE(bus->provider().capabilities & ATHOMIC_CAP_HEADERS, 0u);
  {
    ContextScope scope(ExecutionContext::Builder()
                           .trace_id(kTrace)
                           .span_id(kSpan)
                           .trace_state("congo=t61rcWkgMzE")
                           .tenant_id("acme")
                           .build());
    ASSERT_TRUE(bus->publish("order.placed", {{"id", 1}}).wait_for(kGenerous));
  }
  RawClient::Received got = raw.next();
  std::sort(got.headers.begin(), got.headers.end());
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"traceparent", kParent}, {"tracestate", "congo=t61rcWkgMzE"}};
  EXPECT_EQ(got.headers, expected);
  // The envelope keeps _nala_context as the Python framework writes it, and its own copy.
  const json body = json::parse(got.body);
  EXPECT_EQ(body["_nala_context"]["tenant_id"], "acme");
  EXPECT_EQ(body["_nala_context"]["trace_id"], kTrace);
  EXPECT_EQ(body["traceparent"], kParent);

  // A publish with no trace in its context carries no header.
  bus->publish("order.placed", {{"id", 2}}).wait_for(kGenerous);
  EXPECT_TRUE(raw.next().headers.empty());
}

TEST_P(NatsTraceHeaders, ATraceparentHeaderFromAnotherClientRestoresTheTrace) {
  NatsServer server;
  auto bus = started(traced_settings(server, GetParam()));
  Seen seen;
  bus->subscribe("order.placed", [&](const Event& e) { seen.record(e); });
  RawClient raw(server);
  // No trace ids in _nala_context, and no W3C member in the body: only the header has them.
  raw.publish("events.order.placed", R"({"id":1,"_nala_context":{"tenant_id":"acme"}})",
              {{"traceparent", kParent}, {"tracestate", "k=v"}});
  ASSERT_TRUE(seen.wait_for(1));
  EXPECT_EQ(seen.payload(0), (json{{"id", 1}}));
  expect_example_trace(seen.context(0), "k=v");
  EXPECT_EQ(bus->stats().invalid_traceparent, 0u);

  // An invalid one is ignored and counted; the event arrives all the same.
  raw.publish("events.order.placed", R"({"id":2})", {{"traceparent", "00-not-a-trace"}});
  ASSERT_TRUE(seen.wait_for(2));
  EXPECT_EQ(seen.payload(1), (json{{"id", 2}}));
  EXPECT_TRUE(!seen.context(1) || !seen.context(1)->trace_id());
  EXPECT_TRUE(eventually([&] { return bus->stats().invalid_traceparent == 1u; }))
      << bus->stats().invalid_traceparent;
  EXPECT_EQ(bus->stats().malformed_messages, 0u);
}

// Sends @p header_block and @p body as one HPUB on a plain socket: a block the NATS C client
// cannot build, as a hostile or broken client may send it.
void raw_hpub(const NatsServer& server, const std::string& subject, const std::string& header_block,
              const std::string& body) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string out = "CONNECT {\"verbose\":false,\"headers\":true,\"protocol\":1}\r\nHPUB " +
                          subject + " " + std::to_string(header_block.size()) + " " +
                          std::to_string(header_block.size() + body.size()) + "\r\n" +
                          header_block + body + "\r\nPING\r\n";
  ASSERT_EQ(send(fd, out.data(), out.size(), MSG_NOSIGNAL), static_cast<ssize_t>(out.size()));
  std::string in;  // INFO, then PONG once the server has taken the message
  char buf[4096];
  while (in.find("PONG") == std::string::npos) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  EXPECT_NE(in.find("PONG"), std::string::npos) << in;
}

// A header block the client cannot parse (here an empty traceparent value, which NATS refuses)
// loses its headers: the event arrives without them, and the provider says so.
TEST_P(NatsTraceHeaders, AHeaderBlockTheClientCannotParseIsLogged) {
  NatsServer server;
  LogCapture log("athomic.provider.nats");
  auto bus = started(traced_settings(server, GetParam()));
  Seen seen;
  bus->subscribe("order.placed", [&](const Event& e) { seen.record(e); });
  raw_hpub(server, "events.order.placed", "NATS/1.0\r\ntraceparent:\r\n\r\n", R"({"id":1})");
  ASSERT_TRUE(seen.wait_for(1));
  EXPECT_EQ(seen.payload(0), (json{{"id", 1}}));
  EXPECT_THAT(log.text(), testing::HasSubstr("ignored the headers of a message on "
                                             "'events.order.placed'"));
}

INSTANTIATE_TEST_SUITE_P(Modes, NatsTraceHeaders,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

}  // namespace
}  // namespace athomic::test
