// The host's engine behind EventBus: registry, dispatch, lifecycle. Identical for every
// provider; the provider only moves bytes (or, in process, event handles).
#pragma once

#include "event_record.h"
#include "executor.h"
#include "provider_host.h"
#include "rate_limited_log.h"
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
#include <unordered_map>
#include <vector>

namespace athomic::detail {

class BusCore {
 public:
  explicit BusCore(const EventsSettings& settings);
  ~BusCore();

  void start();
  void close(std::chrono::milliseconds timeout);
  Subscription subscribe(std::string_view name, Handler handler);
  bool unsubscribe(const Subscription& s);
  // Borrows @p payload: inline dispatch uses it in place, pool dispatch keeps one owned copy.
  Completion publish(std::string_view name, const Payload& payload);
  std::size_t handler_count(std::string_view name) const;
  BusStats stats() const;
  ProviderDescription provider() const;
  const EventsSettings& settings() const noexcept { return settings_; }

  // The bus whose deliver_* this thread is inside, if any (handlers in inline dispatch).
  static thread_local const BusCore* delivering;

  // Host services, called by the provider.
  athomic_status deliver_event(EventRecord* record) noexcept;
  athomic_status deliver_message(std::string_view name, std::string_view body) noexcept;
  spdlog::logger& provider_logger() noexcept { return *provider_log_; }

 private:
  enum State : int { kCreated, kStarted, kClosing, kClosed };

  void dispatch_inline(EventRecord& r, const HandlerList& list) noexcept;
  void dispatch_pool(EventRecord& r, const HandlerList& list) noexcept;
  void decode_and_dispatch(EventRecord& r) noexcept;
  void skip_malformed(std::string_view name, const std::string& why) noexcept;
  void invoke(const Subscriber& s, const Event& ev, EventRecord& r) noexcept;
  static void run_task(void* self, Task& t) noexcept;
  static void drop_task(void* self, Task& t) noexcept;
  Completion publish_remote(std::string_view name, const Payload& payload);
  // A heap record for pool dispatch. The bus's own threads drop their references with
  // release(), which buries the record when it was the last (see free_buried); a Completion
  // may outlive the bus, so it frees the record itself when it holds the last reference.
  EventRecord* new_pool_record();
  void release(EventRecord* r) noexcept;
  void bury(EventRecord* r) noexcept;
  void free_buried() noexcept;
  [[noreturn]] void throw_not_running(std::string_view name) const;
  [[noreturn]] void throw_refused(std::string_view name, const std::string& error);

  // Registry helpers; callers hold registry_mutex_.
  void replace_list(Topic& t, std::shared_ptr<const HandlerList> next);
  void reclaim_retired();

  // Interest changes (the provider's interest_add/remove) are serialised by interest_mutex_
  // and made without the registry lock: a provider may wait for its own thread (the redis one
  // waits for the server's confirmation), and that thread may be running a handler that
  // subscribes. Such a handler does not wait for the interest mutex: it changes the handler
  // list and leaves the interest change to the thread holding the mutex (deferred_interest_).
  std::unique_lock<std::mutex> lock_interest();
  // With interest_mutex_ held and @p registry locked (released around provider calls).
  void apply_deferred_interest(std::unique_lock<std::mutex>& registry) noexcept;

  const EventsSettings settings_;
  const bool inline_mode_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<spdlog::logger> provider_log_;
  std::optional<ProviderInstance> provider_;
  bool remote_ = false;
  std::unique_ptr<Executor> executor_;

  std::atomic<int> state_{kCreated};
  std::mutex lifecycle_mutex_;

  std::mutex interest_mutex_;  // before registry_mutex_ when both are taken
  mutable std::mutex registry_mutex_;
  TopicTable topics_;
  std::unordered_map<uint64_t, std::shared_ptr<Subscriber>> subscribers_;
  std::vector<std::shared_ptr<const HandlerList>> retired_;
  std::vector<Topic*> deferred_interest_;  // guarded by registry_mutex_
  uint64_t next_id_ = 0;

  std::atomic<uint64_t> handler_failures_{0};
  std::atomic<uint64_t> malformed_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> undeliverable_{0};
  std::atomic<uint64_t> publish_failures_{0};
  RateLimitedLog malformed_log_;

  // Pool records, with their payload and context, are freed by the thread that makes the next
  // record (the publisher, or the provider thread that receives) rather than by the worker that
  // ran the last handler: that thread's allocations then reuse its own freed memory instead of
  // missing the allocator's per-thread cache every time. Freed at once beyond kMaxBuried.
  static constexpr uint32_t kMaxBuried = 4096;
  std::atomic<EventRecord*> buried_{nullptr};
  std::atomic<uint32_t> buried_count_{0};
};

}  // namespace athomic::detail
