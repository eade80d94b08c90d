// Memory returns: finished events release their payload and context at once, and topics with
// no handler left are reclaimed. Counted through the registry's own figures, not RSS.
#include "bus_core.h"
#include "event_record.h"
#include "test_support.h"
#include "topic_table.h"

#include <future>

namespace athomic::test {
namespace {

using detail::BusAccess;

class Memory : public testing::TestWithParam<DispatchMode> {};

TEST_P(Memory, AHandledEventKeepsNeitherPayloadNorContext) {
  auto bus = started(local_settings(GetParam(), 2));
  Counter handled;
  bus->subscribe("kept", [&](const Event&) { handled.add(); });
  std::vector<std::weak_ptr<const nlohmann::json>> payloads;
  std::vector<std::weak_ptr<const ExecutionContext>> contexts;
  std::vector<Completion> done;
  for (int i = 0; i < 100; ++i) {
    auto ctx = ExecutionContext::Builder().trace_id("t" + std::to_string(i)).build();
    auto payload = std::make_shared<const nlohmann::json>(
        nlohmann::json{{"i", i}, {"blob", std::string(1000, 'z')}});
    payloads.push_back(payload);
    contexts.push_back(ctx);
    ContextScope scope(ctx);
    done.push_back(bus->publish("kept", payload));
  }
  ASSERT_TRUE(handled.wait_for_at_least(100));
  for (auto& c : done) c.wait();
  // Nothing else publishes: what the bus kept would stay until its next event.
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    EXPECT_TRUE(payloads[i].expired()) << "payload " << i << " is still held";
    EXPECT_TRUE(contexts[i].expired()) << "context " << i << " is still held";
  }
}

// Without a Completion to wait on, a worker releases a finished event's payload at once and its
// context with the end of its batch (when its lane runs dry, or after 64 events): soon, if not
// one by one.
TEST_P(Memory, AnEventNobodyWaitsForKeepsNeitherPayloadNorContextOnceHandled) {
  auto bus = started(local_settings(GetParam(), 2));
  Counter handled;
  bus->subscribe("kept", [&](const Event&) { handled.add(); });
  std::vector<std::weak_ptr<const nlohmann::json>> payloads;
  std::vector<std::weak_ptr<const ExecutionContext>> contexts;
  auto shared_ctx = ExecutionContext::Builder().trace_id("shared").build();
  for (int i = 0; i < 300; ++i) {
    // Half share one context and one payload (the batch's case), half have their own.
    auto ctx = i % 2 ? shared_ctx : ExecutionContext::Builder().trace_id("t" + std::to_string(i)).build();
    auto payload = std::make_shared<const nlohmann::json>(nlohmann::json{{"i", i}});
    payloads.push_back(payload);
    contexts.push_back(ctx);
    ContextScope scope(ctx);
    bus->publish("kept", payload);  // the Completion goes at once
  }
  const std::weak_ptr<const ExecutionContext> shared = shared_ctx;
  shared_ctx.reset();
  ASSERT_TRUE(handled.wait_for_at_least(300));
  EXPECT_TRUE(eventually([&] {
    for (std::size_t i = 0; i < payloads.size(); ++i) {
      if (!payloads[i].expired() || !contexts[i].expired()) return false;
    }
    return shared.expired();
  })) << "a handled event's payload or context is still held";
  EXPECT_EQ(bus->stats().queued_events, 0u);
}

// A payload's deleter may give back what its publisher waits for (a buffer of a pool): it runs
// when the event's handlers are done, not when the worker is done with the events after it,
// whose handlers may wait for that publisher.
TEST(MemoryPool, AFinishedEventsPayloadIsReleasedWhileTheNextEventsHandlerRuns) {
  auto bus = started(local_settings(DispatchMode::pool, 2));
  std::promise<void> first_released;
  std::shared_future<void> released = first_released.get_future().share();
  std::promise<void> second_published;
  std::shared_future<void> published = second_published.get_future().share();
  std::atomic<bool> saw_release{false};
  Counter handled;
  bus->subscribe("job", [&](const Event& e) {
    if (e.payload().at("n") == 1) {
      published.wait();  // both events in the worker's lane: one batch
    } else {
      saw_release = released.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
    }
    handled.add();
  });
  bus->publish("job", std::shared_ptr<const nlohmann::json>(
                          new nlohmann::json{{"n", 1}}, [&](const nlohmann::json* j) {
                            delete j;
                            first_released.set_value();
                          }));
  bus->publish("job", {{"n", 2}});
  second_published.set_value();
  ASSERT_TRUE(handled.wait_for_at_least(2));
  EXPECT_TRUE(saw_release) << "the first event's payload was still held while the second ran";
}

TEST_P(Memory, TopicsWithNoHandlerLeftAreReclaimed) {
  auto bus = started(local_settings(GetParam(), 2));
  auto* core = BusAccess::core(*bus);
  const uint64_t states_before = detail::TopicState::live();
  bus->subscribe("stays", [](const Event&) {});
  for (int i = 0; i < 100000; ++i) {
    const std::string name = "request." + std::to_string(i) + ".done";
    auto sub = bus->subscribe(name, [](const Event&) {});
    bus->publish(name, {});
    ASSERT_TRUE(bus->unsubscribe(sub));
  }
  const auto in = core->internals();
  EXPECT_EQ(in.topics, 1u);
  EXPECT_EQ(in.subscribers, 1u);
  // Retired states and subscribers are freed in small batches, never all kept.
  EXPECT_LT(in.retired_states + in.retired_subscribers, 64u);
  EXPECT_LT(detail::TopicState::live() - states_before, 64u);
}

TEST_P(Memory, FinishedRecordsAreReusedNotAccumulated) {
  auto s = local_settings(GetParam(), 2);
  s.max_queued_events = 4096;  // the bus then keeps at most 1024 finished records
  auto bus = started(s);
  Counter handled;
  bus->subscribe("r", [&](const Event&) { handled.add(); });
  for (int i = 0; i < 100000; ++i) bus->publish("r", {});
  ASSERT_TRUE(handled.wait_for_at_least(100000));
  ASSERT_TRUE(eventually([&] { return bus->stats().queued_events == 0; }));
  // Bounded by the bus's cache and the threads' (256 each), not by the number of events.
  EXPECT_LE(BusAccess::core(*bus)->internals().cached_records, 1024u);
  EXPECT_LE(detail::live_pool_events(), 1024u + 256u * 8);
}

// Short-lived objects subscribing to an event that never comes: their subscriptions would
// wait forever for the event that removes them; later tracked subscribes remove them instead.
TEST_P(Memory, TrackedSubscriptionsOfObjectsGoneDoNotPileUp) {
  struct Listener {
    void on(const Event&) {}
  };
  auto bus = started(local_settings(GetParam(), 2));
  auto* core = BusAccess::core(*bus);
  auto stays = std::make_shared<Listener>();
  bus->subscribe("rare", stays, &Listener::on);
  for (int i = 0; i < 10000; ++i) {
    auto listener = std::make_shared<Listener>();
    bus->subscribe("rare", listener, &Listener::on);
  }
  const auto in = core->internals();
  EXPECT_LT(in.subscribers, 200u);
  EXPECT_LT(in.tracked, 200u);
  EXPECT_GE(bus->handler_count("rare"), 1u);
  bus->publish("rare", {}).wait();  // the rest go at their event
  EXPECT_EQ(bus->handler_count("rare"), 1u);
}

INSTANTIATE_TEST_SUITE_P(Modes, Memory,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

}  // namespace
}  // namespace athomic::test
