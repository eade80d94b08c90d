#include "cpu_placement.h"

#include <pthread.h>

#include <cstring>
#include <stdexcept>

namespace athomic::bench {

namespace {

void pin_calling_thread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set); rc != 0) {
    throw std::runtime_error("pthread_setaffinity_np(CPU " + std::to_string(cpu) +
                             "): " + std::strerror(rc));
  }
}

}  // namespace

const char* placement_id(Placement p) {
  switch (p) {
    case Placement::any_cpu:
      return "any_cpu";
    case Placement::separate_cpus:
      return "separate_cpus";
    case Placement::same_cpu:
      return "same_cpu";
  }
  return "?";
}

const char* placement_title(Placement p) {
  switch (p) {
    case Placement::any_cpu:
      return "the scheduler's choice of CPUs";
    case Placement::separate_cpus:
      return "publisher pinned to one CPU, consumers to another";
    case Placement::same_cpu:
      return "publisher and consumers pinned to the same CPU";
  }
  return "?";
}

Placed::Placed(Placement p) : placement_(p) {
  CPU_ZERO(&original_);
  pthread_getaffinity_np(pthread_self(), sizeof original_, &original_);
  if (p == Placement::any_cpu) return;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &original_)) continue;
    if (first_ < 0) {
      first_ = cpu;
    } else if (second_ < 0) {
      second_ = cpu;
    }
  }
  if (p == Placement::separate_cpus && second_ < 0) {
    unavailable_ = "needs 2 CPUs; this process may use " + std::to_string(CPU_COUNT(&original_));
    return;
  }
  pin_calling_thread(p == Placement::separate_cpus ? second_ : first_);
}

void Placed::publisher() {
  if (placement_ != Placement::any_cpu && unavailable_.empty()) pin_calling_thread(first_);
}

Placed::~Placed() { pthread_setaffinity_np(pthread_self(), sizeof original_, &original_); }

}  // namespace athomic::bench
