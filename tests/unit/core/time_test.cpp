#include "oss/core/time.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace oss::core {
namespace {

using namespace std::chrono_literals;
using std::chrono::microseconds;

// 2026-11-22T18:00:00Z as seconds since the epoch.
constexpr std::int64_t kBaseSeconds = 1'795'370'400;

TimePoint at(std::int64_t seconds, std::int64_t micros = 0) {
  return TimePoint(microseconds(seconds * 1'000'000 + micros));
}

TEST(ParseRfc3339, UtcZ) {
  EXPECT_EQ(parse_rfc3339("2026-11-22T18:00:00Z"), at(kBaseSeconds));
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), at(0));
}

TEST(ParseRfc3339, Offsets) {
  EXPECT_EQ(parse_rfc3339("2026-11-22T19:00:00+01:00"), at(kBaseSeconds));
  EXPECT_EQ(parse_rfc3339("2026-11-22T12:30:00-05:30"), at(kBaseSeconds));
  EXPECT_EQ(parse_rfc3339("2026-11-22T18:00:00+00:00"), at(kBaseSeconds));
  EXPECT_EQ(parse_rfc3339("2026-11-22T18:00:00-00:00"), at(kBaseSeconds));
}

TEST(ParseRfc3339, OffsetCrossesMidnightAndYear) {
  EXPECT_EQ(parse_rfc3339("2027-01-01T00:30:00+01:00"), parse_rfc3339("2026-12-31T23:30:00Z"));
}

struct FractionCase {
  const char* text;
  std::int64_t micros;
};
class Rfc3339FractionTest : public ::testing::TestWithParam<FractionCase> {};

TEST_P(Rfc3339FractionTest, KeepsMicroseconds) {
  EXPECT_EQ(parse_rfc3339(GetParam().text), at(kBaseSeconds, GetParam().micros)) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    OneToNineDigits, Rfc3339FractionTest,
    ::testing::Values(FractionCase{"2026-11-22T18:00:00.1Z", 100'000},
                      FractionCase{"2026-11-22T18:00:00.12Z", 120'000},
                      FractionCase{"2026-11-22T18:00:00.123Z", 123'000},
                      FractionCase{"2026-11-22T18:00:00.1234Z", 123'400},
                      FractionCase{"2026-11-22T18:00:00.12345Z", 123'450},
                      FractionCase{"2026-11-22T18:00:00.123456Z", 123'456},
                      FractionCase{"2026-11-22T18:00:00.1234567Z", 123'456},
                      FractionCase{"2026-11-22T18:00:00.12345678Z", 123'456},
                      FractionCase{"2026-11-22T18:00:00.123456789Z", 123'456},
                      FractionCase{"2026-11-22T19:00:00.5+01:00", 500'000}));

TEST(ParseRfc3339, LowercaseTAndZ) {
  EXPECT_EQ(parse_rfc3339("2026-11-22t18:00:00z"), at(kBaseSeconds));
}

TEST(ParseRfc3339, SpaceSeparator) {
  EXPECT_EQ(parse_rfc3339("2026-11-22 18:00:00Z"), at(kBaseSeconds));
}

TEST(ParseRfc3339, LeapYearDay) {
  EXPECT_EQ(parse_rfc3339("2028-02-29T00:00:00Z") + 24h, parse_rfc3339("2028-03-01T00:00:00Z"));
}

class Rfc3339ErrorTest : public ::testing::TestWithParam<const char*> {};

TEST_P(Rfc3339ErrorTest, ThrowsTimeFormatErrorNamingTheInput) {
  const std::string text = GetParam();
  try {
    (void)parse_rfc3339(text);
    FAIL() << "accepted '" << text << "'";
  } catch (const TimeFormatError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("'" + text + "'"));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Rejected, Rfc3339ErrorTest,
    ::testing::Values("", "2026-11-22T18:00:00", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z",
                      "2026-11-32T00:00:00Z", "2026-11-00T00:00:00Z", "2026-11-22T24:00:00Z",
                      "2026-11-22T18:60:00Z", "2026-11-22T18:00:00Zjunk", "2026-11-22T18:00:00+01:00x",
                      "2026-11-22T18:00:00.Z", "2026-11-22X18:00:00Z", "2026-11-22T18:00Z",
                      "2026-11-22T18:00:00+0100", "26-11-22T18:00:00Z", "2026-11-22T18:00:00 Z",
                      "now"));

TEST(FormatRfc3339, UtcWithMilliseconds) {
  EXPECT_EQ(format_rfc3339(at(kBaseSeconds)), "2026-11-22T18:00:00.000Z");
  EXPECT_EQ(format_rfc3339(at(kBaseSeconds, 123'456)), "2026-11-22T18:00:00.123Z");
  EXPECT_EQ(format_rfc3339(at(0)), "1970-01-01T00:00:00.000Z");
}

TEST(FormatRfc3339, BeforeTheEpochRoundsTheFractionDown) {
  EXPECT_EQ(format_rfc3339(at(0, -1'000)), "1969-12-31T23:59:59.999Z");
}

TEST(FormatRfc3339, RoundTripsAtMillisecondPrecision) {
  for (const char* text : {"2026-11-22T18:00:00.123Z", "2000-02-29T23:59:59.999Z", "1999-12-31T00:00:00.000Z"}) {
    EXPECT_EQ(format_rfc3339(parse_rfc3339(text)), text);
  }
  EXPECT_EQ(format_rfc3339(parse_rfc3339("2026-11-22T19:00:00.5+01:00")), "2026-11-22T18:00:00.500Z");
}

TEST(SystemClock, IsCloseToTheSystemClock) {
  const SystemClock clock;
  const auto now = std::chrono::system_clock::now();
  const auto diff = clock.now() - std::chrono::time_point_cast<microseconds>(now);
  EXPECT_LT(std::chrono::abs(diff), 5s);
}

}  // namespace
}  // namespace oss::core

namespace {
TEST(Rfc3339Calendar, RejectsDaysThatDoNotExistAndBadOffsets) {
  EXPECT_THROW(oss::core::parse_rfc3339("2026-02-31T00:00:00Z"), oss::core::TimeFormatError);
  EXPECT_THROW(oss::core::parse_rfc3339("2026-02-29T00:00:00Z"), oss::core::TimeFormatError);
  EXPECT_THROW(oss::core::parse_rfc3339("2026-04-31T00:00:00Z"), oss::core::TimeFormatError);
  EXPECT_NO_THROW(oss::core::parse_rfc3339("2028-02-29T00:00:00Z"));
  EXPECT_THROW(oss::core::parse_rfc3339("2026-01-01T00:00:00+24:00"), oss::core::TimeFormatError);
  EXPECT_THROW(oss::core::parse_rfc3339("2026-01-01T00:00:00+01:60"), oss::core::TimeFormatError);
}
}  // namespace
