#include "oss/core/time.hpp"

#include <cctype>
#include <ctime>
#include <fmt/format.h>

namespace oss::core {
namespace {

[[noreturn]] void fail_timestamp(std::string_view text, std::string_view why) {
  throw TimeFormatError("invalid timestamp '" + std::string(text) + "': " + std::string(why) +
                        " (expected RFC 3339, e.g. 2026-11-22T18:00:00Z)");
}

int digits(std::string_view text, std::size_t& i, std::size_t n) {
  if (i + n > text.size()) fail_timestamp(text, "too short");
  int v = 0;
  for (std::size_t k = 0; k < n; ++k, ++i) {
    const char c = text[i];
    if (!std::isdigit(static_cast<unsigned char>(c))) fail_timestamp(text, "expected a digit");
    v = v * 10 + (c - '0');
  }
  return v;
}

void expect(std::string_view text, std::size_t& i, char c) {
  if (i >= text.size() || text[i] != c) fail_timestamp(text, std::string("expected '") + c + "'");
  ++i;
}

// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm), so we do
// not depend on the process time zone as mktime would.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned mp = m > 2 ? m - 3 : m + 9;
  const unsigned doy = (153 * mp + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

}  // namespace

TimePoint parse_rfc3339(std::string_view text) {
  std::size_t i = 0;
  const int year = digits(text, i, 4);
  expect(text, i, '-');
  const int month = digits(text, i, 2);
  expect(text, i, '-');
  const int day = digits(text, i, 2);
  if (i >= text.size() || (text[i] != 'T' && text[i] != 't' && text[i] != ' ')) fail_timestamp(text, "expected 'T'");
  ++i;
  const int hour = digits(text, i, 2);
  expect(text, i, ':');
  const int minute = digits(text, i, 2);
  expect(text, i, ':');
  const int second = digits(text, i, 2);
  std::int64_t micros = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    int n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (n < 6) micros = micros * 10 + (text[i] - '0');
      ++n;
      ++i;
    }
    if (n == 0) fail_timestamp(text, "empty fraction");
    for (int k = n; k < 6; ++k) micros *= 10;
  }
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60)
    fail_timestamp(text, "field out of range");
  if (day > kDays[month - 1] + (month == 2 && leap ? 1 : 0)) fail_timestamp(text, "no such day in that month");
  if (i >= text.size()) fail_timestamp(text, "missing time zone (Z or +hh:mm)");
  std::int64_t offset_s = 0;
  if (text[i] == 'Z' || text[i] == 'z') {
    ++i;
  } else if (text[i] == '+' || text[i] == '-') {
    const int sign = text[i] == '-' ? -1 : 1;
    ++i;
    const int oh = digits(text, i, 2);
    expect(text, i, ':');
    const int om = digits(text, i, 2);
    if (oh > 23 || om > 59) fail_timestamp(text, "time zone offset out of range");
    offset_s = sign * (std::int64_t{oh} * 3600 + std::int64_t{om} * 60);
  } else {
    fail_timestamp(text, "bad time zone");
  }
  if (i != text.size()) fail_timestamp(text, "trailing characters");
  const std::int64_t days =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  const std::int64_t secs =
      days * 86400 + std::int64_t{hour} * 3600 + std::int64_t{minute} * 60 + second - offset_s;
  return TimePoint(std::chrono::microseconds(secs * 1'000'000 + micros));
}

std::string format_rfc3339(TimePoint t) {
  const std::int64_t us = t.time_since_epoch().count();
  std::int64_t secs = us / 1'000'000;
  std::int64_t rem = us % 1'000'000;
  if (rem < 0) {
    rem += 1'000'000;
    --secs;
  }
  const auto tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, rem / 1000);
}

TimePoint SystemClock::now() const {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

}  // namespace oss::core
