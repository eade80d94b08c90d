// athomic's loggers: levels by name in any case, spdlog's registry, an application's sinks, the
// JSON line format and the events.logging settings. Tests that read ATHOMIC_LOG_LEVEL or change
// stderr's format run in a fresh process (a "threadsafe" death test re-runs the binary), since
// both are process-wide and read once.
#include <athomic/context.h>
#include <athomic/errors.h>
#include <athomic/log.h>
#include <athomic/settings.h>

#include "log_capture.h"
#include "log_event.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <unistd.h>

namespace athomic {
namespace {

using nlohmann::json;
using testing::HasSubstr;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a ConfigError";
  return "";
}

std::string temp_file(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() /
                    (std::to_string(::getpid()) + "-athomic-log-" + name);
  std::ofstream(path) << text;
  return path.string();
}

constexpr const char* kLevelList =
    "trace, debug, info, warn (or warning), error (or err), critical, off (in any case)";

TEST(LogLevel, NamesAreReadInAnyCase) {
  EXPECT_EQ(parse_log_level("WARN"), spdlog::level::warn);
  EXPECT_EQ(parse_log_level("Warning"), spdlog::level::warn);
  EXPECT_EQ(parse_log_level("trace"), spdlog::level::trace);
  EXPECT_EQ(parse_log_level("DEBUG"), spdlog::level::debug);
  EXPECT_EQ(parse_log_level("Info"), spdlog::level::info);
  EXPECT_EQ(parse_log_level("ERROR"), spdlog::level::err);
  EXPECT_EQ(parse_log_level("err"), spdlog::level::err);
  EXPECT_EQ(parse_log_level("CRITICAL"), spdlog::level::critical);
  EXPECT_EQ(parse_log_level("OFF"), spdlog::level::off);
}

TEST(LogLevel, AnUnknownNameIsAnErrorListingTheValidOnes) {
  EXPECT_EQ(error_of([] { parse_log_level("loud"); }),
            std::string("\"loud\" is not a log level: expected ") + kLevelList);
  EXPECT_THAT(error_of([] { set_log_level("verbose"); }), HasSubstr("\"verbose\""));
}

TEST(LogLevel, SetLogLevelInCapitalsSetsThatLevel) {
  auto logger = get_logger("athomic.test.capitals");
  set_log_level("WARN");  // spdlog's own from_str made this "off"
  EXPECT_EQ(logger->level(), spdlog::level::warn);
  EXPECT_EQ(get_logger("athomic.test.capitals.later")->level(), spdlog::level::warn);
  set_log_level("info");
  EXPECT_EQ(logger->level(), spdlog::level::info);
}

TEST(LogLevelDeathTest, TheVariableInCapitalsSetsThatLevel) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::setenv("ATHOMIC_LOG_LEVEL", "WARN", 1);
        std::_Exit(get_logger("athomic.test.variable")->level() == spdlog::level::warn ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
}

TEST(LogLevelDeathTest, AnUnknownVariableIsReportedOnTheFirstLoggerAndInfoApplies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::setenv("ATHOMIC_LOG_LEVEL", "loud", 1);
        auto sink = std::make_shared<test::LineSink>();
        set_log_sinks({sink});
        auto logger = get_logger("athomic.test.variable");
        const auto lines = sink->lines();
        const std::string expected =
            std::string(
                "error environment variable ATHOMIC_LOG_LEVEL: \"loud\" is not a log "
                "level: expected ") +
            kLevelList + "; using the default level";
        std::_Exit(logger->level() != spdlog::level::info ? 1
                   : lines.size() != 1                    ? 2
                   : lines[0] != expected                 ? 3
                                                          : 0);
      },
      testing::ExitedWithCode(0), "");
}

TEST(LogLevel, AnUnknownVariableStopsSettingsLoad) {
  const auto file = temp_file("level.toml", "[default.events]\nenabled = true\n");
  EXPECT_EQ(error_of([&] {
              Settings::load({.files = {file},
                              .env = "",
                              .environment = std::map<std::string, std::string>{
                                  {"ATHOMIC_LOG_LEVEL", "loud"}}});
            }),
            std::string("environment variable ATHOMIC_LOG_LEVEL: \"loud\" is not a log level: "
                        "expected ") +
                kLevelList);
  // Any case is fine.
  Settings::load(
      {.files = {file},
       .env = "",
       .environment = std::map<std::string, std::string>{{"ATHOMIC_LOG_LEVEL", "WARN"}}});
  std::filesystem::remove(file);
}

TEST(LogRegistry, AthomicsLoggersAreInSpdlogsRegistry) {
  auto logger = get_logger("athomic.test.registry");
  EXPECT_EQ(spdlog::get("athomic.test.registry"), logger);
  const auto before = logger->level();
  spdlog::set_level(spdlog::level::debug);
  EXPECT_EQ(logger->level(), spdlog::level::debug);
  spdlog::set_level(spdlog::level::err);
  EXPECT_EQ(logger->level(), spdlog::level::err);
  spdlog::set_level(before);
}

TEST(LogRegistry, AnApplicationsLoggerOfThatNameIsUsed) {
  auto own = std::make_shared<spdlog::logger>("athomic.test.owned");
  spdlog::register_logger(own);
  EXPECT_EQ(get_logger("athomic.test.owned"), own);
  spdlog::drop("athomic.test.owned");
}

