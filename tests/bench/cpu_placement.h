// Where a cross-thread benchmark's publisher and consumers run.
//
// The benchmark cannot reach athomic's worker threads through the public API, so every
// variant, baseline or not, is placed the same way: the benchmark's thread takes the
// consumers' CPU set, creates the consumers (a bus's workers, a queue's consumer thread), which
// inherit the mask of the thread that creates them, and then moves itself to the publisher's
// set. Separate CPUs therefore pins the publisher to one CPU and every consumer thread to the
// other; the same CPU pins them all to one.
#pragma once

#include <sched.h>

#include <string>

namespace athomic::bench {

enum class Placement { any_cpu, separate_cpus, same_cpu };

const char* placement_id(Placement p);     // "any_cpu", ...
const char* placement_title(Placement p);  // "the scheduler's choice of CPUs", ...

class Placed {
 public:
  // The calling thread takes the consumers' CPU set (unless unavailable() is not empty).
  explicit Placed(Placement p);
  ~Placed();  // the calling thread gets its own mask back
  Placed(const Placed&) = delete;
  Placed& operator=(const Placed&) = delete;

  // Why this machine cannot run the placement; empty when it can.
  const std::string& unavailable() const noexcept { return unavailable_; }
  // Call once the consumers exist: the calling thread moves to the publisher's CPU set.
  void publisher();

 private:
  Placement placement_;
  std::string unavailable_;
  cpu_set_t original_{};
  int first_ = -1;   // the publisher's CPU
  int second_ = -1;  // the consumers' CPU when they are separate
};

}  // namespace athomic::bench
