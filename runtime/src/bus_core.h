// The host's engine behind EventBus: registry, dispatch, lifecycle. Identical for every
// provider; the provider only moves bytes (or, in process, event handles).
#pragma once

#include "event_record.h"
#include "executor.h"
#include "metrics.h"
#include "pattern_index.h"
#include "provider_host.h"
#include "provider_settings.h"
#include "queue_budget.h"
#include "rate_limited_log.h"
#include "subscriber.h"
#include "topic_table.h"
#include "tracked_subscription.h"

#include <athomic/bus.h>
#include <athomic/settings.h>

#include <spdlog/logger.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace athomic::detail {

inline bool Audience::empty() const noexcept {
  return matched_count == 0 && (!exact || exact->count.load(std::memory_order_acquire) == 0);
}

class BusCore : public std::enable_shared_from_this<BusCore> {
 public:
  explicit BusCore(const EventsSettings& settings);
  ~BusCore();

  void start();
  void close(std::chrono::milliseconds timeout);
  Subscription subscribe(std::string_view name, Handler handler, const SubscribeOptions& options);
  // With @p wait false it promises only "never called again", as from inside a handler: for
  // tracked subscriptions whose object is gone, whose removal nobody waits for.
  bool unsubscribe(const Subscription& s, bool wait = true);
  TrackedRegistry& tracked() noexcept { return tracked_; }
  // Borrows @p payload: inline dispatch uses it in place, pool dispatch keeps a reference.
  Completion publish(std::string_view name, const Payload& payload);
  std::size_t handler_count(std::string_view name) const;
  BusStats stats() const;
  BusHealth health() const;
  MetricsSnapshot metrics() const;
  std::string metrics_address() const;
  ProviderDescription provider() const;
  const EventsSettings& settings() const noexcept { return settings_; }

  // Host services, called by the provider.
  athomic_status deliver_event(LocalDelivery* delivery) noexcept;
  // @p headers: the message's W3C headers (ABI 1.3), or null.
  athomic_status deliver_message(std::string_view name, std::string_view body,
                                 const TraceHeaders* headers = nullptr) noexcept;
  athomic_status deliver_message_to(std::string_view name, std::string_view body,
                                    std::string_view interest, athomic_interest_kind kind,
                                    const TraceHeaders* headers = nullptr) noexcept;
  athomic_status deliver_received(const athomic_received& message) noexcept;
  spdlog::logger& provider_logger() noexcept { return *provider_log_; }
  void publish_done(uint64_t token, athomic_status status, int64_t receivers,
                    std::string_view error) noexcept;
  void report_state(athomic_connection_state state, std::string_view detail) noexcept;
  void report_dropped(std::string_view event_name, uint64_t count, std::string_view reason) noexcept;
  bool provider_setting(std::string_view path, athomic_setting_value& out) const noexcept;

  // What the registry holds, for tests that check memory is given back.
  struct Internals {
    std::size_t topics = 0;
    std::size_t subscribers = 0;
    std::size_t retired_states = 0;
    std::size_t retired_subscribers = 0;
    std::size_t cached_records = 0;  // finished records kept by this bus for reuse
    std::size_t tracked = 0;         // tracked subscriptions remembered by their object
  };
  Internals internals() const;
  // The current version of @p name's handler array (nullptr when none), and the retired ones
  // not yet reclaimed: addresses, for tests of reclamation.
  const void* current_version(std::string_view name) const;
  std::vector<const void*> retired_versions() const;

 private:
  enum State : int { kCreated, kStarted, kClosing, kClosed };

