// The test-support child process (oss::testing::Process): what the integration and end-to-end
// tests rely on when they start relays and services.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "oss/testing/support.hpp"

namespace {

using namespace std::chrono_literals;
using oss::testing::Process;

TEST(Process, OutputGoesToItsLogAndItsExitCodeIsReturned) {
  Process p("/bin/sh", {"-c", "echo to-stdout; echo to-stderr >&2; exit 3"});
  EXPECT_EQ(p.wait(10s), 3);
  EXPECT_NE(p.log().find("to-stdout"), std::string::npos) << p.log();
  EXPECT_NE(p.log().find("to-stderr"), std::string::npos) << p.log();
}

TEST(Process, TheEnvironmentGivenIsAddedToOurs) {
  Process p("/bin/sh", {"-c", "echo \"[$OSS_PROCESS_TEST]\""}, {{"OSS_PROCESS_TEST", "given"}});
  EXPECT_EQ(p.wait(10s), 0);
  EXPECT_NE(p.log().find("[given]"), std::string::npos) << p.log();
}

TEST(Process, AProgramThatCannotBeStartedIsAnErrorThatNamesIt) {
  try {
    Process p("/nonexistent/oss-no-such-program", {});
    FAIL() << "started a program that does not exist";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/oss-no-such-program"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
  }
}

TEST(Process, ASignalStopsIt) {
  Process p("/bin/sh", {"-c", "sleep 30"});
  EXPECT_TRUE(p.running());
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(10s), 128 + SIGTERM);
  EXPECT_FALSE(p.running());
}

/// True once `pid` is gone or a zombie (reparented children are reaped by whoever adopts them;
/// in a container that may be nobody).
bool gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

// A test process killed outright (ctest's timeout, a crash) must not leave its children
// running: they would hold ports and CPU for the rest of the suite. Here a forked copy of this
// test plays the test process: it starts a child through Process, reports the child's pid, and
// dies by SIGKILL (no destructor runs). The kernel then kills the child (PR_SET_PDEATHSIG).
TEST(Process, ItDiesWithTheTestProcessThatStartedIt) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t test_process = ::fork();
  ASSERT_GE(test_process, 0);
  if (test_process == 0) {
    ::close(fds[0]);
    Process child("/bin/sh", {"-c", "sleep 60"});
    const int pid = child.pid();
    (void)!::write(fds[1], &pid, sizeof pid);
    ::raise(SIGKILL);
  }
  ::close(fds[1]);
  int child = -1;
  ASSERT_EQ(::read(fds[0], &child, sizeof child), static_cast<ssize_t>(sizeof child));
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(test_process, &status, 0), test_process);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  ASSERT_GT(child, 0);
  EXPECT_TRUE(oss::testing::wait_until([&] { return gone(child); }, 10s))
      << "the child " << child << " outlived the process that started it";
  if (!gone(child)) ::kill(child, SIGKILL);
}

}  // namespace
