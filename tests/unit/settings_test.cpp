#include <athomic/errors.h>
#include <athomic/settings.h>

#include "log_capture.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace athomic {
namespace {

using testing::HasSubstr;

// A folder for this process's settings files, removed when the test program exits.
const std::filesystem::path& temp_dir() {
  static const struct Dir {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("athomic-settings-" + std::to_string(::getpid()));
    Dir() { std::filesystem::create_directories(path); }
    ~Dir() { std::filesystem::remove_all(path); }
  } dir;
  return dir.path;
}

std::string temp_file(const std::string& name, const std::string& text) {
  const auto path = temp_dir() / name;
  std::ofstream(path) << text;
  return path.string();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a ConfigError";
  return "";
}

constexpr const char* kLayered = R"(
[default.events]
enabled = true
max_payload_bytes = 4096
[default.events.provider]
backend = "local"
[default.events.executor]
workers = 2

[development.events.executor]
workers = 3

[production.events.provider]
backend = "redis"
[production.events.provider.provider]
key_prefix = "app_events"
[production.events.provider.provider.provider]
backend = "redis"
uri = "redis://svc:hunter2@localhost:6379/2"
)";

TEST(Settings, DefaultsWithoutAnyFile) {
  Settings s = Settings::load({.files = {}, .env = "", .environment = std::map<std::string, std::string>{}});
  // No config/settings.toml in the test's working directory unless run from the source root.
  EXPECT_TRUE(s.events().enabled);
  EXPECT_EQ(s.events().backend, "local");
  EXPECT_EQ(s.events().propagated_fields, kDefaultPropagatedFields);
}

TEST(Settings, DefaultIsMergedUnderTheActiveEnvironment) {
  auto dev = Settings::from_toml(kLayered, "settings.toml", "development");
  EXPECT_EQ(dev.events().workers, 3u);
  EXPECT_EQ(dev.events().backend, "local");
  EXPECT_EQ(dev.events().max_payload_bytes, 4096u);

  auto prod = Settings::from_toml(kLayered, "settings.toml", "production");
  EXPECT_EQ(prod.events().workers, 2u);
  EXPECT_EQ(prod.events().backend, "redis");
  EXPECT_EQ(prod.events().provider_config["provider"]["key_prefix"], "app_events");
  EXPECT_EQ(prod.events().provider_config["provider"]["provider"]["uri"],
            "redis://svc:hunter2@localhost:6379/2");
}

TEST(Settings, NalaEnvChoosesTheEnvironment) {
  const auto file = temp_file("env.toml", kLayered);
  auto s = Settings::load({.files = {file}, .env = "", .environment = std::map<std::string, std::string>{{"NALA_ENV", "Production"}}});
  EXPECT_EQ(s.env(), "production");
  EXPECT_EQ(s.events().backend, "redis");
}

TEST(Settings, EnvironmentVariablesOverrideWithTypedValues) {
  auto s = Settings::from_toml(kLayered, "settings.toml", "development",
                               {{"NALA_EVENTS__ENABLED", "false"},
                                {"NALA_EVENTS__EXECUTOR__WORKERS", "7"},
                                {"NALA_EVENTS__EXECUTOR__CLOSE_TIMEOUT", "0.25"},
                                {"NALA_EVENTS__PROVIDER__BACKEND", "nats"},
                                {"NALA_EVENTS__PROVIDER__URL", "nats://127.0.0.1:4222"},
                                {"NALA_EVENTS__PROPAGATED_CONTEXT", "[\"trace_id\"]"},
                                {"HOME", "/root"}});
  EXPECT_FALSE(s.events().enabled);
  EXPECT_EQ(s.events().workers, 7u);
  EXPECT_EQ(s.events().close_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(s.events().backend, "nats");
  EXPECT_EQ(s.events().provider_config["url"], "nats://127.0.0.1:4222");
  EXPECT_EQ(s.events().propagated_fields, field_bit(ContextField::trace_id));
}

TEST(Settings, WrongTypeFromTheEnvironmentNamesTheVariable) {
  const auto msg = error_of([] {
    Settings::from_toml(kLayered, "settings.toml", "development",
                        {{"NALA_EVENTS__EXECUTOR__WORKERS", "many"}});
  });
  EXPECT_THAT(msg, HasSubstr("environment variable NALA_EVENTS__EXECUTOR__WORKERS"));
  EXPECT_THAT(msg, HasSubstr("events.executor.workers = \"many\" is invalid"));
  EXPECT_THAT(msg, HasSubstr("expected an integer from 0 to 1024"));
}

// A file that sets every key the variables below override, so that a wrong origin would
// name one of its lines.
constexpr const char* kEverythingInAFile = R"([default.events]
enabled = true
propagated_context = ["trace_id", "tenant_id"]
[default.events.executor]
mode = "pool"
workers = 2
[default.events.provider]
backend = "local"
)";

