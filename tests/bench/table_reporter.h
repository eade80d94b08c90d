// Prints each row's variants together once every benchmark has run (random interleaving
// reports them in no useful order): median and min–max over the repetitions, the median of
// each counter, and athomic's median divided by each baseline's.
#pragma once

#include "bench_support.h"

#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace athomic::bench {

// An error message starting with this is a benchmark the machine cannot run, not a failure.
inline constexpr std::string_view kSkipPrefix = "skipped: ";

struct Registered {
  Row row;
  std::string variant;
  std::string name;
};
// Every benchmark add() registered, in registration order.
std::vector<Registered>& registry();

class TableReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context& context) override;
  void ReportRuns(const std::vector<Run>& runs) override;
  void Finalize() override;
  // Runs that failed a check (skips excluded).
  int failures() const noexcept { return failures_; }

 private:
  struct Result {
    std::vector<double> figures;  // one per repetition
    std::map<std::string, std::vector<double>> counters;
    double median_aggregate = -1;  // when only aggregates are reported
    std::string error;
  };
  void print_row(const std::vector<const Registered*>& variants);

  std::map<std::string, Result> results_;
  int failures_ = 0;
};

}  // namespace athomic::bench
