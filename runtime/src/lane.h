// A lane: one subscription's serial queue of deliveries in pool dispatch.
//
// Publishers push nodes from any thread (one exchange each); the one worker that owns the lane
// pops them in push order, so a subscription sees each publisher's events in the order they
// were published. The queue is D. Vyukov's intrusive multi-producer single-consumer list: a
// node lives inside the event it delivers, so a push allocates nothing and an idle lane costs
// two pointers and a flag.
//
// Ownership: a push that finds the lane idle marks it scheduled and must hand it to the
// executor; from then on one worker at a time drains it. The worker gives it up with
// try_release(), which re-checks for items pushed meanwhile (the two sides form a Dekker pair on
// `scheduled_` and `tail_`, both sequentially consistent).
#pragma once

#include <atomic>
#include <cstdint>

namespace athomic::detail {

struct PoolEvent;
struct Subscriber;

struct LaneNode {
  std::atomic<LaneNode*> next{nullptr};
  PoolEvent* event = nullptr;
};

class Lane {
 public:
  Lane() noexcept = default;
  Lane(const Lane&) = delete;
  Lane& operator=(const Lane&) = delete;

  // Any thread. True when the lane was idle: the caller now owns scheduling it.
  bool push(LaneNode* n) noexcept {
    n->next.store(nullptr, std::memory_order_relaxed);
    LaneNode* prev = tail_.exchange(n, std::memory_order_seq_cst);
    prev->next.store(n, std::memory_order_release);
    return !scheduled_.load(std::memory_order_seq_cst) &&
           !scheduled_.exchange(true, std::memory_order_seq_cst);
  }

  // The owning worker only. nullptr when empty, or while a push is between its two steps
  // (maybe_nonempty() then tells the two apart).
  LaneNode* pop() noexcept {
    LaneNode* head = head_;
    LaneNode* next = head->next.load(std::memory_order_acquire);
    if (head == &stub_) {
      if (!next) return nullptr;
      head_ = next;
      head = next;
      next = next->next.load(std::memory_order_acquire);
    }
    if (next) {
      head_ = next;
      return head;
    }
    if (head != tail_.load(std::memory_order_acquire)) return nullptr;  // a push is linking
    push_stub();
    next = head->next.load(std::memory_order_acquire);
    if (next) {
      head_ = next;
      return head;
    }
    return nullptr;
  }

  // The owning worker only: true when a node is queued or being pushed.
  bool maybe_nonempty() const noexcept {
    return head_ != &stub_ || tail_.load(std::memory_order_seq_cst) != &stub_;
  }

  // The owning worker gives the lane up, once pop() found nothing and maybe_nonempty() said
  // so. Returns true when items arrived meanwhile and the caller took the lane back (it still
  // owns it and must keep draining). Once the flag is down another worker may own the lane, so
  // only the shared tail is read: the lane was empty, and any push since has moved the tail.
  bool try_release() noexcept {
    scheduled_.store(false, std::memory_order_seq_cst);
    if (tail_.load(std::memory_order_seq_cst) == &stub_) return false;
    return !scheduled_.exchange(true, std::memory_order_seq_cst);
  }

  // Unsubscribe's wait: a worker is between taking the lane and giving it up.
  std::atomic<bool> draining{false};
  Subscriber* owner = nullptr;

 private:
  void push_stub() noexcept {
    stub_.next.store(nullptr, std::memory_order_relaxed);
    LaneNode* prev = tail_.exchange(&stub_, std::memory_order_seq_cst);
    prev->next.store(&stub_, std::memory_order_release);
  }

  // Producers' side, then the owner's, a cache line apart so that they never share one (by
  // padding rather than alignment: a lane lives inside a subscriber, which is then an ordinary
  // allocation).
  std::atomic<LaneNode*> tail_{&stub_};
  std::atomic<bool> scheduled_{false};
  char separation_[64];
  LaneNode* head_ = &stub_;
  LaneNode stub_;
};

}  // namespace athomic::detail
