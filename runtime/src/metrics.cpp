#include "metrics.h"

#include "name_hash.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

namespace athomic {

const char* drop_reason_name(DropReason r) noexcept {
  switch (r) {
    case DropReason::queue_full: return "queue_full";
    case DropReason::close: return "close";
    case DropReason::malformed: return "malformed";
    case DropReason::no_handler: return "no_handler";
    case DropReason::transport: return "transport";
  }
  return "unknown";
}

namespace detail {

namespace {
std::atomic<uint64_t> g_next_id{1};

// A thread's shards, one per bus it counted for (most threads count for one).
struct Claim {
  uint64_t id;
  void* shard;
  std::weak_ptr<void> pool;
  void (*give_back)(void* pool, void* shard);
};
struct Claims {
  std::vector<Claim> list;
  ~Claims() {
    for (auto& c : list) {
      if (auto pool = c.pool.lock()) c.give_back(pool.get(), c.shard);
    }
  }
};
thread_local Claims tls_claims;
}  // namespace

// Names to slots: open addressing, fixed capacity (twice the cap), entries never removed, so
// readers need no protection; inserts under the mutex.
struct Metrics::Names {
  struct Entry {
    std::size_t hash;
    std::string name;
    uint32_t slot;
  };
  explicit Names(uint32_t max_events) {
    std::size_t capacity = 16;
    while (capacity < 2 * static_cast<std::size_t>(max_events) + 2) capacity *= 2;
    mask = capacity - 1;
    entries.reset(new std::atomic<Entry*>[capacity]);
    for (std::size_t i = 0; i < capacity; ++i) entries[i].store(nullptr, std::memory_order_relaxed);
  }
  ~Names() {
    for (std::size_t i = 0; i <= mask; ++i) delete entries[i].load(std::memory_order_relaxed);
  }
  const Entry* find(std::string_view name, std::size_t hash) const noexcept {
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      const Entry* e = entries[i].load(std::memory_order_acquire);
      if (!e) return nullptr;
      if (e->hash == hash && same_name(e->name, name)) return e;
    }
  }
  std::size_t mask;
  std::unique_ptr<std::atomic<Entry*>[]> entries;
  std::mutex mutex;
  uint32_t used = 0;  // slots given to names (guarded by mutex)
  std::vector<std::string> by_slot{"_other"};  // guarded by mutex
};

Metrics::Metrics(bool enabled, uint32_t max_events, uint32_t latency_sample)
    : enabled_(enabled),
      id_(g_next_id.fetch_add(1, std::memory_order_relaxed)),
      max_events_(max_events),
      sample_factor_(UINT64_MAX / std::max<uint32_t>(1, latency_sample) + 1),
      pool_(std::make_shared<Pool>()),
      names_(std::make_unique<Names>(max_events)) {
  pool_->slots = static_cast<std::size_t>(max_events) + 1;
  if (enabled_) {
    discard_.reset(new uint64_t[kChunkCells]());
    // Shared by the threads that find no memory for a shard of their own: their counts may
    // then collide and be lost, never corrupt (cells are accessed atomically).
    pool_->shards.push_back(std::make_unique<Shard>(pool_->slots));
    pool_->shards.back()->taken = true;
    fallback_ = pool_->shards.back().get();
  }
}

Metrics::~Metrics() = default;

uint32_t Metrics::slot(std::string_view name, std::size_t hash) {
  if (!enabled_) return kOther;
  if (const Names::Entry* e = names_->find(name, hash)) return e->slot;
  // An event really named "_other" would print a second series of the same labels.
  if (name == "_other") return kOther;
  std::lock_guard lock(names_->mutex);
  if (const Names::Entry* e = names_->find(name, hash)) return e->slot;
  if (names_->used >= max_events_) return kOther;
  auto* entry = new Names::Entry{hash, std::string(name), ++names_->used};
  names_->by_slot.push_back(entry->name);
  std::size_t i = hash & names_->mask;
  while (names_->entries[i].load(std::memory_order_relaxed)) i = (i + 1) & names_->mask;
  names_->entries[i].store(entry, std::memory_order_release);
  return entry->slot;
}

Metrics::Shard& Metrics::find_or_claim() noexcept {
  for (const auto& c : tls_claims.list) {
    if (c.id == id_) {
      tls_last_id_ = id_;
      tls_last_shard_ = c.shard;
      return *static_cast<Shard*>(c.shard);
    }
  }
  try {
    return claim();
  } catch (...) {
    return *fallback_;
  }
}

Metrics::Shard& Metrics::claim() {
  Shard* shard = nullptr;
  {
    std::lock_guard lock(pool_->mutex);
    for (auto& s : pool_->shards) {
      if (!s->taken) {
        shard = s.get();
        break;
      }
    }
    if (!shard) {
      pool_->shards.push_back(std::make_unique<Shard>(pool_->slots));
      shard = pool_->shards.back().get();
    }
    shard->taken = true;
  }
  // Claims of buses that are gone are dropped on the way (their pools have expired).
  std::erase_if(tls_claims.list, [](const Claim& c) { return c.pool.expired(); });
  tls_claims.list.push_back({id_, shard, std::weak_ptr<void>(pool_), [](void* pool, void* s) {
                               auto* p = static_cast<Pool*>(pool);
                               std::lock_guard lock(p->mutex);
                               static_cast<Shard*>(s)->taken = false;
                             }});
  tls_last_id_ = id_;
  tls_last_shard_ = shard;
  return *shard;
}

uint64_t* Metrics::new_chunk(Shard& s, uint32_t slot) noexcept {
  uint64_t* chunk = new (std::nothrow) uint64_t[kChunkCells]();
  if (!chunk) return discard_.get();  // counted nowhere rather than aborting
  s.chunks[slot / kSlotsPerChunk].store(chunk, std::memory_order_release);
  return chunk;
}

void Metrics::observe(uint32_t slot, int which, uint64_t ns) noexcept {
  if (!enabled_) return;
  uint64_t* h = cells(mine(), slot) + kCounters + which * kHistogramCells;
  const double seconds = static_cast<double>(ns) / 1e9;
  std::size_t b = 0;
  while (b < Histogram::kBounds.size() && seconds > Histogram::kBounds[b]) ++b;
  store(&h[b], load(&h[b]) + 1);
  store(&h[kBuckets], load(&h[kBuckets]) + 1);
  store(&h[kBuckets + 1], load(&h[kBuckets + 1]) + ns);
}

void Metrics::snapshot(std::vector<EventMetrics>& events, EventMetrics& total) const {
  std::vector<std::string> names;
  {
    std::lock_guard lock(names_->mutex);
    names = names_->by_slot;
  }
  std::vector<EventMetrics> slots(names.size());
  for (std::size_t i = 0; i < names.size(); ++i) slots[i].event = names[i];
  auto sum_histogram = [](Histogram& into, const uint64_t* h) {
    for (std::size_t b = 0; b < kBuckets; ++b) into.buckets[b] += load(&h[b]);
    into.count += load(&h[kBuckets]);
    into.sum += static_cast<double>(load(&h[kBuckets + 1])) / 1e9;
  };
  {
    std::lock_guard lock(pool_->mutex);
    for (const auto& shard : pool_->shards) {
      for (std::size_t slot = 0; slot < slots.size(); ++slot) {
        const uint64_t* c = shard->cells_if_any(static_cast<uint32_t>(slot));
        if (!c) continue;
        EventMetrics& m = slots[slot];
        m.published += load(&c[kPublished]);
        m.received += load(&c[kReceived]);
        m.delivered += load(&c[kDelivered]);
        m.handler_failures += load(&c[kFailed]);
        for (std::size_t r = 0; r < kDropReasonCount; ++r) m.dropped[r] += load(&c[kDropped + r]);
        sum_histogram(m.dispatch_latency, c + kCounters);
        sum_histogram(m.handler_duration, c + kCounters + kHistogramCells);
      }
    }
  }
  auto add_into = [](EventMetrics& to, const EventMetrics& m) {
    to.published += m.published;
    to.received += m.received;
    to.delivered += m.delivered;
    to.handler_failures += m.handler_failures;
    for (std::size_t r = 0; r < kDropReasonCount; ++r) to.dropped[r] += m.dropped[r];
    for (auto [to_h, from_h] : {std::pair{&to.dispatch_latency, &m.dispatch_latency},
                                std::pair{&to.handler_duration, &m.handler_duration}}) {
      for (std::size_t b = 0; b < kBuckets; ++b) to_h->buckets[b] += from_h->buckets[b];
      to_h->count += from_h->count;
      to_h->sum += from_h->sum;
    }
  };
  total = EventMetrics{};
  events.clear();
  for (std::size_t slot = 1; slot < slots.size(); ++slot) {
    add_into(total, slots[slot]);
    events.push_back(std::move(slots[slot]));
  }
  const EventMetrics& other = slots[0];
  add_into(total, other);
  if (other.published || other.received || other.delivered || other.handler_failures ||
      std::any_of(other.dropped.begin(), other.dropped.end(), [](uint64_t d) { return d != 0; })) {
    events.push_back(other);
  }
}

}  // namespace detail

