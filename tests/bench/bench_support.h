// What every benchmark binary shares: its main (a fair process state, fair flags, a table of
// each row beside its baselines), allocation and CPU-time counters, and work checks.
//
// main starts a second thread before any timing and keeps it parked for the whole run: glibc
// and libstdc++ take cheaper paths (plain instead of atomic reference counts, for one) while a
// process has a single thread, and every service that uses a worker pool has more than one.
// It runs benchmarks interleaved in random order, each repeated (3 times unless told
// otherwise), and prints for each row the median and the min–max of the repetitions, with
// athomic's figure divided by each baseline's.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace athomic::bench {

// What a row's table shows: the time per iteration (CPU time of the benchmark's thread, or
// real time for benchmarks registered with UseRealTime), or items_per_second.
enum class Figure { time, rate };

struct Row {
  std::string id;     // "inline/h1": names the benchmarks "<id>/<variant>"
  std::string title;  // what one iteration (or one item) is
  Figure figure = Figure::time;
};

// Registers the benchmark "<row.id>/<variant>". Variants whose name starts with "athomic" are
// divided by every other variant of the same row in the table.
benchmark::internal::Benchmark* add(const Row& row, const std::string& variant,
                                    std::function<void(benchmark::State&)> run);

// Heap allocations so far, by every thread (the global operator new is replaced).
uint64_t allocations() noexcept;
// CPU time used so far by every thread of the process, in nanoseconds.
uint64_t process_cpu_ns() noexcept;

// Taken just before a timed loop; report() just after it sets the counters
// "allocs_per_<unit>" and, with cpu, "cpu_ns_per_<unit>" (every thread's CPU time, so a
// spinning consumer shows up even when the publisher's throughput looks good).
class Meter {
 public:
  Meter() noexcept : allocations_(allocations()), cpu_ns_(process_cpu_ns()) {}
  void report(benchmark::State& state, double units, std::string_view unit, bool cpu = false) const;

 private:
  uint64_t allocations_;
  uint64_t cpu_ns_;
};

// Fails the benchmark (and so the binary's exit status) unless actual == expected.
bool expect_equal(benchmark::State& state, std::string_view what, uint64_t actual,
                  uint64_t expected);
// Fails the benchmark with @p why.
void fail(benchmark::State& state, std::string_view why);
// Skips a benchmark this machine cannot run; not a failure.
void skip(benchmark::State& state, std::string_view why);

}  // namespace athomic::bench
