// Boost.Asio integration, header-only: wait for a publish with any completion token
// (`co_await athomic::asio::async_wait(bus.publish(...), boost::asio::use_awaitable)`), and run
// a subscription's handler on an executor of the application's choosing, inside the
// publisher's execution context. No other public header mentions Asio, and the hook into the
// core is only Completion::then: include this header only where Asio is used (Boost 1.74 or
// later, header-only parts).
#pragma once

// Before any Asio header: Boost 1.74's use std::exchange without including <utility>.
#include <utility>

#include <athomic/bus.h>
#include <athomic/context.h>
#include <athomic/event.h>
#include <athomic/log.h>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>
#include <boost/version.hpp>

#include <atomic>
#include <condition_variable>
#include <exception>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

static_assert(BOOST_VERSION >= 107400, "<athomic/asio.hpp> needs Boost 1.74 or later");

namespace athomic::asio {

// ---------------------------------------------------------------------------------------------
// Errors

/// Error values of async_wait, in category() ("athomic"). A boost::system::error_code; it
/// converts to std::error_code too.
enum class error {
  /// The transport failed the publish (it refused it, its server did, or it stopped before it
  /// could send it). The reason is Completion::error() on the Completion the handler receives.
  publish_failed = 1,
};

namespace detail {
class error_category_impl final : public boost::system::error_category {
 public:
  // A fixed identity: codes compare equal across shared libraries that each have a copy.
  constexpr error_category_impl() noexcept : error_category(0x6174686f6d696331ULL) {}
  const char* name() const noexcept override { return "athomic"; }
  std::string message(int value) const override {
    switch (static_cast<error>(value)) {
      case error::publish_failed:
        return "the transport failed the publish (Completion::error() says why)";
    }
    return "unknown athomic error " + std::to_string(value);
  }
};
}  // namespace detail

/// The category of athomic::asio::error.
inline const boost::system::error_category& category() noexcept {
  static const detail::error_category_impl instance;
  return instance;
}

inline boost::system::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), category()};
}

}  // namespace athomic::asio

template <>
struct boost::system::is_error_code_enum<athomic::asio::error> : std::true_type {};

namespace athomic::asio {

/// The signature async_wait completes with: an empty code when the publish was delivered
/// (in process: every handler ran, whether or not it threw — see
/// Completion::failed_handlers()), error::publish_failed when the transport failed it; and the
/// Completion, done, to read receivers(), failed_handlers() and error() from.
using wait_signature = void(boost::system::error_code, Completion);

namespace detail {

// The execution context an executor belongs to: its query (Asio's new executor model), or its
// context() (the older one, and use_future's executor).
template <class Executor>
boost::asio::execution_context& context_of(const Executor& ex) {
  using context_as = boost::asio::execution::context_as_t<boost::asio::execution_context&>;
  if constexpr (boost::asio::can_query<const Executor&, context_as>::value) {
    return boost::asio::query(ex, context_as());
  } else {
    return ex.context();
  }
}

struct wait_state;
struct subscriber_base;

// What athomic holds that belongs to one execution context: pending waits, and subscriptions
// whose executor is the context's. Each of them shares it, so it outlives the context: a
// publish completing, or an event arriving, after the context shut down finds out here
// instead of touching the context.
struct context_registry {
  std::mutex mutex;
  std::condition_variable idle;  // posting fell to 0 during the shutdown
  std::atomic<bool> shut_down{false};
  std::atomic<unsigned> posting{0};  // threads handing work to the context right now
  // Under mutex:
  wait_state* waits = nullptr;
  std::list<std::weak_ptr<subscriber_base>> subscribers;
  bool subscribers_taken = false;  // the shutdown emptied the list

  // Announces a post to the context: false once it shuts down (post nothing then). A pair of
  // sequentially consistent operations on each side, so the shutdown either sees the post
  // coming and waits for it, or the poster sees the shutdown.
  bool enter() noexcept {
    posting.fetch_add(1, std::memory_order_seq_cst);
    if (!shut_down.load(std::memory_order_seq_cst)) return true;
    leave();
    return false;
  }
  void leave() noexcept {
    if (posting.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        shut_down.load(std::memory_order_seq_cst)) {
      std::lock_guard lock(mutex);
      idle.notify_all();
    }
  }
};

// A subscription's hold on its executor, given up when the executor's context shuts down.
struct subscriber_base {
  virtual ~subscriber_base() = default;
  virtual void detach() noexcept = 0;
};

// A handler waiting for a publish, with the outstanding work on its executor. Destroying it
// destroys the handler uncalled.
struct pending_handler {
  virtual ~pending_handler() = default;
  // Hands the handler, with the verdict and the Completion, to its executor (post: never
  // invoked inline).
  virtual void post(Completion&& done) = 0;
};

// One async_wait, from the call (which registers the Completion's continuation) to the
// handler's posting. Once linked into its context's registry, whoever unlinks it under the
// registry's mutex owns the handler: the completing side posts it, the context's shutdown
// destroys it.
struct wait_state {
  explicit wait_state(Completion&& c) : completion(std::move(c)) {}
  wait_state(const wait_state&) = delete;
  wait_state& operator=(const wait_state&) = delete;

