// The baseline of scripts/bench-nats.sh: the NATS C client alone, the loop athomic's nats
// provider is measured against. One process publishes, another subscribes with a callback that
// only counts; the subscriber measures first to last receipt, as athomic_e2e_bench does.
//
//   raw_nats_bench sub URL SUBJECT N             prints "ready", then a JSON result line
//   raw_nats_bench pub URL SUBJECT N SIZE [RATE] publishes N messages of SIZE bytes (RATE per
//                                                second, 0: as fast as it can), then flushes
// Each message starts with its send time (CLOCK_MONOTONIC, shared by processes on one
// machine), so the subscriber reports publish->callback latency too.
//
// Built by the script: g++ -O2 raw_nats_bench.cpp $(pkg-config --cflags --libs libnats)
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Counts {
  std::atomic<int64_t> received{0};
  std::atomic<int64_t> first{0}, last{0};
  int64_t expected = 0;
  std::vector<int64_t> latency;  // written by the one delivery thread
};

void on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* c = static_cast<Counts*>(closure);
  const int64_t t = now_ns();
  const int64_t i = c->received.fetch_add(1);
  if (i == 0) c->first = t;
  if (i == c->expected - 1) c->last = t;
  if (i < c->expected) c->latency[static_cast<std::size_t>(i)] = t - std::atoll(natsMsg_GetData(msg));
  natsMsg_Destroy(msg);
}

int fail(const char* what, natsStatus s) {
  std::fprintf(stderr, "raw_nats_bench: %s: %s\n", what, natsStatus_GetText(s));
  return 2;
}

int run_sub(natsConnection* nc, const char* subject, int64_t n) {
  Counts c;
  c.expected = n;
  c.latency.resize(static_cast<std::size_t>(n));
  natsSubscription* sub = nullptr;
  natsStatus s = natsConnection_Subscribe(&sub, nc, subject, on_message, &c);
  // Unbounded, as the bench configures athomic's provider: neither side may drop.
  if (s == NATS_OK) s = natsSubscription_SetPendingLimits(sub, -1, -1);
  if (s == NATS_OK) s = natsConnection_Flush(nc);
  if (s != NATS_OK) return fail("subscribe", s);
  std::printf("ready\n");
  std::fflush(stdout);
  const int64_t deadline = now_ns() + int64_t{300} * 1'000'000'000;
  while (c.received.load() < n && now_ns() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  int64_t dropped = 0;
  natsSubscription_GetDropped(sub, &dropped);
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);
  const int64_t got = c.received.load() < n ? c.received.load() : n;
  const double secs = got > 1 ? (c.last.load() - c.first.load()) / 1e9 : 0;
  std::vector<int64_t> l(c.latency.begin(), c.latency.begin() + got);
  std::sort(l.begin(), l.end());
  auto pct = [&](double p) {
    return l.empty() ? 0.0 : l[std::min(l.size() - 1, static_cast<std::size_t>(p * l.size()))] / 1e3;
  };
  std::printf("{\"role\":\"raw-sub\",\"received\":%lld,\"expected\":%lld,\"dropped\":%lld,"
              "\"seconds\":%.6f,\"events_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
              "\"max_us\":%.1f}\n",
              static_cast<long long>(got), static_cast<long long>(n),
              static_cast<long long>(dropped), secs, secs > 0 ? (got - 1) / secs : 0.0, pct(0.5),
              pct(0.99), pct(1.0));
  return got == n ? 0 : 1;
}

int run_pub(natsConnection* nc, const char* subject, int64_t n, int size, double rate) {
  std::string body(static_cast<std::size_t>(std::max(size, 24)), 'x');
  const int64_t start = now_ns();
  for (int64_t i = 0; i < n; ++i) {
    if (rate > 0) {
      const int64_t due = start + static_cast<int64_t>(i * 1e9 / rate);
      while (now_ns() < due) {
      }
    }
    std::snprintf(body.data(), 21, "%020lld", static_cast<long long>(now_ns()));
    body[20] = ' ';
    const natsStatus s = natsConnection_Publish(nc, subject, body.data(), size);
    if (s != NATS_OK) return fail("publish", s);
  }
  const natsStatus s = natsConnection_FlushTimeout(nc, 60'000);
  if (s != NATS_OK) return fail("flush", s);
  const double secs = (now_ns() - start) / 1e9;
  std::printf("{\"role\":\"raw-pub\",\"sent\":%lld,\"seconds\":%.6f,\"events_per_s\":%.1f}\n",
              static_cast<long long>(n), secs, n / secs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5 || (std::string(argv[1]) == "pub" && argc < 6)) {
    std::fprintf(stderr, "usage: %s sub URL SUBJECT N | pub URL SUBJECT N SIZE [RATE]\n", argv[0]);
    return 2;
  }
  const std::string role = argv[1];
  natsConnection* nc = nullptr;
  natsStatus s = natsConnection_ConnectTo(&nc, argv[2]);
  if (s != NATS_OK) return fail("connect", s);
  const int64_t n = std::atoll(argv[4]);
  const int rc = role == "sub" ? run_sub(nc, argv[3], n)
                                : run_pub(nc, argv[3], n, std::max(std::atoi(argv[5]), 24),
                                          argc > 6 ? std::atof(argv[6]) : 0);
  natsConnection_Destroy(nc);
  nats_Close();
  return rc;
}
