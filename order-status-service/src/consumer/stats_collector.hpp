#pragma once
/// Gauges that need a query rather than an event: orders by status, open dead letters, DLQ
/// depth and consumer lag (messages waiting in the events queue). Refreshed on its own thread
/// with its own database and broker connections, so a slow query never delays consuming or a
/// scrape; a failed refresh keeps the last values and is counted.
#include <atomic>
#include <chrono>
#include <set>
#include <string>

#include "consumer/topology.hpp"
#include "oss/amqp/connection.hpp"
#include "oss/metrics/registry.hpp"
#include "oss/pg/connection.hpp"

namespace oss::consumer {

class StatsCollector {
 public:
  StatsCollector(pg::ConnectOptions db, amqp::ConnectionOptions broker, Topology topology,
                 metrics::Registry& registry, std::chrono::milliseconds interval = std::chrono::seconds(10));
  /// Refreshes every interval until `stop`.
  void run(const std::atomic<bool>& stop);
  /// One refresh (tests call it directly). False when a dependency failed.
  bool refresh_once();

 private:
  pg::ConnectOptions db_;
  amqp::ConnectionOptions broker_;
  Topology topology_;
  metrics::Registry& registry_;
  std::chrono::milliseconds interval_;
  std::set<std::string> statuses_seen_;
  metrics::Gauge& dead_letters_open_;
  metrics::Gauge& dlq_messages_;
  metrics::Gauge& lag_messages_;
  metrics::Gauge& retry_messages_;
  metrics::Gauge& early_parked_;
  metrics::Gauge& early_parked_oldest_;
  metrics::Counter& refresh_failures_;
};

}  // namespace oss::consumer
