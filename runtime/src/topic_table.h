// Interned event names: a hash table that readers search without locks.
//
// Topics are never removed while the table lives (a name with no handlers keeps its entry), so
// a Topic* once found stays valid. Writers hold the registry mutex; growth builds a new array
// and publishes it, keeping old arrays until destruction (at most twice the final size).
#pragma once

#include <athomic/bus.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace athomic::detail {

struct Topic;

// One subscription.
struct Subscriber {
  Subscriber(uint64_t id_, Handler fn_, Topic* topic_)
      : id(id_), fn(std::move(fn_)), topic(topic_) {}
  const uint64_t id;
  const Handler fn;
  Topic* const topic;
  // Cleared by unsubscribe before it waits; checked before every call.
  std::atomic<bool> active{true};
};

// An immutable snapshot of a topic's handlers, replaced wholesale on every change.
struct HandlerList : std::enable_shared_from_this<HandlerList> {
  std::vector<std::shared_ptr<Subscriber>> items;
};

struct Topic {
  Topic(std::string n, std::size_t h) : name(std::move(n)), hash(h) {}
  const std::string name;
  const std::size_t hash;
  // What dispatch reads (hazard-protected); nullptr when there are no handlers.
  std::atomic<const HandlerList*> list{nullptr};
  // Owner of *list; guarded by the registry mutex.
  std::shared_ptr<const HandlerList> list_owner;
  // Whether the provider was told of interest in this name; guarded by the interest mutex.
  bool interest = false;
};

class TopicTable {
 public:
  TopicTable();
  ~TopicTable();
  TopicTable(const TopicTable&) = delete;
  TopicTable& operator=(const TopicTable&) = delete;

  static std::size_t hash_of(std::string_view name) noexcept {
    return std::hash<std::string_view>{}(name);
  }
  // Lock-free.
  Topic* find(std::string_view name) const noexcept { return find(name, hash_of(name)); }
  Topic* find(std::string_view name, std::size_t hash) const noexcept {
    const Array* a = array_.load(std::memory_order_acquire);
    for (std::size_t i = hash & a->mask;; i = (i + 1) & a->mask) {
      Topic* t = a->slots[i].load(std::memory_order_acquire);
      if (!t) return nullptr;
      if (t->hash == hash && t->name == name) return t;
    }
  }
  // Caller holds the registry mutex.
  Topic* find_or_insert(std::string_view name);
  // Caller holds the registry mutex.
  template <class F>
  void for_each(F&& f) const {
    for (const auto& t : topics_) f(static_cast<const Topic&>(*t));
  }
  template <class F>
  void for_each(F&& f) {
    for (const auto& t : topics_) f(*t);
  }

 private:
  struct Array {
    explicit Array(std::size_t capacity);
    std::size_t mask;
    std::unique_ptr<std::atomic<Topic*>[]> slots;
  };
  static void place(Array& a, Topic* t) noexcept;

  std::atomic<const Array*> array_;
  std::vector<std::unique_ptr<Array>> arrays_;
  std::vector<std::unique_ptr<Topic>> topics_;
};

}  // namespace athomic::detail
