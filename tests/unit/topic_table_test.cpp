// The topic table: lock-free lookups by name while one writer (under a mutex) inserts, replaces
// and removes states, grows the array and rebuilds it in place.
#include "hazard.h"
#include "topic_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace athomic::detail {
namespace {

TopicState* state(const std::string& name, uint32_t capacity = 4) {
  return TopicState::create(name, TopicTable::hash_of(name), capacity);
}

const TopicState* find(const TopicTable& t, const std::string& name) {
  HazardSlot slot;
  return t.find(name, TopicTable::hash_of(name), slot);
}

TEST(NameHash, SpreadsNamesOverAllBitsAndComparesWholeNames) {
  std::set<std::size_t> hashes;
  std::set<std::size_t> tags;
  for (int i = 0; i < 20000; ++i) {
    const std::string name = "orders." + std::to_string(i) + ".created";
    hashes.insert(hash_name(name));
    tags.insert(hash_name(name) >> 48);
  }
  EXPECT_EQ(hashes.size(), 20000u);
  EXPECT_GT(tags.size(), 15000u);  // the top bits the table keeps as tags are spread too
  EXPECT_NE(hash_name("a"), hash_name("b"));
  EXPECT_NE(hash_name(""), hash_name(std::string_view("\0", 1)));
  EXPECT_NE(hash_name("user.created"), hash_name("user.createe"));
  for (std::string a : {"", "a", "abcdefg", "abcdefgh", "abcdefghi", "user.created.v2.long.name"}) {
    EXPECT_TRUE(same_name(a, std::string(a)));
    if (!a.empty()) {
      std::string b = a;
      b.back() ^= 1;
      EXPECT_FALSE(same_name(a, b));
      b = a;
      b.front() ^= 1;
      EXPECT_FALSE(same_name(a, b));
      EXPECT_FALSE(same_name(a, a + "x"));
    }
  }
}

TEST(TopicTable, FindsWhatWasInsertedAndNothingElse) {
  TopicTable t;
  TopicState* a = state("user.created");
  TopicState* b = state("user.deleted");
  t.insert(a);
  t.insert(b);
  EXPECT_EQ(find(t, "user.created"), a);
  EXPECT_EQ(find(t, "user.deleted"), b);
  EXPECT_EQ(find(t, "user.updated"), nullptr);
  EXPECT_EQ(t.get("user.created", TopicTable::hash_of("user.created")), a);
  EXPECT_EQ(a->name(), "user.created");
  EXPECT_EQ(t.size(), 2u);
  t.erase(a);
  EXPECT_EQ(find(t, "user.created"), nullptr);
  EXPECT_EQ(find(t, "user.deleted"), b);
  TopicState* b2 = state("user.deleted", 8);
  t.replace(b, b2);
  EXPECT_EQ(find(t, "user.deleted"), b2);
  TopicState::destroy(a);
  TopicState::destroy(b);
  t.erase(b2);
  TopicState::destroy(b2);
  EXPECT_EQ(t.size(), 0u);
}

TEST(TopicTable, GrowsAndRebuildsWithoutLosingNames) {
  TopicTable t;
  std::vector<TopicState*> live;
  // Many inserts (growth), then churn of unique names (tombstones, in-place rebuilds).
  for (int i = 0; i < 1000; ++i) {
    live.push_back(state("keep." + std::to_string(i)));
    t.insert(live.back());
  }
  for (int i = 0; i < 20000; ++i) {
    TopicState* s = state("churn." + std::to_string(i));
    t.insert(s);
    ASSERT_EQ(find(t, std::string(s->name())), s);
    t.erase(s);
    TopicState::destroy(s);
  }
  EXPECT_EQ(t.size(), 1000u);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(find(t, "keep." + std::to_string(i)), live[i]) << i;
  for (auto* s : live) {
    t.erase(s);
    TopicState::destroy(s);
  }
}

TEST(TopicTable, AStateHoldsItsNameAndSlots) {
  TopicState* s = state("a.b", 3);
  EXPECT_EQ(s->capacity, 3u);
  EXPECT_EQ(s->count.load(), 0u);
  EXPECT_EQ(s->at(2), nullptr);
  const uint64_t live = TopicState::live();
  TopicState::destroy(s);
  EXPECT_EQ(TopicState::live(), live - 1);
}

// A recycled state serves the next create of its capacity, for any name that fits its room,
// built afresh (no slot, no count left over); a create of another capacity allocates; the
// spares are bounded and freed with them.
TEST(StateSpares, ReuseARecycledStateBuiltAfresh) {
  const uint64_t live = TopicState::live();
  {
    StateSpares spares;
    TopicState* first = spares.create("orders.created", TopicTable::hash_of("orders.created"), 4);
    EXPECT_EQ(TopicState::live(), live + 1);
    first->items[0].store(reinterpret_cast<Subscriber*>(first), std::memory_order_relaxed);
    first->count.store(1);
    first->metrics_slot = 7;
    spares.recycle(first);
    EXPECT_EQ(spares.size(), 1u);

    TopicState* other_capacity = spares.create("a.b", TopicTable::hash_of("a.b"), 8);
    EXPECT_NE(other_capacity, first);
    EXPECT_EQ(spares.size(), 1u);

    TopicState* again = spares.create("users.deleted", TopicTable::hash_of("users.deleted"), 4);
    EXPECT_EQ(again, first);
    EXPECT_EQ(spares.size(), 0u);
    EXPECT_EQ(again->name(), "users.deleted");
    EXPECT_EQ(again->hash, TopicTable::hash_of("users.deleted"));
    EXPECT_EQ(again->capacity, 4u);
    EXPECT_EQ(again->count.load(), 0u);
    EXPECT_EQ(again->metrics_slot, 0u);
    EXPECT_EQ(again->at(0), nullptr);
    EXPECT_EQ(TopicState::live(), live + 2);

    // A name longer than the recycled state's room gets a new allocation.
    spares.recycle(again);
    const std::string longer(64, 'x');
    TopicState* roomy = spares.create(longer, TopicTable::hash_of(longer), 4);
    EXPECT_NE(roomy, again);
    EXPECT_EQ(roomy->name(), longer);
    EXPECT_EQ(spares.size(), 1u);

    std::vector<TopicState*> many;
    for (int i = 0; i < 40; ++i) many.push_back(spares.create("n" + std::to_string(i), 1, 2));
    for (TopicState* s : many) spares.recycle(s);
    EXPECT_LE(spares.size(), 16u);
    EXPECT_LE(TopicState::live(), live + 3 + 16);
    TopicState::destroy(other_capacity);
    TopicState::destroy(roomy);
  }
  EXPECT_EQ(TopicState::live(), live);
}

// Readers look up a fixed set of names that never leave while a writer churns other names and
// replaces the fixed ones' states; replaced states are freed only when no hazard names them.
// A reader must always find every fixed name, with the right name in the state it gets.
TEST(TopicTableStress, ReadersAlwaysFindStableNamesWhileAWriterChurns) {
  TopicTable t;
  std::mutex writer;
  constexpr int kStable = 16;
  std::vector<std::string> names;
  for (int i = 0; i < kStable; ++i) {
    names.push_back("stable." + std::to_string(i));
    t.insert(state(names.back()));
  }
  std::atomic<bool> stop{false};
  std::atomic<long> lookups{0}, misses{0}, wrong{0};
  auto reader = [&] {
    for (unsigned i = 0; !stop.load(std::memory_order_relaxed); ++i) {
      const std::string& n = names[i % kStable];
      HazardSlot slot;
      const TopicState* s = t.find(n, TopicTable::hash_of(n), slot);
      if (!s) {
        misses++;
      } else if (s->name() != n) {
        wrong++;
      }
      lookups++;
    }
  };
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) readers.emplace_back(reader);

