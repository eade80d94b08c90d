// One in-flight event, as the host hands it to an in-process provider and to workers.
#pragma once

#include "topic_table.h"

#include <athomic/context.h>
#include <athomic/event.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace athomic::detail {

class BusCore;

// Inline dispatch keeps the record on the publisher's stack and borrows payload and context;
// pool dispatch allocates it once, owns both, and reference-counts it across the tasks.
struct EventRecord {
  std::atomic<uint32_t> refs{1};
  std::atomic<uint32_t> pending{0};  // handler calls not yet finished
  std::atomic<uint32_t> failed{0};   // handler calls that threw
  std::atomic<uint32_t> waiters{0};  // threads blocked in Completion::wait

  BusCore* bus = nullptr;
  std::string_view name;   // the interned topic name (valid while the bus lives)

  const Payload* payload = nullptr;     // what handlers see
  const ContextPtr* context = nullptr;  // what handlers run in (may point at a null ContextPtr)

  // Owned copies, used when the record outlives the publish call.
  Payload payload_owned;
  ContextPtr context_owned;
  // The list being dispatched, protected by the publisher's hazard during the publish call.
  const HandlerList* handlers_view = nullptr;
  std::shared_ptr<const HandlerList> handlers;  // keeps the subscribers of queued tasks alive
  bool on_heap = false;
  EventRecord* next_buried = nullptr;  // in BusCore's list of records waiting to be freed

  // A received message decoded on a worker (pool dispatch): the bytes, and the topic whose
  // handlers get it once decoded. Set only for those records.
  std::string raw;
  Topic* topic = nullptr;
};

// Drops a reference; frees heap records when it was the last. (The bus's own threads use
// BusCore::release instead, which hands the record back to the bus.)
inline void release(EventRecord* r) noexcept {
  if (r->refs.fetch_sub(1, std::memory_order_acq_rel) == 1 && r->on_heap) delete r;
}

// Marks one handler call finished and wakes waiters when it was the last.
void finish_one(EventRecord* r) noexcept;

}  // namespace athomic::detail
