// order-status-service `run` flags that shape the consumer → ConsumerOptions (the early-event
// retry schedule, the deprecated --early-hold), and their one-line usage errors (exit 2).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "app/config.hpp"

namespace oss::app {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Env = std::map<std::string, std::string>;

ServiceConfig parse(std::vector<std::string> extra, const Env& env = {}) {
  std::vector<std::string> args{"--db", "postgresql://u@127.0.0.1:5432/oss", "--amqp", "amqp://guest:guest@127.0.0.1:5672/"};
  args.insert(args.end(), extra.begin(), extra.end());
  return parse_run_config(core::parse_flags(run_flags(), args, &env));
}

std::string usage_error(std::vector<std::string> extra) {
  try {
    (void)parse(std::move(extra));
  } catch (const core::UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(ServiceConfig, NotificationsTailDefaultsToTheDocumentedQueueAndIsConfigurable) {
  const auto d = parse({});
  EXPECT_EQ(d.consumer.topology.notifications_tail, "order-status-service.notifications");
  EXPECT_EQ(d.consumer.topology.notifications_tail_max, 100'000);
  const auto c = parse({"--notifications-tail", "oss.staging.notifications", "--notifications-tail-max", "500"});
  EXPECT_EQ(c.consumer.topology.notifications_tail, "oss.staging.notifications");
  EXPECT_EQ(c.consumer.topology.notifications_tail_max, 500);
  EXPECT_EQ(parse({}, {{"OSS_NOTIFICATIONS_TAIL", "t2"}}).consumer.topology.notifications_tail, "t2");
  EXPECT_THAT(usage_error({"--notifications-tail", ""}), HasSubstr("--notifications-tail: must not be empty"));
  EXPECT_THAT(usage_error({"--notifications-tail-max", "0"}), HasSubstr("--notifications-tail-max"));
}

TEST(ServiceConfig, EarlyRetryDelaysDefaultToTheFormerDelayTiers) {
  const auto c = parse({});
  EXPECT_THAT(c.consumer.early_retry_delays, ElementsAre(1s, 5s, 30s, 120s));
  EXPECT_EQ(c.consumer.max_early_retries, 8);
  EXPECT_FALSE(c.early_hold_deprecated);
}

TEST(ServiceConfig, EarlyRetryDelaysFromTheFlagOrTheEnvironment) {
  EXPECT_THAT(parse({"--early-retry-delays", "250ms,2s"}).consumer.early_retry_delays, ElementsAre(250ms, 2s));
  EXPECT_THAT(parse({}, {{"OSS_EARLY_RETRY_DELAYS", "20s"}}).consumer.early_retry_delays, ElementsAre(20s));
}

TEST(ServiceConfig, BadEarlyRetryDelaysNameTheFlagAndTheItem) {
  EXPECT_THAT(usage_error({"--early-retry-delays", "1s,soon"}), HasSubstr("--early-retry-delays: 'soon'"));
  EXPECT_THAT(usage_error({"--early-retry-delays", "1s,,5s"}), HasSubstr("--early-retry-delays: ''"));
  EXPECT_THAT(usage_error({"--early-retry-delays", "10ms"}), HasSubstr("from 100ms to 1h"));
  EXPECT_THAT(usage_error({"--early-retry-delays", "2h"}), HasSubstr("from 100ms to 1h"));
  std::string many = "1s";
  for (int i = 0; i < 20; ++i) many += ",1s";
  EXPECT_THAT(usage_error({"--early-retry-delays", many}), HasSubstr("at most 20"));
}

TEST(ServiceConfig, EarlyHoldIsAcceptedButDeprecatedAndStillValidated) {
  EXPECT_TRUE(parse({"--early-hold", "20s"}).early_hold_deprecated);
  EXPECT_THAT(usage_error({"--early-hold", "2m"}), HasSubstr("--early-hold: at most 60s"));
  EXPECT_THAT(usage_error({"--early-hold", "x"}), HasSubstr("early-hold"));
}

}  // namespace
}  // namespace oss::app
