// Settings: the Python framework's settings.toml, Dynaconf style.
//
// Files: NALA_SETTINGS_FILES (comma-separated) or config/settings.toml; TOML, or YAML for
// .yaml/.yml. In each file the [default] table is merged under the active environment's table
// ([development], [production], ...; NALA_ENV, default "development"). Environment variables
// NALA_<KEY>__<KEY>... override any key; values are parsed as TOML scalars.
// See docs/CONFIGURATION.md for every key.
#pragma once

#include <athomic/context.h>
#include <athomic/export.h>
#include <athomic/log.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace athomic {

/// Where handlers run: on the bus's worker pool, or on the thread that delivers the event
/// (the publisher's, for in-process providers) for the lowest latency.
enum class DispatchMode { pool, inline_call };

/// What `publish` does when the pool's queue is full (events.executor.when_full): wait up to
/// `publish_timeout` for room and then throw, or throw at once.
enum class WhenFull { block, fail };

/// The validated `events` section.
struct EventsSettings {
  bool enabled = true;
  /// events.provider.backend: which provider plugin carries events.
  std::string backend = "local";
  /// The whole events.provider table (backend included), handed to the plugin as JSON.
  nlohmann::json provider_config = nlohmann::json::object();
  /// events.plugins_dir: searched first for provider plugins (empty: not used).
  std::string plugins_dir;
  DispatchMode dispatch_mode = DispatchMode::pool;
  /// events.executor.workers (0 in the file means one per hardware thread).
  unsigned workers = 4;
  /// events.executor.close_timeout: how long close() waits for handlers.
  std::chrono::milliseconds close_timeout{5000};
  /// events.executor.max_queued_events (1 … 2^24 − 1): events waiting for or running in pool
  /// handlers; the bound of the pool's queue.
  std::size_t max_queued_events = 65'536;
  /// events.executor.max_queued_bytes (1 KiB … 2^40 − 1): bytes of those events — the wire
  /// bytes of a received event, an estimate of the payload's size for an in-process one.
  std::uint64_t max_queued_bytes = std::uint64_t{64} << 20;
  /// events.executor.when_full: what publish does when either bound is reached.
  WhenFull when_full = WhenFull::block;
  /// events.executor.publish_timeout (0 … 3600 s): how long a blocked publish waits for room.
  std::chrono::milliseconds publish_timeout{5000};
  /// events.propagated_context: the context fields publish captures.
  ContextFieldMask propagated_fields = kDefaultPropagatedFields;
  /// events.metrics.enabled: count per event name (EventBus::metrics()); off, the bus keeps
  /// only BusStats.
  bool metrics_enabled = true;
  /// events.metrics.listen: "host:port" where the bus serves /metrics (Prometheus text) and
  /// /healthz; empty (the default): no endpoint.
  std::string metrics_listen;
  /// events.metrics.max_events: event names counted each under its own label; the rest share
  /// the label "_other".
  uint32_t metrics_max_events = 100;
  /// events.metrics.latency_sample: one event in this many, per thread, is timed for the
  /// latency and duration histograms.
  uint32_t metrics_latency_sample = 64;
  /// events.logging.format: athomic's stderr lines as text or as one JSON object each;
  /// nullopt when no source set it. Logging is process-wide: Settings::load() applies a format
  /// that was set (set_log_format); settings built otherwise leave that to the caller.
  std::optional<LogFormat> log_format;
  /// events.max_payload_bytes: the largest encoded event accepted or published.
  std::size_t max_payload_bytes = 1u << 20;
  /// events.context.traceparent: remote envelopes also carry the context's trace as W3C
  /// Trace Context (`traceparent`, `tracestate` beside `_nala_context`; on transports with
  /// headers, as message headers too), and received ones are read for it. Off: the envelope is
  /// exactly the Python framework's, both ways, and headers are neither sent nor read.
  bool traceparent = false;
  /// Where these settings came from, for messages: the files read and the NALA_ variables
  /// applied ("config/settings.toml, environment variable NALA_EVENTS__ENABLED"), or
  /// "built-in defaults".
  std::string origin = "built-in defaults";
  /// Where each key under `events` was set, by key path: "events.executor.workers" ->
  /// "config/settings.toml:14", "events.provider.backend" -> "environment variable
  /// NALA_EVENTS__PROVIDER__BACKEND". Filled by Settings::load() and Settings::from_toml().
  std::map<std::string, std::string> origins;

  /// Where @p key_path ("events.provider.backend") was set: its own entry in `origins`, else
  /// that of its nearest enclosing table, else "built-in defaults" (a key no source set). For
  /// settings built by hand (`origins` empty), `origin`.
  std::string origin_of(const std::string& key_path) const {
    if (origins.empty()) return origin;
    for (std::string p = key_path; !p.empty();) {
      if (auto it = origins.find(p); it != origins.end()) return it->second;
      const auto cut = p.find_last_of(".[");
      p.resize(cut == std::string::npos ? 0 : cut);
    }
    return "built-in defaults";
  }
};

class ATHOMIC_API Settings {
 public:
  struct LoadOptions {
    /// Files to read, later ones overriding earlier ones. Empty: NALA_SETTINGS_FILES, else
    /// config/settings.toml (a missing default file is not an error; a named one is).
    std::vector<std::string> files;
    /// Environment name; empty: NALA_ENV, else "development".
    std::string env;
    /// Variables to read NALA_ overrides from; nullopt: the process environment.
    std::optional<std::map<std::string, std::string>> environment;
  };

  /// Defaults only.
  Settings();
  /// Loads, merges and validates, and applies events.logging.format, when set, to athomic's
  /// loggers. An unknown ATHOMIC_LOG_LEVEL is refused too.
  /// @throws ConfigError naming file, key path, value, allowed.
  static Settings load();
  static Settings load(const LoadOptions& options);
  /// Parses TOML text; @p source_name stands for the file name in messages.
  static Settings from_toml(std::string_view text, std::string_view source_name,
                            const std::string& env = "development",
                            const std::map<std::string, std::string>& environment = {});

  const EventsSettings& events() const noexcept { return events_; }
  EventsSettings& events() noexcept { return events_; }
  /// The merged tree of the active environment, as JSON.
  const nlohmann::json& tree() const noexcept { return tree_; }
  /// The environment these settings were read for.
  const std::string& env() const noexcept { return env_; }
  /// The merged tree as indented JSON, passwords masked.
  std::string describe() const;

 private:
  EventsSettings events_;
  nlohmann::json tree_ = nlohmann::json::object();
  std::string env_ = "development";
  friend class SettingsLoader;
};

/// Replaces the password of every URI ("scheme://user:secret@host") in @p text with "***".
ATHOMIC_API std::string mask_secrets(std::string_view text);
/// A copy of @p tree with URI passwords masked and every value of a key named like a secret
/// (password, passwd, token, secret) replaced by "***".
ATHOMIC_API nlohmann::json mask_secret_values(const nlohmann::json& tree);

}  // namespace athomic
