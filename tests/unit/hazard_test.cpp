// Hazard slots: what a thread announces it uses is seen by every other thread's scan, nesting
// is bounded, and a thread's record is reused once it exits.
#include "hazard.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

namespace athomic::detail {
namespace {

bool others_hold(const void* p) {
  return Hazards::any_other([&](const void* v) { return v == p; });
}

TEST(Hazards, AnotherThreadsSlotIsSeenUntilCleared) {
  int object = 0;
  std::atomic<int> phase{0};
  std::thread user([&] {
    HazardSlot slot;
    EXPECT_TRUE(slot.set(&object));
    phase = 1;
    while (phase.load() != 2) std::this_thread::yield();
  });
  while (phase.load() != 1) std::this_thread::yield();
  EXPECT_TRUE(others_hold(&object));
  phase = 2;
  user.join();
  EXPECT_FALSE(others_hold(&object));
}

TEST(Hazards, ScansOfOthersSkipTheCallerButScansOfAllDoNot) {
  int object = 0;
  HazardSlot slot;
  slot.set(&object);
  EXPECT_FALSE(others_hold(&object));
  bool seen = false;
  Hazards::for_each_all([&](const void* v) { seen = seen || v == &object; });
  EXPECT_TRUE(seen);
}

TEST(Hazards, NestingBeyondTheSlotsIsReportedNotOverflowed) {
  std::vector<int> objects(HazardRecord::kSlots + 1);
  std::vector<std::unique_ptr<HazardSlot>> slots;
  for (int i = 0; i < HazardRecord::kSlots; ++i) {
    slots.push_back(std::make_unique<HazardSlot>());
    ASSERT_TRUE(slots.back()->set(&objects[i]));
  }
  HazardSlot one_more;
  EXPECT_FALSE(one_more.set(&objects.back()));
  EXPECT_TRUE(one_more.overflow());
  while (!slots.empty()) slots.pop_back();  // innermost first, as scopes unwind
  HazardSlot again;
  EXPECT_TRUE(again.set(&objects[0]));
}

TEST(Hazards, ARecordIsReusedAfterItsThreadExits) {
  std::set<const HazardRecord*> records;
  for (int i = 0; i < 20; ++i) {
    std::thread t([&] { records.insert(&Hazards::mine()); });
    t.join();
  }
  EXPECT_LE(records.size(), 2u);
}

TEST(HazardsStress, AScannerNeverMissesAnAnnouncedObject) {
  // Writers retire an object only when no slot names it; a reader announces, re-checks that
  // the object is current, then uses it. The object must never be "freed" while in use.
  struct Box {
    std::atomic<int> alive{1};
  };
  std::vector<Box> boxes(64);
  std::atomic<Box*> current{&boxes[0]};
  std::atomic<bool> stop{false};
  std::atomic<long> bad{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        HazardSlot slot;
        Box* b;
        do {
          b = current.load();
          slot.set(b);
        } while (current.load() != b);
        if (b->alive.load() != 1) bad++;
      }
    });
  }
  for (int round = 1; round < 20000; ++round) {
    Box* old = current.load();
    Box* next = &boxes[round % boxes.size()];
    if (next == old) continue;
    next->alive = 1;
    current.store(next);
    // "Free" the old box once nobody names it (the writer is the only one reviving boxes).
    while (Hazards::any_other([&](const void* v) { return v == old; })) std::this_thread::yield();
    old->alive = 0;
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace athomic::detail