  std::vector<const TopicState*> retired;
  auto reclaim = [&] {
    std::vector<const void*> in_use;
    Hazards::for_each_all([&](const void* v) { in_use.push_back(v); });
    std::erase_if(retired, [&](const TopicState* s) {
      if (std::find(in_use.begin(), in_use.end(), s) != in_use.end()) return false;
      TopicState::destroy(s);
      return true;
    });
  };
  for (int round = 0; round < 20000; ++round) {
    std::lock_guard lock(writer);
    const std::string churn = "churn." + std::to_string(round);
    TopicState* c = state(churn);
    t.insert(c);
    const std::string& n = names[round % kStable];
    TopicState* old = t.get(n, TopicTable::hash_of(n));
    t.replace(old, state(n, 4 + round % 3));
    retired.push_back(old);
    t.erase(c);
    retired.push_back(c);
    if (retired.size() > 64) reclaim();
  }
  stop = true;
  for (auto& r : readers) r.join();
  reclaim();
  EXPECT_TRUE(retired.empty());
  EXPECT_GT(lookups.load(), 0);
  EXPECT_EQ(misses.load(), 0) << "a stable name was not found";
  EXPECT_EQ(wrong.load(), 0) << "a lookup returned another name's state";
  t.for_each([&](const TopicState* s) { TopicState::destroy(s); });
}

}  // namespace
}  // namespace athomic::detail