  // Two arms: the publish is done (the continuation ran), and the handler is attached (the
  // initiation ran, after the continuation was registered). The second to fire completes.
  void fire() noexcept {
    if (arms.fetch_sub(1, std::memory_order_acq_rel) == 1) complete();
  }

  // In the initiation, on the thread that called async_wait or co_awaits it.
  void attach(std::shared_ptr<context_registry> r, std::unique_ptr<pending_handler> h,
              const std::shared_ptr<wait_state>& self) {
    registry = std::move(r);
    {
      std::lock_guard lock(registry->mutex);
      if (registry->shut_down.load()) return;  // the context is gone: h is destroyed uncalled
      handler = std::move(h);
      listed = self;
      next = registry->waits;
      if (next) next->prev = this;
      registry->waits = this;
    }
    fire();
  }

  // Caller holds registry->mutex; returns the registry's reference.
  std::shared_ptr<wait_state> unlink_locked() noexcept {
    if (prev) {
      prev->next = next;
    } else {
      registry->waits = next;
    }
    if (next) next->prev = prev;
    prev = next = nullptr;
    return std::move(listed);
  }

  void complete() noexcept {
    std::shared_ptr<wait_state> keep;
    std::unique_ptr<pending_handler> h;
    {
      // (The count of posts under way moves under the mutex here: the shutdown reads it
      // under the mutex too.)
      std::lock_guard lock(registry->mutex);
      if (!listed || registry->shut_down.load()) return;  // the shutdown destroys the handler
      registry->posting.fetch_add(1);
      keep = unlink_locked();
      h = std::move(handler);
    }
    try {
      h->post(std::move(completion));
    } catch (...) {
      // Out of memory while posting: the handler is destroyed uncalled, nothing leaks.
    }
    h.reset();
    registry->leave();
  }

  Completion completion;
  std::atomic<int> arms{2};
  // Set by attach():
  std::shared_ptr<context_registry> registry;
  std::unique_ptr<pending_handler> handler;  // under registry->mutex until unlinked
  std::shared_ptr<wait_state> listed;        // the registry's reference, while linked
  wait_state* prev = nullptr;
  wait_state* next = nullptr;
};

// When its context shuts down (io_context destroyed, or shutdown() called), destroys the
// handlers of pending waits uncalled — Asio's rule for every pending operation — and makes the
// subscriptions on its executors let go of them (their events are dropped from then on).
class context_service final : public boost::asio::execution_context::service {
 public:
  inline static boost::asio::execution_context::id id;
  explicit context_service(boost::asio::execution_context& owner)
      : service(owner), registry_(std::make_shared<context_registry>()) {}
  const std::shared_ptr<context_registry>& registry() const noexcept { return registry_; }

 private:
  void shutdown() override {
    std::vector<std::shared_ptr<wait_state>> waits;
    std::vector<std::shared_ptr<subscriber_base>> subscribers;
    registry_->shut_down.store(true, std::memory_order_seq_cst);
    {
      std::unique_lock lock(registry_->mutex);
      // A post under way finishes first: what it posts lands in the context's queue, which
      // the context destroys after this.
      registry_->idle.wait(lock, [&] { return registry_->posting.load() == 0; });
      while (registry_->waits) waits.push_back(registry_->waits->unlink_locked());
      for (auto& weak : registry_->subscribers) {
        if (auto s = weak.lock()) subscribers.push_back(std::move(s));
      }
      registry_->subscribers.clear();
      registry_->subscribers_taken = true;
    }
    for (auto& w : waits) w->handler.reset();  // unlinked: ours
    for (auto& s : subscribers) s->detach();
  }
  std::shared_ptr<context_registry> registry_;
};

template <class Executor>
const std::shared_ptr<context_registry>& registry_for(const Executor& ex) {
  return boost::asio::use_service<context_service>(context_of(ex)).registry();
}

// Invokes the handler with the verdict, on its executor, and ends the outstanding work after.
template <class Handler, class Executor>
struct wait_invoker {
  Handler handler;
  boost::asio::executor_work_guard<Executor> work;
  Completion completion;