std::string env_error(const std::map<std::string, std::string>& environment,
                      const std::string& text = kEverythingInAFile) {
  const auto file = temp_file("origins.toml", text);
  return error_of([&] {
    Settings::load({.files = {file}, .env = "", .environment = environment});
  });
}

TEST(Settings, AValueSetByAVariableNamesTheVariableOverAFile) {
  EXPECT_THAT(env_error({{"NALA_EVENTS__EXECUTOR__MODE", "threads"}}),
              HasSubstr("environment variable NALA_EVENTS__EXECUTOR__MODE: events.executor.mode = "
                        "\"threads\" is invalid"));
}

TEST(Settings, AKeyInsideATableSetByAVariableNamesTheVariable) {
  // The file's own line for events.executor.mode must not be reported for the variable's value.
  EXPECT_THAT(env_error({{"NALA_EVENTS__EXECUTOR", "{ mode = \"threads\" }"}}),
              HasSubstr("environment variable NALA_EVENTS__EXECUTOR: events.executor.mode = "
                        "\"threads\" is invalid"));
}

TEST(Settings, AnUnknownKeyInATableCreatedByAVariableNamesTheVariable) {
  const auto msg = env_error({{"NALA_EVENTS__EXECUTER__WORKERS", "2"}});
  EXPECT_THAT(msg, HasSubstr("environment variable NALA_EVENTS__EXECUTER__WORKERS: unknown setting "
                             "events.executer"));
  EXPECT_THAT(env_error({{"NALA_EVENTS__EXECUTOR__WROKERS", "2"}}),
              HasSubstr("environment variable NALA_EVENTS__EXECUTOR__WROKERS: unknown setting "
                        "events.executor.wrokers"));
}

TEST(Settings, AListItemSetByAVariableNamesTheVariable) {
  const std::map<std::string, std::string> env{{"NALA_EVENTS__PROPAGATED_CONTEXT", "[\"trace_id\", \"x\"]"}};
  EXPECT_THAT(env_error(env), HasSubstr("environment variable NALA_EVENTS__PROPAGATED_CONTEXT: "
                                        "events.propagated_context[1] = \"x\" is invalid"));
  // With no file at all, too.
  const auto msg = error_of([&] { Settings::load({.files = {}, .env = "", .environment = env}); });
  EXPECT_THAT(msg, HasSubstr("environment variable NALA_EVENTS__PROPAGATED_CONTEXT: "
                             "events.propagated_context[1]"));
}

TEST(Settings, AListItemInAFileNamesItsOwnLine) {
  const auto msg = env_error({}, "[default.events]\npropagated_context = [\n  \"trace_id\",\n  \"x\",\n]\n");
  EXPECT_THAT(msg, HasSubstr("origins.toml:4: events.propagated_context[1] = \"x\""));
}

TEST(Settings, ALaterFileThatReplacesATableTakesOverItsKeys) {
  const auto a = temp_file("first.toml", "[default.events.executor]\nworkers = 2\nmode = \"pool\"\n");
  const auto b = temp_file("second.toml", "[default.events]\n\nexecutor = { mode = \"threads\" }\n");
  // Tables merge key by key; a scalar replaced by a table, or the reverse, replaces the whole.
  const auto c = temp_file("third.toml", "[default.events]\nexecutor = 3\n");
  const auto msg = error_of([&] {
    Settings::load({.files = {a, c, b}, .env = "", .environment = std::map<std::string, std::string>{}});
  });
  EXPECT_THAT(msg, HasSubstr("second.toml:3: events.executor.mode = \"threads\""));
}


