#pragma once
/// The early-event sweeper (docs/adr/0004): parked early events whose predecessor has not been
/// applied by their next_retry_at go back through the events queue, one retry each, with the
/// consumer's backoff tiers between retries. There they are decided like any delivery: applied,
/// parked again with one more attempt, or dead-lettered (retries_exhausted once the attempts
/// are spent, or the reason a batch found for a parked event marked for recheck).
///
/// Retries in place (schema/service/004_early_recheck.sql): a due event whose order still has
/// the version it was decided against would only be parked again, so its retry is counted and
/// its next one set in the database, with no trip through the queue. Only once its order has
/// changed (an operator's or the SLA engine's transition), or for its last retry, does it go
/// through the queue. While relays lag behind one another, this keeps the waiting events from
/// adding broker and batch work to a machine that is short of it.
///
/// Each pass: first the in-place retries (one statement), then, in one transaction, the rest
/// of what is due FOR UPDATE SKIP LOCKED (several instances share the work; a batch applying
/// one of them waits for this pass), published with confirms, then deleted. A crash between
/// the confirms and the commit leaves the row and a copy in the queue: a duplicate, which
/// deduplication absorbs, never a loss.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "consumer/consumer_metrics.hpp"
#include "consumer/topology.hpp"
#include "oss/amqp/connection.hpp"
#include "oss/pg/connection.hpp"

namespace oss::consumer {

class EarlySweeper {
 public:
  /// `retry_delays` and `max_attempts` are the consumer's (--early-retry-delays,
  /// --early-retries): an in-place retry waits what a trip through the queue would have.
  EarlySweeper(pg::ConnectOptions db, amqp::ConnectionOptions broker, Topology topology, ConsumerMetrics& metrics,
               std::chrono::milliseconds interval, std::vector<std::chrono::milliseconds> retry_delays,
               int max_attempts, std::size_t batch_max = 500);
  /// Passes every `interval` (at once again after a full pass) until `stop`; database and
  /// broker trouble is logged, counted and retried with backoff.
  void run(const std::atomic<bool>& stop);

  struct Pass {
    std::size_t in_place = 0;  // retries counted in the database, no trip through the queue
    std::size_t sent = 0;      // events sent back through the queue
  };
  /// One pass over what is due. Throws on database or broker trouble (nothing is deleted then;
  /// in-place retries already made stay made).
  Pass sweep_once(pqxx::connection& db, amqp::Connection& broker);
  /// What this instance decides parked events with may differ from what the instance that
  /// parked them used (another workflow file): every row's next retry goes through the queue.
  /// Called once at start, before the consumer runs (`order-status-service run`).
  static void forget_decided_versions(pqxx::connection& db);

 private:
  std::size_t retry_in_place(pqxx::connection& db);
  std::size_t send_back(pqxx::connection& db, amqp::Connection& broker);

  pg::ConnectOptions db_;
  amqp::ConnectionOptions broker_;
  Topology topology_;
  ConsumerMetrics& metrics_;
  std::chrono::milliseconds interval_;
  std::vector<std::chrono::milliseconds> retry_delays_;
  std::string retry_delays_ms_;  // the same as a bigint[] literal, for the in-place statement
  int max_attempts_;
  std::size_t batch_max_;
};

}  // namespace oss::consumer
