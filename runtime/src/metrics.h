// The bus's counters and histograms, kept so that counting costs the publish path a few plain
// additions: every thread adds into a shard of its own (no atomic read-modify-write, no line
// shared with another thread), and a snapshot sums the shards. Event names get a slot each, up
// to events.metrics.max_events of them; the rest share the "_other" slot, so per-request names
// cannot grow the metrics without bound. A thread's shard goes back to the bus when the thread
// exits and is taken by the next new thread, its counts kept.
#pragma once

#include <athomic/metrics.h>

#include "tls.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace athomic::detail {

// Monotonic nanoseconds, for the sampled latencies.
inline uint64_t now_ns() noexcept {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

enum Counter : uint8_t {
  kPublished,
  kReceived,
  kDelivered,
  kFailed,
  kDropped,  // kDropped + DropReason
  kCounters = kDropped + kDropReasonCount
};

class Metrics {
 public:
  // Slot 0 counts the names past the cap ("_other").
  static constexpr uint32_t kOther = 0;

  // Disabled (events.metrics.enabled = false): every call below is a test and a return.
  Metrics(bool enabled, uint32_t max_events, uint32_t latency_sample);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // The slot of @p name: its own while there is room, else kOther. Lock-free once assigned.
  uint32_t slot(std::string_view name, std::size_t hash);

  bool enabled() const noexcept { return enabled_; }

  void add(uint32_t slot, Counter c, uint64_t n = 1) noexcept {
    if (!enabled_) return;
    uint64_t* cell = &cells(mine(), slot)[c];
    store(cell, load(cell) + n);
  }
  // The calling thread's cells for @p slot, or nullptr when counting is off: one lookup for a
  // caller that counts several things about one event (add_to below).
  uint64_t* cells_of(uint32_t slot) noexcept { return enabled_ ? cells(mine(), slot) : nullptr; }
  // Adds to cells from cells_of, on the thread that got them or one it waits for.
  static void add_to(uint64_t* cells, Counter c, uint64_t n = 1) noexcept {
    if (cells) store(&cells[c], load(&cells[c]) + n);
  }
  // Adds one to counter @p c of cells from cells_of, and tells whether this event is one to
  // time: one in events.metrics.latency_sample of the slot's count in this thread's shard, the
  // first included. The count just written decides, so the choice reads nothing else (a clock
  // of the thread's own cost a second shard look-up per event), and rare names get timings too.
  bool add_and_sample(uint64_t* cells, Counter c) noexcept {
    if (!cells) return false;
    const uint64_t n = load(&cells[c]);
    store(&cells[c], n + 1);
    return sampled(n);
  }
  bool add_and_sample(uint32_t slot, Counter c) noexcept { return add_and_sample(cells_of(slot), c); }
  void observe_latency(uint32_t slot, uint64_t ns) noexcept { observe(slot, 0, ns); }
  void observe_duration(uint32_t slot, uint64_t ns) noexcept { observe(slot, 1, ns); }

  // Sums every shard into one EventMetrics per named slot, "_other" last when it counted
  // anything, and their total.
  void snapshot(std::vector<EventMetrics>& events, EventMetrics& total) const;

 private:
  static constexpr std::size_t kBuckets = Histogram::kBounds.size() + 1;
  // Per slot: the counters, then two histograms of (buckets, count, sum in ns).
  static constexpr std::size_t kHistogramCells = kBuckets + 2;
  static constexpr std::size_t kCellsPerSlot = kCounters + 2 * kHistogramCells;

  // A thread's cells, allocated a chunk of slots at a time as the thread first counts for one
  // of them: a thread that sees a few names costs a few chunks, whatever max_events allows.
  static constexpr uint32_t kSlotsPerChunk = 16;
  static constexpr std::size_t kChunkCells = kSlotsPerChunk * kCellsPerSlot;
  struct Shard {
    explicit Shard(std::size_t slots)
        : chunk_count((slots + kSlotsPerChunk - 1) / kSlotsPerChunk),
          chunks(new std::atomic<uint64_t*>[chunk_count]) {
      for (std::size_t i = 0; i < chunk_count; ++i) chunks[i].store(nullptr, std::memory_order_relaxed);
    }
    ~Shard() {
      for (std::size_t i = 0; i < chunk_count; ++i) delete[] chunks[i].load(std::memory_order_relaxed);
    }
    // Readers: the slot's cells, or null while the owner never counted near it.
    const uint64_t* cells_if_any(uint32_t slot) const noexcept {
      const uint64_t* chunk = chunks[slot / kSlotsPerChunk].load(std::memory_order_acquire);
      return chunk ? chunk + (slot % kSlotsPerChunk) * kCellsPerSlot : nullptr;
    }
    const std::size_t chunk_count;
    std::unique_ptr<std::atomic<uint64_t*>[]> chunks;  // allocated by the owner, read by snapshots
    bool taken = false;                                 // guarded by the pool's mutex
  };
  // The owner's cells for @p slot, allocated on first use.
  uint64_t* cells(Shard& s, uint32_t slot) noexcept {
    uint64_t* chunk = s.chunks[slot / kSlotsPerChunk].load(std::memory_order_relaxed);
    if (!chunk) [[unlikely]] chunk = new_chunk(s, slot);
    return chunk + (slot % kSlotsPerChunk) * kCellsPerSlot;
  }
  uint64_t* new_chunk(Shard& s, uint32_t slot) noexcept;
  // Shards outlive neither the bus nor a thread's claim; a thread keeps a weak reference to the
  // pool so that it can give its shard back at exit if the bus is still there.
  struct Pool {
    std::mutex mutex;
    std::vector<std::unique_ptr<Shard>> shards;
    std::size_t slots = 0;
  };
  struct Names;

  // Cells are plain integers read concurrently by snapshots: accessed as relaxed atomics.
  static uint64_t load(const uint64_t* p) noexcept {
    return std::atomic_ref<uint64_t>(*const_cast<uint64_t*>(p)).load(std::memory_order_relaxed);
  }
  static void store(uint64_t* p, uint64_t v) noexcept {
    std::atomic_ref<uint64_t>(*p).store(v, std::memory_order_relaxed);
  }

  // The calling thread's shard of this bus: one thread-pointer-relative compare on the path.
  Shard& mine() noexcept {
    if (tls_last_id_ == id_) return *static_cast<Shard*>(tls_last_shard_);
    return find_or_claim();
  }
  Shard& find_or_claim() noexcept;
  Shard& claim();

  // The bus and shard the thread counted into last.
  static inline thread_local uint64_t tls_last_id_ ATHOMIC_FAST_TLS = 0;
  static inline thread_local void* tls_last_shard_ ATHOMIC_FAST_TLS = nullptr;
  void observe(uint32_t slot, int which, uint64_t ns) noexcept;
  // Whether latency_sample divides @p n (its low 32 bits: the pattern shifts once in 2^32
  // events), by a multiplication: n * ceil(2^64 / N) wraps below ceil(2^64 / N) exactly for the
  // multiples of N (Lemire, Kaser and Kurz, "Faster remainder by direct computation", 2019).
  bool sampled(uint64_t n) const noexcept {
    return static_cast<uint64_t>(static_cast<uint32_t>(n)) * sample_factor_ <= sample_factor_ - 1;
  }

  const bool enabled_;
  const uint64_t id_;  // tells this bus's shards apart in a thread's cache
  const uint32_t max_events_;
  const uint64_t sample_factor_;  // ceil(2^64 / latency_sample); 0 for 1 (every event)
  std::shared_ptr<Pool> pool_;
  std::unique_ptr<Names> names_;
  Shard* fallback_ = nullptr;
  // Where a thread with no memory for a chunk counts: written, never read.
  std::unique_ptr<uint64_t[]> discard_;
};

}  // namespace athomic::detail