  using allocator_type = boost::asio::associated_allocator_t<Handler>;
  allocator_type get_allocator() const noexcept {
    return boost::asio::get_associated_allocator(handler);
  }
  void operator()() {
    boost::system::error_code ec;
    if (!completion.delivered()) ec = error::publish_failed;
    handler(ec, std::move(completion));
  }
};

template <class Handler, class Executor>
class handler_on_executor final : public pending_handler {
 public:
  handler_on_executor(Handler&& h, const Executor& ex) : work_(ex), handler_(std::move(h)) {}
  // The handler goes before the work on its executor ends.
  ~handler_on_executor() override { handler_.reset(); }

  void post(Completion&& done) override {
    const Executor ex = work_.get_executor();
    boost::asio::post(ex, wait_invoker<Handler, Executor>{std::move(*handler_), std::move(work_),
                                                          std::move(done)});
  }

 private:
  boost::asio::executor_work_guard<Executor> work_;
  std::optional<Handler> handler_;
};

struct initiate_wait {
  template <class Handler, class DefaultExecutor>
  void operator()(Handler&& handler, std::shared_ptr<wait_state> state,
                  const DefaultExecutor& ex) const {
    using H = std::decay_t<Handler>;
    using handler_executor = boost::asio::associated_executor_t<H, DefaultExecutor>;
    const handler_executor handler_ex = boost::asio::get_associated_executor(handler, ex);
    auto& registry = registry_for(handler_ex);
    state->attach(registry,
                  std::make_unique<handler_on_executor<H, handler_executor>>(
                      H(std::forward<Handler>(handler)), handler_ex),
                  state);
  }
};

// Registers the continuation before any handler exists: a Completion that cannot be waited on
// throws here, at the call, whatever the token.
inline std::shared_ptr<wait_state> start_wait(Completion&& completion) {
  auto state = std::make_shared<wait_state>(std::move(completion));
  state->completion.then([state] { state->fire(); });
  return state;
}

}  // namespace detail

/// Waits, without blocking, for a publish to be done, then completes @p token with
/// wait_signature. Any completion token: `boost::asio::use_awaitable` (the co_await yields the
/// Completion, or throws boost::system::system_error with error::publish_failed; wrap the token
/// in `boost::asio::redirect_error(use_awaitable, ec)` to read Completion::error() instead),
/// a callback `void(boost::system::error_code, athomic::Completion)`, `use_future`
/// (std::future<Completion>).
///
/// Ownership: async_wait takes the Completion and holds it for the whole wait; the handler gets
/// it back, done. If the handler is destroyed instead of called (its execution context shut
/// down or destroyed first), the Completion goes when the publish is done.
///
/// Where the handler runs: on its associated executor (the coroutine's for use_awaitable),
/// which is @p ex for a handler without one (the overload without @p ex: Asio's default,
/// boost::asio::system_executor). It is always posted there, even when the publish is done
/// already — never run inside async_wait, nor on the bus's thread that completed the publish.
/// The wait counts as outstanding work on that executor: io_context::run() does not return
/// while it is pending.
///
/// It never blocks, so unlike Completion::wait() it may be used inside a handler of the same
/// bus. It cannot be cancelled (Asio 1.74 has no per-operation cancellation); close() on the
/// bus completes every pending publish. Throws EventBusError when Completion::then() was
/// already used on this Completion (one continuation per publish).
template <class Executor, class CompletionToken>
requires(boost::asio::execution::is_executor<Executor>::value ||
         boost::asio::is_executor<Executor>::value) auto async_wait(const Executor& ex,
                                                                    Completion completion,
                                                                    CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, wait_signature>(
      detail::initiate_wait{}, token, detail::start_wait(std::move(completion)), ex);
}

template <class CompletionToken>
auto async_wait(Completion completion, CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, wait_signature>(
      detail::initiate_wait{}, token, detail::start_wait(std::move(completion)),
      boost::asio::system_executor());
}

// ---------------------------------------------------------------------------------------------
// Handlers on an executor

namespace detail {

// A posted handler threw: isolated like the bus's own (logged with the event name; the
// restored context puts its trace_id on the line), so the executor's run() carries on.
inline void log_executor_handler_failure(std::string_view event_name) noexcept {
  try {
    try {
      throw;
    } catch (const std::exception& e) {
      get_logger("athomic.events")
          ->error("handler on an executor for '{}' threw: {}", event_name, e.what());
    } catch (...) {
      get_logger("athomic.events")
          ->error("handler on an executor for '{}' threw a non-standard exception", event_name);
    }
  } catch (...) {
  }
}

// Closes a subscription's calls already posted to its executor when it is unsubscribed, and
// lets unsubscribe wait for one that is running: the bus's "never called again, and not
// running" then holds for the handler itself, not only for the posting.
class call_gate {
 public:
  // Around each call on the executor; false once closed (the call is skipped).
  bool enter() {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    ++running_;
    return true;
  }
  void leave() {
    std::lock_guard lock(mutex_);
    if (--running_ == 0) idle_.notify_all();
  }
  // Waits for a running call unless this thread is inside one of this header's calls (it may
  // be that call, or one another unsubscribe is waiting for: never wait there, as the bus
  // doesn't inside its handlers).
  void close() {
    std::unique_lock lock(mutex_);
    closed_ = true;
    if (inside_call == 0) idle_.wait(lock, [&] { return running_ == 0; });
  }

