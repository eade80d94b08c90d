// Lifecycle: building the bus, start, close, counters.
#include "bus_core.h"

#include "metrics_endpoint.h"

#include "handler_frame.h"
#include "hazard.h"
#include "log_event.h"
#include "plugin_loader.h"

#include <athomic/errors.h>
#include <athomic/log.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <thread>

namespace athomic::detail {

namespace {

// Sleeps a little longer each round: waits here last as long as a handler runs.
void backoff(unsigned& round) {
  if (round < 64) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(std::min(1000u, 10u * (round - 63))));
  }
  ++round;
}

unsigned resolve_workers(unsigned configured) {
  if (configured != 0) return configured;
  return std::max(2u, std::thread::hardware_concurrency());
}

// How long close() gives workers that are not inside a handler to leave, past its deadline.
constexpr auto kExitMargin = std::chrono::milliseconds(200);

// Settings filled in code skip the loader's checks; the metrics' sizes are checked here, before
// anything is allocated from them.
const EventsSettings& checked_metrics(const EventsSettings& s) {
  if (s.metrics_max_events < 1 || s.metrics_max_events > 10000) {
    throw EventBusError(fmt::format(
        "events.metrics.max_events = {} is invalid: expected an integer from 1 to 10000",
        s.metrics_max_events));
  }
  if (s.metrics_latency_sample < 1 || s.metrics_latency_sample > 1000000) {
    throw EventBusError(fmt::format(
        "events.metrics.latency_sample = {} is invalid: expected an integer from 1 to 1000000",
        s.metrics_latency_sample));
  }
  if (!valid_metrics_listen(s.metrics_listen)) {
    throw EventBusError(fmt::format("events.metrics.listen = \"{}\" is invalid: {}",
                                    s.metrics_listen, kMetricsListenForm));
  }
  return s;
}

}  // namespace

BusCore::BusCore(const EventsSettings& settings)
    : settings_(checked_metrics(settings)),
      inline_mode_(settings.dispatch_mode == DispatchMode::inline_call),
      log_(get_logger("athomic.events")),
      budget_(settings.max_queued_events, settings.max_queued_bytes),
      metrics_(settings.metrics_enabled, settings.metrics_max_events, settings.metrics_latency_sample),
      max_returned_(static_cast<uint32_t>(
          std::clamp<std::size_t>(settings.max_queued_events / 4, 1024, 16384))) {
  LoadedPlugin plugin = load_provider_plugin(settings_.backend, settings_);
  provider_log_ = get_logger("athomic.provider." + std::string(plugin.info->name));
  nlohmann::json config = settings_.provider_config.is_object() ? settings_.provider_config
                                                                 : nlohmann::json::object();
  if (ATHOMIC_STRUCT_HOLDS(*plugin.info, athomic_provider_info, settings) && plugin.info->settings) {
    // The provider declared its keys: validate them like the host's own, defaults filled in.
    provider_settings_.emplace(plugin.info->settings, settings_, plugin.info->name);
    config = provider_settings_->effective();
  }
  config["backend"] = settings_.backend;  // the provider always sees the backend it serves
  provider_.emplace(plugin, this, config.dump(), settings_.origin);
  remote_ = provider_->has(ATHOMIC_CAP_REMOTE);
  acknowledges_ = remote_ && provider_->has(ATHOMIC_CAP_ACKNOWLEDGE);
  tracks_interest_ = !provider_->has(ATHOMIC_CAP_IN_PROCESS);
  loopback_ = provider_->has(ATHOMIC_CAP_LOOPBACK);  // honoured only with IN_PROCESS
  provider_retries_ = plugin.info->abi_major == ATHOMIC_ABI_VERSION_MAJOR && plugin.info->abi_minor >= 2;
  trace_headers_ = remote_ && settings_.traceparent && provider_->has(ATHOMIC_CAP_HEADERS);
  if (!inline_mode_) {
    const unsigned workers = resolve_workers(settings_.workers);
    notes_.reset(new WorkerNote[workers]);
    executor_ = std::make_unique<Executor>(workers, &BusCore::drain, this);
  }
}

