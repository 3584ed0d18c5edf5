#pragma once
#include <atomic>
#include <functional>
#include <memory>

#include "consumer/consumer_metrics.hpp"
#include "consumer/topology.hpp"
#include "domain/workflow.hpp"
#include "oss/amqp/connection.hpp"
#include "store/order_store.hpp"

namespace oss::consumer {

struct ConsumerOptions {
  amqp::ConnectionOptions connection;
  Topology topology;
  std::uint16_t prefetch = 1000;         // bounded in-flight per instance
  std::size_t batch_max = 500;           // messages per database transaction
  std::chrono::milliseconds batch_wait{5};  // how long to wait to fill a batch
  int max_early_retries = 8;             // then retries_exhausted
  std::chrono::milliseconds backoff_initial{200};
  std::chrono::milliseconds backoff_max{10'000};
  /// Consumer threads per instance, each with its own broker connection (channel, prefetch)
  /// and database connection. Concurrent batches are safe for the same reasons as several
  /// instances (docs/adr/0002): per-order advisory locks and the per-source sequences.
  int workers = 1;
  /// Wait of a parked early event before its retry number n+1 through the queue:
  /// early_retry_delays[min(n, size - 1)] (--early-retry-delays).
  std::vector<std::chrono::milliseconds> early_retry_delays{std::chrono::seconds(1), std::chrono::seconds(5),
                                                            std::chrono::seconds(30), std::chrono::seconds(120)};
  /// How often the early-event sweeper looks for parked events that are due (docs/adr/0004).
  std::chrono::milliseconds sweep_interval{250};
};

/// Consumes order events: batches deliveries, applies them in one transaction per batch,
/// parks early ones in the database next to their order (applied in the transaction of their
/// predecessor; docs/adr/0004), routes failures to the DLQ with publisher confirms, and acks
/// only after the commit and those confirms. One more thread, the EarlySweeper, sends parked
/// events that stay early back through the queue with backoff until they are dead-lettered.
/// `workers` threads, each a complete consumer of its own; run() returns after `stop` is set and every worker has finished (an
/// unfinished batch is left unacked and redelivered: deduplication makes that safe).
class EventConsumer {
 public:
  /// Called after each commit with the applied transitions (e.g. to feed the live stream).
  using AppliedHook = std::function<void(const std::vector<processing::HistoryRow>&)>;

  EventConsumer(ConsumerOptions options, pg::ConnectOptions db, const domain::Workflow& workflow,
                ConsumerMetrics& metrics, AppliedHook on_applied = {});
  void run(const std::atomic<bool>& stop);
  /// Every worker connected to the broker.
  bool connected() const { return connected_.load() == options_.workers; }
  /// No worker is retrying a batch because of database trouble.
  bool database_ok() const { return database_trouble_.load() == 0; }

 private:
  struct Worker;
  void worker_run(Worker& w, const std::atomic<bool>& stop);
  void consume_loop(Worker& w, amqp::Connection& conn, const std::atomic<bool>& stop);
  /// Applies the batch, retrying database trouble with backoff until it commits or `stop`.
  std::optional<processing::BatchPlan> apply_with_retry(Worker& w, const std::vector<processing::InboundEvent>& batch,
                                                        const std::atomic<bool>& stop);
  void set_connected(Worker& w, bool on);

  ConsumerOptions options_;
  pg::ConnectOptions db_;
  const domain::Workflow& workflow_;
  ConsumerMetrics& metrics_;
  AppliedHook on_applied_;
  std::atomic<int> connected_{0};
  std::atomic<int> database_trouble_{0};
};

}  // namespace oss::consumer
