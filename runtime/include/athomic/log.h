// Logging through spdlog. The bus's loggers ("athomic.events", "athomic.settings",
// "athomic.plugins", "athomic.provider.<name>") live in spdlog's registry like an application's
// own: spdlog::set_level, spdlog::get, spdlog::apply_all and SPDLOG_LEVEL (spdlog::cfg) reach
// them. They write to athomic's output — stderr, or the sinks given to set_log_sinks — and every
// line carries the current context's trace_id and tenant_id.
#pragma once

#include <athomic/export.h>

#include <spdlog/common.h>
#include <spdlog/formatter.h>
#include <spdlog/logger.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace athomic {

/// The logger named @p name: the one spdlog's registry holds under that name (an application's
/// own, say), else a new one, registered there, writing to athomic's output. A new logger takes
/// athomic's level when one was chosen (ATHOMIC_LOG_LEVEL or set_log_level), else the level
/// spdlog's registry gives it (spdlog::set_level, SPDLOG_LEVEL; default info).
ATHOMIC_API std::shared_ptr<spdlog::logger> get_logger(const std::string& name);

/// A level by name: trace, debug, info, warn (or warning), error (or err), critical, off — in
/// any case. @throws ConfigError naming @p name and listing the valid names.
ATHOMIC_API spdlog::level::level_enum parse_log_level(std::string_view name);

/// Sets the level of every logger get_logger made, now and later. ATHOMIC_LOG_LEVEL sets it
/// when the first logger is made; an unknown value there is reported on that logger, and
/// Settings::load() refuses it with a ConfigError. @throws ConfigError for an unknown name.
ATHOMIC_API void set_log_level(const std::string& level);

/// Sends the lines of the loggers get_logger made, now and later, to @p sinks instead of
/// stderr, each formatted as that sink's own formatter says (make_log_formatter gives athomic's
/// formats). An empty list sends them back to stderr. Safe while other threads log.
ATHOMIC_API void set_log_sinks(std::vector<spdlog::sink_ptr> sinks);

/// The formats of athomic's lines.
///  * text: "<time> <level> <logger> [trace_id=… tenant_id=…] <message>";
///  * json: one object per line — time (UTC, ISO 8601), level, logger, message, and trace_id,
///    tenant_id and event (the event the line is about) when there is one.
enum class LogFormat { text, json };

/// A formatter writing @p format, for an application's own sinks as well.
ATHOMIC_API std::unique_ptr<spdlog::formatter> make_log_formatter(LogFormat format);

/// The format of athomic's stderr output (sinks given to set_log_sinks keep their own).
/// Settings::load() applies the events.logging.format setting through it.
ATHOMIC_API void set_log_format(LogFormat format);

}  // namespace athomic
