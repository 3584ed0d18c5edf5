#include "oss/core/duration.hpp"

#include <cctype>
#include <cstdint>
#include <limits>

namespace oss::core {
namespace {

using std::chrono::milliseconds;

[[noreturn]] void fail_duration(std::string_view text, std::string_view why) {
  throw DurationError("invalid duration '" + std::string(text) + "': " + std::string(why) +
                      " (use e.g. 90s, 15m, 24h, 7d or ISO-8601 PT1H)");
}

std::int64_t unit_ms(std::string_view unit) {
  if (unit == "ms") return 1;
  if (unit == "s") return 1000;
  if (unit == "m") return 60'000;
  if (unit == "h") return 3'600'000;
  if (unit == "d") return 86'400'000;
  if (unit == "w") return 7 * 86'400'000LL;
  return 0;
}

std::int64_t checked_add(std::string_view text, std::int64_t total, std::int64_t n, std::int64_t unit) {
  if (n > (std::numeric_limits<std::int64_t>::max() - total) / unit) fail_duration(text, "too large");
  return total + n * unit;
}

milliseconds parse_iso(std::string_view text) {
  // P[nD][T[nH][nM][nS]]; weeks too. Fractions are not accepted (none of our users need them).
  std::size_t i = 1;
  bool in_time = false;
  bool any = false;
  std::int64_t total = 0;
  while (i < text.size()) {
    if (text[i] == 'T') {
      if (in_time) fail_duration(text, "repeated 'T'");
      in_time = true;
      ++i;
      continue;
    }
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) fail_duration(text, "expected a number");
    std::int64_t n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (n > std::numeric_limits<std::int64_t>::max() / 10 - 9) fail_duration(text, "too large");
      n = n * 10 + (text[i] - '0');
      ++i;
    }
    if (i >= text.size()) fail_duration(text, "missing unit");
    const char u = text[i++];
    std::int64_t unit = 0;
    if (!in_time && u == 'D') unit = 86'400'000;
    else if (!in_time && u == 'W') unit = 7 * 86'400'000LL;
    else if (in_time && u == 'H') unit = 3'600'000;
    else if (in_time && u == 'M') unit = 60'000;
    else if (in_time && u == 'S') unit = 1000;
    else fail_duration(text, "unsupported ISO-8601 unit");
    total = checked_add(text, total, n, unit);
    any = true;
  }
  if (!any) fail_duration(text, "no components");
  return milliseconds(total);
}

}  // namespace

milliseconds parse_duration(std::string_view text) {
  if (text.empty()) fail_duration(text, "empty");
  if (text.front() == 'P' || text.front() == 'p') return parse_iso(text);
  if (text.front() == '-') fail_duration(text, "negative");
  std::size_t i = 0;
  std::int64_t total = 0;
  bool any = false;
  while (i < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) fail_duration(text, "expected a number");
    std::int64_t n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (n > std::numeric_limits<std::int64_t>::max() / 10 - 9) fail_duration(text, "too large");
      n = n * 10 + (text[i] - '0');
      ++i;
    }
    std::size_t j = i;
    while (j < text.size() && std::isalpha(static_cast<unsigned char>(text[j]))) ++j;
    const std::string_view unit = text.substr(i, j - i);
    if (unit.empty()) fail_duration(text, "missing unit");
    const std::int64_t ms = unit_ms(unit);
    if (ms == 0) fail_duration(text, "unknown unit '" + std::string(unit) + "'");
    total = checked_add(text, total, n, ms);
    any = true;
    i = j;
  }
  if (!any) fail_duration(text, "no components");
  return milliseconds(total);
}

std::string format_duration(milliseconds d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  const std::pair<std::int64_t, const char*> units[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  for (const auto& [size, name] : units) {
    if (ms >= size) {
      out += std::to_string(ms / size) + name;
      ms %= size;
    }
  }
  return out;
}

}  // namespace oss::core
