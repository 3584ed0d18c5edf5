#include "oss/core/duration.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace oss::core {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

struct DurationCase {
  const char* text;
  milliseconds expected;
};

class ParseDurationTest : public ::testing::TestWithParam<DurationCase> {};

TEST_P(ParseDurationTest, ParsesValidForm) {
  EXPECT_EQ(parse_duration(GetParam().text), GetParam().expected) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    ShortAndIso, ParseDurationTest,
    ::testing::Values(DurationCase{"90s", 90s}, DurationCase{"15m", 15min}, DurationCase{"24h", 24h},
                      DurationCase{"7d", 7 * 24h}, DurationCase{"500ms", 500ms},
                      DurationCase{"1h30m", 90min}, DurationCase{"0s", 0ms}, DurationCase{"PT1H", 1h},
                      DurationCase{"P2D", 48h}, DurationCase{"P1DT2H", 26h}, DurationCase{"PT90S", 90s},
                      DurationCase{"PT1H30M", 90min}));

class ParseDurationErrorTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ParseDurationErrorTest, ThrowsDurationErrorNamingTheInput) {
  const std::string text = GetParam();
  try {
    (void)parse_duration(text);
    FAIL() << "accepted '" << text << "'";
  } catch (const DurationError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("'" + text + "'"));
  }
}

INSTANTIATE_TEST_SUITE_P(Rejected, ParseDurationErrorTest,
                         ::testing::Values("", "-5s", "5", "5x", "h", "PT", "P", "P1H", "PT1D", "1h30",
                                           "99999999999999999999d", "P99999999999999999999D",
                                           "9999999999999999s1000000000000000d"));

TEST(ParseDuration, OverflowFromMultiplyingByTheUnitIsRejected) {
  // Fits in int64 as a number but not once multiplied into milliseconds.
  EXPECT_THROW((void)parse_duration("9223372036854775d"), DurationError);
  EXPECT_THROW((void)parse_duration("P9223372036854775D"), DurationError);
}

TEST(FormatDuration, ShortestExactForm) {
  EXPECT_EQ(format_duration(0ms), "0s");
  EXPECT_EQ(format_duration(90s), "1m30s");
  EXPECT_EQ(format_duration(15min), "15m");
  EXPECT_EQ(format_duration(48h), "2d");
  EXPECT_EQ(format_duration(90min), "1h30m");
  EXPECT_EQ(format_duration(250ms), "250ms");
  EXPECT_EQ(format_duration(26h + 1s + 5ms), "1d2h1s5ms");
}

class DurationRoundTripTest : public ::testing::TestWithParam<milliseconds> {};

TEST_P(DurationRoundTripTest, FormatThenParseGivesTheSameValue) {
  const auto d = GetParam();
  EXPECT_EQ(parse_duration(format_duration(d)), d) << format_duration(d);
}

INSTANTIATE_TEST_SUITE_P(Values, DurationRoundTripTest,
                         ::testing::Values(0ms, 1ms, 999ms, 1s, 90s, 15min, 90min, 24h, 7 * 24h,
                                           26h + 1s + 5ms, milliseconds(123'456'789'012)));

}  // namespace
}  // namespace oss::core
