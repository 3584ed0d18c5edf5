#include "oss/core/cli.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace oss::core {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

using Env = std::map<std::string, std::string>;

std::vector<FlagSpec> relay_specs() {
  return {
      FlagSpec{.name = "db", .env = "RELAY_DB_URL", .help = "database URL", .required = true, .secret = true},
      FlagSpec{.name = "exchange", .env = "RELAY_EXCHANGE", .help = "exchange", .fallback = "orders.events"},
      FlagSpec{.name = "since", .env = "", .help = "window", .fallback = "1h"},
      FlagSpec{.name = "json", .env = "", .help = "JSON lines", .is_switch = true},
  };
}

std::string usage_error_of(const std::vector<FlagSpec>& specs, const std::vector<std::string>& args,
                           const Env& env, bool allow_positional = false) {
  try {
    (void)parse_flags(specs, args, &env, allow_positional);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(ParseFlags, FlagWithSeparateValue) {
  const Env env;
  const auto v = parse_flags(relay_specs(), {"--db", "postgresql://h/db"}, &env);
  EXPECT_EQ(v.get("db"), "postgresql://h/db");
}

TEST(ParseFlags, FlagWithEqualsValue) {
  const Env env;
  const auto v = parse_flags(relay_specs(), {"--db=postgresql://h/db?x=1", "--exchange=ex"}, &env);
  EXPECT_EQ(v.get("db"), "postgresql://h/db?x=1");
  EXPECT_EQ(v.get("exchange"), "ex");
}

TEST(ParseFlags, EqualsAllowsAnEmptyValue) {
  const Env env;
  const auto v = parse_flags(relay_specs(), {"--db=x", "--exchange="}, &env);
  EXPECT_EQ(v.get("exchange"), "");
}

TEST(ParseFlags, EnvironmentFallback) {
  const Env env{{"RELAY_DB_URL", "postgresql://env/db"}, {"RELAY_EXCHANGE", "from-env"}};
  const auto v = parse_flags(relay_specs(), {}, &env);
  EXPECT_EQ(v.get("db"), "postgresql://env/db");
  EXPECT_EQ(v.get("exchange"), "from-env");
}

TEST(ParseFlags, DefaultWhenNeitherFlagNorEnvironment) {
  const Env env{{"RELAY_DB_URL", "x"}};
  const auto v = parse_flags(relay_specs(), {}, &env);
  EXPECT_EQ(v.get("exchange"), "orders.events");
  EXPECT_EQ(v.get("since"), "1h");
}

TEST(ParseFlags, EmptyEnvironmentValueCountsAsUnset) {
  const Env env{{"RELAY_DB_URL", "x"}, {"RELAY_EXCHANGE", ""}};
  const auto v = parse_flags(relay_specs(), {}, &env);
  EXPECT_EQ(v.get("exchange"), "orders.events");
}

TEST(ParseFlags, PrecedenceFlagThenEnvironmentThenDefault) {
  const Env env{{"RELAY_DB_URL", "env-db"}, {"RELAY_EXCHANGE", "env-ex"}};
  const auto flag = parse_flags(relay_specs(), {"--exchange", "flag-ex"}, &env);
  EXPECT_EQ(flag.get("exchange"), "flag-ex");
  EXPECT_EQ(flag.get("db"), "env-db");
  const Env only_db{{"RELAY_DB_URL", "env-db"}};
  EXPECT_EQ(parse_flags(relay_specs(), {}, &only_db).get("exchange"), "orders.events");
}

TEST(ParseFlags, LastOccurrenceOfAFlagWins) {
  const Env env;
  const auto v = parse_flags(relay_specs(), {"--db", "a", "--db=b"}, &env);
  EXPECT_EQ(v.get("db"), "b");
}

TEST(ParseFlags, RequiredMissingNamesFlagAndEnvironmentVariable) {
  const auto msg = usage_error_of(relay_specs(), {}, Env{});
  EXPECT_THAT(msg, HasSubstr("--db"));
  EXPECT_THAT(msg, HasSubstr("RELAY_DB_URL"));
}

TEST(ParseFlags, RequiredWithoutEnvironmentVariableNamesTheFlag) {
  const std::vector<FlagSpec> specs{FlagSpec{.name = "source-db", .env = "", .help = "", .required = true}};
  const auto msg = usage_error_of(specs, {}, Env{});
  EXPECT_THAT(msg, HasSubstr("--source-db"));
  EXPECT_THAT(msg, Not(HasSubstr("environment")));
}

TEST(ParseFlags, UnknownFlagIsAUsageError) {
  const auto msg = usage_error_of(relay_specs(), {"--db", "x", "--nope", "1"}, Env{});
  EXPECT_THAT(msg, HasSubstr("--nope"));
  EXPECT_THAT(usage_error_of(relay_specs(), {"--nope=1", "--db=x"}, Env{}), HasSubstr("--nope"));
}

TEST(ParseFlags, MissingValueIsAUsageError) {
  EXPECT_THAT(usage_error_of(relay_specs(), {"--db"}, Env{}), HasSubstr("--db"));
}

TEST(ParseFlags, SwitchTakesNoValue) {
  const Env env{{"RELAY_DB_URL", "x"}};
  const auto v = parse_flags(relay_specs(), {"--json", "--since", "2h"}, &env);
  EXPECT_TRUE(v.on("json"));
  EXPECT_EQ(v.get("since"), "2h");
}

TEST(ParseFlags, SwitchAbsentIsOff) {
  const Env env{{"RELAY_DB_URL", "x"}};
  const auto v = parse_flags(relay_specs(), {}, &env);
  EXPECT_FALSE(v.has("json"));
  EXPECT_FALSE(v.on("json"));
}

TEST(ParseFlags, SwitchExplicitFalseIsOff) {
  const Env env{{"RELAY_DB_URL", "x"}};
  EXPECT_FALSE(parse_flags(relay_specs(), {"--json=false"}, &env).on("json"));
  EXPECT_TRUE(parse_flags(relay_specs(), {"--json=true"}, &env).on("json"));
}

TEST(ParseFlags, SwitchFromEnvironment) {
  const std::vector<FlagSpec> specs{FlagSpec{.name = "once", .env = "ONCE", .help = "", .is_switch = true}};
  const Env on{{"ONCE", "true"}};
  const Env off{{"ONCE", "false"}};
  EXPECT_TRUE(parse_flags(specs, {}, &on).on("once"));
  EXPECT_FALSE(parse_flags(specs, {}, &off).on("once"));
}

TEST(ParseFlags, PositionalRejectedUnlessAllowed) {
  const Env env{{"RELAY_DB_URL", "x"}};
  EXPECT_THAT(usage_error_of(relay_specs(), {"list"}, env), HasSubstr("list"));
  const auto v = parse_flags(relay_specs(), {"list", "--since", "2h", "extra"}, &env, true);
  EXPECT_THAT(v.positional(), ElementsAre("list", "extra"));
  EXPECT_EQ(v.get("since"), "2h");
}

TEST(ParseFlags, NoPositionalByDefault) {
  const Env env{{"RELAY_DB_URL", "x"}};
  EXPECT_THAT(parse_flags(relay_specs(), {}, &env, true).positional(), IsEmpty());
}

TEST(FlagValues, GetOfAbsentFlagThrowsUsageError) {
  const FlagValues v;
  EXPECT_THROW((void)v.get("db"), UsageError);
  EXPECT_EQ(v.get_optional("db"), std::nullopt);
}

TEST(FormatHelp, ListsFlagsEnvironmentVariablesAndDefaults) {
  const auto help = format_help("outbox-relay run [flags]", relay_specs());
  EXPECT_THAT(help, HasSubstr("usage: outbox-relay run [flags]"));
  EXPECT_THAT(help, HasSubstr("--db VALUE"));
  EXPECT_THAT(help, HasSubstr("RELAY_DB_URL"));
  EXPECT_THAT(help, HasSubstr("RELAY_EXCHANGE"));
  EXPECT_THAT(help, HasSubstr("(default: orders.events)"));
  EXPECT_THAT(help, HasSubstr("(default: 1h)"));
  EXPECT_THAT(help, HasSubstr("(required)"));
  EXPECT_THAT(help, HasSubstr("--json"));
  EXPECT_THAT(help, Not(HasSubstr("--json VALUE")));
}

TEST(FormatHelp, NeverShowsTheDefaultOfASecretFlag) {
  const std::vector<FlagSpec> specs{
      FlagSpec{.name = "db", .env = "OSS_DB_URL", .help = "database", .fallback = "postgresql://u:hunter2@h/db",
               .secret = true}};
  const auto help = format_help("x", specs);
  EXPECT_THAT(help, HasSubstr("--db"));
  EXPECT_THAT(help, HasSubstr("OSS_DB_URL"));
  EXPECT_THAT(help, Not(HasSubstr("hunter2")));
  EXPECT_THAT(help, Not(HasSubstr("default")));
}

}  // namespace
}  // namespace oss::core

namespace {

TEST(FlagValuesTyped, IntegersAndDurationsAreCheckedWithTheFlagInTheMessage) {
  oss::core::FlagValues f;
  f.set("batch-size", "500");
  f.set("bad", "5x");
  f.set("big", "10001");
  f.set("retention", "24h");
  EXPECT_EQ(f.get_int("batch-size", 1, 10000), 500);
  try {
    f.get_int("big", 1, 10000);
    ADD_FAILURE() << "no error";
  } catch (const oss::core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--big"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("10001"), std::string::npos) << e.what();
  }
  EXPECT_THROW(f.get_int("bad", 0, 10), oss::core::UsageError);
  EXPECT_EQ(f.get_duration("retention"), std::chrono::hours(24));
  try {
    f.get_duration("bad");
    ADD_FAILURE() << "no error";
  } catch (const oss::core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--bad"), std::string::npos) << e.what();
  }
}

}  // namespace
