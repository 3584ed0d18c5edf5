#pragma once
#include <map>
#include <mutex>
#include <string>

#include "oss/metrics/registry.hpp"
#include "outbox_store.hpp"

namespace oss::relay {

/// The relay's Prometheus metrics (outbox_relay_*). Thread-safe: the relay thread updates,
/// the HTTP thread renders.
class RelayMetrics {
 public:
  explicit RelayMetrics(metrics::Registry& registry);

  void published(const std::string& source, double n);
  void failure(const std::string& kind, double n = 1);   // returned | nacked | refused | encode
  void error(const std::string& kind);                   // database | broker
  /// A broker fault that was not charged to any row: connection | channel | confirm_timeout | nacked
  void broker_fault(const std::string& kind);
  metrics::Counter& parked;
  metrics::Counter& retried_after_fault;   // rows re-published after a fault: possible duplicates
  metrics::Counter& purged;
  metrics::Counter& vacuums;
  metrics::Histogram& confirm_latency;      // publish of a batch → its last confirm, seconds
  metrics::Histogram& commit_to_confirm;    // occurred_at (emit) → confirm, seconds
  metrics::Histogram& batch_size;
  /// Time spent outside publish/confirm, by step: fetch (one query), rebalance (partition
  /// locks), housekeeping (archive partitions, backlog stats, retention). A latency spike that
  /// the confirm histogram does not explain shows up here.
  metrics::Histogram& fetch_seconds;
  metrics::Histogram& send_seconds;  // writing a batch to the broker (blocks under its flow control)
  metrics::Histogram& rebalance_seconds;
  metrics::Histogram& housekeeping_seconds;
  metrics::Gauge& partitions_owned;
  metrics::Gauge& parked_rows;
  void backlog(const BacklogStats& stats);

 private:
  metrics::Counter& broker_fault_counter(const std::string& kind);
  metrics::Registry& registry_;
  std::mutex mutex_;
  std::map<std::string, bool> known_sources_;
};

}  // namespace oss::relay