TEST(Settings, LoadedSettingsKnowWhereEachKeyCameFrom) {
  const auto file = temp_file("where.toml", kEverythingInAFile);
  auto s = Settings::load({.files = {file}, .env = "", .environment = std::map<std::string, std::string>{
                                                          {"NALA_EVENTS__PROVIDER__BACKEND", "redis"}}});
  EXPECT_EQ(s.events().origin_of("events.provider.backend"),
            "environment variable NALA_EVENTS__PROVIDER__BACKEND");
  EXPECT_EQ(s.events().origin_of("events.executor.workers"), file + ":6");
  // A key no source set: where its table was set, if any source set that.
  EXPECT_EQ(s.events().origin_of("events.max_payload_bytes"), file + ":1");
  EXPECT_EQ(s.events().origin_of("elsewhere.key"), "built-in defaults");
  EXPECT_EQ(s.events().origin, file + ", environment variable NALA_EVENTS__PROVIDER__BACKEND");
  EventsSettings by_hand;
  by_hand.origin = "the test";
  EXPECT_EQ(by_hand.origin_of("events.provider.backend"), "the test");
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(Settings, AnEnvironmentNoFileDefinesIsAWarningWithADidYouMean) {
  const auto file = temp_file("envs.toml", kLayered);
  test::LogCapture log("athomic.settings");
  auto s = Settings::load({.files = {file}, .env = "", .environment = std::map<std::string, std::string>{{"NALA_ENV", "prodution"}}});
  EXPECT_EQ(s.events().workers, 2u);  // [default] alone
  const auto text = log.text();
  EXPECT_THAT(text, HasSubstr("warning NALA_ENV=prodution: no settings file defines the environment "
                              "'prodution' (" + file + "); only [default] applies. Did you mean "
                              "'production'? Environments the files define: development, production"));
  EXPECT_EQ(count(text, "warning "), 1u);
}

TEST(Settings, AnEnvironmentChosenInCodeThatNoFileDefinesIsAWarningToo) {
  const auto file = temp_file("envs.toml", kLayered);
  test::LogCapture log("athomic.settings");
  Settings::load({.files = {file}, .env = "staging", .environment = std::map<std::string, std::string>{}});
  EXPECT_THAT(log.text(), HasSubstr("warning environment 'staging' (Settings::LoadOptions::env): no "
                                    "settings file defines the environment 'staging'"));
}

TEST(Settings, AFileWithOnlyDefaultListsNoEnvironment) {
  const auto file = temp_file("only-default.toml", "[default.events.executor]\nworkers = 3\n");
  test::LogCapture log("athomic.settings");
  auto s = Settings::load({.files = {file}, .env = "", .environment = std::map<std::string, std::string>{{"NALA_ENV", "production"}}});
  EXPECT_EQ(s.events().workers, 3u);
  EXPECT_THAT(log.text(), HasSubstr("Environments the files define: none, only [default]"));
}

TEST(Settings, NoWarningWhenTheEnvironmentIsDefinedOrNotChosen) {
  const auto file = temp_file("envs.toml", kLayered);
  const auto only_production = temp_file("prod.toml", "[default.events]\nenabled = true\n[production.events]\nenabled = true\n");
  test::LogCapture log("athomic.settings");
  Settings::load({.files = {file}, .env = "", .environment = std::map<std::string, std::string>{{"NALA_ENV", "Production"}}});
  // NALA_ENV unset: "development" is only the default choice, and [default] is all there is.
  Settings::load({.files = {only_production}, .env = "", .environment = std::map<std::string, std::string>{}});
  EXPECT_THAT(log.text(), testing::Not(HasSubstr("warning")));
}

TEST(Settings, AFileWithoutEnvironmentTablesIsNotAffectedByTheEnvironment) {
  const auto flat = temp_file("flat.toml", "[events.executor]\nworkers = 3\n");
  test::LogCapture log("athomic.settings");
  auto s = Settings::load({.files = {flat}, .env = "", .environment = std::map<std::string, std::string>{{"NALA_ENV", "prodution"}}});
  EXPECT_EQ(s.events().workers, 3u);
  EXPECT_THAT(log.text(), testing::Not(HasSubstr("warning")));
}

TEST(Settings, LoadingLogsTheFilesReadOnce) {
  const auto a = temp_file("first-logged.toml", "[default.events.executor]\nworkers = 2\n");
  const auto b = temp_file("second-logged.yaml", "default:\n  events:\n    enabled: true\n");
  test::LogCapture log("athomic.settings");
  Settings::load({.files = {a, b}, .env = "", .environment = std::map<std::string, std::string>{
                                                  {"NALA_EVENTS__EXECUTOR__WORKERS", "3"}}});
  const auto text = log.text();
  EXPECT_THAT(text, HasSubstr("info settings read from " + a + ", " + b +
                              " (environment development): backend local; NALA_ variables "
                              "applied: NALA_EVENTS__EXECUTOR__WORKERS"));
  EXPECT_EQ(count(text, "info "), 1u);
}

// Runs in an empty working directory, so that no config/settings.toml is found.
class SettingsInAnEmptyDirectory : public testing::Test {
 protected:
  void SetUp() override {
    old_ = std::filesystem::current_path();
    dir_ = temp_dir() / "empty-cwd";
    std::filesystem::create_directories(dir_);
    std::filesystem::current_path(dir_);
  }
  void TearDown() override { std::filesystem::current_path(old_); }
  std::filesystem::path old_, dir_;
};

TEST_F(SettingsInAnEmptyDirectory, LoadingWithoutAnyFileSaysSoOnce) {
  test::LogCapture log("athomic.settings");
  Settings::load({.files = {}, .env = "", .environment = std::map<std::string, std::string>{}});
  const auto text = log.text();
  EXPECT_THAT(text, HasSubstr("info no settings file found (looked for config/settings.toml in " +
                              std::filesystem::current_path().string() +
                              "); using defaults: backend local"));
  EXPECT_EQ(count(text, "info "), 1u);
}

TEST_F(SettingsInAnEmptyDirectory, LoadingWithoutAnyFileNamesTheVariablesApplied) {
  test::LogCapture log("athomic.settings");
  Settings::load({.files = {}, .env = "", .environment = std::map<std::string, std::string>{
                                              {"NALA_EVENTS__PROVIDER__BACKEND", "redis"}}});
  EXPECT_THAT(log.text(), HasSubstr("using defaults: backend redis; NALA_ variables applied: "
                                    "NALA_EVENTS__PROVIDER__BACKEND"));
}

TEST(SettingsQueueBounds, DefaultsWhenNotSet) {
  const EventsSettings by_hand;
  const auto loaded = Settings::from_toml("[default.events]\nenabled = true\n", "s.toml").events();
  for (const EventsSettings& s : {by_hand, loaded}) {
    EXPECT_EQ(s.max_queued_events, 65'536u);
    EXPECT_EQ(s.max_queued_bytes, 67'108'864u);
    EXPECT_EQ(s.when_full, WhenFull::block);
    EXPECT_EQ(s.publish_timeout, std::chrono::milliseconds(5000));
  }
}

EventsSettings executor(const std::string& lines) {
  return Settings::from_toml("[default.events.executor]\n" + lines + "\n", "s.toml").events();
}

std::string executor_error(const std::string& lines) {
  return error_of([&] { executor(lines); });
}

TEST(SettingsQueueBounds, MaxQueuedEventsFromOneTo2To24MinusOne) {
  EXPECT_EQ(executor("max_queued_events = 1").max_queued_events, 1u);
  EXPECT_EQ(executor("max_queued_events = 16777215").max_queued_events, 16'777'215u);
  for (const char* bad : {"0", "16777216", "-1", "1.5", "\"many\"", "true", "[1]"}) {
    EXPECT_THAT(executor_error(std::string("max_queued_events = ") + bad),
                HasSubstr(fmt::format("s.toml:2: events.executor.max_queued_events = {} is invalid: "
                                      "expected an integer from 1 to 16777215",
                                      bad)))
        << bad;
  }
}

TEST(SettingsQueueBounds, MaxQueuedBytesFrom1KiBTo2To40MinusOne) {
  EXPECT_EQ(executor("max_queued_bytes = 1024").max_queued_bytes, 1024u);
  EXPECT_EQ(executor("max_queued_bytes = 1099511627775").max_queued_bytes, 1'099'511'627'775u);
  for (const char* bad : {"1023", "1099511627776", "0", "65536.0", "\"64MiB\""}) {
    EXPECT_THAT(executor_error(std::string("max_queued_bytes = ") + bad),
                HasSubstr(fmt::format("s.toml:2: events.executor.max_queued_bytes = {} is invalid: "
                                      "expected an integer from 1024 to 1099511627775",
                                      bad)))
        << bad;
  }
}

TEST(SettingsQueueBounds, WhenFullIsBlockOrFail) {
  EXPECT_EQ(executor("when_full = \"block\"").when_full, WhenFull::block);
  EXPECT_EQ(executor("when_full = \"fail\"").when_full, WhenFull::fail);
  for (const char* bad : {"\"drop\"", "\"Block\"", "1", "false"}) {
    EXPECT_THAT(executor_error(std::string("when_full = ") + bad),
                HasSubstr(fmt::format("s.toml:2: events.executor.when_full = {} is invalid: "
                                      "expected \"block\" or \"fail\"",
                                      bad)))
        << bad;
  }
}

TEST(SettingsQueueBounds, PublishTimeoutInSecondsFromZeroTo3600) {
  EXPECT_EQ(executor("publish_timeout = 0").publish_timeout, std::chrono::milliseconds(0));
  EXPECT_EQ(executor("publish_timeout = 0.25").publish_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(executor("publish_timeout = 3600").publish_timeout, std::chrono::milliseconds(3'600'000));
  for (const char* bad : {"-0.5", "3600.5", "\"5s\"", "true"}) {
    EXPECT_THAT(executor_error(std::string("publish_timeout = ") + bad),
                HasSubstr(fmt::format("s.toml:2: events.executor.publish_timeout = {} is invalid: "
                                      "expected seconds from 0 to 3600",
                                      bad)))
        << bad;
  }
  EXPECT_THAT(executor_error("publish_timeout = nan"),
              HasSubstr("s.toml:2: events.executor.publish_timeout = nan is invalid: expected a "
                        "finite number"));
}

TEST(SettingsQueueBounds, ValuesFromVariablesAreCheckedAndNamed) {
  auto s = Settings::from_toml(kLayered, "settings.toml", "development",
                               {{"NALA_EVENTS__EXECUTOR__MAX_QUEUED_EVENTS", "1000"},
                                {"NALA_EVENTS__EXECUTOR__MAX_QUEUED_BYTES", "1048576"},
                                {"NALA_EVENTS__EXECUTOR__WHEN_FULL", "fail"},
                                {"NALA_EVENTS__EXECUTOR__PUBLISH_TIMEOUT", "0.5"}});
  EXPECT_EQ(s.events().max_queued_events, 1000u);
  EXPECT_EQ(s.events().max_queued_bytes, 1'048'576u);
  EXPECT_EQ(s.events().when_full, WhenFull::fail);
  EXPECT_EQ(s.events().publish_timeout, std::chrono::milliseconds(500));
  for (const auto& [name, value, key] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"NALA_EVENTS__EXECUTOR__MAX_QUEUED_EVENTS", "0", "max_queued_events"},
           {"NALA_EVENTS__EXECUTOR__MAX_QUEUED_BYTES", "lots", "max_queued_bytes"},
           {"NALA_EVENTS__EXECUTOR__WHEN_FULL", "drop", "when_full"},
           {"NALA_EVENTS__EXECUTOR__PUBLISH_TIMEOUT", "-1", "publish_timeout"}}) {
    const auto msg = error_of([&] {
      Settings::from_toml(kLayered, "settings.toml", "development", {{name, value}});
    });
    EXPECT_THAT(msg, HasSubstr(fmt::format("environment variable {}: events.executor.{} = ", name, key)));
  }
}

TEST(SettingsQueueBounds, MaxConcurrencyIsNotAnExecutorKey) {
  EXPECT_THAT(executor_error("max_concurrency = 4"),
              HasSubstr("unknown setting events.executor.max_concurrency"));
}

TEST(Settings, MalformedTomlIsReportedWithFileAndLine) {
  const auto file = temp_file("broken.toml", "[default.events]\nenabled = true\nworkers = = 3\n");
  const auto msg = error_of([&] { Settings::load({.files = {file}, .env = "development", .environment = std::map<std::string, std::string>{}}); });
  EXPECT_THAT(msg, HasSubstr(file + ":3:"));
  EXPECT_THAT(msg, HasSubstr("malformed TOML"));
}

TEST(Settings, BadValueNamesFileLineKeyValueAndWhatIsAllowed) {
  const auto file = temp_file("bad.toml", "[default.events.executor]\nmode = \"pool\"\nworkers = -3\n");
  const auto msg = error_of([&] { Settings::load({.files = {file}, .env = "development", .environment = std::map<std::string, std::string>{}}); });
  EXPECT_THAT(msg, HasSubstr(file + ":3: events.executor.workers = -3 is invalid: expected an "
                                    "integer from 0 to 1024"));
}

TEST(Settings, BadModeSaysWhatIsAllowed) {
  const auto msg = error_of([] {
    Settings::from_toml("[default.events.executor]\nmode = \"threads\"\n", "s.toml");
  });
  EXPECT_THAT(msg, HasSubstr("s.toml:2: events.executor.mode = \"threads\" is invalid: expected "
                             "\"pool\" or \"inline\""));
}

TEST(Settings, UnknownKeyGetsADidYouMean) {
  const auto msg = error_of([] {
    Settings::from_toml("[default.events.executer]\nworkers = 2\n", "s.toml");
  });
  EXPECT_THAT(msg, HasSubstr("unknown setting events.executer"));
  EXPECT_THAT(msg, HasSubstr("Did you mean 'executor'?"));
  EXPECT_THAT(msg, HasSubstr("s.toml:1"));
}

TEST(Settings, UnknownContextFieldIsNamed) {
  const auto msg = error_of([] {
    Settings::from_toml("[default.events]\npropagated_context = [\"trace_id\", \"tenantid\"]\n",
                        "s.toml");
  });
  EXPECT_THAT(msg, HasSubstr("events.propagated_context[1] = \"tenantid\""));
  EXPECT_THAT(msg, HasSubstr("did you mean 'tenant_id'"));
}

TEST(Settings, LaterFilesOverrideEarlierOnes) {
  const auto a = temp_file("a.toml", "[default.events.executor]\nworkers = 2\nmode = \"inline\"\n");
  const auto b = temp_file("b.toml", "[default.events.executor]\nworkers = 9\n");
  auto s = Settings::load({.files = {}, .env = "development", .environment = std::map<std::string, std::string>{{"NALA_SETTINGS_FILES", a + ", " + b}}});
  EXPECT_EQ(s.events().workers, 9u);
  EXPECT_EQ(s.events().dispatch_mode, DispatchMode::inline_call);
}

TEST(Settings, ANamedFileThatIsMissingIsAnError) {
  const auto msg = error_of([] { Settings::load({.files = {"/nonexistent/settings.toml"}, .env = "", .environment = std::map<std::string, std::string>{}}); });
  EXPECT_THAT(msg, HasSubstr("/nonexistent/settings.toml"));
}

TEST(Settings, ADirectoryGivenAsASettingsFileIsAnError) {
  const auto dir = temp_dir() / "a-folder.toml";
  std::filesystem::create_directories(dir);
  const auto from_options = error_of([&] {
    Settings::load({.files = {dir.string()}, .env = "", .environment = std::map<std::string, std::string>{}});
  });
  EXPECT_THAT(from_options, HasSubstr("settings file " + dir.string()));
  EXPECT_THAT(from_options, HasSubstr("is a directory, not a settings file"));
  const auto from_variable = error_of([&] {
    Settings::load({.files = {}, .env = "", .environment = std::map<std::string, std::string>{
                                               {"NALA_SETTINGS_FILES", dir.string()}}});
  });
  EXPECT_THAT(from_variable, HasSubstr("settings file " + dir.string() + " (from NALA_SETTINGS_FILES)"));
  EXPECT_THAT(from_variable, HasSubstr("is a directory"));
}

TEST(Settings, AFifoOrADeviceGivenAsASettingsFileIsAnError) {
  // A fifo would block a reader until someone writes to it: it must be refused, not read.
  const auto fifo = temp_dir() / "settings-fifo.toml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(error_of([&] {
                Settings::load({.files = {fifo.string()}, .env = "", .environment = std::map<std::string, std::string>{}});
              }),
              HasSubstr("settings file " + fifo.string() + ": is a fifo, not a settings file"));
  EXPECT_THAT(error_of([&] {
                Settings::load({.files = {"/dev/null"}, .env = "", .environment = std::map<std::string, std::string>{}});
              }),
              HasSubstr("settings file /dev/null: is a character device, not a settings file"));
}

