#pragma once
// A small hand-written Prometheus client (text exposition format 0.0.4). Debian 12 has no
// prometheus-cpp package, and we need only counters, gauges, histograms and a text render.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace oss::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

/// A monotonically increasing value. inc() is lock-free and safe from any thread.
/// Negative increments are ignored (a counter never goes down).
class Counter {
 public:
  void inc(double v = 1.0);
  double value() const;

 private:
  std::atomic<double> value_{0.0};
};

/// A value that goes up and down. All operations are lock-free and safe from any thread.
class Gauge {
 public:
  void set(double v);
  void inc(double v = 1.0);
  void dec(double v = 1.0);
  double value() const;

 private:
  std::atomic<double> value_{0.0};
};

/// Counts observations into buckets (upper bounds, "le"), plus their sum and count.
/// observe() is lock-free and safe from any thread.
class Histogram {
 public:
  /// buckets: finite, strictly increasing upper bounds (+Inf is implicit).
  explicit Histogram(std::vector<double> buckets);
  void observe(double v);
  std::uint64_t count() const;
  double sum() const;
  const std::vector<double>& buckets() const { return bounds_; }
  /// Cumulative counts, one per bound plus the trailing +Inf bucket.
  std::vector<std::uint64_t> cumulative_counts() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket, not cumulative
  std::atomic<double> sum_{0.0};
  std::atomic<std::uint64_t> count_{0};
};

/// A set of metric families rendered in Prometheus text format.
/// Thread-safe. Metric references stay valid for the registry's lifetime.
/// The same name with different labels is one family; registering the same name and labels
/// twice returns the same metric. A name reused with another type (or a histogram with
/// other buckets) throws std::logic_error; invalid metric or label names throw
/// std::invalid_argument. Label order does not matter (labels are kept sorted by name).
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, std::vector<double> buckets,
                       const Labels& labels = {});

  /// fn runs at every render() before rendering, outside the registry lock (so it may touch
  /// metrics of this registry). It must be cheap and never block.
  void on_collect(std::function<void()> fn);

  /// Families in registration order, children in registration order.
  std::string render() const;

 private:
  struct Family;
  Family& family_locked(const std::string& name, const std::string& help, int type);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family>> families_;
  std::vector<std::function<void()>> collectors_;
};

/// count bounds: start, start*factor, ... ; start > 0, factor > 1, count >= 1.
std::vector<double> exponential_buckets(double start, double factor, std::size_t count);
/// 0.5 ms .. 60 s, roughly 1-2.5-5 per decade, for latencies from milliseconds to minutes.
std::vector<double> latency_buckets_seconds();

}  // namespace oss::metrics
