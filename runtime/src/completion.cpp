#include "event_record.h"

#include <athomic/bus.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>

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

}  // namespace

void finish_one(EventRecord* r) noexcept {
  if (r->pending.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
      r->waiters.load(std::memory_order_seq_cst) != 0) {
    Stripe& s = stripe_for(r);
    { std::lock_guard lock(s.mutex); }
    s.cv.notify_all();
  }
}

}  // namespace detail

Completion& Completion::operator=(Completion&& o) noexcept {
  if (this != &o) {
    if (record_) detail::release(record_);
    record_ = o.record_;
    failed_ = o.failed_;
    o.record_ = nullptr;
  }
  return *this;
}

Completion::~Completion() {
  if (record_) detail::release(record_);
}

bool Completion::done() const noexcept {
  return !record_ || record_->pending.load(std::memory_order_acquire) == 0;
}

void Completion::wait() const {
  if (done()) return;
  record_->waiters.fetch_add(1, std::memory_order_seq_cst);
  detail::Stripe& s = detail::stripe_for(record_);
  std::unique_lock lock(s.mutex);
  s.cv.wait(lock, [&] { return record_->pending.load(std::memory_order_seq_cst) == 0; });
  lock.unlock();
  record_->waiters.fetch_sub(1, std::memory_order_relaxed);
}

bool Completion::wait_for(std::chrono::nanoseconds timeout) const {
  if (done()) return true;
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
