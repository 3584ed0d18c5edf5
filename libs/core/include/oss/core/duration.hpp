#pragma once
/// Durations as users write them on the command line and in workflow files:
/// `90s`, `15m`, `24h`, `7d`, `500ms`, combinations like `1h30m`, and ISO-8601 `PT1H`, `P2D`, `P1DT2H`.
#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>

namespace oss::core {

struct DurationError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

/// Parses a duration; throws DurationError naming the bad input. Negative values are rejected.
std::chrono::milliseconds parse_duration(std::string_view text);

/// Shortest exact form: `90s`, `15m`, `2d`, `1h30m`, `250ms`, `0s`.
std::string format_duration(std::chrono::milliseconds d);

}  // namespace oss::core
