#include "oss/core/backoff.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace oss::core {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

milliseconds cap_for(std::uint32_t attempt, milliseconds initial, milliseconds max) {
  const auto shift = std::min<std::uint32_t>(attempt, 20);
  return std::min(max, initial * (std::int64_t{1} << shift));
}

TEST(Backoff, DelaysStayWithinHalfCapAndCap) {
  for (std::uint64_t seed : {1u, 2u, 42u, 12345u}) {
    Backoff b(100ms, 10s, seed);
    for (std::uint32_t n = 0; n < 30; ++n) {
      const auto cap = cap_for(n, 100ms, 10s);
      const auto d = b.next();
      EXPECT_GE(d, cap / 2) << "seed " << seed << " attempt " << n;
      EXPECT_LE(d, cap) << "seed " << seed << " attempt " << n;
    }
  }
}

TEST(Backoff, GrowsExponentiallyThenStaysCapped) {
  Backoff b(100ms, 1600ms, 7);
  // caps: 100, 200, 400, 800, 1600, 1600, ... : each delay's lower bound is above the previous cap / 2.
  std::vector<milliseconds> delays;
  delays.reserve(10);
  for (int i = 0; i < 10; ++i) delays.push_back(b.next());
  EXPECT_LE(delays[0], 100ms);
  EXPECT_GE(delays[1], 100ms);
  EXPECT_GE(delays[2], 200ms);
  EXPECT_GE(delays[3], 400ms);
  EXPECT_GE(delays[4], 800ms);
  for (std::size_t i = 4; i < delays.size(); ++i) {
    EXPECT_GE(delays[i], 800ms);
    EXPECT_LE(delays[i], 1600ms);
  }
  EXPECT_EQ(b.attempts(), 10u);
}

TEST(Backoff, CappedAfterManyAttemptsWithoutOverflow) {
  Backoff b(200ms, 10s, 3);
  for (int i = 0; i < 100; ++i) (void)b.next();
  const auto d = b.next();
  EXPECT_GE(d, 5s);
  EXPECT_LE(d, 10s);
}

TEST(Backoff, SameSeedSameSequence) {
  Backoff a(100ms, 10s, 99), b(100ms, 10s, 99);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(a.next(), b.next());
}

TEST(Backoff, ResetRestartsFromTheInitialDelay) {
  Backoff b(100ms, 10s, 5);
  for (int i = 0; i < 8; ++i) (void)b.next();
  EXPECT_EQ(b.attempts(), 8u);
  b.reset();
  EXPECT_EQ(b.attempts(), 0u);
  const auto d = b.next();
  EXPECT_GE(d, 50ms);
  EXPECT_LE(d, 100ms);
  EXPECT_EQ(b.attempts(), 1u);
}

TEST(Backoff, ZeroInitialNeverNegative) {
  Backoff b(0ms, 1s, 1);
  for (int i = 0; i < 5; ++i) {
    const auto d = b.next();
    EXPECT_GE(d, 0ms);
    EXPECT_LE(d, 1ms);
  }
}

}  // namespace
}  // namespace oss::core
