#include "table_reporter.h"

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <sched.h>

namespace athomic::bench {

std::vector<Registered>& registry() {
  static std::vector<Registered> all;
  return all;
}

namespace {

double to_ns(double value, benchmark::TimeUnit unit) {
  switch (unit) {
    case benchmark::kNanosecond:
      return value;
    case benchmark::kMicrosecond:
      return value * 1e3;
    case benchmark::kMillisecond:
      return value * 1e6;
    case benchmark::kSecond:
      return value * 1e9;
  }
  return value;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string format_figure(double v, Figure figure) {
  char buf[32];
  if (figure == Figure::rate) {
    std::snprintf(buf, sizeof buf, "%.2f M/s", v / 1e6);
  } else if (v < 1e3) {
    std::snprintf(buf, sizeof buf, "%.1f ns", v);
  } else if (v < 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f us", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f ms", v / 1e6);
  }
  return buf;
}

std::string format_counter(const std::string& name, double v) {
  char buf[64];
  if (name == "bytes_per_second") {
    std::snprintf(buf, sizeof buf, "%.0f MB/s", v / 1e6);
  } else if (name.rfind("cpu_ns_per_", 0) == 0) {
    std::snprintf(buf, sizeof buf, "%s %.0f", name.c_str(), v);
  } else {
    std::snprintf(buf, sizeof buf, "%s %.2f", name.c_str(), v);
  }
  return buf;
}

bool is_athomic(const std::string& variant) { return variant.rfind("athomic", 0) == 0; }

}  // namespace

bool TableReporter::ReportContext(const Context& context) {
  PrintBasicContext(&GetOutputStream(), context);
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    GetOutputStream() << "CPUs this process may use: " << CPU_COUNT(&set) << "\n";
  }
  GetOutputStream() << "Running; the table follows when every benchmark has run.\n";
  return true;
}

void TableReporter::ReportRuns(const std::vector<Run>& runs) {
  for (const Run& run : runs) {
    Result& r = results_[run.run_name.function_name];
    if (run.error_occurred) {
      const bool skipped = run.error_message.rfind(kSkipPrefix, 0) == 0;
      if (!skipped) {
        ++failures_;
        GetErrorStream() << "FAILED " << run.run_name.function_name << ": " << run.error_message
                         << "\n";
      }
      r.error = run.error_message;
      continue;
    }
    const Registered* reg = nullptr;
    for (const auto& e : registry()) {
      if (e.name == run.run_name.function_name) reg = &e;
    }
    if (!reg) continue;
    double figure = 0;
    if (reg->row.figure == Figure::rate) {
      auto it = run.counters.find("items_per_second");
      if (it == run.counters.end()) continue;
      figure = it->second.value;
    } else {
      figure = to_ns(
          run.run_name.time_type.empty() ? run.GetAdjustedCPUTime() : run.GetAdjustedRealTime(),
          run.time_unit);
    }
    if (run.run_type == Run::RT_Aggregate) {
      if (run.aggregate_name == "median") r.median_aggregate = figure;
      continue;
    }
    r.figures.push_back(figure);
    for (const auto& [name, counter] : run.counters) {
      if (name != "items_per_second") r.counters[name].push_back(counter.value);
    }
  }
}

void TableReporter::Finalize() {
  std::vector<std::string> order;
  for (const auto& e : registry()) {
    if (std::find(order.begin(), order.end(), e.row.id) == order.end()) order.push_back(e.row.id);
  }
  for (const auto& id : order) {
    std::vector<const Registered*> variants;
    for (const auto& e : registry()) {
      if (e.row.id == id && results_.count(e.name)) variants.push_back(&e);
    }
    if (!variants.empty()) print_row(variants);
  }
  GetOutputStream().flush();
}

void TableReporter::print_row(const std::vector<const Registered*>& variants) {
  std::ostream& out = GetOutputStream();
  const Row& row = variants.front()->row;
  const bool rate = row.figure == Figure::rate;
  out << "\n"
      << row.id << ": " << row.title << "\n"
      << "  ("
      << (rate ? "events per second, higher is better; athomic's rate / baseline's"
               : "time per iteration, lower is better; athomic's time / baseline's")
      << ")\n";

  auto median_of = [&](const Registered* v) -> double {
    const Result& r = results_.at(v->name);
    if (!r.figures.empty()) return median(r.figures);
    return r.median_aggregate;
  };

  for (const Registered* v : variants) {
    const Result& r = results_.at(v->name);
    char line[160];
    const double m = median_of(v);
    if (m < 0) {
      std::snprintf(line, sizeof line, "  %-26s %s%s", v->variant.c_str(),
                    r.error.empty() || r.error.rfind(kSkipPrefix, 0) == 0 ? "" : "FAILED: ",
                    r.error.empty() ? "no result" : r.error.c_str());
      out << line << "\n";
      continue;
    }
    std::string spread = "median only";
    if (r.figures.size() == 1) spread = "1 run";
    if (r.figures.size() > 1) {
      const auto [lo, hi] = std::minmax_element(r.figures.begin(), r.figures.end());
      spread = std::to_string(r.figures.size()) + " runs: " + format_figure(*lo, row.figure) +
               " - " + format_figure(*hi, row.figure);
    }
    std::snprintf(line, sizeof line, "  %-26s %11s  (%s)", v->variant.c_str(),
                  format_figure(m, row.figure).c_str(), spread.c_str());
    out << line;
    for (const auto& [name, values] : r.counters) {
      out << "  " << format_counter(name, median(values));
    }
    if (!r.error.empty()) out << "  [" << r.error << "]";
    if (is_athomic(v->variant)) {
      std::string ratios;
      for (const Registered* b : variants) {
        const double base = median_of(b);
        if (is_athomic(b->variant) || base <= 0) continue;
        char buf[64];
        std::snprintf(buf, sizeof buf, "%s%.2fx %s", ratios.empty() ? "" : ", ", m / base,
                      b->variant.c_str());
        ratios += buf;
      }
      if (!ratios.empty()) out << "  => " << ratios;
    }
    out << "\n";
  }
}

}  // namespace athomic::bench
