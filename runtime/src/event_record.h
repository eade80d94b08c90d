// The in-flight forms of an event. Each struct has one meaning whatever the dispatch mode:
//
//  * InlineEvent — on the delivering thread's stack, borrowing payload and context, for the
//    duration of one inline dispatch.
//  * Outcome — what a Completion waits for: deliveries outstanding, and how they went.
//  * PoolEvent — an Outcome that is also the event: a recycled heap record that owns payload
//    and context (or the received bytes until a worker decodes them) and carries one lane node
//    per subscriber it is queued for.
//  * Acknowledgement — an Outcome for a remote publish that the transport completes later
//    (ATHOMIC_CAP_ACKNOWLEDGE): its token is the record's address.
//  * LocalDelivery — what an in-process provider carries through publish and hands back with
//    deliver_event: the event plus the handler array to dispatch it to.
#pragma once

#include "lane.h"
#include "traceparent.h"

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
struct Subscriber;
struct TopicState;

// Built whole by the publishing (or receiving) thread and read in place by the dispatch, never
// copied field by field: a copy reads it back wider than it was written, which stalls the
// store-to-load forwarding of every field on the inline path.
struct InlineEvent {
  Event event;                // what the handlers see
  const ContextPtr* context;  // made current around the calls; may point at a null ContextPtr
  // The name's metrics cells of the thread that built this (null when counting is off): the
  // dispatch runs on that thread, inside its publish call (deliver_event may not be called later
  // or elsewhere: see LocalDelivery and provider.h).
  uint64_t* metrics_cells;
  uint32_t metrics_slot;  // the name's slot in the bus's metrics
  uint32_t failed = 0;    // handler calls that threw
  bool timed;             // one of the events timed for the latency histograms

  InlineEvent(std::string_view name, const Payload& payload, const ContextPtr* ctx,
              uint64_t* cells, uint32_t mslot, bool sampled) noexcept
      : event(name, payload, (ctx && *ctx) ? **ctx : ExecutionContext::empty()),
        context(ctx),
        metrics_cells(cells),
        metrics_slot(mslot),
        timed(sampled) {}
};

// The handlers of one event: an exact name's array (hazard-protected by the publish or
// delivery that built this; may be null) and the pattern subscribers it matched (their set
// hazard-protected likewise).
struct Audience {
  const TopicState* exact = nullptr;
  Subscriber* const* matched = nullptr;
  uint32_t matched_count = 0;
  bool empty() const noexcept;
};

// Where a received event's bytes stand. The first worker to reach the event decodes it; the
// others (one event, several subscribers) wait for that.
enum class Decode : uint8_t { none, raw, busy, ok, malformed };

struct Outcome {
  enum class Kind : uint8_t { pool_event, acknowledgement };
  explicit Outcome(Kind k) noexcept : kind(k) {}

  // One reference for the deliveries still outstanding, one per Completion.
  std::atomic<uint32_t> refs{0};
  std::atomic<uint32_t> pending{0};  // deliveries not yet finished
  std::atomic<uint32_t> failed{0};   // handler calls that threw, or 1: the transport failed it
  // Threads blocked in Completion::wait, plus one for a continuation (Completion::then): the
  // completing thread looks further only when it is not zero.
  std::atomic<uint32_t> waiters{0};
  // What to run once done (Completion::then): nullptr, a heap std::function, or kRan once the
  // outcome is done and it ran (or nothing was registered in time).
  std::atomic<void*> continuation{nullptr};
  // Written before the last delivery is marked finished, read once done.
  int64_t receivers = -1;  // handlers queued for, or subscribers the transport reached
  BusCore* bus = nullptr;
  // Completing it may need a thread that runs this bus's handlers — a worker for an event, the
  // provider's own thread for an acknowledgement in inline dispatch — so a handler of the bus
  // must not wait for it.
  bool needs_handler_threads = true;
  const Kind kind;
};

