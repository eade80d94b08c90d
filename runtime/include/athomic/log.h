// Logging through spdlog. Every line carries the current context's trace_id and tenant_id.
#pragma once

#include <athomic/export.h>

#include <spdlog/logger.h>

#include <memory>
#include <string>

namespace athomic {

/// The logger named @p name (created on first use), writing to stderr with the pattern
/// "<time> <level> <name> [trace_id=… tenant_id=…] <message>".
ATHOMIC_API std::shared_ptr<spdlog::logger> get_logger(const std::string& name);

/// Level for every athomic logger: trace, debug, info, warn, error, critical or off.
/// ATHOMIC_LOG_LEVEL sets the initial level (default info).
ATHOMIC_API void set_log_level(const std::string& level);

}  // namespace athomic
