// Subscription churn on a bus with default settings, beside Boost.Signals2:
//   one subscribe + unsubscribe pair on an event with 0 and with 8 other handlers, against
//   connect + disconnect on a signal with 0 and 8 other slots;
//   subscribing 10,000 handlers to one event (the time for all of them; they are removed
//   outside the timed region), against connecting 10,000 slots.
// After each, one event is delivered to check that exactly the remaining handlers run.
#include "bench_support.h"
#include "sample_event.h"

#include <athomic/athomic.h>

#include <boost/signals2/signal.hpp>

#include <atomic>
#include <string>
#include <vector>

namespace {

using namespace athomic::bench;
using athomic::Event;

constexpr int kMany = 10000;

// Counts calls; handlers of a pool bus run on its workers.
struct Calls {
  std::atomic<uint64_t> n{0};
  auto handler() {
    return [this](const Event& e) {
      benchmark::DoNotOptimize(&e.payload());
      n.fetch_add(1, std::memory_order_relaxed);
    };
  }
};

std::shared_ptr<athomic::EventBus> default_bus() {
  auto bus = athomic::EventBus::create(athomic::EventsSettings{});
  bus->start();
  return bus;
}

// Delivers one event and checks that exactly @p handlers handlers ran.
bool deliver_one(benchmark::State& state, athomic::EventBus& bus, Calls& calls, uint64_t handlers) {
  const uint64_t before = calls.n.load();
  bus.publish(kEventName, sample_payload()).wait();
  return expect_equal(state, "handlers run by one event", calls.n.load() - before, handlers);
}

void athomic_pair(benchmark::State& state, int others) {
  auto bus = default_bus();
  Calls calls;
  for (int i = 0; i < others; ++i) bus->subscribe(kEventName, calls.handler());
  Calls churned;
  uint64_t removed = 0;
  Meter meter;
  for (auto _ : state) {
    const auto sub = bus->subscribe(kEventName, churned.handler());
    removed += bus->unsubscribe(sub);
  }
  meter.report(state, static_cast<double>(state.iterations()), "pair");
  if (!expect_equal(state, "unsubscribe calls that removed", removed, state.iterations())) return;
  if (!expect_equal(state, "handler_count", bus->handler_count(kEventName), others)) return;
  if (!deliver_one(state, *bus, calls, others)) return;
  expect_equal(state, "calls of the removed handlers", churned.n.load(), 0);
}

void signals2_pair(benchmark::State& state, int others) {
  boost::signals2::signal<void(const Event&)> signal;
  Calls calls;
  for (int i = 0; i < others; ++i) signal.connect(calls.handler());
  Calls churned;
  Meter meter;
  for (auto _ : state) {
    auto connection = signal.connect(churned.handler());
    connection.disconnect();
  }
  meter.report(state, static_cast<double>(state.iterations()), "pair");
  if (!expect_equal(state, "num_slots", signal.num_slots(), others)) return;
  const auto payload = sample_payload();
  signal(Event(kEventName, payload, athomic::ExecutionContext::empty()));
  if (!expect_equal(state, "slots run by one emit", calls.n.load(), others)) return;
  expect_equal(state, "calls of the removed slots", churned.n.load(), 0);
}

void athomic_many(benchmark::State& state) {
  auto bus = default_bus();
  Calls calls;
  std::vector<athomic::Subscription> subs;
  subs.reserve(kMany);
  uint64_t allocs = 0;
  for (auto _ : state) {
    const uint64_t before = allocations();
    for (int i = 0; i < kMany; ++i) subs.push_back(bus->subscribe(kEventName, calls.handler()));
    allocs += allocations() - before;
    state.PauseTiming();
    const bool ok = expect_equal(state, "handler_count", bus->handler_count(kEventName), kMany) &&
                    deliver_one(state, *bus, calls, kMany);
    uint64_t removed = 0;
    for (const auto& sub : subs) removed += bus->unsubscribe(sub);
    subs.clear();
    if (!ok || !expect_equal(state, "unsubscribe calls that removed", removed, kMany)) break;
    state.ResumeTiming();
  }
  state.counters["allocs_per_subscribe"] =
      static_cast<double>(allocs) / static_cast<double>(state.iterations() * kMany);
}

void signals2_many(benchmark::State& state) {
  boost::signals2::signal<void(const Event&)> signal;
  Calls calls;
  std::vector<boost::signals2::connection> connections;
  connections.reserve(kMany);
  const auto payload = sample_payload();
  uint64_t allocs = 0;
  for (auto _ : state) {
    const uint64_t before = allocations();
    for (int i = 0; i < kMany; ++i) connections.push_back(signal.connect(calls.handler()));
    allocs += allocations() - before;
    state.PauseTiming();
    const bool ok = expect_equal(state, "num_slots", signal.num_slots(), kMany);
    const uint64_t before_calls = calls.n.load();
    signal(Event(kEventName, payload, athomic::ExecutionContext::empty()));
    for (auto& c : connections) c.disconnect();
    connections.clear();
    if (!ok ||
        !expect_equal(state, "slots run by one emit", calls.n.load() - before_calls, kMany)) {
      break;
    }
    state.ResumeTiming();
  }
  state.counters["allocs_per_subscribe"] =
      static_cast<double>(allocs) / static_cast<double>(state.iterations() * kMany);
}

int register_all() {
  for (int others : {0, 8}) {
    const Row row{"churn/others" + std::to_string(others), "one subscribe + unsubscribe pair, " +
                                                               std::to_string(others) +
                                                               " other handlers on the event"};
    add(row, "athomic", [others](auto& s) { athomic_pair(s, others); });
    add(row, "signals2", [others](auto& s) { signals2_pair(s, others); });
  }
  const Row many{"churn/subscribe10k",
                 "subscribe 10,000 handlers to one event (time for all 10,000)"};
  add(many, "athomic", [](auto& s) { athomic_many(s); });
  add(many, "signals2", [](auto& s) { signals2_many(s); });
  return 0;
}
const int registered = register_all();

}  // namespace