  // ---- dispatch (bus_dispatch.cpp) ----
  // The pattern subscribers @p name matches, collected under a hazard on the pattern set.
  class Matches;
  void match_patterns(std::string_view name, Matches& out) const noexcept;
  // Publish's in-process half, to the handlers of @p to; inlined into publish, whose frame
  // holds the hazards @p to relies on.
  [[gnu::always_inline]] inline Completion publish_local(std::string_view name,
                                                         const Payload& payload,
                                                         const Audience& to, uint32_t mslot);
  // The same when pattern subscriptions exist: matches @p name against them first.
  [[gnu::noinline]] Completion publish_matched(std::string_view name, const Payload& payload,
                                               const TopicState* handlers, uint32_t mslot);
  void dispatch_inline(InlineEvent& ev, const Audience& to) noexcept;
  // The same, for an event the metrics sample: each call's start and duration are timed.
  [[gnu::noinline]] void dispatch_inline_timed(InlineEvent& ev, const Audience& to) noexcept;
  void count_calls(uint32_t mslot, uint32_t calls, uint32_t failed) noexcept {
    metrics_.add(mslot, kDelivered, calls);
    if (failed) metrics_.add(mslot, kFailed, failed);
  }
  // Queues @p ev on the lane of every handler (pool dispatch).
  void enqueue(PoolEvent& ev, const Audience& to, std::string_view name) noexcept;
  // Publishes @p m with the context's trace as headers (trace_headers_); out of line, so that
  // the header array costs the other publishes nothing.
  [[gnu::noinline]] athomic_status publish_with_trace_headers(athomic_message& m,
                                                              std::string_view parent,
                                                              std::string_view state,
                                                              std::string& error) noexcept;
  // A received message for @p to.
  athomic_status receive(std::string_view name, std::string_view body, const Audience& to,
                         const TraceHeaders* headers) noexcept;
  static void drain(void* self, Lane& lane, unsigned worker) noexcept;
  // What a worker finished, handed back to the bus together: the records, and the events'
  // places in the bound (at the end of a batch, or at once when a publisher waits for room).
  struct Finished {
    PoolEvent* head = nullptr;
    PoolEvent* tail = nullptr;
    uint32_t count = 0;
    uint64_t events = 0;
    uint64_t bytes = 0;
  };
  void deliver(Subscriber& s, PoolEvent& ev, Finished& finished) noexcept;
  // One delivery done; the record goes to @p finished (or straight back) when it was the last.
  void finish(PoolEvent& ev, Finished* finished) noexcept;
  [[gnu::noinline]] void finish_alone(PoolEvent& ev) noexcept;  // finish(ev, nullptr)
  bool decode_once(PoolEvent& ev, std::string_view name) noexcept;
  // False when the handler threw (logged and counted). Inline: it is the per-handler cost.
  bool invoke(const Subscriber& s, const Event& ev) noexcept {
    try {
      s.fn(ev);
      return true;
    } catch (...) {
      handler_threw(s, ev);
      return false;
    }
  }
  // Inside the catch block of a handler call: counts and logs the exception.
  [[gnu::cold]] void handler_threw(const Subscriber& s, const Event& ev) noexcept;
  void skip_malformed(std::string_view name, const std::string& why) noexcept;
  // A received event's traceparent or tracestate was ignored (the event is delivered).
  [[gnu::cold]] void ignore_trace_context(std::string_view name, const std::string& why) noexcept;
  // The metrics slot of a name that may have no topic.
  uint32_t metrics_slot(std::string_view name) noexcept;
  Completion publish_pool(std::string_view name, const Payload& payload, const Audience& to,
                          const ContextPtr* context, uint32_t mslot);
  Completion publish_remote(std::string_view name, const Payload& payload, uint32_t mslot);
  // trace_members(ctx), saying once in the log when the context has ids that are not W3C.
  std::string traced_members(const ExecutionContext& ctx);
  // Waits for room in the queue as the settings say, or throws.
  void take_budget(std::string_view name, uint64_t bytes, uint32_t mslot);
  PoolEvent* take_record();
  // Hands @p finished back: the records to the bus's list, the places to the bound.
  void recycle(Finished& finished) noexcept;
  [[noreturn]] void throw_not_running(std::string_view name) const;
  [[noreturn]] void throw_refused(std::string_view name, const std::string& error);

