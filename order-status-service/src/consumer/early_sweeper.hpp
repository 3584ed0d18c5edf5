#pragma once
/// The early-event sweeper (docs/adr/0004): parked early events whose predecessor has not been
/// applied by their next_retry_at go back through the events queue, one retry each, with the
/// consumer's backoff tiers between retries. There they are decided like any delivery: applied,
/// parked again with one more attempt, or dead-lettered (retries_exhausted once the attempts
/// are spent, or the reason a batch found for a parked event marked for recheck).
///
/// Each pass, in one transaction: take the due rows FOR UPDATE SKIP LOCKED (several instances
/// share the work; a batch applying one of them waits for this pass), publish them with
/// confirms, then delete them. A crash between the confirms and the commit leaves the row and
/// a copy in the queue: a duplicate, which deduplication absorbs, never a loss.
#include <atomic>
#include <chrono>
#include <cstddef>

#include "consumer/consumer_metrics.hpp"
#include "consumer/topology.hpp"
#include "oss/amqp/connection.hpp"
#include "oss/pg/connection.hpp"

namespace oss::consumer {

class EarlySweeper {
 public:
  EarlySweeper(pg::ConnectOptions db, amqp::ConnectionOptions broker, Topology topology, ConsumerMetrics& metrics,
               std::chrono::milliseconds interval, std::size_t batch_max = 500);
  /// Passes every `interval` (at once again after a full pass) until `stop`; database and
  /// broker trouble is logged, counted and retried with backoff.
  void run(const std::atomic<bool>& stop);
  /// One pass over what is due; returns how many events went back to the queue. Throws on
  /// database or broker trouble (nothing is deleted then).
  std::size_t sweep_once(pqxx::connection& db, amqp::Connection& broker);

 private:
  pg::ConnectOptions db_;
  amqp::ConnectionOptions broker_;
  Topology topology_;
  ConsumerMetrics& metrics_;
  std::chrono::milliseconds interval_;
  std::size_t batch_max_;
};

}  // namespace oss::consumer
