// Event names → their handlers, searched by publishers without locks.
//
// A TopicState is one version of a topic: its name and an array of subscriber pointers. The
// array grows in place — a subscribe writes the next slot, then publishes the new count — and
// is otherwise immutable: an unsubscribe, or a subscribe that needs more room, builds a new
// state and swaps it in. A publisher publishes the state it found in a hazard slot and reads
// it without locks; a replaced or removed state is freed once no thread's slot names it.
//
// The TopicTable indexes the current states by name: open addressing with linear probing, each
// entry a state pointer with 16 bits of its hash in the spare top bits, so a probe dereferences
// only states whose tag matches — after protecting them. Removing a topic leaves a tombstone;
// when tombstones pile up the array is rebuilt in place under a sequence number (readers that
// see it change retry), and when live topics outgrow it a larger array replaces it. Replaced
// arrays are kept until the table is destroyed: at most the size of the largest array in all.
// Writers hold the registry mutex.
#pragma once

#include "hazard.h"
#include "name_hash.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

namespace athomic::detail {

struct Subscriber;

struct TopicState {
  // One allocation: this header, then `capacity` slots, then the name's bytes.
  static TopicState* create(std::string_view name, std::size_t hash, uint32_t capacity);
  static void destroy(const TopicState* s) noexcept;
  // Live TopicState objects in the process (test hook).
  static uint64_t live() noexcept;

  std::string_view name() const noexcept { return {name_data, name_size}; }
  Subscriber* at(uint32_t i) const noexcept { return items[i].load(std::memory_order_acquire); }

  const std::size_t hash;
  const uint32_t capacity;
  const uint32_t name_size;
  const uint32_t name_room;  // bytes allocated for the name (StateSpares reuses by it)
  const char* const name_data;
  std::atomic<Subscriber*>* const items;
  // Slots [0, count) are published; a reader loads count, then the slots below it.
  std::atomic<uint32_t> count{0};
  // The name's slot in the bus's metrics, carried from version to version.
  uint32_t metrics_slot = 0;

 private:
  friend class StateSpares;
  TopicState(std::size_t h, uint32_t cap, uint32_t name_len, uint32_t room, const char* name_ptr,
             std::atomic<Subscriber*>* slots) noexcept
      : hash(h),
        capacity(cap),
        name_size(name_len),
        name_room(room),
        name_data(name_ptr),
        items(slots) {}
  // Builds a state in @p raw, an allocation sized for @p capacity slots and @p room name bytes.
  static TopicState* build(void* raw, std::string_view name, std::size_t hash, uint32_t capacity,
                           uint32_t room) noexcept;
};

// States freed by reclaim, kept for the next create of the same capacity (writers only, under
// the registry mutex). Subscription churn then allocates no state, and reclaim does not free
// them in batches larger than the allocator's per-thread cache, which made churn pay for
// glibc's slow paths.
class StateSpares {
 public:
  StateSpares();
  ~StateSpares();
  StateSpares(const StateSpares&) = delete;
  StateSpares& operator=(const StateSpares&) = delete;

  TopicState* create(std::string_view name, std::size_t hash, uint32_t capacity);
  // @p s is no longer reachable by any thread.
  void recycle(const TopicState* s) noexcept;
  std::size_t size() const noexcept { return spares_.size(); }

 private:
  static constexpr std::size_t kMax = 16;
  std::vector<TopicState*> spares_;
};

class TopicTable {
 public:
  TopicTable();
  ~TopicTable();
  TopicTable(const TopicTable&) = delete;
  TopicTable& operator=(const TopicTable&) = delete;

  static std::size_t hash_of(std::string_view name) noexcept { return hash_name(name); }

  // Lock-free. The current state of @p name, published in @p slot (which then keeps it alive);
  // nullptr when the name has no state or @p slot's thread ran out of nesting depth
  // (slot.overflow() tells).
  const TopicState* find(std::string_view name, std::size_t hash, HazardSlot& slot) const noexcept;

  // Writers (registry mutex held): no protection needed, states change only under the mutex.
  TopicState* get(std::string_view name, std::size_t hash) const noexcept;
  // @p state's name must not be present.
  void insert(TopicState* state);
  // Replaces the state of the same name; the caller retires @p old.
  void replace(const TopicState* old, TopicState* now) noexcept;
  // The caller retires @p state.
  void erase(const TopicState* state) noexcept;
  std::size_t size() const noexcept { return live_; }
  template <class F>
  void for_each(F&& f) const {
    const Array* a = array_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i <= a->mask; ++i) {
      const uintptr_t e = a->entries[i].load(std::memory_order_relaxed);
      if (e != kEmpty && e != kTombstone) f(state_of(e));
    }
  }

 private:
  static constexpr uintptr_t kEmpty = 0;
  static constexpr uintptr_t kTombstone = 1;
  static constexpr int kTagShift = 48;

  struct Array {
    explicit Array(std::size_t capacity);
    const std::size_t mask;
    std::atomic<uint32_t> sequence{0};  // odd while rebuilt in place
    std::unique_ptr<std::atomic<uintptr_t>[]> entries;
  };

  static uintptr_t tag_of(std::size_t hash) noexcept { return (hash >> 48) | 0x8000u; }
  static uintptr_t entry_of(const TopicState* s) noexcept {
    return reinterpret_cast<uintptr_t>(s) | (tag_of(s->hash) << kTagShift);
  }
  static TopicState* state_of(uintptr_t e) noexcept {
    return reinterpret_cast<TopicState*>(e & ((uintptr_t{1} << kTagShift) - 1));
  }
  std::size_t slot_of(const Array& a, const TopicState* s) const noexcept;
  static void place(Array& a, const TopicState* s) noexcept;
  void rebuild(std::size_t capacity);

  std::atomic<Array*> array_;
  std::vector<std::unique_ptr<Array>> arrays_;  // the current one last
  std::size_t live_ = 0;
  std::size_t tombstones_ = 0;
};

}  // namespace athomic::detail
