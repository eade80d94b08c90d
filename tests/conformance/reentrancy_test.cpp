// Calls from inside a handler — on a worker in pool dispatch, on the provider's own delivering
// thread in inline dispatch: publish, subscribe and unsubscribe (of itself too) work; close()
// and waiting for an in-process event of the same bus are refused with EventBusError. Nothing
// hangs, nothing aborts.
#include <optional>
#include <thread>

#include "conformance.h"

namespace athomic::conformance {
namespace {

// "ok", or what @p call threw: "EventBusError: ..." or another exception.
template <class F>
std::string outcome_of(F&& call) {
  try {
    call();
    return "ok";
  } catch (const EventBusError& e) {
    return std::string("EventBusError: ") + e.what();
  } catch (const std::exception& e) {
    return std::string("another exception: ") + e.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

bool refused(const std::string& outcome) { return outcome.rfind("EventBusError: ", 0) == 0; }

TEST_P(Conformance, CallsFromInsideAHandler) {
  // An in-process event in pool dispatch is still queued when publish returns: waiting for it
  // from a handler is what the bus refuses. (Inline ones are done, remote ones are the
  // transport's business.)
  const bool can_wait_for_handlers = !has(ATHOMIC_CAP_REMOTE) && pool();
  auto bus = make_bus();
  const auto outer = name("outer"), inner = name("inner"), extra = name("extra");
  test::Gate inner_gate;
  test::Counter inner_calls, outer_calls;
  bus->subscribe(inner, [&](const Event&) {
    if (can_wait_for_handlers) inner_gate.wait();  // so that the inner event is not done yet
    inner_calls.add();
  });

  struct {
    std::string publish, subscribe, unsubscribe_new, close, wait, unsubscribe_self;
  } seen;
  std::mutex m;
  Subscription self;
  test::Gate finished;
  {
    std::lock_guard lock(m);
    self = bus->subscribe(outer, [&](const Event&) {
      outer_calls.add();
      if (outer_calls.value() > 1) return;
      Subscription me;
      {
        std::lock_guard lock(m);
        me = self;
      }
      std::optional<Completion> c;
      seen.publish = outcome_of([&] { c.emplace(bus->publish(inner, {{"from", "handler"}})); });
      seen.subscribe = outcome_of([&] {
        const Subscription s = bus->subscribe(extra, [](const Event&) {});
        if (!s) throw std::runtime_error("subscribe returned an empty Subscription");
        seen.unsubscribe_new = bus->unsubscribe(s) ? "ok" : "unsubscribe returned false";
      });
      seen.close = outcome_of([&] { bus->close(); });
      if (c && can_wait_for_handlers) seen.wait = outcome_of([&] { c->wait(); });
      seen.unsubscribe_self = outcome_of([&] {
        if (!bus->unsubscribe(me)) throw std::runtime_error("unsubscribe returned false");
      });
      finished.open();
    });
  }
  bus->publish(outer, {});
  const bool returned = finished.wait();
  inner_gate.open();
  ASSERT_TRUE(returned) << "a handler calling publish, subscribe, unsubscribe or close on its "
                           "own bus did not return within 30 s, in "
                        << mode_text(mode()) << " dispatch: a call from inside a handler hangs";
  EXPECT_EQ(seen.publish, "ok") << "publish from inside a handler";
  EXPECT_EQ(seen.subscribe, "ok") << "subscribe from inside a handler";
  EXPECT_EQ(seen.unsubscribe_new, "ok") << "unsubscribe, inside a handler, of what it subscribed";
  EXPECT_TRUE(refused(seen.close)) << "close() from inside a handler must throw EventBusError; "
                                   << (seen.close == "ok" ? "it closed the bus" : seen.close);
  if (can_wait_for_handlers) {
    EXPECT_TRUE(refused(seen.wait))
        << "Completion::wait() on a queued in-process event, from inside a handler, must throw "
           "EventBusError; it gave: "
        << seen.wait;
  }
  EXPECT_EQ(seen.unsubscribe_self, "ok") << "a handler unsubscribing itself";

  ASSERT_TRUE(inner_calls.wait_for_at_least(1))
      << "the event published from inside a handler never arrived";
  // The bus still works; the handler that unsubscribed itself is never called again.
  bus->publish(outer, {});
  bus->publish(inner, {});
  ASSERT_TRUE(inner_calls.wait_for_at_least(2)) << "the bus stopped working";
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(outer_calls.value(), 1) << "a handler that unsubscribed itself was called again";
  EXPECT_EQ(bus->handler_count(outer), 0u);
  EXPECT_EQ(bus->handler_count(extra), 0u);
}

}  // namespace
}  // namespace athomic::conformance
