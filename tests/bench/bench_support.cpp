#include "bench_support.h"

#include "table_reporter.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

namespace {
std::atomic<uint64_t> g_allocations{0};

void* counted_alloc(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}

void* counted_aligned_alloc(std::size_t n, std::align_val_t align) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  const auto a = static_cast<std::size_t>(align);
  // aligned_alloc wants a size that is a non-zero multiple of the alignment.
  const std::size_t size = n == 0 ? a : (n + a - 1) / a * a;
  if (void* p = std::aligned_alloc(a, size)) return p;
  throw std::bad_alloc();
}
}  // namespace

// Every other form (new[], nothrow) goes through these in libstdc++.
void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_aligned_alloc(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace athomic::bench {

uint64_t allocations() noexcept { return g_allocations.load(std::memory_order_relaxed); }

uint64_t process_cpu_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

void Meter::report(benchmark::State& state, double units, std::string_view unit, bool cpu) const {
  if (units <= 0) return;
  const std::string suffix(unit);
  state.counters["allocs_per_" + suffix] =
      static_cast<double>(allocations() - allocations_) / units;
  if (cpu) {
    state.counters["cpu_ns_per_" + suffix] =
        static_cast<double>(process_cpu_ns() - cpu_ns_) / units;
  }
}

bool expect_equal(benchmark::State& state, std::string_view what, uint64_t actual,
                  uint64_t expected) {
  if (actual == expected) return true;
  fail(state, std::string(what) + ": " + std::to_string(actual) + ", expected " +
                  std::to_string(expected));
  return false;
}

void fail(benchmark::State& state, std::string_view why) {
  state.SkipWithError(std::string(why).c_str());
}

void skip(benchmark::State& state, std::string_view why) {
  state.SkipWithError((std::string(kSkipPrefix) + std::string(why)).c_str());
}

benchmark::internal::Benchmark* add(const Row& row, const std::string& variant,
                                    std::function<void(benchmark::State&)> run) {
  const std::string name = row.id + "/" + variant;
  registry().push_back({row, variant, name});
  return benchmark::RegisterBenchmark(
      name.c_str(), [run = std::move(run)](benchmark::State& state) { run(state); });
}

}  // namespace athomic::bench

namespace {

// A thread that exists for the whole run and does nothing, so that every benchmark, baseline
// or not, runs in a multi-threaded process.
class ParkedThread {
 public:
  ParkedThread()
      : thread_([this] {
          std::unique_lock lock(mutex_);
          cv_.wait(lock, [this] { return stop_; });
        }) {}
  ~ParkedThread() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  ParkedThread parked;

  // The fair flags first: flags given on the command line come later and win.
  std::string interleave = "--benchmark_enable_random_interleaving=true";
  std::string repetitions = "--benchmark_repetitions=3";
  std::vector<char*> args{argv[0], interleave.data(), repetitions.data()};
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  int count = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 2;

  athomic::bench::TableReporter table;
  benchmark::RunSpecifiedBenchmarks(&table);
  benchmark::Shutdown();
  return table.failures() == 0 ? 0 : 1;
}
