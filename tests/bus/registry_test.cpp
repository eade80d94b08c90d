// The registry seen from inside: what an unsubscribe waits for once versions of handler arrays
// are reclaimed and their memory reused.
#include "bus_core.h"
#include "test_support.h"

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>
#include <vector>

namespace athomic::test {
namespace {

using detail::BusAccess;

// In inline dispatch an unsubscribe waits until no other thread holds a version of the event's
// handler array that held the handler. A version retired earlier, reclaimed while it waits, can
// come back at the same address as another event's array, held by a thread whose handler has
// nothing to do with the one removed: the wait ends when the thread that ran the old version
// returns, not when that unrelated handler does.
TEST(UnsubscribeWait, EndsWhenTheCallerReturnsThoughAReclaimedVersionsAddressIsBusy) {
  auto bus = started(local_settings(DispatchMode::inline_call, 1));
  auto* core = BusAccess::core(*bus);
  std::atomic<bool> hold{false};
  Counter e_entered, f_entered;
  Gate e_gate, f_gate;
  std::thread e_publisher, f_publisher;
  std::future<bool> removed;
  // A failed assertion returns early: the held publishers are released and joined first.
  struct Release {
    Gate& e_gate;
    Gate& f_gate;
    std::thread& e;
    std::thread& f;
    ~Release() {
      e_gate.open();
      f_gate.open();
      if (e.joinable()) e.join();
      if (f.joinable()) f.join();
    }
  } release{e_gate, f_gate, e_publisher, f_publisher};

  auto x = bus->subscribe("e", [](const Event&) {});
  bus->subscribe("e", [&](const Event&) {
    if (!hold.load()) return;
    e_entered.add();
    e_gate.wait();
  });
  // Versions of "e" retired and not yet reclaimed: no thread holds them.
  for (int i = 0; i < 5; ++i) bus->unsubscribe(bus->subscribe("e", [](const Event&) {}));
  const std::vector<const void*> older = core->retired_versions();
  ASSERT_FALSE(older.empty());

  hold = true;
  e_publisher = std::thread([&] { bus->publish("e", {}); });
  ASSERT_TRUE(e_entered.wait_for_at_least(1));
  // Waits for e_publisher, which holds the version it publishes to.
  removed = std::async(std::launch::async, [&] { return bus->unsubscribe(x); });

  // Churn on "f" until its current array sits where a retired version of "e" was.
  bus->subscribe("f", [&](const Event&) {
    if (!hold.load()) return;
    f_entered.add();
    f_gate.wait();
  });
  bool reused = false;
  for (int i = 0; i < 10000 && !reused; ++i) {
    ASSERT_TRUE(bus->unsubscribe(bus->subscribe("f", [](const Event&) {})));
    reused = std::find(older.begin(), older.end(), core->current_version("f")) != older.end();
  }
  ASSERT_TRUE(reused) << "no version of \"f\" reused the memory of a reclaimed version of \"e\"";
  f_publisher = std::thread([&] { bus->publish("f", {}); });
  ASSERT_TRUE(f_entered.wait_for_at_least(1));

  e_gate.open();
  e_publisher.join();
  const bool returned = removed.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  f_gate.open();
  f_publisher.join();
  EXPECT_TRUE(returned) << "unsubscribe kept waiting for a handler of another event";
  EXPECT_TRUE(removed.get());
}

}  // namespace
}  // namespace athomic::test
