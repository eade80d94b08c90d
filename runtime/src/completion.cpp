// Completion, and the thread-local side of pool record recycling.
#include "event_record.h"
#include "handler_frame.h"

#include <athomic/bus.h>
#include <athomic/errors.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <new>

namespace athomic {
namespace detail {

thread_local const HandlerFrame* HandlerFrame::top_ = nullptr;

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

// A few records per thread, for its next publishes; freed when the thread exits.
struct RecordCache {
  static constexpr uint32_t kMax = 256;
  PoolEvent* head = nullptr;
  uint32_t size = 0;
  ~RecordCache() { free_records(head); }
};
thread_local RecordCache tls_cache;

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
  if (raw.capacity() > kKeptRawCapacity) {
    std::string().swap(raw);
  } else {
    raw.clear();
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

void cache_or_free_record(PoolEvent* e) noexcept {
  if (tls_cache.size >= RecordCache::kMax) {
    e->next_free = nullptr;
    free_records(e);
    return;
  }
  e->next_free = tls_cache.head;
  tls_cache.head = e;
  ++tls_cache.size;
}

void release_from_completion(PoolEvent* e) noexcept {
  if (e->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) cache_or_free_record(e);
}

void wake_waiters(PoolEvent* e) noexcept {
  if (e->waiters.load(std::memory_order_seq_cst) == 0) return;
  Stripe& s = stripe_for(e);
  { std::lock_guard lock(s.mutex); }
  s.cv.notify_all();
}

}  // namespace detail

Completion& Completion::operator=(Completion&& o) noexcept {
  if (this != &o) {
    if (record_) detail::release_from_completion(record_);
    record_ = o.record_;
    failed_ = o.failed_;
    o.record_ = nullptr;
  }
  return *this;
}

Completion::~Completion() {
  if (record_) detail::release_from_completion(record_);
}

bool Completion::done() const noexcept {
  return !record_ || record_->pending.load(std::memory_order_acquire) == 0;
}

void Completion::refuse_inside_handler() const {
  if (detail::HandlerFrame::inside(record_->bus)) {
    throw EventBusError(
        "Completion::wait() called from inside a handler of the same bus: the handlers it waits "
        "for may need this very thread; wait from outside the bus's handlers, or publish without "
        "waiting");
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

uint32_t Completion::failed_handlers() const noexcept {
  return record_ ? record_->failed.load(std::memory_order_acquire) : failed_;
}

}  // namespace athomic
