// Completion, and the thread-local side of pool record recycling.
#include "event_record.h"
#include "handler_frame.h"
#include "tls.h"

#include <athomic/bus.h>
#include <athomic/errors.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <new>

namespace athomic {
namespace detail {


namespace {

// Waiting is rare, so waiters share a few process-wide stripes instead of each event carrying
// a mutex; static storage also outlives any bus, so a Completion may outlive its bus.
struct Stripe {
  std::mutex mutex;
  std::condition_variable cv;
};

Stripe& stripe_for(const void* p) {
  static Stripe stripes[16];
  return stripes[(reinterpret_cast<std::uintptr_t>(p) >> 6) & 15];
}

std::atomic<uint64_t> g_live_events{0};

// Records kept by a thread for its next publishes: plain thread-locals (no guard on access),
// freed by a cleaner registered when the first record is kept.
constexpr uint32_t kMaxCached = 256;
struct RecordCache {
  PoolEvent* head;
  uint32_t size;
};
thread_local RecordCache tls_cache ATHOMIC_FAST_TLS = {nullptr, 0};
struct CacheCleaner {
  bool armed = false;
  ~CacheCleaner() { free_records(tls_cache.head); }
};
thread_local CacheCleaner tls_cleaner;
void arm_cleaner() noexcept { tls_cleaner.armed = true; }

}  // namespace

bool PoolEvent::reserve_nodes(uint32_t count) noexcept {
  if (count <= kInlineNodes) return true;
  const uint32_t extra = count - kInlineNodes;
  if (extra <= more_capacity) return true;
  LaneNode* fresh = new (std::nothrow) LaneNode[extra];
  if (!fresh) return false;
  more_nodes.reset(fresh);
  more_capacity = extra;
  return true;
}

void PoolEvent::clear_content() noexcept {
  payload.reset();
  context.reset();
  // Read before written: a published event's record leaves these lines alone.
  if (raw.capacity() > kKeptRawCapacity) {
    std::string().swap(raw);
  } else if (!raw.empty()) {
    raw.clear();
  }
  if (!headers.empty()) {
    headers = TraceHeaders{};
    if (header_text.capacity() > kKeptRawCapacity) {
      std::string().swap(header_text);
    } else {
      header_text.clear();
    }
  }
  if (more_capacity > kKeptNodes) {
    more_nodes.reset();
    more_capacity = 0;
  }
}

PoolEvent* new_record() {
  auto* e = new PoolEvent();
  g_live_events.fetch_add(1, std::memory_order_relaxed);
  return e;
}

void free_records(PoolEvent* chain) noexcept {
  while (chain) {
    PoolEvent* next = chain->next_free;
    delete chain;
    g_live_events.fetch_sub(1, std::memory_order_relaxed);
    chain = next;
  }
}

uint64_t live_pool_events() noexcept { return g_live_events.load(std::memory_order_relaxed); }

PoolEvent* take_cached_record() noexcept {
  PoolEvent* e = tls_cache.head;
  if (e) {
    tls_cache.head = e->next_free;
    --tls_cache.size;
  }
  return e;
}

void adopt_records(PoolEvent* chain, uint32_t count) noexcept {
  if (!chain) return;
  if (tls_cache.head) {
    // Rare (the cache is adopted into when empty): append without losing what is there.
    PoolEvent* last = chain;
    while (last->next_free) last = last->next_free;
    last->next_free = tls_cache.head;
  }
  if (!tls_cache.head) arm_cleaner();
  tls_cache.head = chain;
  tls_cache.size += count;
}

void cache_or_free_record(PoolEvent* e) noexcept {
  if (tls_cache.size >= kMaxCached) {
    e->next_free = nullptr;
    free_records(e);
    return;
  }
  if (!tls_cache.head) arm_cleaner();
  e->next_free = tls_cache.head;
  tls_cache.head = e;
  ++tls_cache.size;
}

void release_outcome(Outcome* o) noexcept {
  if (o->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (o->kind == Outcome::Kind::pool_event) {
    cache_or_free_record(static_cast<PoolEvent*>(o));
  } else {
    delete static_cast<Acknowledgement*>(o);
  }
}

namespace {
// The continuation slot's value once the outcome is done.
void* const kRan = reinterpret_cast<void*>(uintptr_t{1});

void run_continuation(void* fn) noexcept {
  auto* f = static_cast<std::function<void()>*>(fn);
  try {
    (*f)();
  } catch (...) {
    // A continuation reports its own errors; nothing here may throw into a worker.
  }
  delete f;
}
}  // namespace

void wake_waiters(Outcome* o) noexcept {
  if (o->waiters.load(std::memory_order_seq_cst) == 0) return;
  if (void* fn = o->continuation.exchange(kRan, std::memory_order_acq_rel); fn && fn != kRan) {
    run_continuation(fn);
  }
  Stripe& s = stripe_for(o);
  { std::lock_guard lock(s.mutex); }
  s.cv.notify_all();
}

}  // namespace detail

Completion& Completion::operator=(Completion&& o) noexcept {
  if (this != &o) {
    if (record_) detail::release_outcome(record_);
    record_ = o.record_;
    failed_ = o.failed_;
    receivers_ = o.receivers_;
    o.record_ = nullptr;
  }
  return *this;
}

void Completion::release() noexcept { detail::release_outcome(record_); }

bool Completion::done() const noexcept {
  return !record_ || record_->pending.load(std::memory_order_acquire) == 0;
}

void Completion::refuse_inside_handler() const {
  if (record_->needs_handler_threads && detail::HandlerFrame::inside(record_->bus)) {
    throw EventBusError(
        "Completion::wait() called from inside a handler of the same bus: what it waits for (the "
        "bus's handlers, or in inline dispatch the provider's answer) may need this very thread; "
        "wait from outside the bus's handlers, or publish without waiting");
  }
}

void Completion::wait() const {
  if (done()) return;
  refuse_inside_handler();
  record_->waiters.fetch_add(1, std::memory_order_seq_cst);
  detail::Stripe& s = detail::stripe_for(record_);
  std::unique_lock lock(s.mutex);
  s.cv.wait(lock, [&] { return record_->pending.load(std::memory_order_seq_cst) == 0; });
  lock.unlock();
  record_->waiters.fetch_sub(1, std::memory_order_relaxed);
}

bool Completion::wait_for(std::chrono::nanoseconds timeout) const {
  if (done()) return true;
  refuse_inside_handler();
  record_->waiters.fetch_add(1, std::memory_order_seq_cst);
  detail::Stripe& s = detail::stripe_for(record_);
  std::unique_lock lock(s.mutex);
  const bool ok = s.cv.wait_for(
      lock, timeout, [&] { return record_->pending.load(std::memory_order_seq_cst) == 0; });
  lock.unlock();
  record_->waiters.fetch_sub(1, std::memory_order_relaxed);
  return ok;
}

void Completion::then(std::function<void()> fn) {
  if (!fn) throw EventBusError("Completion::then: the function is empty");
  if (!record_ || done()) {
    fn();
    return;
  }
  auto* heap = new std::function<void()>(std::move(fn));
  void* expected = nullptr;
  // Announced before the slot is filled: the completing thread then looks at the slot.
  record_->waiters.fetch_add(1, std::memory_order_seq_cst);
  if (!record_->continuation.compare_exchange_strong(expected, heap, std::memory_order_acq_rel)) {
    if (expected == detail::kRan) {  // done, and the completing thread has looked already
      detail::run_continuation(heap);
      return;
    }
    delete heap;
    throw EventBusError("Completion::then called twice on one publish");
  }
  // Done meanwhile, and the completing thread may have looked before the slot was filled:
  // whoever takes the function out of the slot runs it, once.
  if (done()) {
    if (void* mine = record_->continuation.exchange(detail::kRan, std::memory_order_acq_rel);
        mine && mine != detail::kRan) {
      detail::run_continuation(mine);
    }
  }
}

uint32_t Completion::failed_handlers() const noexcept {
  if (!record_) return failed_;
  return record_->kind == detail::Outcome::Kind::pool_event
             ? record_->failed.load(std::memory_order_acquire)
             : 0;
}

int64_t Completion::receivers() const noexcept {
  if (!record_) return receivers_;
  return done() ? record_->receivers : -1;
}

bool Completion::delivered() const noexcept {
  return done() && (!record_ || record_->kind == detail::Outcome::Kind::pool_event ||
                    record_->failed.load(std::memory_order_acquire) == 0);
}

std::string Completion::error() const {
  if (!record_ || !done() || record_->kind != detail::Outcome::Kind::acknowledgement) return {};
  return static_cast<const detail::Acknowledgement*>(record_)->error;
}

}  // namespace athomic
