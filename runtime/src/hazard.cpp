#include "hazard.h"

namespace athomic::detail {

std::atomic<HazardRecord*> Hazards::head{nullptr};

namespace {
// Gives the record back when its thread exits; records themselves are never freed, so a
// scanner may always dereference them.
struct Releaser {
  HazardRecord* record = nullptr;
  ~Releaser() {
    if (record) record->owned.store(false, std::memory_order_release);
  }
};
thread_local Releaser tls_releaser;
}  // namespace

HazardRecord& Hazards::claim() noexcept {
  for (HazardRecord* r = head.load(std::memory_order_acquire); r; r = r->next) {
    bool expected = false;
    if (!r->owned.load(std::memory_order_relaxed) &&
        r->owned.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
      r->depth = 0;
      tls_record = r;
      tls_releaser.record = r;
      return *r;
    }
  }
  auto* r = new HazardRecord();
  r->owned.store(true, std::memory_order_relaxed);
  HazardRecord* old = head.load(std::memory_order_relaxed);
  do {
    r->next = old;
  } while (!head.compare_exchange_weak(old, r, std::memory_order_acq_rel));
  tls_record = r;
  tls_releaser.record = r;
  return *r;
}

}  // namespace athomic::detail
