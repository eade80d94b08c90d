// The host's engine behind EventBus: registry, dispatch, lifecycle. Identical for every
// provider; the provider only moves bytes (or, in process, event handles).
#pragma once

#include "event_record.h"
#include "executor.h"
#include "provider_host.h"
#include "queue_budget.h"
#include "rate_limited_log.h"
#include "subscriber.h"
#include "topic_table.h"

#include <athomic/bus.h>
#include <athomic/settings.h>

#include <spdlog/logger.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace athomic::detail {

class BusCore : public std::enable_shared_from_this<BusCore> {
 public:
  explicit BusCore(const EventsSettings& settings);
  ~BusCore();

  void start();
  void close(std::chrono::milliseconds timeout);
  Subscription subscribe(std::string_view name, Handler handler, const SubscribeOptions& options);
  bool unsubscribe(const Subscription& s);
  // Borrows @p payload: inline dispatch uses it in place, pool dispatch keeps a reference.
  Completion publish(std::string_view name, const Payload& payload);
  std::size_t handler_count(std::string_view name) const;
  BusStats stats() const;
  ProviderDescription provider() const;
  const EventsSettings& settings() const noexcept { return settings_; }

  // Host services, called by the provider.
  athomic_status deliver_event(LocalDelivery* delivery) noexcept;
  athomic_status deliver_message(std::string_view name, std::string_view body) noexcept;
  spdlog::logger& provider_logger() noexcept { return *provider_log_; }

  // What the registry holds, for tests that check memory is given back.
  struct Internals {
    std::size_t topics = 0;
    std::size_t subscribers = 0;
    std::size_t retired_states = 0;
    std::size_t retired_subscribers = 0;
    std::size_t cached_records = 0;  // finished records kept by this bus for reuse
  };
  Internals internals() const;

 private:
  enum State : int { kCreated, kStarted, kClosing, kClosed };

  // ---- dispatch (bus_dispatch.cpp) ----
  void dispatch_inline(InlineEvent& ev, const TopicState& handlers) noexcept;
  // Queues @p ev on the lane of every handler (pool dispatch).
  void enqueue(PoolEvent& ev, const TopicState& handlers) noexcept;
  static void drain(void* self, Lane& lane, unsigned worker) noexcept;
  void deliver(Subscriber& s, PoolEvent& ev) noexcept;
  void finish(PoolEvent& ev) noexcept;
  bool decode_once(PoolEvent& ev) noexcept;
  // False when the handler threw (logged and counted here).
  bool invoke(const Subscriber& s, const Event& ev) noexcept;
  void skip_malformed(std::string_view name, const std::string& why) noexcept;
  Completion publish_pool(std::string_view name, const Payload& payload, const TopicState& handlers,
                          const ContextPtr* context);
  Completion publish_remote(std::string_view name, const Payload& payload);
  // Waits for room in the queue as the settings say, or throws.
  void take_budget(std::string_view name, uint64_t bytes);
  PoolEvent* take_record();
  void recycle(PoolEvent* e) noexcept;
  [[noreturn]] void throw_not_running(std::string_view name) const;
  [[noreturn]] void throw_refused(std::string_view name, const std::string& error);

  // ---- registry (bus_registry.cpp) ----
  Subscriber* find_subscriber(uint64_t id) const noexcept;
  void retire(const TopicState* s);
  void retire(Subscriber* s);
  // Frees what no thread can reach any more; with @p force, however few there are.
  void reclaim(bool force = false);
  void wait_until_unused(const Subscriber& sub, std::vector<const TopicState*> states);

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

  const EventsSettings settings_;
  const bool inline_mode_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<spdlog::logger> provider_log_;
  std::optional<ProviderInstance> provider_;
  bool remote_ = false;
  bool provider_retries_ = false;  // the provider delivers a refused message again (ABI >= 1.2)
  std::unique_ptr<Executor> executor_;
  QueueBudget budget_;

  std::atomic<int> state_{kCreated};
  std::atomic<bool> abandon_{false};  // close timed out: queued deliveries are dropped
  std::mutex lifecycle_mutex_;

  std::mutex interest_mutex_;  // before registry_mutex_ when both are taken
  mutable std::mutex registry_mutex_;
  TopicTable topics_;
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
  std::vector<RetiredSubscriber> retired_subscribers_;
  uint64_t retire_seq_ = 0;
  std::unordered_set<std::string> interest_;      // names the provider was told of
  std::vector<std::string> deferred_interest_;    // guarded by registry_mutex_
  uint64_t next_generation_ = 0;

  // The workers' record of what they run, for close's report of stuck handlers.
  struct WorkerNote {
    std::mutex mutex;
    uint64_t subscriber_id = 0;
    std::string event;
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
  RateLimitedLog malformed_log_;
  RateLimitedLog refusal_log_;

  // Records the workers finished, for the publishers' next events (freed beyond kMaxReturned).
  static constexpr uint32_t kMaxReturned = 1024;
  std::atomic<PoolEvent*> returned_{nullptr};
  std::atomic<uint32_t> returned_count_{0};
};

// White-box access for tests.
struct BusAccess {
  static BusCore* core(const EventBus& bus) noexcept { return bus.core_.get(); }
};

}  // namespace athomic::detail
