// Per-thread hazard slots: "this thread is using object X right now".
//
// A publish or delivery publishes the topic state it is about to read in one slot with a
// sequentially consistent store, then re-checks that the state is still current. Writers that
// retire a state scan every thread's slots: a state no slot names can be freed; an unsubscribe
// in inline dispatch waits until no other thread names a state that held the subscriber; close
// waits until no thread names one of the bus's states. One store per publish buys all three,
// without a per-handler reference count.
#pragma once

#include "tls.h"

#include <atomic>
#include <cstddef>

namespace athomic::detail {

struct alignas(64) HazardRecord {
  static constexpr int kSlots = 16;  // nesting depth of dispatch on one thread
  std::atomic<const void*> slots[kSlots] = {};
  std::atomic<bool> owned{false};
  HazardRecord* next = nullptr;  // immutable once the record is linked
  int depth = 0;                 // touched by the owning thread only
};

class Hazards {
 public:
  // The calling thread's record (claimed on first use, released at thread exit).
  static HazardRecord& mine() noexcept {
    HazardRecord* r = tls_record;
    return r ? *r : claim();
  }

  // Publishes @p p in the next free slot; false when the nesting depth is exhausted.
  static bool push(HazardRecord& r, const void* p) noexcept {
    if (r.depth == HazardRecord::kSlots) return false;
    r.slots[r.depth++].store(p, std::memory_order_seq_cst);
    return true;
  }
  static void pop(HazardRecord& r) noexcept {
    r.slots[--r.depth].store(nullptr, std::memory_order_release);
  }

  // Calls f(value) for every non-null slot of every thread but the caller.
  template <class F>
  static void for_each_other(F&& f) {
    const HazardRecord* self = tls_record;
    for (HazardRecord* r = head.load(std::memory_order_acquire); r; r = r->next) {
      if (r == self) continue;
      for (const auto& slot : r->slots) {
        if (const void* v = slot.load(std::memory_order_seq_cst)) f(v);
      }
    }
  }

  // Calls f(value) for every non-null slot of every thread, the caller's included.
  template <class F>
  static void for_each_all(F&& f) {
    for (HazardRecord* r = head.load(std::memory_order_acquire); r; r = r->next) {
      for (const auto& slot : r->slots) {
        if (const void* v = slot.load(std::memory_order_seq_cst)) f(v);
      }
    }
  }

  // True when any other thread's slot holds a value for which pred is true.
  template <class Pred>
  static bool any_other(Pred&& pred) {
    bool found = false;
    for_each_other([&](const void* v) { found = found || pred(v); });
    return found;
  }

 private:
  static HazardRecord& claim() noexcept;
  // Constant-initialised and defined in every translation unit (an inline variable), so an
  // access is a plain thread-local load rather than a call through the wrapper function a
  // thread_local defined in one file needs (which UBSan mistakes for a null load).
  static inline thread_local HazardRecord* tls_record ATHOMIC_FAST_TLS = nullptr;
  static std::atomic<HazardRecord*> head;
};

// RAII slot.
class HazardSlot {
 public:
  HazardSlot() noexcept : rec_(Hazards::mine()) {}
  bool set(const void* p) noexcept {
    if (held_) clear();
    held_ = Hazards::push(rec_, p);
    overflow_ = !held_;
    return held_;
  }
  void clear() noexcept {
    if (held_) Hazards::pop(rec_);
    held_ = false;
  }
  bool overflow() const noexcept { return overflow_; }
  ~HazardSlot() { clear(); }
  HazardSlot(const HazardSlot&) = delete;
  HazardSlot& operator=(const HazardSlot&) = delete;

 private:
  HazardRecord& rec_;
  bool held_ = false;
  bool overflow_ = false;
};

}  // namespace athomic::detail
