// The classification of publish failures: what is the row's fault (charged, may park it) and
// what is the broker's (retried with backoff, never charged). See failure_policy.hpp.
#include "failure_policy.hpp"

#include <gtest/gtest.h>

namespace oss::relay {
namespace {

RowFailure nack(std::int64_t pos) { return {pos, "nacked by the broker", "nacked", false}; }

PublishOutcome outcome(std::vector<std::int64_t> confirmed, std::vector<RowFailure> failed) {
  PublishOutcome o;
  o.confirmed = std::move(confirmed);
  o.failed = std::move(failed);
  return o;
}

TEST(RowSpecificChannelClose, OnlyPreconditionFailedIsTheMessagesFault) {
  EXPECT_TRUE(row_specific_channel_close(406));   // PRECONDITION_FAILED: message too large, bad properties
  EXPECT_FALSE(row_specific_channel_close(541));  // INTERNAL_ERROR: the broker recovering
  EXPECT_FALSE(row_specific_channel_close(320));  // CONNECTION_FORCED: broker shutting down
  EXPECT_FALSE(row_specific_channel_close(504));  // CHANNEL_ERROR
  EXPECT_FALSE(row_specific_channel_close(506));  // RESOURCE_ERROR
  EXPECT_FALSE(row_specific_channel_close(404));  // NOT_FOUND: the exchange is gone (configuration)
  EXPECT_FALSE(row_specific_channel_close(403));  // ACCESS_REFUSED (configuration)
  EXPECT_FALSE(row_specific_channel_close(0));
}

TEST(NackPolicy, ANackAmongAcksIsChargedOnlyFromTheThirdInARow) {
  NackPolicy p;
  for (int i = 1; i <= 5; ++i) {
    auto o = outcome({1, 2}, {nack(3)});
    EXPECT_FALSE(p.judge(o));
    ASSERT_EQ(o.failed.size(), 1u);
    EXPECT_EQ(o.failed[0].charged, i >= NackPolicy::kStreakToCharge) << "nack " << i;
    EXPECT_EQ(p.streak(3), i);
  }
}

TEST(NackPolicy, ABatchNackedWholeIsABrokerFaultAndStartsEveryCountAgain) {
  NackPolicy p;
  auto o1 = outcome({1}, {nack(3)});
  p.judge(o1);
  auto o2 = outcome({1}, {nack(3)});
  p.judge(o2);
  ASSERT_EQ(p.streak(3), 2);
  auto whole = outcome({}, {nack(7), nack(8)});
  EXPECT_TRUE(p.judge(whole));
  for (const auto& f : whole.failed) EXPECT_FALSE(f.charged);
  EXPECT_EQ(p.streak(3), 0);
  auto o3 = outcome({1}, {nack(3)});
  p.judge(o3);
  EXPECT_FALSE(o3.failed[0].charged);
}

TEST(NackPolicy, NacksWithALostConnectionAreNeverChargedAndStartTheCountAgain) {
  NackPolicy p;
  for (int i = 0; i < 2; ++i) {
    auto o = outcome({1}, {nack(3)});
    p.judge(o);
  }
  auto lost = outcome({1}, {nack(3)});
  lost.connection_lost = true;
  EXPECT_FALSE(p.judge(lost));
  EXPECT_FALSE(lost.failed[0].charged);
  EXPECT_EQ(p.streak(3), 0);
  p.judge(lost);
  p.broker_fault();
  EXPECT_EQ(p.streak(3), 0);
}

TEST(NackPolicy, AConfirmForgetsTheRow) {
  NackPolicy p;
  auto o1 = outcome({1}, {nack(3)});
  p.judge(o1);
  auto o2 = outcome({3}, {});
  p.judge(o2);
  EXPECT_EQ(p.streak(3), 0);
}

TEST(NackPolicy, OtherFailuresAreLeftAsTheyCame) {
  NackPolicy p;
  auto o = outcome({}, {{5, "312 NO_ROUTE", "returned"}, nack(6)});
  EXPECT_FALSE(p.judge(o)) << "not nacked whole: a returned row is in the batch";
  EXPECT_TRUE(o.failed[0].charged);
  EXPECT_FALSE(o.failed[1].charged) << "nothing was acked alongside it";
  EXPECT_EQ(p.streak(6), 0);
}

}  // namespace
}  // namespace oss::relay
