#include "topic_table.h"

namespace athomic::detail {

TopicTable::Array::Array(std::size_t capacity)
    : mask(capacity - 1), slots(new std::atomic<Topic*>[capacity]) {
  for (std::size_t i = 0; i < capacity; ++i) slots[i].store(nullptr, std::memory_order_relaxed);
}

TopicTable::TopicTable() {
  arrays_.push_back(std::make_unique<Array>(64));
  array_.store(arrays_.back().get(), std::memory_order_release);
}

TopicTable::~TopicTable() = default;

void TopicTable::place(Array& a, Topic* t) noexcept {
  std::size_t i = t->hash & a.mask;
  while (a.slots[i].load(std::memory_order_relaxed)) i = (i + 1) & a.mask;
  a.slots[i].store(t, std::memory_order_release);
}

Topic* TopicTable::find_or_insert(std::string_view name) {
  const std::size_t h = hash_of(name);
  if (Topic* t = find(name, h)) return t;
  topics_.push_back(std::make_unique<Topic>(std::string(name), h));
  Topic* t = topics_.back().get();
  Array* current = arrays_.back().get();
  // Keep the load factor at or below one half so probes stay short.
  if (topics_.size() * 2 > current->mask + 1) {
    auto grown = std::make_unique<Array>((current->mask + 1) * 2);
    for (const auto& existing : topics_) place(*grown, existing.get());
    arrays_.push_back(std::move(grown));
    array_.store(arrays_.back().get(), std::memory_order_release);
  } else {
    place(*current, t);
  }
  return t;
}

}  // namespace athomic::detail