BusCore::~BusCore() {
  endpoint_.reset();
  // EventBus closed this bus; whatever kept it alive past close (a handler that was still
  // running) has returned by now.
  if (executor_) executor_->stop(std::chrono::steady_clock::time_point::max(), nullptr);
  provider_.reset();
  std::lock_guard lock(registry_mutex_);
  topics_.for_each([](const TopicState* s) {
    for (uint32_t i = 0; i < s->count.load(std::memory_order_relaxed); ++i) s->at(i)->unref();
    TopicState::destroy(s);
  });
  for (const auto& r : retired_states_) TopicState::destroy(r.state);
  for (const auto& [pattern, subs] : pattern_subscribers_) {
    for (Subscriber* s : subs) s->unref();
  }
  delete patterns_.exchange(nullptr);
  for (const auto& r : retired_patterns_) delete r.set;
  for (const auto& r : retired_subscribers_) r.subscriber->unref();
  free_records(returned_.exchange(nullptr));
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

void BusCore::start() {
  std::lock_guard lifecycle(lifecycle_mutex_);
  const int s = state_.load();
  if (s == kStarted) return;
  if (s != kCreated) throw EventBusError("cannot start an event bus that was closed");
  if (!settings_.metrics_listen.empty()) start_endpoint();
  try {
    provider_->start();
  } catch (...) {
    endpoint_.reset();
    throw;
  }
  std::lock_guard interest(interest_mutex_);
  std::lock_guard registry(registry_mutex_);
  deferred_interest_.clear();  // handlers only run once started: this covers every topic
  try {
    if (tracks_interest_) {
      topics_.for_each([&](const TopicState* t) {
        provider_->interest_add(t->name());
        interest_.emplace(t->name());
      });
      for (const auto& [pattern, subs] : pattern_subscribers_) {
        provider_->interest_add(pattern);
        interest_.emplace(pattern);
      }
    }
  } catch (...) {
    provider_->stop();
    interest_.clear();
    endpoint_.reset();
    throw;
  }
  state_.store(kStarted);
  log_->info("event bus started: backend '{}', {} dispatch", settings_.backend,
             inline_mode_ ? "inline"
                          : fmt::format("{}-worker pool", resolve_workers(settings_.workers)));
}

bool BusCore::callers_in_flight() const {
  // Publishes and deliveries hold a hazard on this bus or on one of its handler arrays.
  std::vector<const void*> mine{this};
  {
    std::lock_guard registry(registry_mutex_);
    topics_.for_each([&](const TopicState* t) { mine.push_back(t); });
    for (const auto& r : retired_states_) mine.push_back(r.state);
    if (const PatternSet* p = patterns_.load()) mine.push_back(p);
    for (const auto& r : retired_patterns_) mine.push_back(r.set);
  }
  std::sort(mine.begin(), mine.end());
  return Hazards::any_other(
      [&](const void* v) { return std::binary_search(mine.begin(), mine.end(), v); });
}

bool BusCore::wait_for_callers(std::chrono::steady_clock::time_point deadline) const {
  unsigned round = 0;
  while (callers_in_flight()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    backoff(round);
  }
  return true;
}

void BusCore::close(std::chrono::milliseconds timeout) {
  if (HandlerFrame::inside(this)) {
    throw EventBusError("close() called from inside a handler of the same bus: it would wait for "
                        "that handler; call it from the thread that owns the bus");
  }
  std::lock_guard lifecycle(lifecycle_mutex_);
  const int before = state_.load();
  if (before == kClosed || before == kClosing) return;
  state_.store(kClosing, std::memory_order_seq_cst);
  budget_.wake_all();  // publishers waiting for room give up
  const auto deadline = std::chrono::steady_clock::now() + timeout;

  // Publishes and deliveries running on other threads (inline handlers run inside them).
  const bool callers_left = wait_for_callers(deadline);
  // Queued handler calls.
  if (executor_ && !budget_.wait_empty(deadline)) abandon_.store(true);

  if (before == kStarted) {
    if (callers_left) {
      std::lock_guard interest(interest_mutex_);  // an interest change in progress finishes first
      provider_->stop();
      if (const int64_t left = unacknowledged_.load(); left > 0) {
        log_->error("close: provider '{}' stopped without completing {} accepted publish(es); "
                    "their Completions stay pending (the provider breaks ABI 1.2's "
                    "ATHOMIC_CAP_ACKNOWLEDGE rule)",
                    provider_->plugin().info->name, left);
      }
    } else {
      // A thread is still inside the provider (or a handler it runs): stopping the provider
      // would wait for it. Stop it once that thread is out; this bus lives until then.
      log_->warn("close: a publish or delivery is still running after {} ms; the provider "
                 "stops once it returns",
                 timeout.count());
      std::thread([self = shared_from_this()] {
        unsigned round = 0;
        while (self->callers_in_flight()) backoff(round);
        std::lock_guard interest(self->interest_mutex_);
        self->provider_->stop();
      }).detach();
    }
  }

  if (executor_) {
    const auto exit_by = std::max(deadline, std::chrono::steady_clock::now()) + kExitMargin;
    const unsigned stuck = executor_->stop(exit_by, shared_from_this());
    if (stuck > 0) {
      std::map<std::string, unsigned> events;
      for (unsigned i = 0; i < executor_->size(); ++i) {
        std::lock_guard lock(notes_[i].mutex);
        if (!notes_[i].event.empty()) events[notes_[i].event]++;
      }
      running_at_close_.fetch_add(stuck, std::memory_order_relaxed);
      log_->warn("close: {} handler call(s) still running after {} ms (last events taken by "
                 "the workers: {}); not waiting for them. What they use stays alive until they "
                 "return; {} queued event(s) are dropped as they do",
                 stuck, timeout.count(), fmt::join(events, ", "), budget_.events());
    }
  }
  const uint64_t dropped = dropped_.load();
  if (dropped > 0) {
    log_->warn("close: {} handler call(s) had not started after {} ms and were dropped",
               dropped, timeout.count());
  }
  state_.store(kClosed);
  endpoint_.reset();
  if (before == kStarted) log_->info("event bus closed");
}

// ---------------------------------------------------------------------------------------------

BusStats BusCore::stats() const {
  BusStats s;
  s.handler_failures = handler_failures_.load(std::memory_order_relaxed);
  s.malformed_messages = malformed_.load(std::memory_order_relaxed);
  s.dropped_on_close = dropped_.load(std::memory_order_relaxed);
  s.undeliverable = undeliverable_.load(std::memory_order_relaxed);
  s.publish_failures = publish_failures_.load(std::memory_order_relaxed);
  s.queue_full = queue_full_.load(std::memory_order_relaxed);
  s.receive_refusals = receive_refusals_.load(std::memory_order_relaxed);
  s.dropped_queue_full = dropped_queue_full_.load(std::memory_order_relaxed);
  s.running_at_close = running_at_close_.load(std::memory_order_relaxed);
  s.queued_events = budget_.events();
  s.queued_bytes = budget_.bytes();
  s.dropped_by_transport = dropped_by_transport_.load(std::memory_order_relaxed);
  s.invalid_traceparent = invalid_traceparent_.load(std::memory_order_relaxed);
  std::lock_guard lock(health_mutex_);
  s.outages = outages_;
  return s;
}

MetricsSnapshot BusCore::metrics() const {
  MetricsSnapshot s;
  s.backend = settings_.backend;
  metrics_.snapshot(s.events, s.total);
  s.queued_events = budget_.events();
  s.queued_bytes = budget_.bytes();
  s.max_queued_events = executor_ ? budget_.max_events() : 0;
  if (executor_) {
    for (unsigned i = 0; i < executor_->size(); ++i) {
      s.handlers_running += notes_[i].running.load(std::memory_order_relaxed) ? 1 : 0;
    }
  }
  const BusHealth h = health();
  s.started = h.started;
  s.connection = h.connection == BusHealth::Connection::up             ? "up"
                 : h.connection == BusHealth::Connection::reconnecting ? "reconnecting"
                                                                       : "down";
  s.outages = h.outages;
  s.invalid_traceparent = invalid_traceparent_.load(std::memory_order_relaxed);
  return s;
}

void BusCore::start_endpoint() {
  endpoint_ = std::make_unique<MetricsEndpoint>(
      settings_.metrics_listen, [this] { return prometheus_text(metrics()); },
      [this] {
        const BusHealth h = health();
        MetricsEndpoint::Health out;
        out.healthy = h.healthy();
        const char* connection = h.connection == BusHealth::Connection::up ? "up"
                                 : h.connection == BusHealth::Connection::reconnecting
                                     ? "reconnecting"
                                     : "down";
        out.text = fmt::format(
            "{}\nstarted: {}\nbackend: {}\nconnection: {}{}\noutages: {}\nqueue_fill: {:.3f}\n",
            out.healthy ? "ok" : "unhealthy", h.started ? "yes" : "no", settings_.backend,
            connection, h.detail.empty() ? "" : fmt::format(" ({})", h.detail), h.outages,
            h.queue_fill);
        return out;
      },
      *log_);
  log_->info("metrics at http://{}/metrics, health at http://{}/healthz", endpoint_->address(),
             endpoint_->address());
}

std::string BusCore::metrics_address() const {
  std::lock_guard lifecycle(lifecycle_mutex_);
  return endpoint_ ? endpoint_->address() : std::string();
}

BusHealth BusCore::health() const {
  BusHealth h;
  h.started = state_.load() == kStarted;
  {
    std::lock_guard lock(health_mutex_);
    h.connection = state_reported_ ? connection_
                   : h.started     ? BusHealth::Connection::up
                                   : BusHealth::Connection::down;
    h.detail = connection_detail_;
    h.since = connection_since_;
    h.outages = outages_;
  }
  if (!h.started && h.connection == BusHealth::Connection::up) {
    h.connection = BusHealth::Connection::down;
  }
  h.queue_fill = executor_ ? static_cast<double>(budget_.events()) /
                                 static_cast<double>(budget_.max_events())
                           : 0.0;
  return h;
}

void BusCore::report_state(athomic_connection_state state, std::string_view detail) noexcept {
  const auto next = state == ATHOMIC_CONNECTION_UP             ? BusHealth::Connection::up
                    : state == ATHOMIC_CONNECTION_RECONNECTING ? BusHealth::Connection::reconnecting
                                                               : BusHealth::Connection::down;
  try {
    std::lock_guard lock(health_mutex_);
    const auto before = state_reported_ ? connection_ : BusHealth::Connection::up;
    state_reported_ = true;
    if (next != connection_ || detail != connection_detail_) {
      if (before == BusHealth::Connection::up && next != BusHealth::Connection::up &&
          state_.load() == kStarted) {
        ++outages_;
      }
      if (next != connection_) connection_since_ = std::chrono::system_clock::now();
      connection_ = next;
      connection_detail_.assign(detail);
    }
  } catch (...) {
  }
}

void BusCore::report_dropped(std::string_view event_name, uint64_t count,
                             std::string_view reason) noexcept {
  if (count == 0) return;
  dropped_by_transport_.fetch_add(count, std::memory_order_relaxed);
  metrics_.add(event_name.empty() ? Metrics::kOther : metrics_slot(event_name),
               Counter(kDropped + static_cast<int>(DropReason::transport)), count);
  uint64_t suppressed = 0;
  if (transport_drop_log_.admit(suppressed)) {
    LogEventScope about(event_name);
    try {
      log_->error("provider '{}' lost {} received message(s){}: {}{}",
                  provider_->plugin().info->name, count,
                  event_name.empty() ? std::string() : fmt::format(" for '{}'", event_name),
                  reason,
                  suppressed ? fmt::format(" ({} more reports since the last)", suppressed) : "");
    } catch (...) {
    }
  }
}

bool BusCore::provider_setting(std::string_view path, athomic_setting_value& out) const noexcept {
  try {
    return provider_settings_ && provider_settings_->get(path, out);
  } catch (...) {
    return false;
  }
}

ProviderDescription BusCore::provider() const {
  const auto& p = provider_->plugin();
  return ProviderDescription{p.info->name,    p.info->version,    p.file,
                             p.info->abi_major, p.info->abi_minor, provider_->capabilities()};
}

BusCore::Internals BusCore::internals() const {
  std::lock_guard lock(registry_mutex_);
  Internals i;
  i.topics = topics_.size();
  i.subscribers = subscriber_count_;
  i.retired_states = retired_states_.size();
  i.retired_subscribers = retired_subscribers_.size();
  i.cached_records = returned_count_.load();
  i.tracked = tracked_.size();
  return i;
}

const void* BusCore::current_version(std::string_view name) const {
  std::lock_guard lock(registry_mutex_);
  return topics_.get(name, TopicTable::hash_of(name));
}

std::vector<const void*> BusCore::retired_versions() const {
  std::lock_guard lock(registry_mutex_);
  std::vector<const void*> out;
  for (const auto& r : retired_states_) out.push_back(r.state);
  return out;
}

}  // namespace athomic::detail
