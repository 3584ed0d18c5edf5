#pragma once
/// The SLA engine's Prometheus metrics. Thread-safe (the registry's metrics are).
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "oss/metrics/registry.hpp"

namespace oss::sla {

class SlaMetrics {
 public:
  explicit SlaMetrics(metrics::Registry& registry);
  /// oss_escalations_raised_total{level}
  void raised(const std::string& level);
  /// oss_auto_transitions_total
  void auto_transitioned() { auto_transitions_.inc(); }
  /// oss_sla_scan_seconds, oss_orders_due (orders whose timer was due in the last pass)
  void pass_done(double seconds, std::size_t orders_due);
  /// oss_escalations_open{status,level}: replaces the whole set (absent pairs go to 0).
  void set_open(const std::map<std::pair<std::string, std::string>, double>& open);

 private:
  metrics::Registry& registry_;
  metrics::Histogram& scan_seconds_;
  metrics::Gauge& orders_due_;
  metrics::Counter& auto_transitions_;
  std::mutex mutex_;
  std::set<std::pair<std::string, std::string>> seen_open_;
};

}  // namespace oss::sla
