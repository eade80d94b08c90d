// Finding and loading provider plugins, with deliberately broken plugins built by the suite.
#include "log_capture.h"
#include "temp_plugin_folder.h"
#include "test_support.h"

#include <athomic/sdk/provider.h>
#include <fmt/format.h>
#include <gmock/gmock.h>

#include <filesystem>

#include <dlfcn.h>
#include <unistd.h>

namespace athomic::test {
namespace {

using testing::HasSubstr;

EventsSettings with_backend(const std::string& backend) {
  auto s = local_settings();
  s.backend = backend;
  s.plugins_dir = ATHOMIC_TEST_PLUGIN_DIR;
  return s;
}

std::string create_error(const std::string& backend) {
  try {
    EventBus::create(with_backend(backend));
  } catch (const PluginError& e) {
    return e.what();
  }
  ADD_FAILURE() << "backend " << backend << " loaded without error";
  return "";
}

std::string plugin_path(const std::string& backend) {
  return std::string(ATHOMIC_TEST_PLUGIN_DIR) + "/athomic_provider_" + backend + ".so";
}

TEST(PluginLoader, TheLocalProviderIsFoundWithNoSetting) {
  auto bus = EventBus::create(local_settings());
  const auto p = bus->provider();
  EXPECT_EQ(p.name, "local");
  EXPECT_EQ(p.abi_major, ATHOMIC_ABI_VERSION_MAJOR);
  EXPECT_THAT(p.file, HasSubstr("athomic/plugins/athomic_provider_local.so"));
  EXPECT_TRUE(p.capabilities & ATHOMIC_CAP_IN_PROCESS);
}

TEST(PluginLoader, UnknownBackendListsWhatWasSearchedAndWhatExists) {
  const auto msg = create_error("reddis");
  EXPECT_THAT(msg, HasSubstr("no provider plugin for backend \"reddis\""));
  EXPECT_THAT(msg, HasSubstr("athomic_provider_reddis.so"));
  EXPECT_THAT(msg, HasSubstr(std::string(ATHOMIC_TEST_PLUGIN_DIR) + " (events.plugins_dir)"));
  EXPECT_THAT(msg, HasSubstr("next to libathomic"));
  EXPECT_THAT(msg, HasSubstr("Available backends:"));
  EXPECT_THAT(msg, HasSubstr("local"));
  EXPECT_THAT(msg, HasSubstr("init_fails"));
}

TEST(PluginLoader, AMisspeltBackendGetsADidYouMean) {
  EXPECT_THAT(create_error("locl"), HasSubstr("Did you mean \"local\"?"));
}

TEST(PluginLoader, MissingSearchFoldersAreMarked) {
  auto s = local_settings();
  s.backend = "nothing";
  s.plugins_dir = "/nonexistent/plugins";
  try {
    EventBus::create(s);
    FAIL();
  } catch (const PluginError& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/plugins (events.plugins_dir) [does not exist]"));
  }
}

TEST(PluginLoader, ABackendNameCannotBeAPath) {
  EXPECT_THAT(create_error("../../etc/passwd"), HasSubstr("is not a valid backend name"));
}

TEST(PluginLoader, AFileThatIsNotASharedObject) {
  const auto msg = create_error("not_elf");
  EXPECT_THAT(msg, HasSubstr(plugin_path("not_elf")));
  EXPECT_THAT(msg, HasSubstr("not a shared object"));
}

TEST(PluginLoader, AnElfFileThatCannotBeLoaded) {
  const auto msg = create_error("wrong_elf");
  EXPECT_THAT(msg, HasSubstr(plugin_path("wrong_elf")));
  EXPECT_THAT(msg, HasSubstr("cannot be loaded"));
}

TEST(PluginLoader, ASharedObjectWithoutTheEntrySymbol) {
  const auto msg = create_error("no_entry");
  EXPECT_THAT(msg, HasSubstr(plugin_path("no_entry")));
  EXPECT_THAT(msg, HasSubstr("no symbol 'athomic_provider_entry'"));
}

TEST(PluginLoader, ADifferentAbiMajorIsRefusedNamingBothVersions) {
  const auto msg = create_error("abi_major");
  EXPECT_THAT(msg, HasSubstr(plugin_path("abi_major")));
  EXPECT_THAT(msg, HasSubstr(fmt::format("built for ABI {}.0, but this host speaks ABI {}.{}",
                                         ATHOMIC_ABI_VERSION_MAJOR + 1, ATHOMIC_ABI_VERSION_MAJOR,
                                         ATHOMIC_ABI_VERSION_MINOR)));
}

TEST(PluginLoader, ANewerAbiMinorIsRefused) {
  const auto msg = create_error("abi_minor_newer");
  EXPECT_THAT(msg, HasSubstr(fmt::format("built for ABI {}.{}, newer than this host's ABI {}.{}",
                                         ATHOMIC_ABI_VERSION_MAJOR, ATHOMIC_ABI_VERSION_MINOR + 1,
                                         ATHOMIC_ABI_VERSION_MAJOR, ATHOMIC_ABI_VERSION_MINOR)));
}

TEST(PluginLoader, AnEntryPointThatDeclines) {
  EXPECT_THAT(create_error("declines"), HasSubstr("declined to initialise"));
}

TEST(PluginLoader, AnIncompleteFunctionTable) {
  EXPECT_THAT(create_error("incomplete"), HasSubstr("provider table is incomplete"));
}

TEST(PluginLoader, InitFailureCarriesThePluginsMessage) {
  const auto msg = create_error("init_fails");
  EXPECT_THAT(msg, HasSubstr("provider 'init_fails'"));
  EXPECT_THAT(msg, HasSubstr("failed to initialise: setting 'shards' is required"));
  EXPECT_THAT(msg, HasSubstr("(config was {\"backend\":\"init_fails\"})"));
}

TEST(PluginLoader, StartFailureCarriesThePluginsMessage) {
  auto bus = EventBus::create(with_backend("start_fails"));
  try {
    bus->start();
    FAIL() << "expected EventBusError";
  } catch (const EventBusError& e) {
    EXPECT_THAT(e.what(), HasSubstr("provider 'init_fails' failed to start: cannot reach broker "
                                    "at 127.0.0.1:1: connection refused"));
  }
}

TEST(PluginLoader, ThePluginPathVariableIsSearched) {
  ScopedEnv env("ATHOMIC_PLUGIN_PATH", std::string("/nonexistent:") + ATHOMIC_TEST_PLUGIN_DIR);
  auto s = local_settings();
  s.backend = "start_fails";
  auto bus = EventBus::create(s);
  EXPECT_EQ(bus->provider().file, plugin_path("start_fails"));
}

TEST(PluginLoader, ABackendSetByAVariableIsReportedWithTheVariable) {
  const auto load = [](const std::string& backend) {
    return Settings::load({.files = {},
                           .env = "",
                           .environment = std::map<std::string, std::string>{
                               {"NALA_EVENTS__PROVIDER__BACKEND", backend},
                               {"NALA_EVENTS__PLUGINS_DIR", ATHOMIC_TEST_PLUGIN_DIR}}});
  };
  try {
    EventBus::create(load("reddis"));
    FAIL() << "backend reddis loaded";
  } catch (const PluginError& e) {
    EXPECT_THAT(e.what(), HasSubstr("environment variable NALA_EVENTS__PROVIDER__BACKEND: no "
                                    "provider plugin for backend \"reddis\""));
  }
  try {
    EventBus::create(load("../x"));
    FAIL() << "backend ../x accepted";
  } catch (const PluginError& e) {
    EXPECT_THAT(e.what(), HasSubstr("environment variable NALA_EVENTS__PROVIDER__BACKEND: "
                                    "events.provider.backend = \"../x\" is not a valid backend name"));
  }
}

TEST(PluginLoader, ARejectedPluginStaysLoaded) {
  // Its entry point ran: unloading it while anything it set up may still be referenced is
  // undefined behaviour, so a refused library stays loaded like an accepted one.
  for (const char* b : {"abi_major", "abi_minor_newer", "declines", "incomplete", "no_entry"}) {
    EXPECT_THROW(EventBus::create(with_backend(b)), PluginError) << b;
    void* still = ::dlopen(plugin_path(b).c_str(), RTLD_NOW | RTLD_NOLOAD);
    EXPECT_NE(still, nullptr) << b << " was unloaded after it was refused";
    if (still) ::dlclose(still);  // drops only the reference this check took
  }
}

TEST(PluginLoader, TheHostKeepsWorkingAfterBadPlugins) {
  for (const char* b : {"not_elf", "wrong_elf", "no_entry", "abi_major", "declines", "incomplete",
                        "init_fails"}) {
    EXPECT_THROW(EventBus::create(with_backend(b)), PluginError) << b;
  }
  auto bus = started(local_settings());
  Counter got;
  bus->subscribe("still.alive", [&](const Event&) { got.add(); });
  bus->publish("still.alive", {}).wait();
  EXPECT_EQ(got.value(), 1);
}

}  // namespace
}  // namespace athomic::test

