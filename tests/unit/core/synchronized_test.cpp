#include "oss/core/synchronized.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <thread>
#include <vector>

namespace oss::core {
namespace {

TEST(Synchronized, WithReturnsTheFunctionsResult) {
  Synchronized<std::vector<int>> s(std::vector<int>{1, 2});
  const auto size = s.with([](std::vector<int>& v) {
    v.push_back(3);
    return v.size();
  });
  EXPECT_EQ(size, 3u);
  EXPECT_EQ(s.copy(), (std::vector<int>{1, 2, 3}));
}

TEST(Synchronized, ConstWithSeesTheValue) {
  const Synchronized<std::string> s(std::string("abc"));
  EXPECT_EQ(s.with([](const std::string& v) { return v.size(); }), 3u);
}

TEST(Synchronized, DefaultConstructsTheValue) {
  Synchronized<std::map<std::string, int>> s;
  EXPECT_TRUE(s.copy().empty());
}

TEST(Synchronized, ConcurrentUpdatesAreNotLost) {
  Synchronized<long> counter;
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10'000; ++i) counter.with([](long& v) { ++v; });
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter.copy(), 40'000);
}

}  // namespace
}  // namespace oss::core