TEST(LogSinks, AnApplicationsSinksReceiveTheLinesAndStderrComesBack) {
  auto sink = std::make_shared<test::LineSink>();
  auto logger = get_logger("athomic.test.sinks");
  {
    test::SinkScope scope(sink);
    logger->warn("to the application's sink");
    get_logger("athomic.test.sinks.later")->error("made after the call");
  }
  logger->warn("to stderr again");
  EXPECT_EQ(sink->lines(), (std::vector<std::string>{"warning to the application's sink",
                                                     "error made after the call"}));
}

TEST(LogJson, LinesAreJsonObjectsWithTheContextAndTheEvent) {
  auto sink = std::make_shared<test::LineSink>();
  sink->set_formatter(make_log_formatter(LogFormat::json));
  test::SinkScope scope(sink);
  auto logger = get_logger("athomic.test.json");
  const std::string awkward = "a \"quoted\" \\ back\\slash,\nnew line,\ttab, \x01 control";
  {
    ContextScope ctx(ExecutionContext::Builder().trace_id("t-\"1\"").tenant_id("acme").build());
    detail::LogEventScope about("orders.created");
    logger->warn("{}", awkward);
  }
  logger->info("no context, \xff not UTF-8");
  const auto lines = sink->lines();
  ASSERT_EQ(lines.size(), 2u);
  for (const auto& l : lines) EXPECT_EQ(l.find('\n'), std::string::npos) << l;

  const json first = json::parse(lines[0]);
  EXPECT_EQ(first["level"], "warning");
  EXPECT_EQ(first["logger"], "athomic.test.json");
  EXPECT_EQ(first["message"], awkward);
  EXPECT_EQ(first["trace_id"], "t-\"1\"");
  EXPECT_EQ(first["tenant_id"], "acme");
  EXPECT_EQ(first["event"], "orders.created");
  // UTC, milliseconds: 2026-01-02T03:04:05.678Z
  EXPECT_THAT(
      first["time"].get<std::string>(),
      testing::MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"));

  const json second = json::parse(lines[1]);
  EXPECT_EQ(second["message"], "no context, \xEF\xBF\xBD not UTF-8");  // U+FFFD
  EXPECT_FALSE(second.contains("trace_id"));
  EXPECT_FALSE(second.contains("tenant_id"));
  EXPECT_FALSE(second.contains("event"));
}

TEST(LogSettings, FormatIsTextOrJson) {
  EXPECT_EQ(Settings::from_toml("", "s.toml").events().log_format, std::nullopt);
  EXPECT_EQ(
      Settings::from_toml("[events.logging]\nformat = \"json\"\n", "s.toml").events().log_format,
      LogFormat::json);
  EXPECT_EQ(
      Settings::from_toml("[events.logging]\nformat = \"text\"\n", "s.toml").events().log_format,
      LogFormat::text);
  EXPECT_EQ(error_of([] { Settings::from_toml("[events.logging]\nformat = \"xml\"\n", "s.toml"); }),
            "s.toml:2: events.logging.format = \"xml\" is invalid: expected \"text\" or \"json\"");
  EXPECT_THAT(
      error_of([] { Settings::from_toml("[events.logging]\nformt = \"json\"\n", "s.toml"); }),
      HasSubstr("unknown setting events.logging.formt. Did you mean 'format'?"));
  EXPECT_THAT(
      error_of([] {
        Settings::from_toml("", "s.toml", "development",
                            {{"NALA_EVENTS__LOGGING__FORMAT", "yaml"}});
      }),
      HasSubstr("environment variable NALA_EVENTS__LOGGING__FORMAT: events.logging.format = "
                "\"yaml\" is invalid"));
}

// Settings::load() turns stderr's lines into JSON: the child's stderr goes to a file it then
// reads back. Exits 0 when every line is JSON and ours is among them.
[[noreturn]] void log_json_to_stderr(const std::string& settings, const std::string& out) {
  const int fd = ::open(out.c_str(), O_WRONLY | O_TRUNC);
  if (fd < 0 || ::dup2(fd, 2) < 0) std::_Exit(10);
  Settings::load(
      {.files = {settings}, .env = "", .environment = std::map<std::string, std::string>{}});
  get_logger("athomic.test.stderr")->warn("line \"one\"\n");
  std::fflush(stderr);
  std::ifstream in(out);
  std::string line;
  int found = 0, lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) std::_Exit(11);
    if (j.value("message", "") == "line \"one\"\n" && j.value("level", "") == "warning") ++found;
  }
  std::filesystem::remove(settings);
  std::filesystem::remove(out);
  // The settings' own info line, then ours.
  std::_Exit(lines == 2 && found == 1 ? 0 : 12);
}

TEST(LogSettingsDeathTest, LoadWithJsonFormatWritesJsonToStderr) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const auto settings = temp_file("json.toml", "[default.events.logging]\nformat = \"json\"\n");
  const auto out = temp_file("stderr.txt", "");
  EXPECT_EXIT(log_json_to_stderr(settings, out), testing::ExitedWithCode(0), "");
  std::filesystem::remove(settings);
  std::filesystem::remove(out);
}

}  // namespace
}  // namespace athomic