// A delivery to an exact subscription shows the subscription's copy of the name; the record
// keeps its own only when pattern subscriptions are among its handlers.
//
// Laid out for the hand-off between threads: what every event's publisher writes and its
// worker reads or writes back — the outcome, the event's fields, the first queue node and the
// free-list link — fills the first two cache lines; what only some events use (received bytes,
// trace headers, a name for pattern subscribers, more nodes) comes after (from the last 8 bytes
// of the second line) and is only read by events that do not use it. Each line the two threads share crosses between their caches twice
// per event.
struct alignas(64) PoolEvent : Outcome {
  static constexpr uint32_t kInlineNodes = 4;
  // Buffers up to this size stay with a recycled record; larger ones are freed with the event.
  static constexpr std::size_t kKeptRawCapacity = 4096;
  static constexpr uint32_t kKeptNodes = 64;

  PoolEvent() noexcept : Outcome(Kind::pool_event) {}

  std::atomic<Decode> decode{Decode::none};
  uint32_t metrics_slot = 0;   // the name's slot in the bus's metrics
  uint64_t charged_bytes = 0;  // what the event holds of the queue's byte bound
  uint64_t stamped_ns = 0;     // when published or received, for a sampled event; else 0

  Payload payload;
  ContextPtr context;
  LaneNode first_node;             // the first subscriber's queue node
  PoolEvent* next_free = nullptr;  // in a free list

  // Only for some events.
  std::string raw;  // received bytes, until decoded
  // A received message's W3C headers (events.context.traceparent, ATHOMIC_CAP_HEADERS), their
  // values copied into header_text; empty for all others.
  TraceHeaders headers;
  std::string header_text;
  // The event's name, for the pattern subscriptions it is queued for (exact ones see their own).
  std::string name;

  LaneNode nodes[kInlineNodes - 1];  // the second to fourth subscribers' nodes
  std::unique_ptr<LaneNode[]> more_nodes;
  uint32_t more_capacity = 0;

  // Room for @p count nodes; false when memory for them cannot be had.
  bool reserve_nodes(uint32_t count) noexcept;
  LaneNode& node(uint32_t i) noexcept {
    if (i == 0) return first_node;
    return i < kInlineNodes ? nodes[i - 1] : more_nodes[i - kInlineNodes];
  }
  // Drops what the event holds once delivered; keeps small buffers for the next use.
  void clear_content() noexcept;
};

struct Acknowledgement : Outcome {
  Acknowledgement() noexcept : Outcome(Kind::acknowledgement) {}
  uint32_t metrics_slot = 0;
  std::string error;  // why the transport failed it; written before done
};

// Handed through an in-process provider's publish; exactly one of the events is set, by mode.
struct LocalDelivery {
  BusCore* bus = nullptr;
  const Audience* to = nullptr;  // the caller's, read in place
  InlineEvent* inline_event = nullptr;
  PoolEvent* pool_event = nullptr;
  std::string_view name;  // the event's name, for a pool event with pattern subscribers
};

// Records are recycled: a thread keeps a few for its next publishes, and each bus takes back
// the ones its workers finish (see BusCore). These free records on the calling thread.
PoolEvent* take_cached_record() noexcept;   // nullptr when the thread has none
// One record: kept when the thread has few, else freed.
void cache_or_free_record(PoolEvent* e) noexcept;
// A whole chain of @p count records a bus gave back, kept (the bus bounded it).
void adopt_records(PoolEvent* chain, uint32_t count) noexcept;
// Frees a chain linked through next_free.
void free_records(PoolEvent* chain) noexcept;
// Live PoolEvent objects in the process (test hook).
uint64_t live_pool_events() noexcept;
PoolEvent* new_record();

// Drops a reference to @p o (a Completion's, or an acknowledgement's last); frees it, or for an
// event puts it in this thread's cache, when it was the last.
void release_outcome(Outcome* o) noexcept;

// Wakes the threads waiting for @p o to be done, and runs its continuation if it has one.
void wake_waiters(Outcome* o) noexcept;

}  // namespace athomic::detail
