#pragma once
// Exact microsecond timestamps across the SQL boundary: C++ sends and receives microseconds
// since the epoch as bigint, SQL turns them into timestamptz without a float round trip.
#include <chrono>
#include <cstdint>
#include <string>

#include "oss/core/time.hpp"

namespace oss::sla::sqltime {

inline std::int64_t micros(core::TimePoint t) { return t.time_since_epoch().count(); }
inline core::TimePoint from_micros(std::int64_t us) { return core::TimePoint(std::chrono::microseconds(us)); }
inline std::string us(core::TimePoint t) { return std::to_string(micros(t)); }

/// SQL for "parameter $n (bigint microseconds) as timestamptz".
inline std::string ts_param(int n) {
  return "(timestamptz 'epoch' + $" + std::to_string(n) + "::bigint * interval '1 microsecond')";
}
/// SQL for "timestamptz expression as bigint microseconds".
inline std::string epoch_us(const std::string& expr) {
  return "(extract(epoch from " + expr + ") * 1000000)::bigint";
}

}  // namespace oss::sla::sqltime
