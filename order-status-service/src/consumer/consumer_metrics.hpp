#pragma once
#include <string>

#include "oss/metrics/registry.hpp"

namespace oss::consumer {

/// The consumer's Prometheus metrics (oss_*). Thread-safe.
class ConsumerMetrics {
 public:
  explicit ConsumerMetrics(metrics::Registry& r)
      : registry_(r),
        batch_seconds(r.histogram("oss_batch_processing_seconds", "Time to decide and commit one batch",
                                  metrics::latency_buckets_seconds())),
        end_to_end_seconds(r.histogram("oss_event_end_to_end_seconds",
                                       "From the event's occurred_at (outbox.emit) to its status applied",
                                       metrics::latency_buckets_seconds())),
        batch_size(r.histogram("oss_batch_size", "Messages per batch", metrics::exponential_buckets(1, 2, 12))),
        broker_connected(r.gauge("oss_broker_connected", "1 while the consumer is connected to the broker")),
        db_retries(r.counter("oss_database_retries_total", "Batches retried because of database trouble")),
        broker_errors(r.counter("oss_broker_errors_total", "Broker connection losses")),
        early_parked(r.counter("oss_early_parked_total",
                               "Early events parked in oss.early_events until their predecessor is applied")),
        early_retries(r.counter("oss_early_retries_total",
                                "Parked early events sent back through the events queue by the sweeper (backoff)")),
        early_retries_in_place(r.counter(
            "oss_early_retries_in_place_total",
            "Retries of parked early events done in place: their order had not changed since they were decided, "
            "so they stayed parked with the next delay instead of going through the queue")),
        sweep_failures(r.counter("oss_early_sweep_failures_total",
                                 "Sweeper passes that failed (database or broker trouble; retried)")) {
    for (const char* o : {"applied", "ignored", "stale", "duplicate"}) unparked(o, 0);
    for (const char* o : {"applied", "duplicate", "stale", "early", "dead_lettered", "ignored"}) outcome(o, 0);
    for (const char* reason :
         {"malformed", "unknown_status", "source_not_allowed", "invalid_transition", "retries_exhausted"})
      dead_letter(reason, 0);
  }
  void outcome(const std::string& o, double n = 1) {
    registry_.counter("oss_events_total", "Events consumed, by outcome", {{"outcome", o}}).inc(n);
  }
  /// A parked early event decided in the transaction of a later batch (its predecessor's).
  void unparked(const std::string& o, double n = 1) {
    registry_
        .counter("oss_early_unparked_total", "Parked early events decided in a later batch's transaction, by outcome",
                 {{"outcome", o}})
        .inc(n);
  }
  void dead_letter(const std::string& reason, double n = 1) {
    registry_.counter("oss_dead_letters_total", "Events dead-lettered, by reason", {{"reason", reason}}).inc(n);
  }

 private:
  metrics::Registry& registry_;

 public:
  metrics::Histogram& batch_seconds;
  metrics::Histogram& end_to_end_seconds;
  metrics::Histogram& batch_size;
  metrics::Gauge& broker_connected;
  metrics::Counter& db_retries;
  metrics::Counter& broker_errors;
  metrics::Counter& early_parked;
  metrics::Counter& early_retries;
  metrics::Counter& early_retries_in_place;
  metrics::Counter& sweep_failures;
};

}  // namespace oss::consumer
