#include "log_event.h"

#include <athomic/context.h>
#include <athomic/errors.h>
#include <athomic/log.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>

namespace athomic {

namespace {

// "%k": the current context's trace and tenant, so every line can be tied to its request.
class ContextFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const ExecutionContext& c = ExecutionContext::current();
    append(dest, "trace_id=", c.trace_id());
    append(dest, " tenant_id=", c.tenant_id());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<ContextFlag>();
  }

 private:
  static void append(spdlog::memory_buf_t& dest, std::string_view key,
                     std::optional<std::string_view> value) {
    dest.append(key.data(), key.data() + key.size());
    const std::string_view v = value ? *value : std::string_view("-");
    dest.append(v.data(), v.data() + v.size());
  }
};

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto view = [](spdlog::string_view_t s) { return std::string_view(s.data(), s.size()); };
    nlohmann::ordered_json line;
    line["time"] = utc_time(msg.time);
    line["level"] = view(spdlog::level::to_string_view(msg.level));
    line["logger"] = view(msg.logger_name);
    line["message"] = view(msg.payload);
    const ExecutionContext& c = ExecutionContext::current();
    if (auto v = c.trace_id()) line["trace_id"] = *v;
    if (auto v = c.tenant_id()) line["tenant_id"] = *v;
    if (auto e = detail::LogEventScope::current()) line["event"] = *e;
    // A message is not always valid UTF-8 (a name from the wire, say): replace, never throw.
    const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }

 private:
  static std::string utc_time(spdlog::log_clock::time_point t) {
    const std::time_t secs = spdlog::log_clock::to_time_t(t);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  }
};

// What every athomic logger writes to: it forwards each line to the current sinks, which format
// it themselves. A logger's set_pattern (spdlog::set_pattern included) does not reach through
// it: athomic's stderr keeps its format, and an application's sinks keep theirs.
class OutputSink final : public spdlog::sinks::sink {
 public:
  explicit OutputSink(std::vector<spdlog::sink_ptr> sinks) { set_targets(std::move(sinks)); }

  void log(const spdlog::details::log_msg& msg) override {
    const auto sinks = targets();
    for (const auto& s : *sinks) {
      if (s->should_log(msg.level)) s->log(msg);
    }
    // Warnings reach their destination at once, whatever the logger's flush level.
    if (msg.level >= spdlog::level::warn) {
      for (const auto& s : *sinks) s->flush();
    }
  }
  void flush() override {
    for (const auto& s : *targets()) s->flush();
  }
  void set_pattern(const std::string&) override {}
  void set_formatter(std::unique_ptr<spdlog::formatter>) override {}

  void set_targets(std::vector<spdlog::sink_ptr> sinks) {
    auto fresh = std::make_shared<const std::vector<spdlog::sink_ptr>>(std::move(sinks));
    std::lock_guard lock(mutex_);
    targets_ = std::move(fresh);
  }

 private:
  std::shared_ptr<const std::vector<spdlog::sink_ptr>> targets() {
    std::lock_guard lock(mutex_);
    return targets_;
  }
  std::mutex mutex_;
  std::shared_ptr<const std::vector<spdlog::sink_ptr>> targets_;
};

struct Loggers {
  std::mutex mutex;
  std::shared_ptr<spdlog::sinks::stderr_color_sink_mt> stderr_sink;
  std::shared_ptr<OutputSink> output;
  std::optional<spdlog::level::level_enum> level;  // chosen by ATHOMIC_LOG_LEVEL or set_log_level
  std::string level_error;  // an unknown ATHOMIC_LOG_LEVEL, said on the first logger
  std::map<std::string, std::shared_ptr<spdlog::logger>, std::less<>> made;

  Loggers() {
    // https://no-color.org: any non-empty NO_COLOR turns colours off.
    const char* no_color = std::getenv("NO_COLOR");
    stderr_sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(
        no_color && *no_color ? spdlog::color_mode::never : spdlog::color_mode::automatic);
    stderr_sink->set_formatter(make_log_formatter(LogFormat::text));
    output = std::make_shared<OutputSink>(std::vector<spdlog::sink_ptr>{stderr_sink});
    if (const char* l = std::getenv("ATHOMIC_LOG_LEVEL"); l && *l) {
      try {
        level = parse_log_level(l);
      } catch (const ConfigError& e) {
        level_error = fmt::format(
            "environment variable ATHOMIC_LOG_LEVEL: {}; using the default level", e.what());
      }
    }
  }
};

Loggers& loggers() {
  static auto* l = new Loggers();  // outlives static destructors that may still log
  return *l;
}

constexpr const char* kLevelNames =
    "trace, debug, info, warn (or warning), error (or err), critical, off (in any case)";

}  // namespace

spdlog::level::level_enum parse_log_level(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const std::map<std::string, spdlog::level::level_enum, std::less<>> kLevels = {
      {"trace", spdlog::level::trace},  {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},    {"warn", spdlog::level::warn},
      {"warning", spdlog::level::warn}, {"error", spdlog::level::err},
      {"err", spdlog::level::err},      {"critical", spdlog::level::critical},
      {"off", spdlog::level::off}};
  if (auto it = kLevels.find(lower); it != kLevels.end()) return it->second;
  throw ConfigError(fmt::format("\"{}\" is not a log level: expected {}", name, kLevelNames));
}

std::shared_ptr<spdlog::logger> get_logger(const std::string& name) {
  if (auto registered = spdlog::get(name)) return registered;
  Loggers& l = loggers();
  std::lock_guard lock(l.mutex);
  // One the application dropped from the registry (spdlog::drop_all) is still ours.
  if (auto it = l.made.find(name); it != l.made.end()) return it->second;
  auto logger = std::make_shared<spdlog::logger>(name, l.output);
  try {
    // The registry's level for it (SPDLOG_LEVEL, spdlog::set_level) and error handler; and it
    // registers it.
    spdlog::initialize_logger(logger);
  } catch (const spdlog::spdlog_ex&) {
    if (auto registered = spdlog::get(name)) return registered;  // registered meanwhile
  }
  if (!spdlog::get(name)) {
    try {
      spdlog::register_logger(logger);  // automatic registration is off
    } catch (const spdlog::spdlog_ex&) {
    }
  }
  if (l.level) logger->set_level(*l.level);
  l.made.emplace(name, logger);
  if (!l.level_error.empty()) {
    logger->error("{}", l.level_error);
    l.level_error.clear();
  }
  return logger;
}

void set_log_level(const std::string& level) {
  const auto parsed = parse_log_level(level);
  Loggers& l = loggers();
  std::lock_guard lock(l.mutex);
  l.level = parsed;
  for (auto& [name, logger] : l.made) logger->set_level(parsed);
}

void set_log_sinks(std::vector<spdlog::sink_ptr> sinks) {
  Loggers& l = loggers();
  if (sinks.empty()) sinks.push_back(l.stderr_sink);
  l.output->set_targets(std::move(sinks));
}

std::unique_ptr<spdlog::formatter> make_log_formatter(LogFormat format) {
  if (format == LogFormat::json) return std::make_unique<JsonFormatter>();
  auto text = std::make_unique<spdlog::pattern_formatter>();
  text->add_flag<ContextFlag>('k').set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %n [%k] %v");
  return text;
}

void set_log_format(LogFormat format) {
  loggers().stderr_sink->set_formatter(make_log_formatter(format));
}

}  // namespace athomic
