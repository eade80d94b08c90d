// A fixture for tests that lay out plugin folders of their own: a fresh folder of mode 0700
// under the temporary folder (safe, unless a test makes part of it unsafe), removed afterwards,
// and copies of the canary test plugin, which marks when any of its code runs.
#pragma once

#include <gtest/gtest.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "test_support.h"

namespace athomic::test {

namespace fs = std::filesystem;

class TempPluginFolder : public testing::Test {
 protected:
  void SetUp() override {
    std::string name = (fs::temp_directory_path() / "athomic-plugins-XXXXXX").string();
    ASSERT_NE(::mkdtemp(name.data()), nullptr);
    base_ = name;  // mode 0700: safe, unless a test makes part of it unsafe
    mark_ = base_ / "canary-ran";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  // base/<rel>, created with exactly @p mode (umask aside).
  fs::path folder(const std::string& rel, mode_t mode) {
    const fs::path p = base_ / rel;
    fs::create_directories(p);
    EXPECT_EQ(::chmod(p.c_str(), mode), 0) << p;
    return p;
  }
  // A copy of the canary plugin (a working provider that marks when its code runs), mode 0755.
  fs::path install(const fs::path& dir, const std::string& name = "athomic_provider_canary.so") {
    const fs::path p = dir / name;
    fs::copy_file(fs::path(ATHOMIC_TEST_PLUGIN_DIR) / "athomic_provider_canary.so", p,
                  fs::copy_options::overwrite_existing);
    EXPECT_EQ(::chmod(p.c_str(), 0755), 0);
    return p;
  }
  EventsSettings settings(const fs::path& plugins_dir, const std::string& backend = "canary") {
    auto s = local_settings();
    s.backend = backend;
    s.plugins_dir = plugins_dir.string();
    return s;
  }
  std::string load_error(const fs::path& plugins_dir) {
    ScopedEnv canary("ATHOMIC_TEST_CANARY", mark_.string());
    try {
      EventBus::create(settings(plugins_dir));
    } catch (const PluginError& e) {
      return e.what();
    }
    ADD_FAILURE() << "the plugin in " << plugins_dir << " was loaded";
    return "";
  }
  // Whether any code of the canary ran (its constructor runs when the library is opened).
  bool canary_ran() const { return fs::exists(mark_); }

  static uid_t nobody() {
    const passwd* pw = ::getpwnam("nobody");
    return pw ? pw->pw_uid : 65534;
  }

  fs::path base_, mark_;
};

}  // namespace athomic::test