namespace athomic::test {
namespace {

// Both plugins below were compiled against the frozen ABI 1.0 header
// (tests/plugins/abi_1_0), not the SDK: their structs have the 1.0 layout.
TEST(PluginLoader, AnOlderAbiMinorIsAccepted) {
  static_assert(ATHOMIC_ABI_VERSION_MINOR >= 1, "needs a host minor above 0");
  auto bus = EventBus::create(with_backend("abi_minor_older"));
  EXPECT_EQ(bus->provider().abi_major, 1);
  EXPECT_EQ(bus->provider().abi_minor, 0);
  EXPECT_NO_THROW(bus->start());
}

class Abi10Plugin : public testing::TestWithParam<DispatchMode> {};

TEST_P(Abi10Plugin, CarriesEventsThroughTheHost) {
  auto settings = with_backend("abi_1_0");
  settings.dispatch_mode = GetParam();
  auto bus = started(settings);
  EXPECT_EQ(bus->provider().name, "abi_1_0");
  EXPECT_EQ(bus->provider().abi_minor, 0);
  Counter got;
  std::string seen;
  bus->subscribe("old.plugin", [&](const Event& e) {
    seen = e.payload().value("said", "");
    got.add();
  });
  bus->publish("old.plugin", {{"said", "hello from 1.0"}}).wait();
  ASSERT_TRUE(got.wait_for_at_least(1));
  EXPECT_EQ(seen, "hello from 1.0");
  bus->close();
}

INSTANTIATE_TEST_SUITE_P(Modes, Abi10Plugin,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

// ATHOMIC_CAP_LOOPBACK (ABI 1.5): the host dispatches without calling the provider's publish
// (which would only hand the event back). Both plugins below mark each call of their publish; the
// one built against ABI 1.0 sets the same bit, which meant nothing then, and must be called.
class LoopbackCapability : public testing::TestWithParam<DispatchMode> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/athomic-publish-mark-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    mark_ = dir_ + "/published";
    ::setenv("ATHOMIC_TEST_PUBLISH_MARK", mark_.c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("ATHOMIC_TEST_PUBLISH_MARK");
    std::filesystem::remove_all(dir_);
  }
  // Publishes one event through @p backend and returns whether its publish was called.
  bool publish_called(const std::string& backend, uint64_t& capabilities) {
    auto settings = with_backend(backend);
    settings.dispatch_mode = GetParam();
    auto bus = started(settings);
    capabilities = bus->provider().capabilities;
    Counter got;
    ScopedSubscription sub = bus->subscribe_scoped("looped", [&](const Event&) { got.add(); });
    Completion done = bus->publish("looped", {{"n", 1}});
    EXPECT_TRUE(done.wait_for(kGenerous));
    EXPECT_TRUE(got.wait_for_at_least(1));
    EXPECT_EQ(done.receivers(), 1);
    EXPECT_TRUE(done.delivered());
    bus->close();
    return std::filesystem::exists(mark_);
  }
  std::string dir_, mark_;
};

TEST_P(LoopbackCapability, IsHonouredForAPluginThatDeclaresItUnderAbi15) {
  uint64_t caps = 0;
  EXPECT_FALSE(publish_called("loopback_declared", caps)) << "the host called publish";
  EXPECT_EQ(caps, uint64_t{ATHOMIC_CAP_IN_PROCESS | ATHOMIC_CAP_LOOPBACK});
}

TEST_P(LoopbackCapability, TheSameBitFromAnAbi10PluginIsNotActedOn) {
  uint64_t caps = 0;
  EXPECT_TRUE(publish_called("abi_1_0_loopback", caps)) << "the host skipped the 1.0 plugin's publish";
  EXPECT_EQ(caps, uint64_t{ATHOMIC_CAP_IN_PROCESS});
}

INSTANTIATE_TEST_SUITE_P(Modes, LoopbackCapability,
                         testing::Values(DispatchMode::pool, DispatchMode::inline_call), mode_name);

}  // namespace
}  // namespace athomic::test

