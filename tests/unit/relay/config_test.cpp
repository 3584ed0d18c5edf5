// outbox-relay `run` flags → RelayConfig: defaults, flag and environment spellings, and the
// one-line usage errors that make the program exit 2.
#include "config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace oss::relay {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using Env = std::map<std::string, std::string>;

std::vector<std::string> required_args() {
  return {"--db", "postgresql://u@127.0.0.1:5432/crm", "--amqp", "amqp://guest:guest@127.0.0.1:5672/"};
}

RelayConfig parse(std::vector<std::string> extra, const Env& env = {}) {
  auto args = required_args();
  args.insert(args.end(), extra.begin(), extra.end());
  return parse_run_config(core::parse_flags(run_flags(), args, &env));
}

std::string usage_error(std::vector<std::string> extra, const Env& env = {}) {
  try {
    (void)parse(std::move(extra), env);
  } catch (const core::UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(RelayConfigTest, DefaultsAreTheDocumentedOnes) {
  const auto c = parse({});
  EXPECT_EQ(c.exchange, "orders.events");
  EXPECT_EQ(c.options.batch_size, 500U);
  EXPECT_EQ(c.options.pipeline_depth, 4U);
  EXPECT_EQ(c.options.max_attempts, 10);
  EXPECT_EQ(c.options.broker_settle, 30s);
  EXPECT_EQ(c.options.retention, 24h);
  EXPECT_EQ(c.options.poll_interval, 100ms);
  EXPECT_EQ(c.options.vacuum_after_rows, 20000U);
  EXPECT_EQ(c.amqp_heartbeat, 30s);
}

TEST(RelayConfigTest, AmqpHeartbeatInWholeSecondsAndZeroTurnsItOff) {
  EXPECT_EQ(parse({"--amqp-heartbeat", "5s"}).amqp_heartbeat, 5s);
  EXPECT_EQ(parse({}, {{"RELAY_AMQP_HEARTBEAT", "0s"}}).amqp_heartbeat, 0s);
  EXPECT_THAT(usage_error({"--amqp-heartbeat", "1500ms"}), HasSubstr("--amqp-heartbeat"));
  EXPECT_THAT(usage_error({"--amqp-heartbeat", "2h"}), HasSubstr("--amqp-heartbeat"));
  EXPECT_THAT(usage_error({"--amqp-heartbeat", "often"}), HasSubstr("--amqp-heartbeat"));
}

TEST(RelayConfigTest, VacuumAfterFromTheFlagOrTheEnvironmentAndZeroTurnsItOff) {
  EXPECT_EQ(parse({"--vacuum-after", "5000"}).options.vacuum_after_rows, 5000U);
  EXPECT_EQ(parse({}, {{"RELAY_VACUUM_AFTER", "0"}}).options.vacuum_after_rows, 0U);
  EXPECT_THAT(usage_error({"--vacuum-after", "-1"}), HasSubstr("--vacuum-after"));
  EXPECT_THAT(usage_error({"--vacuum-after", "often"}), HasSubstr("--vacuum-after"));
}

TEST(RelayConfigTest, BrokerSettleFromTheFlag) {
  EXPECT_EQ(parse({"--broker-settle", "5s"}).options.broker_settle, 5s);
  EXPECT_EQ(parse({"--broker-settle=250ms"}).options.broker_settle, 250ms);
}

TEST(RelayConfigTest, BrokerSettleFromTheEnvironmentAndTheFlagWins) {
  EXPECT_EQ(parse({}, {{"RELAY_BROKER_SETTLE", "0s"}}).options.broker_settle, 0ms);
  EXPECT_EQ(parse({"--broker-settle", "2m"}, {{"RELAY_BROKER_SETTLE", "0s"}}).options.broker_settle, 2min);
}

TEST(RelayConfigTest, BadBrokerSettleNamesTheFlag) {
  EXPECT_THAT(usage_error({"--broker-settle", "soon"}), HasSubstr("--broker-settle"));
  EXPECT_THAT(usage_error({}, {{"RELAY_BROKER_SETTLE", "-1s"}}), HasSubstr("--broker-settle"));
}

TEST(RelayConfigTest, OutOfRangeNumbersAndTooFastPollingAreRefused) {
  EXPECT_THAT(usage_error({"--max-attempts", "0"}), HasSubstr("--max-attempts"));
  EXPECT_THAT(usage_error({"--batch-size", "10001"}), HasSubstr("--batch-size"));
  EXPECT_THAT(usage_error({"--pipeline-depth", "x"}), HasSubstr("--pipeline-depth"));
  EXPECT_THAT(usage_error({"--poll-interval", "5ms"}), HasSubstr("--poll-interval"));
  EXPECT_THAT(usage_error({"--exchange", ""}), HasSubstr("--exchange"));
}

TEST(RelayConfigTest, WrongUrlSchemesAreRefused) {
  const Env env;
  EXPECT_THROW((void)parse_run_config(core::parse_flags(
                   run_flags(), {"--db", "mysql://h/db", "--amqp", "amqp://g:g@127.0.0.1:5672/"}, &env)),
               core::UsageError);
  EXPECT_THROW((void)parse_run_config(core::parse_flags(
                   run_flags(), {"--db", "postgresql://h/db", "--amqp", "http://127.0.0.1:5672/"}, &env)),
               core::UsageError);
}

}  // namespace
}  // namespace oss::relay