  // ---- registry (bus_registry.cpp) ----
  Subscriber* find_subscriber(uint64_t id) const noexcept;
  void retire(const TopicState* s);
  void retire(const PatternSet* p);
  void retire(Subscriber* s);
  // Replaces the pattern set by one built from pattern_subscribers_ (registry mutex held).
  void rebuild_patterns();
  // Frees what no thread can reach any more; with @p force, however few there are.
  void reclaim(bool force = false);
  // A retired version (topic state or pattern set) that held a subscriber, and its retirement:
  // once reclaimed, its address may come back as a current version (StateSpares), which a
  // hazard can name without any thread running the old one.
  struct HeldVersion {
    const void* version;
    uint64_t seq;
  };
  // Until no other thread runs @p sub: no worker drains its lanes, no thread holds one of
  // @p versions (those that held it, in inline dispatch) while it is still retired.
  void wait_until_unused(const Subscriber& sub, std::vector<HeldVersion> versions);
  // Takes @p sub out of its topic, or out of the pattern set (registry mutex held); adds to
  // @p containing what a thread running it inline may still hold.
  void remove_subscriber(Subscriber& sub, std::vector<HeldVersion>& containing);
  void remove_pattern_subscriber(Subscriber& sub, std::vector<HeldVersion>& containing);
  // Whether @p v is still waiting in the retired lists (registry mutex held).
  bool still_retired(const HeldVersion& v) const noexcept;

  // Interest changes (the provider's interest_add/remove) are serialised by interest_mutex_
  // and made without the registry lock: a provider may wait for its own thread (the redis one
  // waits for the server's confirmation), and that thread may be running a handler that
  // subscribes. A handler does not wait for the interest mutex: it changes the handler array
  // and leaves the interest change to the thread holding the mutex (deferred_interest_).
  std::unique_lock<std::mutex> lock_interest();
  // With interest_mutex_ held and @p registry locked (released around provider calls).
  void apply_deferred_interest(std::unique_lock<std::mutex>& registry) noexcept;

  // ---- lifecycle (bus_core.cpp) ----
  // Waits until no other thread is inside a publish or delivery of this bus, or @p deadline.
  bool wait_for_callers(std::chrono::steady_clock::time_point deadline) const;
  bool callers_in_flight() const;
  void start_endpoint();

  const EventsSettings settings_;
  const bool inline_mode_;
  // What the per-thread cache of the encoded context is for: the propagated fields, and one
  // bit above them when the W3C members are encoded too (events.context.traceparent).
  const ContextFieldMask context_cache_key_ =
      settings_.propagated_fields | (settings_.traceparent ? ContextFieldMask{1} << 31 : 0);
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<spdlog::logger> provider_log_;
  std::optional<ProviderSettings> provider_settings_;  // when the provider declares its keys
  std::optional<ProviderInstance> provider_;
  bool remote_ = false;
  bool acknowledges_ = false;  // the provider completes publishes with publish_done
  // Remote providers are told which names have handlers; an in-process one has every handler
  // in this process already, so it is not (ABI 1.2).
  bool tracks_interest_ = false;
  // ATHOMIC_CAP_LOOPBACK (ABI 1.5): publish would only hand the event back, so it is not called.
  bool loopback_ = false;
  bool provider_retries_ = false;  // the provider delivers a refused message again (ABI >= 1.2)
  // events.context.traceparent on a provider with ATHOMIC_CAP_HEADERS: the trace also travels
  // as message headers.
  bool trace_headers_ = false;
  std::unique_ptr<Executor> executor_;
  QueueBudget budget_;

  std::atomic<int> state_{kCreated};
  std::atomic<bool> abandon_{false};  // close timed out: queued deliveries are dropped
  mutable std::mutex lifecycle_mutex_;

