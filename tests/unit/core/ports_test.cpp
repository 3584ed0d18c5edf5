// oss::core::unique_free_port: free loopback ports, each handed out once per process.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include "oss/core/ports.hpp"

namespace {

bool can_bind(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  const bool ok = ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

TEST(UniqueFreePort, NeverHandsOutAPortTwiceEvenFromSeveralThreads) {
  std::vector<std::vector<std::uint16_t>> got(4);
  std::vector<std::thread> threads;
  for (auto& mine : got)
    threads.emplace_back([&mine] {
      for (int i = 0; i < 50; ++i) mine.push_back(oss::core::unique_free_port());
    });
  for (auto& t : threads) t.join();
  std::set<std::uint16_t> all;
  for (const auto& mine : got) all.insert(mine.begin(), mine.end());
  EXPECT_EQ(all.size(), 200u);
  EXPECT_EQ(all.count(0), 0u);
}

TEST(UniqueFreePort, ThePortCanBeBoundOnLoopback) {
  EXPECT_TRUE(can_bind(oss::core::unique_free_port()));
}

}  // namespace
