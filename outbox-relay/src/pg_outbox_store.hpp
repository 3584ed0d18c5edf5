#pragma once
#include <future>
#include <limits>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <random>
#include <set>

#include "oss/pg/connection.hpp"
#include "outbox_store.hpp"

namespace oss::relay {

/// OutboxStore on PostgreSQL. Partitions are owned through session-level advisory locks
/// (key class kPartitionLockClass, key = partition); live relays announce themselves with a
/// shared advisory lock (kMemberLockClass, 0) so each can compute its fair share from pg_locks
/// with no coordinator. A relay that dies loses its session and with it its locks: the others
/// take its partitions at their next rebalance (every rebalance interval, ~1 s).
class PgOutboxStore final : public OutboxStore {
 public:
  static constexpr int kPartitionLockClass = 0x0B0C5E1A;
  static constexpr int kMemberLockClass = 0x0B0C5E1B;
  static constexpr int kRetentionLockClass = 0x0B0C5E1C;

  /// Connects, checks the schema is installed (throws SchemaMissing otherwise), LISTENs.
  /// `archive_partition_width`: time span of one outbox.events_archive partition (schema >= 3).
  explicit PgOutboxStore(pg::ConnectOptions options,
                         std::chrono::seconds archive_partition_width = std::chrono::seconds(3600));
  ~PgOutboxStore() override;
  PgOutboxStore(const PgOutboxStore&) = delete;
  PgOutboxStore& operator=(const PgOutboxStore&) = delete;

  struct SchemaMissing : std::runtime_error {
    using std::runtime_error::runtime_error;
  };

  std::vector<int> rebalance() override;
  std::vector<int> owned() const override { return {owned_.begin(), owned_.end()}; }
  std::vector<OutboxRow> fetch(std::size_t limit, std::int64_t after_position = 0) override;
  /// The statement fetch() runs ($1 partitions, $2 limit, $3 after_position); `bounded` is
  /// after_position > 0, which adds the per-row predecessor check, for rows written since the
  /// cycle's first snapshot ($4: its xmin modulo 2^32, which the unbounded fetch returns as
  /// column 13; -1: check every row). Public for the integration tests.
  static std::string fetch_sql(bool bounded);
  void mark_published(const std::vector<std::int64_t>& positions) override;
  bool vacuum() override;
  std::size_t record_failures(const std::vector<RowFailure>& failures, int max_attempts,
                              std::chrono::milliseconds retry_after) override;
  bool wait_for_commit(std::chrono::milliseconds timeout) override;
  BacklogStats backlog() override;
  std::int64_t purge_published(std::chrono::milliseconds retention, std::size_t batch,
                               std::chrono::milliseconds budget) override;

  void prepare_archive() override;

  /// How long the relay must have been busy since its last wake-up before it lowers its
  /// `outbox.notify = idle` flag (default 20 ms; see fetch() in pg_outbox_store.cpp).
  void set_busy_before_flag_down(std::chrono::milliseconds d) { busy_before_flag_down_ = d; }
  /// The extra looks for rows right after the flag goes up (default 5, 15 and 30 ms; see
  /// wait_for_commit in pg_outbox_store.cpp). Empty: only the one look before the first wait.
  void set_early_looks(std::vector<std::chrono::milliseconds> waits) { early_looks_ = std::move(waits); }

  int partition_count() const { return partitions_; }
  /// True when published rows move to outbox.events_archive (schema version >= 3).
  bool archives() const { return archive_; }
  /// Archive partition width for a retention: retention/8 within [10 s, 1 h], so retention drops
  /// rows at most an eighth of the retention (or 10 s) later than due, with ~9 partitions kept.
  static std::chrono::seconds archive_width_for(std::chrono::milliseconds retention);

 private:
  class Listener;
  void open();
  /// This connection's row in outbox.relay_wakeups (schema version 4).
  void set_sleeping(bool sleeping);
  pqxx::connection& conn();

  pg::ConnectOptions options_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<Listener> listener_;
  std::set<int> owned_;
  int partitions_ = 64;
  std::mt19937 rng_{std::random_device{}()};
  bool notified_ = false;
  bool wakeups_ = false;   // schema version 4 and our role may write outbox.relay_wakeups
  bool sleeping_ = false;  // our flag there, as last written
  std::chrono::steady_clock::time_point woke_at_{};  // when the last wait_for_commit ended
  /// Busy this long after a wake-up before the flag goes down (pg_outbox_store.cpp, fetch).
  std::chrono::milliseconds busy_before_flag_down_{20};
  /// After the flag goes up: looks for rows again after these waits (then --poll-interval),
  /// for producers that read the flag just before it was set and commit a little later
  /// (wait_for_commit). next_look_ indexes it; past the end: no more early looks.
  std::vector<std::chrono::milliseconds> early_looks_{std::chrono::milliseconds(5), std::chrono::milliseconds(15),
                                                      std::chrono::milliseconds(30)};
  std::size_t next_look_ = std::numeric_limits<std::size_t>::max();
  /// The xmin (mod 2^32) of the snapshot of this cycle's first (unbounded) fetch; -1: unknown.
  std::int64_t cycle_xmin_ = -1;
  bool archive_ = false;
  bool in_place_rows_ = true;  // rows marked published in outbox.events may exist
  std::chrono::seconds archive_width_{3600};
  std::optional<bool> may_vacuum_;  // asked once: does our role own outbox.events (or the database)?
  // The background vacuum: its own connection (no membership lock, so it is not counted as a
  // relay), used only by the task in vacuum_done_ and touched here only once that is ready.
  // Declared in this order so that the destructor waits for the task before the connection goes.
  std::unique_ptr<pqxx::connection> vacuum_conn_;
  std::future<void> vacuum_done_;
};

}  // namespace oss::relay
