// Inline dispatch, each beside Boost.Signals2 emitting to as many slots, every handler and slot
// running the same body:
//   publish by name to 1, 2, 4 and 8 handlers, the context captured and restored;
//   the same with a context holding a field publish does not propagate (source_ip), so that
//   it hands handlers a restricted copy;
//   publish(name, nlohmann::json{...}), which builds the payload on each publish, as the
//   README's example does (Signals2 emits a payload built the same way).
// Signals2 carries no context. Heap allocations per publish are counted.
#include "bench_support.h"
#include "sample_event.h"

#include <athomic/athomic.h>

#include <boost/signals2/signal.hpp>

#include <string>

namespace {

using namespace athomic::bench;
using athomic::ContextField;
using athomic::Event;

struct Counting {
  uint64_t calls = 0;
  void operator()(const Event& e) noexcept {
    benchmark::DoNotOptimize(&e.payload());
    ++calls;
  }
};

std::shared_ptr<athomic::EventBus> inline_bus(bool metrics = true) {
  athomic::EventsSettings settings;
  settings.dispatch_mode = athomic::DispatchMode::inline_call;
  settings.metrics_enabled = metrics;
  auto bus = athomic::EventBus::create(settings);
  bus->start();
  return bus;
}

// Publishes one event under @p context and checks what a handler sees: its trace id, and no
// field the bus does not propagate.
bool check_context(benchmark::State& state, athomic::EventBus& bus,
                   const athomic::ExecutionContext& context) {
  bool ok = false;
  auto sub = bus.subscribe("bench.check", [&](const Event& e) {
    ok = e.context().trace_id().has_value() && e.context().trace_id() == context.trace_id() &&
         !e.context().has(ContextField::source_ip);
  });
  bus.publish("bench.check", sample_payload());
  bus.unsubscribe(sub);
  if (!ok) fail(state, "a handler did not see the publisher's context, restricted");
  return ok;
}

void athomic_inline(benchmark::State& state, int handlers, const athomic::ContextPtr& context,
                    bool metrics = true) {
  auto bus = inline_bus(metrics);
  Counting counting;
  for (int i = 0; i < handlers; ++i) {
    bus->subscribe(kEventName, [&counting](const Event& e) { counting(e); });
  }
  athomic::ContextScope scope(context);
  if (!check_context(state, *bus, *context)) return;
  const auto payload = sample_payload();
  Meter meter;
  for (auto _ : state) bus->publish(kEventName, payload);
  meter.report(state, static_cast<double>(state.iterations()), "op");
  expect_equal(state, "handler calls", counting.calls, state.iterations() * handlers);
  if (metrics) {
    const auto snapshot = bus->metrics();
    // check_context's event is counted too.
    expect_equal(state, "counted deliveries", snapshot.total.delivered,
                 state.iterations() * handlers + 1);
  }
}

// An exact-name publish to one handler while @p patterns wildcard subscriptions of other
// services are registered (none matches): what pattern support costs a publish.
void athomic_with_patterns(benchmark::State& state, int patterns) {
  auto bus = inline_bus();
  Counting counting;
  bus->subscribe(kEventName, [&counting](const Event& e) { counting(e); });
  for (int i = 0; i < patterns; ++i) {
    bus->subscribe("svc" + std::to_string(i) + (i % 2 ? ".*.created" : ".>"), [](const Event&) {});
  }
  athomic::ContextScope scope(sample_context());
  const auto payload = sample_payload();
  Meter meter;
  for (auto _ : state) bus->publish(kEventName, payload);
  meter.report(state, static_cast<double>(state.iterations()), "op");
  expect_equal(state, "handler calls", counting.calls, state.iterations());
}

void signals2_emit(benchmark::State& state, int slots) {
  boost::signals2::signal<void(const Event&)> signal;
  Counting counting;
  for (int i = 0; i < slots; ++i) {
    signal.connect([&counting](const Event& e) { counting(e); });
  }
  const auto payload = sample_payload();
  const auto context = sample_context();
  const Event event(kEventName, payload, *context);
  Meter meter;
  for (auto _ : state) signal(event);
  meter.report(state, static_cast<double>(state.iterations()), "op");
  expect_equal(state, "slot calls", counting.calls, state.iterations() * slots);
}

void athomic_inline_json(benchmark::State& state) {
  auto bus = inline_bus();
  Counting counting;
  bus->subscribe(kEventName, [&counting](const Event& e) { counting(e); });
  athomic::ContextScope scope(sample_context());
  Meter meter;
  for (auto _ : state) bus->publish(kEventName, sample_json());
  meter.report(state, static_cast<double>(state.iterations()), "op");
  expect_equal(state, "handler calls", counting.calls, state.iterations());
}

void signals2_emit_json(benchmark::State& state) {
  boost::signals2::signal<void(const Event&)> signal;
  Counting counting;
  signal.connect([&counting](const Event& e) { counting(e); });
  const auto context = sample_context();
  Meter meter;
  for (auto _ : state) {
    const athomic::Payload payload = std::make_shared<const nlohmann::json>(sample_json());
    signal(Event(kEventName, payload, *context));
  }
  meter.report(state, static_cast<double>(state.iterations()), "op");
  expect_equal(state, "slot calls", counting.calls, state.iterations());
}

int register_all() {
  for (int n : {1, 2, 4, 8}) {
    const Row row{"inline/h" + std::to_string(n), "publish by name to " + std::to_string(n) +
                                                      " inline handler" + (n > 1 ? "s" : "") +
                                                      ", context captured and restored"};
    add(row, "athomic", [n](auto& s) { athomic_inline(s, n, sample_context()); });
    add(row, "signals2", [n](auto& s) { signals2_emit(s, n); });
  }
  const Row restricted{"inline_restricted/h1",
                       "the same to 1 handler, the context also holding source_ip (not "
                       "propagated: handlers get a restricted copy)"};
  add(restricted, "athomic", [](auto& s) {
    athomic_inline(
        s, 1,
        athomic::ExecutionContext::Builder(*sample_context()).source_ip("203.0.113.7").build());
  });
  add(restricted, "signals2", [](auto& s) { signals2_emit(s, 1); });
  const Row metrics{"inline_metrics/h1",
                    "publish by name to 1 inline handler with events.metrics.enabled (the "
                    "default: counts per name, a name's first event on the thread and one in 64 timed) and without"};
  add(metrics, "metrics_on", [](auto& s) { athomic_inline(s, 1, sample_context(), true); });
  add(metrics, "metrics_off", [](auto& s) { athomic_inline(s, 1, sample_context(), false); });
  const Row json{"inline_json/h1",
                 "publish(name, nlohmann::json{...}) to 1 inline handler, the payload built "
                 "on each publish"};
  add(json, "athomic", [](auto& s) { athomic_inline_json(s); });
  add(json, "signals2", [](auto& s) { signals2_emit_json(s); });
  const Row patterns{"inline_patterns/h1",
                     "publish by name to 1 inline handler while N wildcard subscriptions that "
                     "do not match are registered"};
  for (int n : {1, 100, 1000}) {
    add(patterns, "athomic_patterns" + std::to_string(n),
        [n](auto& s) { athomic_with_patterns(s, n); });
  }
  add(patterns, "no_patterns", [](auto& s) { athomic_with_patterns(s, 0); });
  return 0;
}
const int registered = register_all();

}  // namespace
