#include "sla/metrics.hpp"

namespace oss::sla {

SlaMetrics::SlaMetrics(metrics::Registry& registry)
    : registry_(registry),
      scan_seconds_(registry.histogram("oss_sla_scan_seconds", "Duration of one SLA/escalation pass",
                                       metrics::latency_buckets_seconds())),
      orders_due_(registry.gauge("oss_orders_due", "Orders whose SLA timer (escalation rung or auto transition) was due in the last pass")),
      auto_transitions_(registry.counter("oss_auto_transitions_total", "Automatic workflow transitions made by the SLA engine")) {
  registry.counter("oss_escalations_raised_total", "Escalation rungs raised", {{"level", "warning"}});
}

void SlaMetrics::raised(const std::string& level) {
  registry_.counter("oss_escalations_raised_total", "Escalation rungs raised", {{"level", level}}).inc();
}

void SlaMetrics::pass_done(double seconds, std::size_t orders_due) {
  scan_seconds_.observe(seconds);
  orders_due_.set(static_cast<double>(orders_due));
}

void SlaMetrics::set_open(const std::map<std::pair<std::string, std::string>, double>& open) {
  std::lock_guard lock(mutex_);
  for (const auto& key : seen_open_)
    if (!open.contains(key))
      registry_.gauge("oss_escalations_open", "Open escalations", {{"status", key.first}, {"level", key.second}}).set(0);
  for (const auto& [key, n] : open) {
    registry_.gauge("oss_escalations_open", "Open escalations", {{"status", key.first}, {"level", key.second}}).set(n);
    seen_open_.insert(key);
  }
}

}  // namespace oss::sla