namespace athomic::test {
namespace {

using PluginNames = TempPluginFolder;

TEST_F(PluginNames, ANameThatDiffersFromTheFileNameIsAWarning) {
  const auto plugins = folder("plugins", 0755);
  const auto file = install(plugins, "athomic_provider_songbird.so");
  LogCapture log("athomic.plugins");
  auto bus = EventBus::create(settings(plugins, "songbird"));
  EXPECT_EQ(bus->provider().name, "canary");
  EXPECT_THAT(log.text(), HasSubstr("warning provider plugin " + file.string() +
                                    " declares the name 'canary', but its file name is for backend "
                                    "'songbird'"));
}

TEST_F(PluginNames, AMatchingNameIsNotWarnedAbout) {
  const auto plugins = folder("plugins", 0755);
  install(plugins);
  LogCapture log("athomic.plugins");
  EventBus::create(settings(plugins, "canary"));
  EXPECT_THAT(log.text(), testing::Not(HasSubstr("warning")));
}

TEST_F(PluginNames, InspectionReportsEachFileWithoutOpeningUnsafeOnes) {
  const auto open = folder("open", 0777);
  const auto unsafe = install(open);
  const auto safe = folder("safe", 0755);
  const auto songbird = install(safe, "athomic_provider_songbird.so");
  const auto canary = install(safe);
  ScopedEnv mark("ATHOMIC_TEST_CANARY", mark_.string());

  auto reports = inspect_plugin_files(settings(open));
  ASSERT_FALSE(reports.empty());
  EXPECT_EQ(reports[0].file, unsafe.string());
  EXPECT_EQ(reports[0].backend, "canary");
  EXPECT_FALSE(reports[0].loads);
  EXPECT_FALSE(reports[0].opened);
  EXPECT_FALSE(reports[0].described);
  EXPECT_THAT(reports[0].problem, HasSubstr("the folder " + open.string() + " is writable"));
  EXPECT_FALSE(canary_ran());

  reports = inspect_plugin_files(settings(safe));
  ASSERT_GE(reports.size(), 2u);
  EXPECT_EQ(reports[0].file, canary.string());
  EXPECT_EQ(reports[1].file, songbird.string());
  for (const auto& r : {reports[0], reports[1]}) {
    EXPECT_TRUE(r.loads) << r.file << ": " << r.problem;
    EXPECT_TRUE(r.opened);
    EXPECT_EQ(r.name, "canary");
    EXPECT_EQ(r.version, "0.0.1");
    EXPECT_EQ(r.abi_major, ATHOMIC_ABI_VERSION_MAJOR);
    EXPECT_EQ(r.abi_minor, ATHOMIC_ABI_VERSION_MINOR);
  }
  EXPECT_EQ(reports[1].backend, "songbird");
  // The local plugin comes later in the search path; a folder searched first would shadow it.
  const auto local = std::find_if(reports.begin(), reports.end(),
                                  [](const PluginFileReport& r) { return r.backend == "local"; });
  ASSERT_NE(local, reports.end());
  EXPECT_FALSE(local->shadowed);
  EXPECT_TRUE(canary_ran());
}

TEST_F(PluginNames, InspectionDescribesAFileItRefusesAfterOpeningIt) {
  const auto reports = inspect_plugin_files(settings(ATHOMIC_TEST_PLUGIN_DIR));
  const auto major = std::find_if(reports.begin(), reports.end(), [](const PluginFileReport& r) {
    return r.backend == "abi_major";
  });
  ASSERT_NE(major, reports.end());
  EXPECT_FALSE(major->loads);
  EXPECT_TRUE(major->opened);
  EXPECT_TRUE(major->described);
  EXPECT_EQ(major->abi_major, ATHOMIC_ABI_VERSION_MAJOR + 1);
  EXPECT_TRUE(major->name.empty());  // another major's layout is not read beyond its version
  EXPECT_THAT(major->problem, HasSubstr("built for ABI"));
}

}  // namespace
}  // namespace athomic::test
