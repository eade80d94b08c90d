#include <athomic/context.h>
#include <athomic/log.h>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <mutex>
#include <unordered_map>

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

struct Loggers {
  std::mutex mutex;
  spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  spdlog::level::level_enum level = spdlog::level::info;
  std::unordered_map<std::string, std::shared_ptr<spdlog::logger>> by_name;

  Loggers() {
    if (const char* l = std::getenv("ATHOMIC_LOG_LEVEL"); l && *l) {
      level = spdlog::level::from_str(l);
    }
  }
};

Loggers& loggers() {
  static auto* l = new Loggers();  // outlives static destructors that may still log
  return *l;
}

}  // namespace

std::shared_ptr<spdlog::logger> get_logger(const std::string& name) {
  Loggers& l = loggers();
  std::lock_guard lock(l.mutex);
  if (auto it = l.by_name.find(name); it != l.by_name.end()) return it->second;
  auto logger = std::make_shared<spdlog::logger>(name, l.sink);
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<ContextFlag>('k').set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %n [%k] %v");
  logger->set_formatter(std::move(formatter));
  logger->set_level(l.level);
  logger->flush_on(spdlog::level::warn);
  l.by_name.emplace(name, logger);
  return logger;
}

void set_log_level(const std::string& level) {
  Loggers& l = loggers();
  std::lock_guard lock(l.mutex);
  l.level = spdlog::level::from_str(level);
  for (auto& [name, logger] : l.by_name) logger->set_level(l.level);
}

}  // namespace athomic