  // Calls of any gate running on this thread.
  static inline thread_local unsigned inside_call = 0;

 private:
  std::mutex mutex_;
  std::condition_variable idle_;
  bool closed_ = false;
  unsigned running_ = 0;
};

// One event, as captured on the bus's thread: what an Event views, owned.
template <class F>
struct executor_delivery {
  std::shared_ptr<call_gate> gate;
  std::shared_ptr<F> handler;
  ContextPtr context;
  Payload payload;
  std::string name;

  void operator()() {
    if (!gate->enter()) return;  // unsubscribed since it was posted
    struct leave_on_exit {
      call_gate& gate;
      ~leave_on_exit() {
        --call_gate::inside_call;
        gate.leave();
      }
    } leave{*gate};
    ++call_gate::inside_call;
    ContextScope scope(std::move(context));
    const Event event(name, payload, ExecutionContext::current());
    try {
      if constexpr (std::is_invocable_v<F&, const Event&>) {
        (*handler)(event);
      } else {
        (*handler)(event.payload());
      }
    } catch (...) {
      log_executor_handler_failure(name);
    }
  }
};

inline void log_context_gone(std::string_view event_name) noexcept {
  try {
    get_logger("athomic.events")
        ->warn(
            "events for '{}' are dropped: the execution context of the executor their "
            "handler runs on has shut down (unsubscribe before destroying it)",
            event_name);
  } catch (...) {
  }
}

// What the bus's handler of one subscription holds: the user's handler and the executor,
// until the executor's context shuts down, and the gate its unsubscribe closes.
template <class Executor, class F>
class executor_subscriber final : public subscriber_base {
 public:
  executor_subscriber(std::shared_ptr<context_registry> r, const Executor& ex, F&& f)
      : registry_(std::move(r)), executor_(ex), handler_(std::make_shared<F>(std::move(f))) {}

  static std::shared_ptr<executor_subscriber> create(const Executor& ex, F&& f) {
    auto s = std::make_shared<executor_subscriber>(registry_for(ex), ex, std::move(f));
    s->gate_ = std::make_shared<call_gate>();
    std::lock_guard lock(s->registry_->mutex);
    if (!s->registry_->subscribers_taken) {
      s->where_ = s->registry_->subscribers.insert(s->registry_->subscribers.end(), s);
      s->linked_ = true;
    }
    return s;
  }
  ~executor_subscriber() override {
    std::lock_guard lock(registry_->mutex);
    if (linked_ && !registry_->subscribers_taken) registry_->subscribers.erase(where_);
  }

  // On the bus's thread, inside the event's context.
  void deliver(const Event& e) {
    if (!registry_->enter()) {
      if (!warned_.exchange(true, std::memory_order_relaxed)) log_context_gone(e.name());
      return;
    }
    struct leave_on_exit {
      context_registry& r;
      ~leave_on_exit() { r.leave(); }
    } leave{*registry_};
    boost::asio::post(*executor_,
                      executor_delivery<F>{gate_, handler_, ExecutionContext::current_ptr(),
                                           e.payload_ptr(), std::string(e.name())});
  }
  const std::shared_ptr<call_gate>& gate() const noexcept { return gate_; }

 private:
  // Runs once no deliver() is posting and none will (see context_service::shutdown).
  void detach() noexcept override {
    handler_.reset();
    executor_.reset();
  }

