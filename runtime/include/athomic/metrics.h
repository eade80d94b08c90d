// What the bus counts, per event name and in total, and the Prometheus text format of it.
#pragma once

#include <athomic/export.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace athomic {

/// Why an event was not delivered.
enum class DropReason : uint8_t {
  queue_full,  ///< the pool's queue stayed full (a publish refused, a received message dropped)
  close,       ///< close() stopped waiting for it
  malformed,   ///< a received message that did not decode
  no_handler,  ///< a received message nobody in this process subscribes to
  transport,   ///< the transport refused or failed it
};
inline constexpr std::size_t kDropReasonCount = 5;
/// "queue_full", "close", … — the `reason` label.
ATHOMIC_API const char* drop_reason_name(DropReason r) noexcept;

/// A histogram with fixed bucket bounds (seconds), as Prometheus keeps one.
struct Histogram {
  /// Upper bounds of the buckets, ascending; the last bucket (+Inf) is implicit.
  static constexpr std::array<double, 14> kBounds = {
      1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.25, 1.0};
  /// Observations in each bucket (not cumulative); the last is above every bound.
  std::array<uint64_t, kBounds.size() + 1> buckets{};
  uint64_t count = 0;
  double sum = 0;  ///< seconds
};

/// The counters of one event name (or of every name past the cap, as "_other").
struct EventMetrics {
  std::string event;
  uint64_t published = 0;         ///< publishes accepted in this process
  uint64_t received = 0;          ///< messages received from the transport
  uint64_t delivered = 0;         ///< handler calls
  uint64_t handler_failures = 0;  ///< handler calls that threw
  /// By DropReason: events, except DropReason::close, which counts the handler calls abandoned.
  std::array<uint64_t, kDropReasonCount> dropped{};
  /// Sampled (events.metrics.latency_sample): from publish (or receipt, for events from a
  /// transport) to the start of a handler call, and each call's duration.
  Histogram dispatch_latency;
  Histogram handler_duration;
};

/// A snapshot of a bus's metrics (EventBus::metrics()).
struct MetricsSnapshot {
  std::string backend;
  std::vector<EventMetrics> events;  ///< one per event name counted, "_other" last
  EventMetrics total;                ///< every name together (event = "")
  uint64_t queued_events = 0;        ///< pool dispatch: waiting for or running in handlers
  uint64_t queued_bytes = 0;
  uint64_t max_queued_events = 0;
  uint64_t handlers_running = 0;     ///< pool dispatch: handler calls running now
  bool started = false;
  /// "up", "reconnecting" or "down", as the provider reports it.
  std::string connection = "down";
  uint64_t outages = 0;
  /// events.context.traceparent: received trace contexts ignored as invalid (the events were
  /// delivered); BusStats::invalid_traceparent.
  uint64_t invalid_traceparent = 0;
};

/// The Prometheus text exposition format (version 0.0.4) of @p snapshot:
/// `athomic_events_published_total{event="user.created"} 3`, `_seconds` histograms, …
ATHOMIC_API std::string prometheus_text(const MetricsSnapshot& snapshot);

}  // namespace athomic
