// When a consumer worker decides a held early event again (consumer/held_events.hpp).
#include <gtest/gtest.h>

#include "consumer/held_events.hpp"

namespace {

using namespace std::chrono_literals;
using oss::consumer::held_is_due;
using oss::consumer::HeldTiming;
using oss::consumer::TouchedOrders;
using Clock = std::chrono::steady_clock;

constexpr auto kRecheck = 250ms;
constexpr auto kHold = 1000ms;

struct HeldEvents : ::testing::Test {
  Clock::time_point t0 = Clock::now();
  TouchedOrders touched{kHold + 1s};
  HeldTiming held{t0, t0};  // held at t0, last decided at t0
  bool due(const std::string& order, Clock::duration after, const std::set<std::string>& fresh = {}) {
    return held_is_due(order, held, fresh, touched, t0 + after, kRecheck, kHold);
  }
};

TEST_F(HeldEvents, NothingConcernsItSoItWaitsForTheRecheck) {
  EXPECT_FALSE(due("A", 10ms));
  EXPECT_FALSE(due("A", 249ms));
  EXPECT_TRUE(due("A", 250ms)) << "another instance may have applied its predecessor";
}

TEST_F(HeldEvents, AFreshDeliveryOfItsOrderMakesItDue) {
  EXPECT_TRUE(due("A", 10ms, {"B", "A"}));
  EXPECT_FALSE(due("A", 10ms, {"B", "C"}));
}

TEST_F(HeldEvents, AnotherWorkerDecidingItsOrderAfterItMakesItDue) {
  touched.touch({"A"}, t0 - 5ms);  // decided before this event was: nothing new
  EXPECT_FALSE(due("A", 10ms));
  touched.touch({"B"}, t0 + 5ms);  // another order
  EXPECT_FALSE(due("A", 10ms));
  touched.touch({"A"}, t0 + 5ms);
  EXPECT_TRUE(due("A", 10ms));
}

TEST_F(HeldEvents, AnEventWhoseHoldIsOverIsDueToGoToTheDelayQueue) {
  held.last_decided = t0 + 900ms;  // decided again lately
  EXPECT_FALSE(due("A", 950ms));
  EXPECT_TRUE(due("A", 1000ms));
}

TEST_F(HeldEvents, TouchesKeepTheLatestTimeAndOldOnesArePruned) {
  touched.touch({"A", "B"}, t0);
  touched.touch({"A"}, t0 - 1s);  // an older report does not move it back
  ASSERT_TRUE(touched.when("A"));
  EXPECT_EQ(*touched.when("A"), t0);
  EXPECT_FALSE(touched.when("C"));
  touched.touch({"C"}, t0 + 3s);  // past the keep (hold + 1 s): A and B are dropped
  EXPECT_FALSE(touched.when("A"));
  EXPECT_FALSE(touched.when("B"));
  EXPECT_TRUE(touched.when("C"));
  EXPECT_EQ(touched.size(), 1u);
}

}  // namespace
