// oss::testing::servers(): only a test that ctest runs alone on the shared servers
// (SERVER_FAULTS in tests/CMakeLists.txt, which sets OSS_TEST_SERVER_FAULTS=1) may stop, kill or
// restart them. The script here is a stand-in that leaves a mark when it runs.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

#include "oss/testing/support.hpp"

namespace {

namespace fs = std::filesystem;

// What the tests set, saved before and restored after (a CI run has the real servers' there).
constexpr const char* kVariables[] = {"OSS_TEST_SERVERS_SCRIPT", "OSS_SERVERS_DIR", "OSS_TEST_SERVER_FAULTS"};

class ServersGuard : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kVariables)
      if (const char* v = std::getenv(name)) saved_.emplace_back(name, v);
    dir_ = fs::temp_directory_path() / ("oss-servers-guard-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    script_ = dir_ / "servers.sh";
    mark_ = dir_ / "ran";
    std::ofstream(script_) << "#!/bin/sh\necho \"$1 $2\" > '" << mark_.string() << "'\n";
    fs::permissions(script_, fs::perms::owner_all);
    ::setenv("OSS_TEST_SERVERS_SCRIPT", script_.c_str(), 1);
    ::setenv("OSS_SERVERS_DIR", dir_.c_str(), 1);
  }
  void TearDown() override {
    for (const char* name : kVariables) ::unsetenv(name);
    for (const auto& [name, value] : saved_) ::setenv(name.c_str(), value.c_str(), 1);
    fs::remove_all(dir_);
  }
  std::string mark() const {
    std::ifstream in(mark_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  fs::path dir_, script_, mark_;
  std::vector<std::pair<std::string, std::string>> saved_;
};

TEST_F(ServersGuard, AFaultOutsideAServerFaultsTestFailsThatTestAndRunsNothing) {
  ::unsetenv("OSS_TEST_SERVER_FAULTS");
  bool ok = true;
  EXPECT_NONFATAL_FAILURE(ok = oss::testing::servers("restart-pg"), "SERVER_FAULTS in tests/CMakeLists.txt");
  EXPECT_FALSE(ok);
  EXPECT_FALSE(fs::exists(mark_)) << "the script ran: " << mark();
}

TEST_F(ServersGuard, AnyOtherValueThanOneCountsAsUnmarked) {
  ::setenv("OSS_TEST_SERVER_FAULTS", "yes", 1);
  bool ok = true;
  EXPECT_NONFATAL_FAILURE(ok = oss::testing::servers("kill-rabbit"), "SERVER_FAULTS");
  EXPECT_FALSE(ok);
  EXPECT_FALSE(fs::exists(mark_));
}

TEST_F(ServersGuard, AServerFaultsTestRunsTheScriptWithTheActionAndTheServersDirectory) {
  ::setenv("OSS_TEST_SERVER_FAULTS", "1", 1);
  EXPECT_TRUE(oss::testing::servers("restart-pg"));
  EXPECT_EQ(mark(), "restart-pg " + dir_.string() + "\n");
}

}  // namespace