  std::mutex interest_mutex_;  // before registry_mutex_ when both are taken
  mutable std::mutex registry_mutex_;
  TopicTable topics_;
  StateSpares spare_states_;  // registry mutex
  struct SubscriberSlot {
    uint32_t generation = 0;
    Subscriber* subscriber = nullptr;
  };
  std::vector<SubscriberSlot> subscribers_;  // indexed by the low half of a subscription id
  std::vector<uint32_t> free_slots_;
  std::size_t subscriber_count_ = 0;
  struct RetiredState {
    const TopicState* state;
    uint64_t seq;
  };
  struct RetiredSubscriber {
    Subscriber* subscriber;
    uint64_t seq;
  };
  std::vector<RetiredState> retired_states_;
  struct RetiredPatterns {
    const PatternSet* set;
    uint64_t seq;
  };
  std::vector<RetiredPatterns> retired_patterns_;
  std::vector<RetiredSubscriber> retired_subscribers_;
  // Wildcard subscriptions: by pattern, in subscription order (registry mutex); and the set
  // publishers match against (hazard-protected; nullptr while there are none).
  std::map<std::string, std::vector<Subscriber*>, std::less<>> pattern_subscribers_;
  std::atomic<const PatternSet*> patterns_{nullptr};
  uint64_t retire_seq_ = 0;
  struct NameHasher {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return hash_name(s); }
  };
  // Names the provider was told of.
  std::unordered_set<std::string, NameHasher, std::equal_to<>> interest_;
  std::vector<std::string> deferred_interest_;    // guarded by registry_mutex_
  uint64_t next_generation_ = 0;
  TrackedRegistry tracked_;

  // The workers' record of what they run, for close's report of stuck handlers.
  struct WorkerNote {
    std::mutex mutex;
    uint64_t subscriber_id = 0;
    std::string event;
    std::atomic<bool> running{false};  // inside a handler call (the metrics' gauge)
  };
  std::unique_ptr<WorkerNote[]> notes_;

  std::atomic<uint64_t> handler_failures_{0};
  std::atomic<uint64_t> malformed_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> undeliverable_{0};
  std::atomic<uint64_t> publish_failures_{0};
  std::atomic<uint64_t> queue_full_{0};
  std::atomic<uint64_t> receive_refusals_{0};
  std::atomic<uint64_t> dropped_queue_full_{0};
  std::atomic<uint64_t> running_at_close_{0};
  std::atomic<uint64_t> dropped_by_transport_{0};
  std::atomic<uint64_t> invalid_traceparent_{0};
  std::atomic<bool> said_no_traceparent_{false};  // the log line about non-W3C ids, once
  std::atomic<int64_t> unacknowledged_{0};  // publishes the provider has not completed yet
  Metrics metrics_;
  std::unique_ptr<class MetricsEndpoint> endpoint_;
  RateLimitedLog malformed_log_{log_, spdlog::level::warn, "malformed message(s) skipped"};
  RateLimitedLog refusal_log_{log_, spdlog::level::err,
                              "received event(s) dropped: the dispatch queue stayed full"};
  RateLimitedLog transport_failure_log_{log_, spdlog::level::err,
                                        "publish(es) the provider could not deliver"};
  RateLimitedLog transport_drop_log_{log_, spdlog::level::err,
                                     "report(s) of received messages the provider lost"};
  RateLimitedLog trace_context_log_{log_, spdlog::level::warn,
                                    "received trace context(s) ignored"};

  // The connection as the provider reports it (ABI 1.2).
  mutable std::mutex health_mutex_;
  bool state_reported_ = false;
  BusHealth::Connection connection_ = BusHealth::Connection::down;
  std::string connection_detail_;
  std::chrono::system_clock::time_point connection_since_ = std::chrono::system_clock::now();
  uint64_t outages_ = 0;

  // Records the workers finished, for the publishers' next events: a quarter of the queue's
  // bound, within [1024, 16384] (freed beyond). A record is about 200 bytes.
  const uint32_t max_returned_;
  std::atomic<PoolEvent*> returned_{nullptr};
  std::atomic<uint32_t> returned_count_{0};
};

// The pattern subscribers one event reaches. Holds a hazard on the pattern set they came from
// for as long as it lives.
class BusCore::Matches {
 public:
  void add(Subscriber* s) {
    if (count_ < kSmall) {
      small_[count_++] = s;
      return;
    }
    if (more_.empty()) more_.assign(small_, small_ + kSmall);
    more_.push_back(s);
    ++count_;
  }
  Subscriber* const* data() const noexcept { return count_ <= kSmall ? small_ : more_.data(); }
  uint32_t size() const noexcept { return count_; }
  HazardSlot slot;

 private:
  static constexpr uint32_t kSmall = 16;
  Subscriber* small_[kSmall];
  std::vector<Subscriber*> more_;
  uint32_t count_ = 0;
};

// White-box access for tests.
struct BusAccess {
  static BusCore* core(const EventBus& bus) noexcept { return bus.core_.get(); }
};

}  // namespace athomic::detail
