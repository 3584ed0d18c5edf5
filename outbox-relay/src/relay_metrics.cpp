#include "relay_metrics.hpp"

namespace oss::relay {

RelayMetrics::RelayMetrics(metrics::Registry& registry)
    : parked(registry.counter("outbox_relay_parked_total", "Rows parked after too many failed attempts")),
      retried_after_fault(registry.counter(
          "outbox_relay_republished_after_fault_total",
          "Rows published again after a broker fault left their confirm unknown (possible duplicates)")),
      purged(registry.counter("outbox_relay_purged_rows_total", "Published rows removed by retention")),
      vacuums(registry.counter("outbox_relay_vacuums_total",
                               "VACUUMs of outbox.events run by this relay (--vacuum-after rows published)")),
      confirm_latency(registry.histogram("outbox_relay_confirm_latency_seconds",
                                         "Time from publishing a batch to its broker confirm",
                                         metrics::latency_buckets_seconds())),
      commit_to_confirm(registry.histogram("outbox_relay_emit_to_confirm_seconds",
                                           "Time from outbox.emit (occurred_at) to broker confirm",
                                           metrics::latency_buckets_seconds())),
      batch_size(registry.histogram("outbox_relay_batch_size", "Rows per published batch",
                                    metrics::exponential_buckets(1, 2, 12))),
      fetch_seconds(registry.histogram("outbox_relay_step_seconds", "Time spent in one relay step outside publish/confirm",
                                       metrics::latency_buckets_seconds(), {{"step", "fetch"}})),
      send_seconds(registry.histogram("outbox_relay_step_seconds", "Time spent in one relay step outside publish/confirm",
                                      metrics::latency_buckets_seconds(), {{"step", "send"}})),
      rebalance_seconds(registry.histogram("outbox_relay_step_seconds",
                                           "Time spent in one relay step outside publish/confirm",
                                           metrics::latency_buckets_seconds(), {{"step", "rebalance"}})),
      housekeeping_seconds(registry.histogram("outbox_relay_step_seconds",
                                              "Time spent in one relay step outside publish/confirm",
                                              metrics::latency_buckets_seconds(), {{"step", "housekeeping"}})),
      partitions_owned(registry.gauge("outbox_relay_partitions_owned", "Outbox partitions this relay owns")),
      parked_rows(registry.gauge("outbox_relay_parked_rows", "Parked rows in the outbox (need an operator)")),
      registry_(registry) {
  for (const char* kind : {"returned", "nacked", "refused", "encode"})
    registry_.counter("outbox_relay_publish_failures_total", "Rows the broker refused, by kind", {{"kind", kind}});
  for (const char* kind : {"database", "broker"})
    registry_.counter("outbox_relay_errors_total", "Connection-level errors, by dependency", {{"kind", kind}});
  for (const char* kind : {"connection", "channel", "confirm_timeout", "nacked"}) broker_fault_counter(kind);
}

metrics::Counter& RelayMetrics::broker_fault_counter(const std::string& kind) {
  return registry_.counter("outbox_relay_broker_faults_total",
                           "Broker trouble retried with backoff and never charged to a row, by kind", {{"kind", kind}});
}

void RelayMetrics::broker_fault(const std::string& kind) { broker_fault_counter(kind).inc(); }

void RelayMetrics::published(const std::string& source, double n) {
  registry_.counter("outbox_relay_published_total", "Rows published and confirmed", {{"source", source}}).inc(n);
}

void RelayMetrics::failure(const std::string& kind, double n) {
  registry_.counter("outbox_relay_publish_failures_total", "Rows the broker refused, by kind", {{"kind", kind}}).inc(n);
}

void RelayMetrics::error(const std::string& kind) {
  registry_.counter("outbox_relay_errors_total", "Connection-level errors, by dependency", {{"kind", kind}}).inc();
}

void RelayMetrics::backlog(const BacklogStats& stats) {
  std::lock_guard lock(mutex_);
  for (auto& [source, seen] : known_sources_) seen = false;
  for (const auto& s : stats.sources) {
    registry_.gauge("outbox_relay_backlog_rows", "Unpublished rows, by source", {{"source", s.source}})
        .set(static_cast<double>(s.rows));
    registry_.gauge("outbox_relay_oldest_unpublished_age_seconds", "Age of the oldest unpublished row, by source",
                    {{"source", s.source}})
        .set(s.oldest_age_seconds);
    known_sources_[s.source] = true;
  }
  // A source whose backlog drained reports zero rather than its last value.
  for (auto& [source, seen] : known_sources_) {
    if (seen) continue;
    registry_.gauge("outbox_relay_backlog_rows", "Unpublished rows, by source", {{"source", source}}).set(0);
    registry_.gauge("outbox_relay_oldest_unpublished_age_seconds", "Age of the oldest unpublished row, by source",
                    {{"source", source}})
        .set(0);
  }
  parked_rows.set(static_cast<double>(stats.parked));
}

}  // namespace oss::relay
