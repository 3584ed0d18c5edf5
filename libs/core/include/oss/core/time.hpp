#pragma once
/// Wall-clock time as the product exchanges it: RFC 3339 UTC strings with millisecond precision,
/// and an injectable Clock so that tests and `--at` control "now".
#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>

namespace oss::core {

using TimePoint = std::chrono::time_point<std::chrono::system_clock, std::chrono::microseconds>;

struct TimeFormatError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

/// Parses RFC 3339 (`2026-11-22T18:00:00.123Z`, `2026-11-22T19:00:00+01:00`, `2026-11-22 18:00:00Z`).
TimePoint parse_rfc3339(std::string_view text);
/// `2026-11-22T18:00:00.123Z` (UTC, milliseconds).
std::string format_rfc3339(TimePoint t);

/// Source of "now". The system clock in production; a settable one in tests.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override;
};

}  // namespace oss::core