  const std::shared_ptr<context_registry> registry_;
  std::optional<Executor> executor_;
  std::shared_ptr<F> handler_;
  std::shared_ptr<call_gate> gate_;
  typename std::list<std::weak_ptr<subscriber_base>>::iterator where_;  // under registry mutex
  bool linked_ = false;                                                 // under registry mutex
  std::atomic<bool> warned_{false};
};

}  // namespace detail

/// A subscription whose handler runs on an executor (asio::subscribe). Remove it with
/// asio::unsubscribe(bus, s); bus.unsubscribe(s.subscription()) would only stop the posting.
class ExecutorSubscription {
 public:
  ExecutorSubscription() = default;
  ExecutorSubscription(Subscription s, std::shared_ptr<detail::call_gate> gate)
      : subscription_(std::move(s)), gate_(std::move(gate)) {}
  const Subscription& subscription() const noexcept { return subscription_; }
  /// False for the subscription a disabled bus returns.
  explicit operator bool() const noexcept { return static_cast<bool>(subscription_); }

 private:
  friend bool unsubscribe(EventBus& bus, const ExecutorSubscription& s);
  Subscription subscription_;
  std::shared_ptr<detail::call_gate> gate_;
};

/// Removes a subscription made with asio::subscribe. When it returns the handler will not be
/// called again — calls already posted to the executor are skipped when their turn comes —
/// and, unless called from inside a handler run by this header, is not running on any thread
/// (it waits for a call in progress, as EventBus::unsubscribe does; inside one, waiting could
/// be waiting for itself, so the promise there is only "never called again").
/// @return false if the subscription was not (or no longer) registered with the bus.
inline bool unsubscribe(EventBus& bus, const ExecutorSubscription& s) {
  const bool removed = bus.unsubscribe(s.subscription_);  // nothing more is posted
  if (s.gate_) s.gate_->close();                          // nor run, of what was
  return removed;
}

/// Subscribes @p handler (taking `const Event&`, or only the payload `const nlohmann::json&`)
/// to @p event_name so that it runs on @p executor, inside the publisher's execution context:
/// the bus's own handler captures the context, the payload (shared, not copied) and the name,
/// and posts the call to @p executor, which installs the context around it. Unsubscribe with
/// asio::unsubscribe(bus, subscription).
///
/// What becomes of the bus's guarantees (its handler is only the posting step):
///  * Order: the bus posts one subscription's events in publishing order. A serial executor —
///    a strand, or an io_context run by one thread — runs them in that order, one at a time;
///    a multi-threaded one runs them concurrently, in any order.
///  * Unsubscribe: when asio::unsubscribe() returns, nothing more is posted, calls posted before
///    are skipped (they still take their turn on the executor, and keep what they hold until
///    then), and — from outside this header's handlers — none is running.
///  * Completion: a publish is done once the call is posted, not run; failed_handlers() and
///    stats().handler_failures do not see exceptions thrown on the executor (they are logged).
///  * Bounds: the pool's queue bound (executor.max_queued_events/bytes) covers the posting
///    only; calls waiting in the executor's queue are bounded by nothing but the executor.
///  * Lifetime: each posted call keeps the handler, the payload and the context alive until it
///    has run (or the executor's context destroys it uncalled); the handler object is
///    destroyed on whichever thread lets go of it last. When the executor's execution context
///    shuts down (an io_context destroyed) before unsubscribe(), the subscription lets go of
///    the handler and the executor then, and drops its later events (logged once): safe, but
///    unsubscribe first — those drops are counted nowhere.
///
/// @throws what EventBus::subscribe throws.
template <class Executor, class F>
requires(boost::asio::execution::is_executor<Executor>::value ||
         boost::asio::is_executor<Executor>::value) &&
    (std::is_invocable_v<F&, const Event&> ||
     std::is_invocable_v<F&, const nlohmann::json&>)ExecutorSubscription
    subscribe(EventBus& bus, std::string_view event_name, const Executor& executor, F handler,
              const SubscribeOptions& options = {}) {
  auto subscriber = detail::executor_subscriber<Executor, F>::create(executor, std::move(handler));
  std::shared_ptr<detail::call_gate> gate = subscriber->gate();
  Subscription s = bus.subscribe(
      event_name,
      Handler([subscriber = std::move(subscriber)](const Event& e) { subscriber->deliver(e); }),
      options);
  return ExecutorSubscription(std::move(s), std::move(gate));
}

/// The same with the executor bound to the handler: `subscribe(bus, name,
/// boost::asio::bind_executor(strand, handler))`. (Passing such a handler to
/// EventBus::subscribe itself compiles, but the bus knows nothing of Asio and runs it on its
/// own thread: use this function.)
template <class F, class Executor>
ExecutorSubscription subscribe(EventBus& bus, std::string_view event_name,
                               boost::asio::executor_binder<F, Executor> handler,
                               const SubscribeOptions& options = {}) {
  const Executor executor = handler.get_executor();
  return asio::subscribe(bus, event_name, executor, std::move(handler.get()), options);
}

}  // namespace athomic::asio
