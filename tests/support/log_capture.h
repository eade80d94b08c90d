// Captures what athomic's loggers write, to check warnings and information lines.
//  * LogCapture: one logger's lines while the object lives. Attach it before the code under
//    test runs on other threads.
//  * LineSink + SinkScope: every athomic logger's lines through set_log_sinks, safe while other
//    threads (the bus's workers, the rate-limited log's reporter) log.
#pragma once

#include <athomic/log.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

namespace athomic::test {

// Keeps each line it is given, formatted by its own formatter ("%l %v" unless set otherwise),
// without the line break.
class LineSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  LineSink() { set_pattern_("%l %v"); }
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    std::string line(buf.data(), buf.size());
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    lines_.push_back(std::move(line));
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

class LogCapture {
 public:
  explicit LogCapture(const std::string& logger_name)
      : logger_(get_logger(logger_name)), sink_(std::make_shared<LineSink>()) {
    logger_->sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& sinks = logger_->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  // Every line so far, each as "<level> <message>\n"; safe while the logger's threads log.
  std::string text() {
    std::string all;
    for (const auto& line : sink_->lines()) all += line + "\n";
    return all;
  }

 private:
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<LineSink> sink_;
};

// Sends every athomic logger's lines to @p sink while the object lives, then back to stderr.
class SinkScope {
 public:
  explicit SinkScope(spdlog::sink_ptr sink) { set_log_sinks({std::move(sink)}); }
  ~SinkScope() { set_log_sinks({}); }
  SinkScope(const SinkScope&) = delete;
  SinkScope& operator=(const SinkScope&) = delete;
};

}  // namespace athomic::test