namespace {

// The length of the well-formed UTF-8 sequence at the start of @p v, 0 if there is none.
std::size_t utf8_sequence(std::string_view v) noexcept {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(v[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range (RFC 3629, table 3-7)
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (v.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (std::size_t i = 2; i < n; ++i) {
    if (b(i) < 0x80 || b(i) > 0xBF) return 0;
  }
  return n;
}

// Label values escape backslash, double quote and newline, and must be UTF-8: a byte that
// starts no valid sequence becomes U+FFFD, or one odd name would make the whole scrape fail.
std::string label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  while (!v.empty()) {
    const char c = v.front();
    const std::size_t n = utf8_sequence(v);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.append(v.data(), n);
    }
    v.remove_prefix(n == 0 ? 1 : n);
  }
  return out;
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

}  // namespace

std::string prometheus_text(const MetricsSnapshot& s) {
  std::string out;
  auto counter = [&](const char* name, const char* help, auto value_of) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", name, help, name);
    for (const auto& e : s.events) {
      out += fmt::format("{}{{event=\"{}\"}} {}\n", name, label(e.event), value_of(e));
    }
  };
  counter("athomic_events_published_total", "Events published in this process.",
          [](const EventMetrics& e) { return e.published; });
  counter("athomic_events_received_total", "Events received from the transport.",
          [](const EventMetrics& e) { return e.received; });
  counter("athomic_handler_calls_total", "Handler calls made.",
          [](const EventMetrics& e) { return e.delivered; });
  counter("athomic_handler_failures_total", "Handler calls that threw.",
          [](const EventMetrics& e) { return e.handler_failures; });
  out += "# HELP athomic_events_dropped_total Deliveries lost, by reason: events (queue_full, "
         "malformed, no_handler, transport) or handler calls abandoned (close).\n"
         "# TYPE athomic_events_dropped_total counter\n";
  for (const auto& e : s.events) {
    for (std::size_t r = 0; r < kDropReasonCount; ++r) {
      out += fmt::format("athomic_events_dropped_total{{event=\"{}\",reason=\"{}\"}} {}\n",
                         label(e.event), drop_reason_name(static_cast<DropReason>(r)),
                         e.dropped[r]);
    }
  }
  auto histogram = [&](const char* name, const char* help, auto of) {
    out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
    for (const auto& e : s.events) {
      const Histogram& h = of(e);
      uint64_t cumulative = 0;
      for (std::size_t b = 0; b < Histogram::kBounds.size(); ++b) {
        cumulative += h.buckets[b];
        out += fmt::format("{}_bucket{{event=\"{}\",le=\"{}\"}} {}\n", name, label(e.event),
                           number(Histogram::kBounds[b]), cumulative);
      }
      cumulative += h.buckets.back();
      out += fmt::format("{}_bucket{{event=\"{}\",le=\"+Inf\"}} {}\n", name, label(e.event),
                         cumulative);
      out += fmt::format("{}_sum{{event=\"{}\"}} {}\n", name, label(e.event), number(h.sum));
      out += fmt::format("{}_count{{event=\"{}\"}} {}\n", name, label(e.event), h.count);
    }
  };
  histogram("athomic_dispatch_latency_seconds",
            "From publish (or receipt from the transport) to the start of a handler call, "
            "sampled.",
            [](const EventMetrics& e) -> const Histogram& { return e.dispatch_latency; });
  histogram("athomic_handler_duration_seconds", "How long handler calls take, sampled.",
            [](const EventMetrics& e) -> const Histogram& { return e.handler_duration; });
  auto gauge = [&](const char* name, const char* help, auto value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n{} {}\n", name, help, name, name, value);
  };
  gauge("athomic_queue_events", "Pool dispatch: events waiting for or running in handlers.",
        s.queued_events);
  gauge("athomic_queue_bytes", "Pool dispatch: bytes of those events.", s.queued_bytes);
  gauge("athomic_queue_max_events", "Pool dispatch: the queue's bound.", s.max_queued_events);
  gauge("athomic_handlers_running", "Pool dispatch: handler calls running now.", s.handlers_running);
  gauge("athomic_started", "1 when the bus is started.", s.started ? 1 : 0);
  out += "# HELP athomic_connection_state The provider's connection, as it reports it.\n"
         "# TYPE athomic_connection_state gauge\n";
  for (const char* state : {"up", "reconnecting", "down"}) {
    out += fmt::format("athomic_connection_state{{backend=\"{}\",state=\"{}\"}} {}\n",
                       label(s.backend), state, s.connection == state ? 1 : 0);
  }
  out += fmt::format(
      "# HELP athomic_connection_outages_total Times the connection went down.\n"
      "# TYPE athomic_connection_outages_total counter\n"
      "athomic_connection_outages_total{{backend=\"{}\"}} {}\n"
      "# HELP athomic_invalid_traceparent_total Received traceparent or tracestate values "
      "ignored as invalid (events.context.traceparent); the events were delivered.\n"
      "# TYPE athomic_invalid_traceparent_total counter\n"
      "athomic_invalid_traceparent_total{{backend=\"{}\"}} {}\n",
      label(s.backend), s.outages, label(s.backend), s.invalid_traceparent);
  return out;
}

}  // namespace athomic
