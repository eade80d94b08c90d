// Plugin files are checked the way ssh checks authorized_keys, before any of their code runs:
// the file, after every symlink, and each folder up to / may be changed only by root or by the
// user running the process. Each test builds a real folder layout under a fresh 0700 folder.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <sys/stat.h>
#include <unistd.h>

#include "temp_plugin_folder.h"
#include "test_support.h"

namespace athomic::test {
namespace {

using testing::HasSubstr;

using PluginFileCheck = TempPluginFolder;

TEST_F(PluginFileCheck, ASafeLayoutLoadsAndCarriesEvents) {
  const auto plugins = folder("plugins", 0755);
  install(plugins);
  ScopedEnv canary("ATHOMIC_TEST_CANARY", mark_.string());
  auto bus = started(settings(plugins));
  EXPECT_EQ(bus->provider().name, "canary");
  Counter got;
  bus->subscribe("canary.sang", [&](const Event&) { got.add(); });
  bus->publish("canary.sang", {}).wait();
  EXPECT_EQ(got.value(), 1);
  EXPECT_TRUE(canary_ran());  // the mark works: the refusals below are meaningful
}

TEST_F(PluginFileCheck, ASymlinkWithinSafeFoldersLoads) {
  const auto real = folder("real", 0755);
  const auto plugins = folder("plugins", 0755);
  fs::create_symlink(install(real, "canary-1.0.so"), plugins / "athomic_provider_canary.so");
  ScopedEnv canary("ATHOMIC_TEST_CANARY", mark_.string());
  EXPECT_EQ(EventBus::create(settings(plugins))->provider().name, "canary");
}

TEST_F(PluginFileCheck, AFolderOthersCanWriteAboveThePluginsFolderIsRefused) {
  const auto open = folder("open", 0777);
  const auto plugins = folder("open/plugins", 0755);
  install(plugins);
  const auto msg = load_error(plugins);
  EXPECT_THAT(msg, HasSubstr("refusing to load it: the folder " + open.string() +
                             " is writable by its group and other users (mode 0777"));
  EXPECT_THAT(msg, HasSubstr("Fix: chmod go-w " + open.string()));
  EXPECT_FALSE(canary_ran());
}

TEST_F(PluginFileCheck, ThePluginsFolderWritableByOthersIsRefused) {
  const auto plugins = folder("plugins", 0757);
  install(plugins);
  EXPECT_THAT(load_error(plugins), HasSubstr("the folder " + plugins.string() +
                                             " is writable by other users (mode 0757"));
  EXPECT_FALSE(canary_ran());
}

TEST_F(PluginFileCheck, ASymlinkToAFileInAFolderOthersCanWriteIsRefused) {
  const auto open = folder("open", 0777);
  const auto plugins = folder("plugins", 0755);
  const auto target = install(open, "canary.so");
  fs::create_symlink(target, plugins / "athomic_provider_canary.so");
  const auto msg = load_error(plugins);
  EXPECT_THAT(msg, HasSubstr((plugins / "athomic_provider_canary.so").string() +
                             " (resolved: " + target.string() + ")"));
  EXPECT_THAT(
      msg, HasSubstr("the folder " + open.string() + " is writable by its group and other users"));
  EXPECT_FALSE(canary_ran());
}

TEST_F(PluginFileCheck, ASymlinkInAFolderOthersCanWriteIsRefused) {
  // Whoever can write the folder can point the link at another file.
  const auto real = folder("real", 0755);
  const auto open = folder("open", 0777);
  fs::create_symlink(install(real, "canary.so"), open / "athomic_provider_canary.so");
  EXPECT_THAT(load_error(open), HasSubstr("the folder " + open.string() +
                                          " is writable by its group and other users"));
  EXPECT_FALSE(canary_ran());
}

TEST_F(PluginFileCheck, AGroupWritableFileIsRefused) {
  const auto plugins = folder("plugins", 0755);
  const auto file = install(plugins);
  ASSERT_EQ(::chmod(file.c_str(), 0775), 0);
  const auto msg = load_error(plugins);
  EXPECT_THAT(msg, HasSubstr("the file " + file.string() + " is writable by its group (mode 0775"));
  EXPECT_THAT(msg, HasSubstr("Fix: chmod go-w " + file.string()));
  EXPECT_FALSE(canary_ran());
}

TEST_F(PluginFileCheck, AFileOthersCanWriteIsRefused) {
  const auto plugins = folder("plugins", 0755);
  const auto file = install(plugins);
  ASSERT_EQ(::chmod(file.c_str(), 0757), 0);
  EXPECT_THAT(load_error(plugins),
              HasSubstr("the file " + file.string() + " is writable by other users (mode 0757"));
  EXPECT_FALSE(canary_ran());
}

TEST_F(PluginFileCheck, AGroupWritableFolderIsRefused) {
  const auto plugins = folder("plugins", 0775);
  install(plugins);
  EXPECT_THAT(load_error(plugins),
              HasSubstr("the folder " + plugins.string() + " is writable by its group (mode 0775"));
  EXPECT_FALSE(canary_ran());
}

TEST_F(PluginFileCheck, AFileOwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "only root can give a file to another user";
  const auto plugins = folder("plugins", 0755);
  const auto file = install(plugins);
  ASSERT_EQ(::chown(file.c_str(), nobody(), static_cast<gid_t>(-1)), 0);
  const auto msg = load_error(plugins);
  EXPECT_THAT(msg, HasSubstr(fmt::format("the file {} is owned by nobody (uid {}), not by root or "
                                         "the user running this process",
                                         file.string(), nobody())));
  EXPECT_THAT(msg, HasSubstr("Fix: chown root " + file.string()));
  EXPECT_FALSE(canary_ran());
}

TEST_F(PluginFileCheck, AFolderOwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "only root can give a folder to another user";
  const auto theirs = folder("theirs", 0755);
  const auto plugins = folder("theirs/plugins", 0755);
  install(plugins);
  ASSERT_EQ(::chown(theirs.c_str(), nobody(), static_cast<gid_t>(-1)), 0);
  EXPECT_THAT(load_error(plugins),
              HasSubstr(fmt::format("the folder {} is owned by nobody (uid {})", theirs.string(),
                                    nobody())));
  EXPECT_FALSE(canary_ran());
}

TEST_F(PluginFileCheck, AStickyFolderOwnedByRootIsAcceptedLikeTmp) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs a sticky folder owned by root";
  const auto shared = folder("shared", 01777);
  const auto plugins = folder("shared/plugins", 0755);
  install(plugins);
  ScopedEnv canary("ATHOMIC_TEST_CANARY", mark_.string());
  EXPECT_EQ(EventBus::create(settings(plugins))->provider().name, "canary");
  (void)shared;
}

TEST_F(PluginFileCheck, AStickyFolderOwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "only root can give a folder to another user";
  const auto shared = folder("shared", 01777);
  const auto plugins = folder("shared/plugins", 0755);
  install(plugins);
  ASSERT_EQ(::chown(shared.c_str(), nobody(), static_cast<gid_t>(-1)), 0);
  EXPECT_THAT(load_error(plugins), HasSubstr("the folder " + shared.string()));
  EXPECT_FALSE(canary_ran());
}

TEST_F(PluginFileCheck, AFolderOrAFifoNamedLikeAPluginIsRefused) {
  const auto plugins = folder("plugins", 0755);
  fs::create_directory(plugins / "athomic_provider_canary.so");
  EXPECT_THAT(load_error(plugins), HasSubstr("is not a regular file (it is a directory)"));
  const auto fifos = folder("fifos", 0755);
  ASSERT_EQ(::mkfifo((fifos / "athomic_provider_canary.so").c_str(), 0644), 0);
  EXPECT_THAT(load_error(fifos), HasSubstr("is not a regular file (it is a fifo)"));
}

}  // namespace
}  // namespace athomic::test
