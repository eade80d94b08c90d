// The in-flight forms of an event. Each struct has one meaning whatever the dispatch mode:
//
//  * InlineEvent — on the delivering thread's stack, borrowing payload and context, for the
//    duration of one inline dispatch.
//  * PoolEvent — a recycled heap record that owns payload and context (or the received bytes
//    until a worker decodes them) and carries one lane node per subscriber it is queued for.
//  * LocalDelivery — what an in-process provider carries through publish and hands back with
//    deliver_event: the event plus the handler array to dispatch it to.
#pragma once

#include "lane.h"

#include <athomic/context.h>
#include <athomic/event.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace athomic::detail {

class BusCore;
struct TopicState;

struct InlineEvent {
  std::string_view name;
  const Payload* payload = nullptr;
  const ContextPtr* context = nullptr;  // may point at a null ContextPtr: no context
  uint32_t failed = 0;                  // handler calls that threw
};

// Where a received event's bytes stand. The first worker to reach the event decodes it; the
// others (one event, several subscribers) wait for that.
enum class Decode : uint8_t { none, raw, busy, ok, malformed };

struct PoolEvent {
  static constexpr std::size_t kMaxName = 255;
  static constexpr uint32_t kInlineNodes = 4;
  // Buffers up to this size stay with a recycled record; larger ones are freed with the event.
  static constexpr std::size_t kKeptRawCapacity = 4096;
  static constexpr uint32_t kKeptNodes = 64;

  // One reference for the deliveries still outstanding, one per Completion.
  std::atomic<uint32_t> refs{0};
  std::atomic<uint32_t> pending{0};  // deliveries not yet finished
  std::atomic<uint32_t> failed{0};   // handler calls that threw
  std::atomic<uint32_t> waiters{0};  // threads blocked in Completion::wait
  std::atomic<Decode> decode{Decode::none};

  BusCore* bus = nullptr;
  uint64_t charged_bytes = 0;  // what the event holds of the queue's byte bound

  Payload payload;
  ContextPtr context;
  std::string raw;  // received bytes, until decoded

  uint8_t name_size = 0;
  char name_data[kMaxName];

  LaneNode nodes[kInlineNodes];
  std::unique_ptr<LaneNode[]> more_nodes;
  uint32_t more_capacity = 0;

  PoolEvent* next_free = nullptr;  // in a free list

  std::string_view name() const noexcept { return {name_data, name_size}; }
  void set_name(std::string_view n) noexcept {
    name_size = static_cast<uint8_t>(n.size());
    for (std::size_t i = 0; i < n.size(); ++i) name_data[i] = n[i];
  }
  // Room for @p count nodes; false when memory for them cannot be had.
  bool reserve_nodes(uint32_t count) noexcept;
  LaneNode& node(uint32_t i) noexcept {
    return i < kInlineNodes ? nodes[i] : more_nodes[i - kInlineNodes];
  }
  // Drops what the event holds once delivered; keeps small buffers for the next use.
  void clear_content() noexcept;
};

// Handed through an in-process provider's publish; exactly one of the events is set, by mode.
struct LocalDelivery {
  BusCore* bus = nullptr;
  const TopicState* handlers = nullptr;  // hazard-protected by the publish call
  InlineEvent* inline_event = nullptr;
  PoolEvent* pool_event = nullptr;
};

// Records are recycled: a thread keeps a few for its next publishes, and each bus takes back
// the ones its workers finish (see BusCore). These free records on the calling thread.
PoolEvent* take_cached_record() noexcept;   // nullptr when the thread has none
void cache_or_free_record(PoolEvent* e) noexcept;
// Frees a chain linked through next_free.
void free_records(PoolEvent* chain) noexcept;
// Live PoolEvent objects in the process (test hook).
uint64_t live_pool_events() noexcept;
PoolEvent* new_record();

// Drops a Completion's reference; the event goes to this thread's cache when it was the last.
void release_from_completion(PoolEvent* e) noexcept;

// Marks one delivery finished and wakes waiters when it was the last (Completion side of the
// record; the bus does the rest of the bookkeeping).
void wake_waiters(PoolEvent* e) noexcept;

}  // namespace athomic::detail
