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

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace athomic {

/// Where handlers run: on the bus's worker pool, or on the thread that delivers the event
/// (the publisher's, for in-process providers) for the lowest latency.
enum class DispatchMode { pool, inline_call };

/// What publish does when the pool's queue is full.
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
  std::chrono::milliseconds close_timeout{5000};
  /// events.executor.max_queued_events: events waiting for or running in pool handlers.
  uint64_t max_queued_events = 65536;
  /// events.executor.max_queued_bytes: bytes of those events (wire bytes for received events,
  /// an estimate of the payload's size for in-process ones).
  uint64_t max_queued_bytes = uint64_t{64} << 20;
  /// events.executor.when_full: wait up to publish_timeout, then throw; or throw at once.
  WhenFull when_full = WhenFull::block;
  /// events.executor.publish_timeout.
  std::chrono::milliseconds publish_timeout{5000};
  /// events.propagated_context: the context fields publish captures.
  ContextFieldMask propagated_fields = kDefaultPropagatedFields;
  /// events.max_payload_bytes: the largest encoded event accepted or published.
  std::size_t max_payload_bytes = 1u << 20;
  /// Where these settings came from, for messages.
  std::string origin = "built-in defaults";
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
  /// Loads, merges and validates. @throws ConfigError naming file, key path, value, allowed.
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