// Runs @p f as the user nobody when this process is root (root reads every file whatever its
// mode), else as itself; returns what @p f returns.
std::string as_unprivileged_user(const std::function<std::string()>& f) {
  if (::geteuid() != 0) return f();
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    std::string out = "could not become nobody";
    if (::setgroups(0, nullptr) == 0 && ::setgid(65534) == 0 && ::setuid(65534) == 0) out = f();
    const ssize_t written = ::write(fds[1], out.data(), out.size());
    ::_exit(written == static_cast<ssize_t>(out.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return out;
}

TEST(Settings, AnUnreadableSettingsFileIsAnErrorSayingWhy) {
  const auto file = temp_file("unreadable.toml", "[default.events]\nenabled = true\n");
  std::filesystem::permissions(file, std::filesystem::perms::none);
  std::filesystem::permissions(temp_dir(), std::filesystem::perms(0755));
  const auto msg = as_unprivileged_user([&] {
    return error_of([&] {
      Settings::load({.files = {file}, .env = "", .environment = std::map<std::string, std::string>{}});
    });
  });
  EXPECT_THAT(msg, HasSubstr("settings file " + file + ": cannot be read: Permission denied"));
}

TEST(Settings, YamlHasTheSameStructure) {
  const auto file = temp_file("settings.yaml", R"(default:
  events:
    provider:
      backend: local
    executor:
      workers: 5
production:
  events:
    executor:
      workers: "five"
)");
  auto s = Settings::load({.files = {file}, .env = "development", .environment = std::map<std::string, std::string>{}});
  EXPECT_EQ(s.events().workers, 5u);
  const auto msg = error_of([&] { Settings::load({.files = {file}, .env = "production", .environment = std::map<std::string, std::string>{}}); });
  EXPECT_THAT(msg, HasSubstr(file + ":10: events.executor.workers = \"five\" is invalid"));
}

std::string load_error(const std::string& file) {
  return error_of([&] {
    Settings::load({.files = {file}, .env = "", .environment = std::map<std::string, std::string>{}});
  });
}

TEST(Settings, AYamlComplexKeyIsAConfigErrorNamingFileAndLine) {
  const auto nested = temp_file("complex.yaml", "default:\n  events:\n    ? [a, b]\n    : 1\n");
  auto msg = load_error(nested);
  EXPECT_THAT(msg, HasSubstr(nested + ":3:"));
  EXPECT_THAT(msg, HasSubstr("a key must be text, not a sequence"));
  const auto top = temp_file("complex-top.yaml", "? [a, b]\n: 1\n");
  EXPECT_THAT(load_error(top), HasSubstr(top + ":1:"));
  const auto map_key = temp_file("map-key.yaml", "default:\n  {a: 1}: 2\n");
  msg = load_error(map_key);
  EXPECT_THAT(msg, HasSubstr(map_key + ":2:"));
  EXPECT_THAT(msg, HasSubstr("a key must be text, not a mapping"));
}

TEST(Settings, MalformedYamlIsAConfigErrorNamingFileAndLine) {
  const auto file = temp_file("broken.yaml", "default:\n  events:\n    enabled: [true\n");
  const auto msg = load_error(file);
  EXPECT_THAT(msg, HasSubstr(file + ":"));
  EXPECT_THAT(msg, HasSubstr("malformed YAML"));
}

TEST(Settings, AnchorsAndAliasesWithinBoundsAreExpanded) {
  const auto file = temp_file("aliases.yaml", R"(common: &common
  executor:
    workers: 6
default:
  events: *common
)");
  EXPECT_EQ(Settings::load({.files = {file}, .env = "", .environment = std::map<std::string, std::string>{}})
                .events()
                .workers,
            6u);
}

TEST(Settings, AYamlAliasBombIsRefusedNamingFileAndLine) {
  // "Billion laughs": nine levels of ten aliases each would expand to 10^9 values.
  std::string text = "a0: &a0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n";
  for (int i = 1; i <= 9; ++i) {
    text += fmt::format("a{}: &a{} [", i, i);
    for (int k = 0; k < 10; ++k) text += fmt::format("{}*a{}", k ? ", " : "", i - 1);
    text += "]\n";
  }
  const auto file = temp_file("bomb.yaml", text);
  const auto msg = load_error(file);
  EXPECT_THAT(msg, testing::MatchesRegex(".*" + file + ":[0-9]+: .*"));
  EXPECT_THAT(msg, HasSubstr("more than 100000 values"));
}

TEST(Settings, YamlNestedTooDeeplyIsRefusedNamingFileAndLine) {
  const auto file = temp_file("deep.yaml", "default:\n  events:\n    x: " + std::string(100, '[') +
                                               std::string(100, ']') + "\n");
  const auto msg = load_error(file);
  EXPECT_THAT(msg, HasSubstr(file + ":3: "));
  EXPECT_THAT(msg, HasSubstr("nested more than 64 levels deep"));
}

TEST(Settings, SecretsAreMasked) {
  EXPECT_EQ(mask_secrets("connecting to redis://svc:hunter2@localhost:6379/2"),
            "connecting to redis://svc:***@localhost:6379/2");
  EXPECT_EQ(mask_secrets("redis://localhost:6379"), "redis://localhost:6379");
  auto prod = Settings::from_toml(std::string(kLayered) +
                                      "[production.events.provider.provider.provider.auth]\n"
                                      "password = \"s3cret\"\n",
                                  "settings.toml", "production");
  const std::string shown = prod.describe();
  EXPECT_THAT(shown, testing::Not(HasSubstr("hunter2")));
  EXPECT_THAT(shown, testing::Not(HasSubstr("s3cret")));
  EXPECT_THAT(shown, HasSubstr("redis://svc:***@localhost:6379/2"));
}

TEST(Settings, NonFiniteNumbersInTomlAreRefusedNamingKeyAndLine) {
  for (const char* v : {"nan", "+nan", "-nan", "inf", "+inf", "-inf"}) {
    const auto msg = error_of([&] {
      Settings::from_toml(fmt::format("[default.events.executor]\nclose_timeout = {}\n", v),
                          "s.toml");
    });
    EXPECT_THAT(msg, HasSubstr("s.toml:2: events.executor.close_timeout = ")) << v;
    EXPECT_THAT(msg, HasSubstr("is invalid: expected a finite number")) << v;
  }
  // Every numeric key, the provider's own keys included: none has a use for nan or inf.
  EXPECT_THAT(error_of([] {
                Settings::from_toml("[default.events]\nmax_payload_bytes = inf\n", "s.toml");
              }),
              HasSubstr("s.toml:2: events.max_payload_bytes = inf is invalid"));
  EXPECT_THAT(error_of([] {
                Settings::from_toml(
                    "[default.events.provider]\nbackend = \"redis\"\nreconnect_max_delay = -inf\n",
                    "s.toml");
              }),
              HasSubstr("s.toml:3: events.provider.reconnect_max_delay = -inf is invalid: "
                        "expected a finite number"));
}

TEST(Settings, NonFiniteNumbersInYamlAreRefusedNamingKeyAndLine) {
  for (const char* v : {".nan", ".NaN", ".inf", "-.inf", "+.Inf"}) {
    const auto file = temp_file("nan.yaml", fmt::format("default:\n  events:\n    executor:\n"
                                                        "      close_timeout: {}\n",
                                                        v));
    const auto msg = error_of([&] {
      Settings::load({.files = {file}, .env = "", .environment = std::map<std::string, std::string>{}});
    });
    EXPECT_THAT(msg, HasSubstr(file + ":4: events.executor.close_timeout = ")) << v;
    EXPECT_THAT(msg, HasSubstr("is invalid: expected a finite number")) << v;
  }
}

TEST(Settings, NonFiniteNumbersFromTheEnvironmentAreRefusedNamingTheVariable) {
  for (const char* v : {"nan", "inf", "-inf"}) {
    const auto msg = error_of([&] {
      Settings::from_toml(kLayered, "settings.toml", "development",
                          {{"NALA_EVENTS__EXECUTOR__CLOSE_TIMEOUT", v}});
    });
    EXPECT_THAT(msg, HasSubstr(fmt::format("environment variable NALA_EVENTS__EXECUTOR__CLOSE_TIMEOUT: "
                                           "events.executor.close_timeout = {} is invalid: expected "
                                           "a finite number",
                                           v)));
  }
}

TEST(Settings, YamlScalarsFollowTheCoreSchema) {
  const auto file = temp_file("schema.yaml", R"(default:
  events:
    enabled: FALSE
    max_payload_bytes: 0x1000
    executor:
      workers: 0o7
      close_timeout: .5
    provider:
      backend: local
      as_text: "12"
      also_text: !!str 13
      version: 1.2.3
      nothing: ~
)");
  auto s = Settings::load({.files = {file}, .env = "", .environment = std::map<std::string, std::string>{}});
  EXPECT_FALSE(s.events().enabled);
  EXPECT_EQ(s.events().max_payload_bytes, 4096u);
  EXPECT_EQ(s.events().workers, 7u);
  EXPECT_EQ(s.events().close_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(s.events().provider_config["as_text"], "12");
  EXPECT_EQ(s.events().provider_config["also_text"], "13");
  EXPECT_EQ(s.events().provider_config["version"], "1.2.3");
  EXPECT_TRUE(s.events().provider_config["nothing"].is_null());
}

TEST(Settings, PluginsDirMustBeText) {
  const auto msg = error_of([] {
    Settings::from_toml("[default.events]\nplugins_dir = 3\n", "s.toml");
  });
  EXPECT_THAT(msg, HasSubstr("plugins_dir = 3 is invalid: expected a string"));
}

TEST(SettingsTraceparent, OffUnlessSet) {
  EXPECT_FALSE(EventsSettings{}.traceparent);
  EXPECT_FALSE(
      Settings::from_toml("[default.events]\nenabled = true\n", "s.toml").events().traceparent);
  const auto s = Settings::from_toml("[default.events.context]\ntraceparent = true\n", "s.toml");
  EXPECT_TRUE(s.events().traceparent);
  EXPECT_EQ(s.events().origin_of("events.context.traceparent"), "s.toml:2");
}

TEST(SettingsTraceparent, ABadValueNamesThePlaceTheKeyAndWhatIsAllowed) {
  for (const char* bad : {"\"yes\"", "1", "[true]"}) {
    EXPECT_THAT(error_of([&] {
                  Settings::from_toml(
                      std::string("[default.events.context]\ntraceparent = ") + bad + "\n",
                      "s.toml");
                }),
                HasSubstr(fmt::format("s.toml:2: events.context.traceparent = {} is invalid: "
                                      "expected true or false",
                                      bad)))
        << bad;
  }
  EXPECT_THAT(error_of([] { Settings::from_toml("[default.events]\ncontext = true\n", "s.toml"); }),
              HasSubstr("s.toml:2: events.context = true is invalid: expected a table"));
  const auto msg = error_of(
      [] { Settings::from_toml("[default.events.context]\ntraceparents = true\n", "s.toml"); });
  EXPECT_THAT(msg, HasSubstr("s.toml:2: unknown setting events.context.traceparents. Did you mean "
                             "'traceparent'? Known keys of events.context: traceparent"));
}

TEST(SettingsTraceparent, FromTheEnvironmentNamingTheVariable) {
  const auto s = Settings::from_toml(kLayered, "settings.toml", "development",
                                     {{"NALA_EVENTS__CONTEXT__TRACEPARENT", "true"}});
  EXPECT_TRUE(s.events().traceparent);
  EXPECT_THAT(env_error({{"NALA_EVENTS__CONTEXT__TRACEPARENT", "maybe"}}),
              HasSubstr("environment variable NALA_EVENTS__CONTEXT__TRACEPARENT: "
                        "events.context.traceparent = \"maybe\" is invalid: expected true or "
                        "false"));
  const auto loaded = Settings::load(
      {.files = {temp_file("traced.toml", "[default.events.context]\ntraceparent = false\n")},
       .env = "",
       .environment =
           std::map<std::string, std::string>{{"NALA_EVENTS__CONTEXT__TRACEPARENT", "true"}}});
  EXPECT_TRUE(loaded.events().traceparent);
  EXPECT_EQ(loaded.events().origin_of("events.context.traceparent"),
            "environment variable NALA_EVENTS__CONTEXT__TRACEPARENT");
}

}  // namespace
}  // namespace athomic
