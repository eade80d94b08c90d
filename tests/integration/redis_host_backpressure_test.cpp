// The provider under a host whose dispatch queue is full: deliver_message answers
// ATHOMIC_ERR_BACKPRESSURE and does not take the message. The provider must keep it, try again,
// keep the publishing connection going meanwhile, and lose nothing. Once at the ABI, with a
// test host that refuses for as long as the test says; once through the runtime's own host.
#include "redis_support.h"

#include <athomic/sdk/provider.h>

#include <dlfcn.h>

#include <mutex>

namespace athomic::test {
namespace {

// A host whose queue is "full" while `full` is set.
struct TestHost {
  std::atomic<bool> full{false};
  std::atomic<int> refusals{0};
  std::mutex m;
  std::vector<std::string> bodies;  // of "bp", in the order taken

  static TestHost& of(athomic_host_ctx* ctx) { return *reinterpret_cast<TestHost*>(ctx); }
  static void error_set(athomic_error_sink* sink, athomic_str message) {
    reinterpret_cast<std::string*>(sink)->assign(message.data, message.size);
  }
  static void log(athomic_host_ctx*, athomic_log_level, athomic_str) {}
  static athomic_status deliver_event(athomic_host_ctx*, athomic_host_event*) {
    return ATHOMIC_ERR_STATE;
  }
  static athomic_status deliver_message(athomic_host_ctx* ctx, athomic_str name, athomic_str body) {
    TestHost& h = of(ctx);
    if (h.full) {
      ++h.refusals;
      return ATHOMIC_ERR_BACKPRESSURE;
    }
    if (std::string_view(name.data, name.size) == "bp") {
      std::lock_guard lock(h.m);
      h.bodies.emplace_back(body.data, body.size);
    }
    return ATHOMIC_OK;
  }
  static uint64_t now_ns() { return 0; }
  std::size_t taken() {
    std::lock_guard lock(m);
    return bodies.size();
  }
};

const athomic_host_api kApi{sizeof(athomic_host_api),
                            ATHOMIC_ABI_VERSION_MAJOR,
                            ATHOMIC_ABI_VERSION_MINOR,
                            &TestHost::error_set,
                            &TestHost::log,
                            &TestHost::deliver_event,
                            &TestHost::deliver_message,
                            &TestHost::now_ns,
                            "test"};

TEST(RedisHostBackpressure, AMessageTheHostRefusesIsKeptAndDeliveredLater) {
  RedisServer server;
  void* lib =
      ::dlopen(ATHOMIC_REDIS_PLUGIN, RTLD_NOW | RTLD_LOCAL);  // never closed, as the host does
  ASSERT_TRUE(lib) << ::dlerror();
  auto entry =
      reinterpret_cast<athomic_provider_entry_fn>(::dlsym(lib, ATHOMIC_PROVIDER_ENTRY_SYMBOL));
  ASSERT_TRUE(entry);
  const athomic_provider_vtable& vt = *entry(&kApi)->vtable;
  TestHost host;
  std::string error;
  auto* sink = reinterpret_cast<athomic_error_sink*>(&error);
  const std::string config = redis_config(server.uri()).dump();
  athomic_provider* p = nullptr;
  ASSERT_EQ(vt.create(&kApi, reinterpret_cast<athomic_host_ctx*>(&host),
                      {config.data(), config.size()}, &p, sink),
            ATHOMIC_OK)
      << error;
  ASSERT_EQ(vt.start(p, sink), ATHOMIC_OK) << error;
  ASSERT_EQ(vt.interest_add(p, {"bp", 2}, ATHOMIC_INTEREST_EXACT, sink), ATHOMIC_OK) << error;

  host.full = true;
  RawClient publisher(server.port());
  constexpr int kEvents = 2000;
  for (int n = 0; n < kEvents; ++n)
    publisher.command({"PUBLISH", "app_events:bp", std::to_string(n)});
  ASSERT_TRUE(eventually([&] { return host.refusals.load() >= 20; })) << "delivery was not retried";
  EXPECT_EQ(host.taken(), 0u);

  // The publishing connection goes on meanwhile.
  RawClient watcher(server.port());
  watcher.command({"SUBSCRIBE", "app_events:other"});
  const std::string body = "{}";
  const athomic_message m{
      sizeof(athomic_message), {"other", 5}, {body.data(), body.size()}, nullptr};
  ASSERT_EQ(vt.publish(p, &m, sink), ATHOMIC_OK) << error;
  EXPECT_EQ(watcher.next_message(), body);

  host.full = false;
  ASSERT_TRUE(eventually([&] { return host.taken() == static_cast<std::size_t>(kEvents); }))
      << host.taken() << " of " << kEvents << " delivered";
  vt.stop(p);
  vt.destroy(p);
  for (int n = 0; n < kEvents; ++n)
    EXPECT_EQ(host.bodies[static_cast<std::size_t>(n)], std::to_string(n));
}

TEST(RedisHostBackpressure, AFullDispatchQueueSlowsTheSubscriberAndLosesNothing) {
  // The runtime's host: a pool of 8 queued events, and a handler held until the test lets go,
  // so the host refuses what the provider delivers until then.
  RedisServer server;
  auto s = redis_settings(server.uri());
  s.max_queued_events = 8;
  auto bus = started(s);
  Gate gate;
  std::mutex m;
  std::vector<int> received;
  bus->subscribe("bp", [&](const Event& e) {
    gate.wait();
    std::lock_guard lock(m);
    received.push_back(e.payload()["n"].get<int>());
  });
  RawClient publisher(server.port());
  constexpr int kEvents = 2000;
  for (int n = 0; n < kEvents; ++n) {
    publisher.command({"PUBLISH", "app_events:bp", json{{"n", n}}.dump()});
  }
  ASSERT_TRUE(eventually([&] { return bus->stats().receive_refusals > 0; }))
      << "the host never refused a delivery";
  gate.open();
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(m);
    return received.size() == static_cast<std::size_t>(kEvents);
  })) << received.size()
      << " of " << kEvents << " delivered";
  std::lock_guard lock(m);
  for (int n = 0; n < kEvents; ++n) EXPECT_EQ(received[static_cast<std::size_t>(n)], n);
  EXPECT_EQ(bus->stats().dropped_queue_full, 0u);
}

}  // namespace
}  // namespace athomic::test
