// The provider under a host whose dispatch queue is full: deliver_message answers
// ATHOMIC_ERR_BACKPRESSURE and does not take the message. The provider must keep it, try again,
// keep the publishing connection going meanwhile, and lose nothing. Once at the ABI, with a
// test host that refuses for as long as the test says (and records what the provider hands to
// the rest of the ABI 1.2 host table); once through the runtime's own host.
#include "redis_support.h"

#include <athomic/sdk/provider.h>

#include <dlfcn.h>

#include <map>
#include <mutex>

namespace athomic::test {
namespace {

// A host whose queue is "full" while `full` is set. Its settings are `config` as given, with
// the defaults the provider declared; nothing is validated (the runtime's host does that).
struct TestHost {
  std::atomic<bool> full{false};
  std::atomic<int> refusals{0};
  json config;
  const athomic_setting* const* declared = nullptr;
  std::mutex m;
  std::vector<std::string> bodies;  // of "bp", in the order taken
  struct Done {
    athomic_status status;
    int64_t receivers;
    std::string error;
  };
  std::multimap<uint64_t, Done> done;  // publish_done by token
  std::vector<std::pair<athomic_connection_state, std::string>> states;
  std::map<std::string, std::string> texts;  // the strings setting() handed out

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
  // This test subscribes no pattern: the provider has no reason to call it.
  static athomic_status deliver_message_to(athomic_host_ctx* ctx, athomic_str name, athomic_str body,
                                           athomic_str, athomic_interest_kind) {
    return deliver_message(ctx, name, body);
  }
  static uint64_t now_ns() { return 0; }
  static void publish_done(athomic_host_ctx* ctx, uint64_t token, athomic_status status,
                           int64_t receivers, athomic_str error) {
    TestHost& h = of(ctx);
    std::lock_guard lock(h.m);
    h.done.emplace(token, Done{status, receivers, std::string(error.data, error.size)});
  }
  static void report_state(athomic_host_ctx* ctx, athomic_connection_state state,
                           athomic_str detail) {
    TestHost& h = of(ctx);
    std::lock_guard lock(h.m);
    h.states.emplace_back(state, std::string(detail.data, detail.size));
  }
  static void report_dropped(athomic_host_ctx*, athomic_str, uint64_t, athomic_str) {
    ADD_FAILURE() << "Redis Pub/Sub reports no losses of its own";
  }
  static athomic_status setting(athomic_host_ctx* ctx, athomic_str path_view,
                                athomic_setting_value* out) {
    TestHost& h = of(ctx);
    const std::string path(path_view.data, path_view.size);
    const athomic_setting* decl = nullptr;
    for (auto d = h.declared; d && *d; ++d) {
      if (path == (*d)->path) decl = *d;
    }
    if (!decl) return ATHOMIC_ERR_INVALID_ARGUMENT;
    const json* node = &h.config;
    for (std::size_t begin = 0; node && begin <= path.size();) {
      const std::size_t dot = std::min(path.find('.', begin), path.size());
      auto it = node->find(path.substr(begin, dot - begin));
      node = it == node->end() ? nullptr : &*it;
      begin = dot + 1;
    }
    const json value = node ? *node : decl->default_json ? json::parse(decl->default_json) : json();
    if (value.is_null()) return ATHOMIC_ERR_INVALID_ARGUMENT;
    out->type = decl->type;
    switch (decl->type) {
      case ATHOMIC_SETTING_BOOL:
        out->boolean = value.get<bool>();
        break;
      case ATHOMIC_SETTING_INT:
        out->integer = value.get<int64_t>();
        break;
      case ATHOMIC_SETTING_STRING: {
        std::lock_guard lock(h.m);
        const std::string& text = h.texts[path] = value.get<std::string>();
        out->text = {text.data(), text.size()};
        break;
      }
      default:
        out->number = value.get<double>();
        break;
    }
    return ATHOMIC_OK;
  }
  std::size_t taken() {
    std::lock_guard lock(m);
    return bodies.size();
  }
  std::vector<Done> done_for(uint64_t token) {
    std::lock_guard lock(m);
    std::vector<Done> out;
    for (auto [it, end] = done.equal_range(token); it != end; ++it) out.push_back(it->second);
    return out;
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
                            "test",
                            &TestHost::publish_done,
                            &TestHost::report_state,
                            &TestHost::report_dropped,
                            &TestHost::setting,
                            &TestHost::deliver_message_to,
                            nullptr};  // deliver_received: the redis provider has no headers

TEST(RedisHostBackpressure, AMessageTheHostRefusesIsKeptAndDeliveredLater) {
  RedisServer server;
  void* lib =
      ::dlopen(ATHOMIC_REDIS_PLUGIN, RTLD_NOW | RTLD_LOCAL);  // never closed, as the host does
  ASSERT_TRUE(lib) << ::dlerror();
  auto entry =
      reinterpret_cast<athomic_provider_entry_fn>(::dlsym(lib, ATHOMIC_PROVIDER_ENTRY_SYMBOL));
  ASSERT_TRUE(entry);
  const athomic_provider_info& info = *entry(&kApi);
  const athomic_provider_vtable& vt = *info.vtable;
  TestHost host;
  host.declared = info.settings;
  host.config = redis_config(server.uri());
  std::string error;
  auto* sink = reinterpret_cast<athomic_error_sink*>(&error);
  const std::string config = host.config.dump();
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
  constexpr uint64_t kToken = 42;
  const athomic_message m{
      sizeof(athomic_message), {"other", 5}, {body.data(), body.size()}, nullptr, kToken,
      nullptr, 0};
  ASSERT_EQ(vt.publish(p, &m, sink), ATHOMIC_OK) << error;
  EXPECT_EQ(watcher.next_message(), body);
  ASSERT_TRUE(eventually([&] { return !host.done_for(kToken).empty(); }));

  host.full = false;
  ASSERT_TRUE(eventually([&] { return host.taken() == static_cast<std::size_t>(kEvents); }))
      << host.taken() << " of " << kEvents << " delivered";
  vt.stop(p);
  vt.destroy(p);
  for (int n = 0; n < kEvents; ++n)
    EXPECT_EQ(host.bodies[static_cast<std::size_t>(n)], std::to_string(n));
  // Completed once, with the watcher as its one receiver.
  const auto done = host.done_for(kToken);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].status, ATHOMIC_OK);
  EXPECT_EQ(done[0].receivers, 1);
  EXPECT_EQ(host.done.size(), 1u);
  // Up from start to stop: holding deliveries back is not an outage.
  ASSERT_EQ(host.states.size(), 2u);
  EXPECT_EQ(host.states[0].first, ATHOMIC_CONNECTION_UP);
  EXPECT_EQ(host.states[1], std::make_pair(ATHOMIC_CONNECTION_DOWN, std::string("stopped")));
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
