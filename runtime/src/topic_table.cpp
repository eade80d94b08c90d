#include "topic_table.h"

#include <cstring>
#include <new>

namespace athomic::detail {

namespace {
std::atomic<uint64_t> g_live_states{0};

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

namespace {
constexpr std::size_t header_size() noexcept {
  static_assert(alignof(TopicState) <= alignof(std::max_align_t));
  return (sizeof(TopicState) + alignof(std::atomic<Subscriber*>) - 1) &
         ~(alignof(std::atomic<Subscriber*>) - 1);
}
// Rounded up, so that a spare serves the names of other events too.
uint32_t name_room_for(std::size_t size) noexcept {
  return static_cast<uint32_t>((size + 15) & ~std::size_t{15});
}
}  // namespace

TopicState* TopicState::build(void* raw, std::string_view name, std::size_t hash,
                              uint32_t capacity, uint32_t room) noexcept {
  char* bytes = static_cast<char*>(raw);
  auto* items = reinterpret_cast<std::atomic<Subscriber*>*>(bytes + header_size());
  for (uint32_t i = 0; i < capacity; ++i) new (&items[i]) std::atomic<Subscriber*>(nullptr);
  char* name_ptr = bytes + header_size() + sizeof(std::atomic<Subscriber*>) * capacity;
  if (!name.empty()) std::memcpy(name_ptr, name.data(), name.size());
  return new (raw)
      TopicState(hash, capacity, static_cast<uint32_t>(name.size()), room, name_ptr, items);
}

TopicState* TopicState::create(std::string_view name, std::size_t hash, uint32_t capacity) {
  const uint32_t room = name_room_for(name.size());
  void* raw = ::operator new(header_size() + sizeof(std::atomic<Subscriber*>) * capacity + room);
  g_live_states.fetch_add(1, std::memory_order_relaxed);
  return build(raw, name, hash, capacity, room);
}

void TopicState::destroy(const TopicState* s) noexcept {
  if (!s) return;
  s->~TopicState();
  ::operator delete(const_cast<TopicState*>(s));
  g_live_states.fetch_sub(1, std::memory_order_relaxed);
}

StateSpares::StateSpares() { spares_.reserve(kMax); }

StateSpares::~StateSpares() {
  for (TopicState* s : spares_) TopicState::destroy(s);
}

TopicState* StateSpares::create(std::string_view name, std::size_t hash, uint32_t capacity) {
  for (std::size_t i = 0; i < spares_.size(); ++i) {
    TopicState* s = spares_[i];
    if (s->capacity != capacity || s->name_room < name.size()) continue;
    spares_[i] = spares_.back();
    spares_.pop_back();
    const uint32_t room = s->name_room;
    s->~TopicState();
    return TopicState::build(s, name, hash, capacity, room);
  }
  return TopicState::create(name, hash, capacity);
}

void StateSpares::recycle(const TopicState* s) noexcept {
  if (spares_.size() < kMax) {
    spares_.push_back(const_cast<TopicState*>(s));
  } else {
    TopicState::destroy(s);
  }
}

uint64_t TopicState::live() noexcept { return g_live_states.load(std::memory_order_relaxed); }

TopicTable::Array::Array(std::size_t capacity)
    : mask(capacity - 1), entries(new std::atomic<uintptr_t>[capacity]) {
  for (std::size_t i = 0; i < capacity; ++i) entries[i].store(kEmpty, std::memory_order_relaxed);
}

TopicTable::TopicTable() {
  arrays_.push_back(std::make_unique<Array>(64));
  array_.store(arrays_.back().get(), std::memory_order_release);
}

TopicTable::~TopicTable() = default;

const TopicState* TopicTable::find(std::string_view name, std::size_t hash,
                                   HazardSlot& slot) const noexcept {
  const uintptr_t tag = tag_of(hash);
  for (;;) {
    const Array* a = array_.load(std::memory_order_acquire);
    const uint32_t seq = a->sequence.load(std::memory_order_acquire);
    if (seq & 1) {
      cpu_relax();
      continue;
    }
    bool moved = false;
    for (std::size_t i = hash & a->mask;; i = (i + 1) & a->mask) {
      const uintptr_t e = a->entries[i].load(std::memory_order_acquire);
      if (e == kEmpty) break;
      if (e == kTombstone || (e >> kTagShift) != tag) continue;
      const TopicState* s = state_of(e);
      if (!slot.set(s)) return nullptr;
      // Published; now make sure it was still the current state when we did.
      if (a->entries[i].load(std::memory_order_seq_cst) != e ||
          array_.load(std::memory_order_seq_cst) != a ||
          a->sequence.load(std::memory_order_seq_cst) != seq) {
        slot.clear();
        moved = true;
        break;
      }
      if (s->hash == hash && same_name(s->name(), name)) return s;
      slot.clear();
    }
    if (moved) continue;
    // "Not there" holds only if the array was neither replaced nor rebuilt while we looked.
    std::atomic_thread_fence(std::memory_order_acquire);
    if (array_.load(std::memory_order_relaxed) == a &&
        a->sequence.load(std::memory_order_relaxed) == seq) {
      return nullptr;
    }
  }
}

TopicState* TopicTable::get(std::string_view name, std::size_t hash) const noexcept {
  const Array* a = array_.load(std::memory_order_relaxed);
  const uintptr_t tag = tag_of(hash);
  for (std::size_t i = hash & a->mask;; i = (i + 1) & a->mask) {
    const uintptr_t e = a->entries[i].load(std::memory_order_relaxed);
    if (e == kEmpty) return nullptr;
    if (e == kTombstone || (e >> kTagShift) != tag) continue;
    TopicState* s = state_of(e);
    if (s->hash == hash && same_name(s->name(), name)) return s;
  }
}

std::size_t TopicTable::slot_of(const Array& a, const TopicState* s) const noexcept {
  const uintptr_t want = entry_of(s);
  for (std::size_t i = s->hash & a.mask;; i = (i + 1) & a.mask) {
    if (a.entries[i].load(std::memory_order_relaxed) == want) return i;
  }
}

void TopicTable::place(Array& a, const TopicState* s) noexcept {
  std::size_t i = s->hash & a.mask;
  for (;;) {
    const uintptr_t e = a.entries[i].load(std::memory_order_relaxed);
    if (e == kEmpty || e == kTombstone) break;
    i = (i + 1) & a.mask;
  }
  a.entries[i].store(entry_of(s), std::memory_order_seq_cst);
}

void TopicTable::rebuild(std::size_t capacity) {
  Array* current = array_.load(std::memory_order_relaxed);
  std::vector<const TopicState*> states;
  states.reserve(live_);
  for_each([&](const TopicState* s) { states.push_back(s); });
  if (capacity == current->mask + 1) {
    // Same size: rebuild in place; readers seeing the odd sequence number wait, the others
    // notice the change and retry.
    // The seqlock writer's order: odd number, release fence, then the entries.
    current->sequence.fetch_add(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    for (std::size_t i = 0; i <= current->mask; ++i) {
      current->entries[i].store(kEmpty, std::memory_order_relaxed);
    }
    for (const TopicState* s : states) place(*current, s);
    current->sequence.fetch_add(1, std::memory_order_release);
  } else {
    auto grown = std::make_unique<Array>(capacity);
    for (const TopicState* s : states) place(*grown, s);
    arrays_.push_back(std::move(grown));
    array_.store(arrays_.back().get(), std::memory_order_seq_cst);
  }
  tombstones_ = 0;
}

void TopicTable::insert(TopicState* state) {
  Array* a = array_.load(std::memory_order_relaxed);
  const std::size_t capacity = a->mask + 1;
  // Live entries stay at or below one half, live plus tombstones below three quarters, so a
  // probe always ends at an empty entry after a few steps.
  if ((live_ + 1) * 2 > capacity) {
    rebuild(capacity * 2);
  } else if ((live_ + tombstones_ + 1) * 4 > capacity * 3) {
    rebuild(capacity);
  }
  a = array_.load(std::memory_order_relaxed);
  // Reuse a tombstone on the way if there is one.
  std::size_t i = state->hash & a->mask;
  for (;;) {
    const uintptr_t e = a->entries[i].load(std::memory_order_relaxed);
    if (e == kEmpty) break;
    if (e == kTombstone) {
      --tombstones_;
      break;
    }
    i = (i + 1) & a->mask;
  }
  a->entries[i].store(entry_of(state), std::memory_order_seq_cst);
  ++live_;
}

void TopicTable::replace(const TopicState* old, TopicState* now) noexcept {
  Array* a = array_.load(std::memory_order_relaxed);
  a->entries[slot_of(*a, old)].store(entry_of(now), std::memory_order_seq_cst);
}

void TopicTable::erase(const TopicState* state) noexcept {
  Array* a = array_.load(std::memory_order_relaxed);
  a->entries[slot_of(*a, state)].store(kTombstone, std::memory_order_seq_cst);
  --live_;
  ++tombstones_;
}

}  // namespace athomic::detail
