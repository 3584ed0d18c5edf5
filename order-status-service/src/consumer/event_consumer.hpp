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
};

/// Consumes order events: batches deliveries, applies them in one transaction per batch,
/// routes early ones to delay queues and failures to the DLQ (both with publisher confirms),
/// and acks only after the commit and those confirms. One thread; run() returns after `stop`
/// is set (an unfinished batch is left unacked and redelivered: deduplication makes that safe).
class EventConsumer {
 public:
  /// Called after each commit with the applied transitions (e.g. to feed the live stream).
  using AppliedHook = std::function<void(const std::vector<processing::HistoryRow>&)>;

  EventConsumer(ConsumerOptions options, pg::ConnectOptions db, const domain::Workflow& workflow,
                ConsumerMetrics& metrics, AppliedHook on_applied = {});
  void run(const std::atomic<bool>& stop);
  bool connected() const { return connected_.load(); }
  bool database_ok() const { return database_ok_.load(); }

 private:
  void consume_loop(amqp::Connection& conn, const std::atomic<bool>& stop);
  /// Applies the batch, retrying database trouble with backoff until it commits or `stop`.
  std::optional<processing::BatchPlan> apply_with_retry(const std::vector<processing::InboundEvent>& batch,
                                                        const std::atomic<bool>& stop);

  ConsumerOptions options_;
  store::PgOrderStore store_;
  const domain::Workflow& workflow_;
  ConsumerMetrics& metrics_;
  AppliedHook on_applied_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> database_ok_{true};
};

}  // namespace oss::consumer
