#pragma once
/// Capped exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff
/// and Jitter"): retries of many clients spread out instead of arriving as a storm.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace oss::core {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max,
          std::uint64_t seed = std::random_device{}())
      : initial_(initial), max_(max), rng_(seed) {}

  /// Delay before the next attempt: uniform in [cap/2, cap], cap = min(max, initial * 2^n).
  std::chrono::milliseconds next() {
    const auto shift = std::min<std::uint32_t>(attempt_++, 20);
    const auto cap = std::min<std::int64_t>(max_.count(), initial_.count() * (std::int64_t{1} << shift));
    std::uniform_int_distribution<std::int64_t> dist(cap / 2, std::max<std::int64_t>(cap, 1));
    return std::chrono::milliseconds(dist(rng_));
  }
  void reset() { attempt_ = 0; }
  std::uint32_t attempts() const { return attempt_; }

 private:
  std::chrono::milliseconds initial_, max_;
  std::mt19937_64 rng_;
  std::uint32_t attempt_ = 0;
};

}  // namespace oss::core
