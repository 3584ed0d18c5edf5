#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "outbox_row.hpp"

namespace oss::relay {

struct SourceBacklog {
  std::string source;
  std::int64_t rows = 0;
  double oldest_age_seconds = 0;
};

struct BacklogStats {
  std::vector<SourceBacklog> sources;
  std::int64_t parked = 0;
};

/// A publish failure to record against one row.
struct RowFailure {
  std::int64_t position = 0;
  std::string error;
  std::string kind = "refused";  // returned | nacked | refused | encode (a metric label)
  /// Counts toward max_attempts (the row's own fault; failure_policy.hpp). An uncharged failure
  /// only delays the row's next attempt by retry_after and records its error.
  bool charged = true;
};

/// The relay's view of one producer database. One thread; implementations own one connection.
/// Partition ownership is tied to that connection's session: if the connection is lost, so is
/// the ownership (another relay may take over), and the caller must rebalance before fetching.
class OutboxStore {
 public:
  virtual ~OutboxStore() = default;
  /// Claims/releases partitions towards a fair share among live relays; returns owned ones.
  virtual std::vector<int> rebalance() = 0;
  virtual std::vector<int> owned() const = 0;
  /// Oldest unpublished, unparked rows of the owned partitions in position order, after
  /// `after_position` (0: from the start). A bound is only used within one pipelined cycle, to
  /// skip rows already in flight; each cycle starts again from 0, so a row that commits late
  /// (with a smaller position) is picked up by the next cycle.
  virtual std::vector<OutboxRow> fetch(std::size_t limit, std::int64_t after_position = 0) = 0;
  /// Records that the broker confirmed these rows. From schema version 3 on this moves them to
  /// outbox.events_archive (one statement); rows already marked or moved are skipped.
  virtual void mark_published(const std::vector<std::int64_t>& positions) = 0;
  /// Prepares where published rows go next (archive partitions ahead of time); housekeeping.
  virtual void prepare_archive() {}
  /// Counts an attempt for each charged failure and parks the rows that reached max_attempts;
  /// records the error and schedules the next attempt (retry_after from now) for every one.
  /// Returns how many were parked.
  virtual std::size_t record_failures(const std::vector<RowFailure>& failures, int max_attempts,
                                      std::chrono::milliseconds retry_after) = 0;
  /// Blocks up to `timeout` for a commit notification; true if one came.
  virtual bool wait_for_commit(std::chrono::milliseconds timeout) = 0;
  virtual BacklogStats backlog() = 0;
  /// Removes published rows older than `retention`: drops whole archive partitions, and deletes
  /// rows marked published in place in bounded batches; returns rows removed (partitions counted
  /// by PostgreSQL's row estimate).
  virtual std::int64_t purge_published(std::chrono::milliseconds retention, std::size_t batch,
                                       std::chrono::milliseconds budget) = 0;
  /// Starts a vacuum of the hot table (outbox.events) so that the dead index entries of moved
  /// or marked rows stop costing every fetch, without waiting for it: it runs on a connection
  /// and thread of its own, and is skipped by PostgreSQL when another session holds the table's
  /// vacuum lock. Returns false, starting nothing, while the previous one still runs or when
  /// this role may not vacuum the table.
  virtual bool vacuum() { return false; }
};

}  // namespace oss::relay
