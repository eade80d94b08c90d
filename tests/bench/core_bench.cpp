// Core dispatch costs, each beside a baseline measured in the same run:
//   inline publish to N handlers (context captured and restored)  vs  Boost.Signals2 emit to N slots
//   pool hand-off, one publisher thread to one worker              vs  Boost.Asio post to one thread
// Heap allocations per operation are counted by replacing the global operator new.
#include <athomic/athomic.h>

#include <benchmark/benchmark.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/signals2/signal.hpp>

#include <atomic>
#include <cstdlib>
#include <new>
#include <thread>

namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

athomic::Payload make_payload() {
  return std::make_shared<const nlohmann::json>(nlohmann::json{{"id", "user-123"}, {"n", 1}});
}

athomic::ContextPtr make_context() {
  return athomic::ExecutionContext::Builder().trace_id("trace-1").tenant_id("acme").build();
}

void report_allocations(benchmark::State& state, uint64_t before) {
  state.counters["allocs_per_op"] = benchmark::Counter(
      static_cast<double>(g_allocations.load() - before) / static_cast<double>(state.iterations()));
}

void BM_Signals2_Emit(benchmark::State& state) {
  boost::signals2::signal<void(const athomic::Payload&)> signal;
  for (int i = 0; i < state.range(0); ++i) {
    signal.connect([](const athomic::Payload& p) { benchmark::DoNotOptimize(p.get()); });
  }
  const auto payload = make_payload();
  const uint64_t before = g_allocations.load();
  for (auto _ : state) signal(payload);
  report_allocations(state, before);
}
BENCHMARK(BM_Signals2_Emit)->Arg(1)->Arg(2)->Arg(4)->Arg(8);

void BM_Athomic_PublishInline(benchmark::State& state) {
  athomic::EventsSettings s;
  s.dispatch_mode = athomic::DispatchMode::inline_call;
  auto bus = athomic::EventBus::create(s);
  bus->start();
  for (int i = 0; i < state.range(0); ++i) {
    bus->subscribe("user.created", [](const athomic::Event& e) {
      benchmark::DoNotOptimize(&e.payload());
      benchmark::DoNotOptimize(&e.context());
    });
  }
  const auto payload = make_payload();
  athomic::ContextScope scope(make_context());
  const uint64_t before = g_allocations.load();
  for (auto _ : state) bus->publish("user.created", payload);
  report_allocations(state, before);
  bus->close();
}
BENCHMARK(BM_Athomic_PublishInline)->Arg(1)->Arg(2)->Arg(4)->Arg(8);

constexpr int kBatch = 10000;

void BM_Asio_PostToOneThread(benchmark::State& state) {
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::thread worker([&] { io.run(); });
  std::atomic<int> done{0};
  for (auto _ : state) {
    done.store(0, std::memory_order_relaxed);
    for (int i = 0; i < kBatch; ++i) {
      boost::asio::post(io, [&done] { done.fetch_add(1, std::memory_order_relaxed); });
    }
    while (done.load(std::memory_order_acquire) != kBatch) std::this_thread::yield();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  guard.reset();
  worker.join();
}
BENCHMARK(BM_Asio_PostToOneThread)->UseRealTime();

void BM_Athomic_PoolOneWorker(benchmark::State& state) {
  athomic::EventsSettings s;
  s.dispatch_mode = athomic::DispatchMode::pool;
  s.workers = 1;
  auto bus = athomic::EventBus::create(s);
  bus->start();
  std::atomic<int> done{0};
  bus->subscribe("tick", [&done](const athomic::Event&) {
    done.fetch_add(1, std::memory_order_relaxed);
  });
  const auto payload = make_payload();
  athomic::ContextScope scope(make_context());
  const uint64_t before = g_allocations.load();
  for (auto _ : state) {
    done.store(0, std::memory_order_relaxed);
    for (int i = 0; i < kBatch; ++i) bus->publish("tick", payload);
    while (done.load(std::memory_order_acquire) != kBatch) std::this_thread::yield();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["allocs_per_event"] = benchmark::Counter(
      static_cast<double>(g_allocations.load() - before) /
      static_cast<double>(state.iterations() * kBatch));
  bus->close();
}
BENCHMARK(BM_Athomic_PoolOneWorker)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
