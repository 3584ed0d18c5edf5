#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include "failure_policy.hpp"
#include "oss/core/backoff.hpp"
#include "outbox_store.hpp"
#include "publisher.hpp"
#include "relay_metrics.hpp"

namespace oss::relay {

struct RelayOptions {
  std::size_t batch_size = 500;
  std::size_t pipeline_depth = 4;                      // batches published ahead of their confirms
  std::size_t max_batches_per_cycle = 32;              // then housekeeping and the stop flag get a turn
  std::chrono::milliseconds poll_interval{100};        // safety net when no NOTIFY arrives
  std::chrono::milliseconds rebalance_interval{1000};
  std::chrono::milliseconds stats_interval{5000};
  int max_attempts = 10;                               // row-specific failures, then the row is parked
  std::chrono::milliseconds retry_after{2000};         // first retry delay of a refused row (doubles, up to 2^10 x)
  std::chrono::milliseconds retention{24 * 3600 * 1000};  // published rows kept this long (reconcile reads them)
  std::chrono::milliseconds purge_interval{60'000};
  /// VACUUM outbox.events after this many rows were marked published by this relay (0: never),
  /// once caught up (a cycle found less than a batch).
  /// Every published row leaves a dead entry in the pending index that each cycle's first
  /// fetch walks over until a vacuum removes it; autovacuum visits a database at most once a
  /// minute (docs/performance.md, "dead index entries").
  std::size_t vacuum_after_rows = 20'000;
  std::chrono::milliseconds vacuum_min_interval{2'000};
  std::chrono::milliseconds backoff_initial{200};      // dependency outages
  std::chrono::milliseconds backoff_max{10'000};
  /// After a broker fault, refusals (returned, nacked, refused alone) are retried without an
  /// attempt for this long: a broker recovering from a crash may return or nack messages while
  /// its queues and bindings come back (failure_policy.hpp, "settle window").
  std::chrono::milliseconds broker_settle{30'000};
};

/// The publishing loop: rebalance partitions, fetch the oldest rows, publish them with
/// confirms, mark the confirmed ones published. One thread; `run` returns after `stop` is set
/// and the in-flight batch is finished. A lost database or broker is waited for with capped,
/// jittered backoff; nothing is marked published that the broker did not confirm.
class Relay {
 public:
  using StoreFactory = std::function<std::unique_ptr<OutboxStore>()>;
  Relay(StoreFactory store_factory, Publisher& publisher, RelayMetrics& metrics, RelayOptions options);

  void run(const std::atomic<bool>& stop);
  /// One cycle: up to max_batches_per_cycle batches fetched, published (pipelined) and settled;
  /// returns the rows sent (confirmed or charged an attempt). `run` waits for commits when a
  /// cycle found less than a full batch.
  std::size_t run_once();
  /// True while the database and broker answered on the last attempt (readiness).
  bool healthy() const { return healthy_.load(); }

 private:
  OutboxStore& store();
  /// Publishes the rows one at a time, each alone (nothing else in flight), and settles each:
  /// a row the broker refuses is then that row's failure (the publisher never asks to isolate
  /// a row published alone). Returns the rows confirmed.
  std::size_t publish_alone(const std::vector<OutboxRow>& rows);
  /// Marks/charges one settled batch; throws BrokerUnavailable when the connection broke or the
  /// broker nacked the whole batch (failure_policy.hpp: broker trouble is never charged).
  std::size_t handle_outcome(const std::vector<OutboxRow>& rows, PublishOutcome out,
                             std::chrono::steady_clock::time_point sent_at);
  /// Starts the settle window and counts the fault (errors{kind="broker"}, broker faults by kind).
  void note_broker_fault(const std::string& kind);
  void housekeeping(bool force);
  void sleep_for(std::chrono::milliseconds d, const std::atomic<bool>& stop);
  /// Waits for a commit notification up to options_.poll_interval, returning early on stop.
  void wait_for_work(const std::atomic<bool>& stop);

  StoreFactory store_factory_;
  std::unique_ptr<OutboxStore> store_;
  Publisher& publisher_;
  /// When wait_for_work last kept the broker connection alive.
  std::chrono::steady_clock::time_point kept_alive_at_{};
  RelayMetrics& metrics_;
  RelayOptions options_;
  std::atomic<bool> healthy_{false};
  std::chrono::steady_clock::time_point last_rebalance_{}, last_stats_{}, last_purge_{}, last_vacuum_{};
  std::size_t marked_since_vacuum_ = 0;
  bool caught_up_ = false;  // the last cycle found less than a full batch
  /// True while refusals say more about a recovering broker than about the row: from a broker
  /// fault until the broker has routed a message again (a confirm that was not a return), and
  /// then for options_.broker_settle (failure_policy.hpp, "settle window").
  bool settling(std::chrono::steady_clock::time_point now) const;
  /// When the broker last failed us (lost connection, closed channel, confirm timeout, a batch
  /// nacked whole), and when it first routed a message after that fault (unset until it has).
  std::optional<std::chrono::steady_clock::time_point> last_broker_fault_, routed_again_at_;
  NackPolicy nacks_;
};

}  // namespace oss::relay
