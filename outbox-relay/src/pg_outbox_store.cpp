#include "pg_outbox_store.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <numeric>

#include "oss/core/logging.hpp"
#include "oss/pg/arrays.hpp"
#include "oss/pg/migrate.hpp"

namespace oss::relay {
namespace {

using pg::array_literal;

// Moves the confirmed rows ($1) to the archive in one statement (atomic: a reader of
// outbox.all_events sees each row exactly once). A DELETE touches no index of the hot table
// and the archive has no B-tree, where the UPDATE of version 2 inserted into every index.
constexpr const char* kMove =
    "WITH moved AS ("
    "  DELETE FROM outbox.events WHERE position = ANY($1::bigint[]) AND published_at IS NULL "
    "  RETURNING position, event_id, source, aggregate_type, aggregate_id, sequence, event_type, "
    "            payload, headers, occurred_at, attempts) "
    "INSERT INTO outbox.events_archive (position, event_id, source, aggregate_type, aggregate_id, sequence, "
    "                                   event_type, payload, headers, occurred_at, published_at, attempts) "
    "SELECT position, event_id, source, aggregate_type, aggregate_id, sequence, event_type, payload, headers, "
    "       occurred_at, clock_timestamp(), attempts FROM moved";

// Names of the statements prepared on every connection (open()): the relay runs them in every
// cycle, and parsing and planning each anew was a fifth of PostgreSQL's CPU at 2,000 events/s
// end to end for the relays' and the service's unprepared statements (docs/performance.md).
constexpr const char* kFetchFirst = "oss_relay_fetch_first";
constexpr const char* kFetchBounded = "oss_relay_fetch_bounded";
constexpr const char* kMoveStatement = "oss_relay_move";

}  // namespace

class PgOutboxStore::Listener final : public pqxx::notification_receiver {
 public:
  Listener(pqxx::connection_base& c, bool& flag)
      : pqxx::notification_receiver(c, "outbox_events"), flag_(flag) {}
  void operator()(const std::string&, int) override { flag_ = true; }

 private:
  bool& flag_;
};

PgOutboxStore::PgOutboxStore(pg::ConnectOptions options, std::chrono::seconds archive_partition_width)
    : options_(std::move(options)), archive_width_(std::max<std::chrono::seconds>(archive_partition_width, std::chrono::seconds(1))) {
  open();
}

std::chrono::seconds PgOutboxStore::archive_width_for(std::chrono::milliseconds retention) {
  const auto w = std::chrono::duration_cast<std::chrono::seconds>(retention / 8);
  return std::clamp<std::chrono::seconds>(w, std::chrono::seconds(10), std::chrono::seconds(3600));
}

PgOutboxStore::~PgOutboxStore() {
  // A relay that stops cleanly takes its wake-up row along (a killed one's is removed by the
  // next relay to connect).
  if (!wakeups_ || !conn_ || !conn_->is_open()) return;
  try {
    pqxx::nontransaction tx(*conn_);
    tx.exec("DELETE FROM outbox.relay_wakeups WHERE pid = pg_backend_pid()");
  } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): best effort on the way out
  }
}

void PgOutboxStore::open() {
  listener_.reset();
  conn_.reset();
  owned_.clear();
  conn_ = pg::connect(options_);
  // One read of the schema version per connection decides every version-dependent path below.
  const auto version = pg::installed_version(*conn_, "outbox");
  if (version == 0)
    throw SchemaMissing("schema 'outbox' is not installed in this database; run `outbox-relay install --db URL` first");
  // From schema version 3 on, published rows move to outbox.events_archive; against an older
  // schema (a relay upgraded before `outbox-relay install`) they are marked in place as before.
  archive_ = version >= 3;
  // Rows marked published in place (by a relay before schema 3, or by the fallback below) are
  // deleted by the old batched purge. Finding them walks the table, so with the archive it is
  // only done while some may exist: checked once per connection, set again by the fallback.
  if (archive_) {
    pqxx::read_transaction tx(*conn_);
    in_place_rows_ = tx.exec("SELECT EXISTS (SELECT 1 FROM outbox.events WHERE published_at IS NOT NULL)")[0][0].as<bool>();
  }
  {
    pqxx::nontransaction tx(*conn_);
    partitions_ = tx.exec("SELECT outbox.partition_count()")[0][0].as<int>();
    tx.exec_params("SELECT pg_advisory_lock_shared($1, 0)", kMemberLockClass);
    // This connection's writes (marks, attempts, partition DDL) do not wait for their WAL flush:
    // if a crash loses one, the rows are published again (a duplicate after a fault, which
    // consumers deduplicate), never lost. It keeps an fsync off the relay's critical path and
    // lets a mark be one autocommit statement (one round trip).
    tx.exec("SET synchronous_commit = off");
  }
  conn_->prepare(kFetchFirst, fetch_sql(false));
  conn_->prepare(kFetchBounded, fetch_sql(true));
  if (archive_) conn_->prepare(kMoveStatement, kMove);
  listener_ = std::make_unique<Listener>(*conn_, notified_);
  // Schema version 4: this connection's wake-up flag (schema/outbox/004_notify_idle.sql). Rows
  // of relay sessions that are gone (killed relays) are removed first: a stale `sleeping` row
  // would only make producers in `outbox.notify = idle` notify as if it were `on`.
  sleeping_ = false;
  wakeups_ = version >= 4;
  if (wakeups_) {
    try {
      {
        pqxx::nontransaction tx(*conn_);
        tx.exec("DELETE FROM outbox.relay_wakeups w "
                "WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = w.pid)");
      }
      set_sleeping(false);
    } catch (const pqxx::broken_connection&) {
      throw;
    } catch (const pqxx::sql_error& e) {
      // A role without the grant (docker/postgres/grants-producer.sql): publishing works, only
      // `outbox.notify = idle` cannot reach this relay, which then relies on --poll-interval.
      wakeups_ = false;
      core::logger("relay")->warn(
          "msg=\"cannot keep a wake-up flag in outbox.relay_wakeups; producers with outbox.notify = idle will "
          "not wake this relay (it polls)\" error={}",
          core::q(e.what()));
    }
  }
}

void PgOutboxStore::set_sleeping(bool sleeping) {
  pqxx::nontransaction tx(*conn_);
  tx.exec_params("INSERT INTO outbox.relay_wakeups (pid, sleeping) VALUES (pg_backend_pid(), $1) "
                 "ON CONFLICT (pid) DO UPDATE SET sleeping = excluded.sleeping, since = clock_timestamp()",
                 sleeping);
  sleeping_ = sleeping;
}

pqxx::connection& PgOutboxStore::conn() {
  if (!conn_ || !conn_->is_open()) open();
  return *conn_;
}

std::vector<int> PgOutboxStore::rebalance() {
  auto& c = conn();
  pqxx::nontransaction tx(c);
  const auto members = std::max<std::int64_t>(
      1, tx.exec_params("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                        "AND classid = $1::oid AND objid = 0 AND objsubid = 2",
                        kMemberLockClass)[0][0]
             .as<std::int64_t>());
  const auto target = static_cast<std::size_t>((partitions_ + members - 1) / members);
  // Give back extras first (highest partitions), so a newcomer can take them.
  while (owned_.size() > target) {
    const int p = *owned_.rbegin();
    tx.exec_params("SELECT pg_advisory_unlock($1, $2)", kPartitionLockClass, p);
    owned_.erase(p);
  }
  if (owned_.size() < target) {
    // Try the free ones, starting at a random offset so relays do not all race for the same.
    std::vector<int> order(static_cast<std::size_t>(partitions_));
    std::iota(order.begin(), order.end(), 0);
    std::rotate(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(rng_() % order.size()), order.end());
    for (int p : order) {
      if (owned_.size() >= target) break;
      if (owned_.contains(p)) continue;
      if (tx.exec_params("SELECT pg_try_advisory_lock($1, $2)", kPartitionLockClass, p)[0][0].as<bool>())
        owned_.insert(p);
    }
  }
  return owned();
}

std::string PgOutboxStore::fetch_sql(bool bounded) {
  // predecessor_pending only matters for a fetch bounded by `after_position`. An unbounded one
  // (the first of a cycle) sees every pending row of its partitions up to its last row in one
  // snapshot, and an aggregate's predecessor always has the smaller position (emit() takes the
  // aggregate's row lock before inserting), so a pending predecessor is in the same result
  // ahead of the row, where the relay handles it: the per-row index probe is skipped.
  //
  // A bounded fetch probes only rows that may have a late predecessor: one with a smaller
  // position that no earlier fetch of this cycle saw because its transaction had not committed
  // yet. Such a predecessor's transaction was running at the snapshot S of some earlier fetch;
  // the row's own writer (its xmin) wrote it after that predecessor committed (emit() waits for
  // the aggregate's row lock), so it too was running at S or started after it, and its xid is
  // not older than S's xmin, which is not older than the xmin of the cycle's first snapshot
  // ($4, from the unbounded fetch). A row whose xmin is older than $4 was committed before the
  // cycle began, and so was its predecessor, which an earlier fetch of the cycle therefore saw
  // (sent or held): no probe. During a backlog drain that is every row, and the probe was two
  // thirds of the fetch (2 of 3 ms per 500 rows, docs/performance.md). xmin is a 32-bit xid:
  // it is compared with $4 modulo 2^32 (PostgreSQL's own rule); a frozen or ancient xmin may
  // only compare as newer, which costs a probe, never a missed predecessor. $4 < 0: probe all.
  // The snapshot's xmin is the oldest transaction running anywhere in the cluster, so a long
  // transaction (in any database) makes rows written since it began probed again, as before.
  //
  // The probe is a lookup by the unique key (source, aggregate_id, sequence) that returns the
  // predecessor's state, not an EXISTS with "published_at IS NULL AND parked_at IS NULL" in its
  // WHERE: that predicate is the one of the partial index events_pending_idx (on position), and
  // on a table whose statistics are not yet there (a backlog emitted in one go, autoanalyze not
  // yet run) the planner took that index as tiny and scanned it whole for every row: each
  // bounded fetch of 100 rows over a 20,000-row backlog took 0.3-1.3 s (auto_explain: "Rows
  // Removed by Filter: 20000", loops=100). With only the key's equalities, only the unique
  // index can serve it. A predecessor already moved to the archive has no row here: false.
  //
  // The unbounded fetch returns its snapshot's xmin (the same in every row: an initplan) as
  // the last column, for the bounded fetches of the cycle.
  return std::string("SELECT position, event_id::text, source, aggregate_type, aggregate_id, sequence, event_type, "
                     "       payload::text, headers::text, "
                     "       (extract(epoch from occurred_at) * 1000000)::bigint, attempts, "
                     "       (next_attempt_at IS NULL OR next_attempt_at <= now()), ") +
         (bounded ? "CASE WHEN $4::bigint < 0 "
                    "       OR (e.xmin::text::bigint - $4::bigint + 4294967296) % 4294967296 < 2147483648 "
                    "     THEN coalesce((SELECT p.published_at IS NULL AND p.parked_at IS NULL FROM outbox.events p "
                    "                    WHERE p.source = e.source AND p.aggregate_id = e.aggregate_id "
                    "                      AND p.sequence = e.sequence - 1), false) "
                    "     ELSE false END, NULL::bigint "
                  : "false, (SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::numeric % 4294967296)::bigint) ") +
         "FROM outbox.events e "
         "WHERE published_at IS NULL AND parked_at IS NULL AND partition = ANY($1::smallint[]) AND position > $3 "
         "ORDER BY position LIMIT $2";
}

std::vector<OutboxRow> PgOutboxStore::fetch(std::size_t limit, std::int64_t after_position) {
  std::vector<OutboxRow> rows;
  if (owned_.empty()) return rows;
  auto& c = conn();
  pqxx::nontransaction tx(c);
  const bool bounded = after_position != 0;
  const auto r = bounded ? tx.exec_prepared(kFetchBounded, array_literal(owned()), static_cast<std::int64_t>(limit),
                                            after_position, cycle_xmin_)
                         : tx.exec_prepared(kFetchFirst, array_literal(owned()), static_cast<std::int64_t>(limit),
                                            after_position);
  // A new cycle: its first snapshot's xmin for the bounded fetches that follow (fetch_sql).
  // Without rows none follow; -1 would make them probe every row.
  if (!bounded) cycle_xmin_ = r.empty() ? -1 : r[0][13].as<std::int64_t>();
  tx.commit();  // ends it (a nontransaction has nothing to commit): set_sleeping() needs the connection
  rows.reserve(r.size());
  for (const auto& row : r) {
    OutboxRow o;
    o.position = row[0].as<std::int64_t>();
    o.event_id = row[1].as<std::string>();
    o.source = row[2].as<std::string>();
    o.aggregate_type = row[3].as<std::string>();
    o.aggregate_id = row[4].as<std::string>();
    o.sequence = row[5].as<std::int64_t>();
    o.event_type = row[6].as<std::string>();
    o.payload_json = row[7].as<std::string>();
    o.headers_json = row[8].as<std::string>();
    o.occurred_at = core::TimePoint(std::chrono::microseconds(row[9].as<std::int64_t>()));
    o.attempts = row[10].as<int>();
    o.due = row[11].as<bool>();
    o.predecessor_pending = row[12].as<bool>();
    rows.push_back(std::move(o));
  }
  // Busy for a while: producers in `outbox.notify = idle` stop paying for a NOTIFY. Not at the
  // first rows after a wake-up: at low rates the relay is back to waiting within milliseconds,
  // and lowering and raising the flag for every event cost PostgreSQL more than the NOTIFYs
  // (0.14 of a core at 500 events/s). Rows that only wait for their retry time do not count.
  if (sleeping_ && std::chrono::steady_clock::now() - woke_at_ >= busy_before_flag_down_ &&
      std::any_of(rows.begin(), rows.end(), [](const OutboxRow& row) { return row.due; }))
    set_sleeping(false);
  return rows;
}

void PgOutboxStore::mark_published(const std::vector<std::int64_t>& positions) {
  if (positions.empty()) return;
  const auto arr = array_literal(positions);
  if (archive_) {
    try {
      pqxx::nontransaction tx(conn());
      tx.exec_prepared(kMoveStatement, arr);
      return;
    } catch (const pqxx::sql_error& e) {
      // 23514: no archive partition for this time yet (housekeeping creates them ahead, so this
      // is rare): create it and move again.
      if (e.sqlstate() != "23514") throw;
    }
    try {
      prepare_archive();
      pqxx::nontransaction tx(conn());
      tx.exec_prepared(kMoveStatement, arr);
      return;
    } catch (const pqxx::sql_error& e) {
      // Still no partition (e.g. its creation timed out behind a long reader): mark the rows in
      // place instead; retention deletes such rows from outbox.events as before.
      core::logger("relay")->warn("msg=\"no archive partition; marking published rows in place\" error={}",
                                  core::q(e.what()));
    }
  }
  pqxx::nontransaction tx(conn());
  tx.exec_params(
      "UPDATE outbox.events SET published_at = clock_timestamp(), last_error = NULL "
      "WHERE position = ANY($1::bigint[]) AND published_at IS NULL",
      arr);
  in_place_rows_ = true;
}

bool PgOutboxStore::vacuum() {
  if (vacuum_done_.valid()) {
    if (vacuum_done_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return false;
    try {
      vacuum_done_.get();
    } catch (const std::exception& e) {
      // Not the relay's business to stop for: the next one gets a new connection.
      core::logger("relay")->warn("msg=\"vacuum of outbox.events failed; will try again\" error={}", core::q(e.what()));
      vacuum_conn_.reset();
    }
  }
  // PostgreSQL 15 lets the table's owner, the database's owner or a superuser vacuum; anyone
  // else gets a WARNING per call and nothing happens. A least-privilege relay role
  // (docs/security.md) is asked once and then leaves the table to autovacuum (docs/scaling.md).
  if (!may_vacuum_) {
    pqxx::nontransaction q(conn());
    may_vacuum_ = q.exec("SELECT pg_has_role(current_user, c.relowner, 'USAGE') "
                         "    OR pg_has_role(current_user, d.datdba, 'USAGE') "
                         "    OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) "
                         "FROM pg_class c, pg_database d "
                         "WHERE c.oid = 'outbox.events'::regclass AND d.datname = current_database()")[0][0]
                      .as<bool>();
    if (!*may_vacuum_)
      core::logger("relay")->info(
          "msg=\"this role does not own outbox.events; leaving its vacuum to autovacuum (--vacuum-after)\"");
  }
  if (!*may_vacuum_) return false;
  // On a thread of its own: right after a backlog drain the first vacuum took about 0.5 s, a
  // stall of the whole relay loop when it ran there (docs/performance.md). It only takes the
  // SHARE UPDATE EXCLUSIVE lock, which neither emit() nor the relay's statements wait for.
  vacuum_done_ = std::async(std::launch::async, [this] {
    if (!vacuum_conn_ || !vacuum_conn_->is_open()) vacuum_conn_ = pg::connect(options_);
    // Outside a transaction block (nontransaction: autocommit). SKIP_LOCKED: another relay's
    // vacuum (or autovacuum) holds the table and does the job.
    pqxx::nontransaction tx(*vacuum_conn_);
    tx.exec("VACUUM (SKIP_LOCKED) outbox.events");
  });
  return true;
}

void PgOutboxStore::prepare_archive() {
  if (!archive_) return;
  const auto width = fmt::format("{} seconds", archive_width_.count());
  try {
    pqxx::nontransaction tx(conn());
    // The partition for now and the next one, so that a mark never waits for DDL.
    tx.exec_params(
        "SELECT outbox.archive_ensure_partition(now(), $1::interval), "
        "       outbox.archive_ensure_partition(now() + $1::interval, $1::interval)",
        width);
  } catch (const pqxx::broken_connection&) {
    throw;
  } catch (const pqxx::sql_error& e) {
    // A lock timeout behind a long reader of the archive: try again at the next housekeeping.
    core::logger("relay")->warn("msg=\"could not create the next archive partition; will retry\" error={}",
                                core::q(e.what()));
  }
}

std::size_t PgOutboxStore::record_failures(const std::vector<RowFailure>& failures, int max_attempts,
                                           std::chrono::milliseconds retry_after) {
  if (failures.empty()) return 0;
  std::vector<std::int64_t> positions, charged;
  std::vector<std::string> errors;
  for (const auto& f : failures) {
    positions.push_back(f.position);
    errors.push_back(f.error);
    if (f.charged) charged.push_back(f.position);
  }
  pqxx::work tx(conn());
  // Only charged failures count an attempt and can park (failure_policy.hpp); every failure
  // records its error. A charged row waits retry_after doubled per attempt before this one
  // (capped at 2^10), an uncharged one retry_after.
  const auto r = tx.exec_params(
      "UPDATE outbox.events e SET attempts = e.attempts + CASE WHEN f.pos = ANY($5::bigint[]) THEN 1 ELSE 0 END, "
      "  last_error = f.err, "
      "  next_attempt_at = clock_timestamp() + make_interval(secs => $3::double precision / 1000 * "
      "    CASE WHEN f.pos = ANY($5::bigint[]) THEN power(2, least(e.attempts, 10)) ELSE 1 END), "
      "  parked_at = CASE WHEN f.pos = ANY($5::bigint[]) AND e.attempts + 1 >= $4 THEN clock_timestamp() END "
      "FROM unnest($1::bigint[], $2::text[]) AS f(pos, err) "
      "WHERE e.position = f.pos AND e.published_at IS NULL "
      "RETURNING e.parked_at IS NOT NULL",
      array_literal(positions), array_literal(errors), static_cast<double>(retry_after.count()), max_attempts,
      array_literal(charged));
  tx.commit();
  std::size_t parked = 0;
  for (const auto& row : r)
    if (row[0].as<bool>()) ++parked;
  return parked;
}

bool PgOutboxStore::wait_for_commit(std::chrono::milliseconds timeout) {
  auto& c = conn();
  if (wakeups_ && !sleeping_) {
    // Raise the flag, then have the caller look once more before it really waits: a producer
    // that read the flag before it was set sent no NOTIFY, and its row may be there already.
    set_sleeping(true);
    next_look_ = 0;
    return true;
  }
  notified_ = false;
  c.get_notifs();
  if (notified_) {
    woke_at_ = std::chrono::steady_clock::now();
    next_look_ = std::numeric_limits<std::size_t>::max();
    return true;
  }
  // Such a producer may also commit a little after that look: its transaction still had its
  // commit (a disk flush) or more statements ahead. Without a NOTIFY its row then waited for the
  // whole --poll-interval: the 181 ms p99 of `idle` at 2,000 events/s (docs/performance.md).
  // So a few more looks, 5, 15 and 30 ms after the flag went up, then only the poll interval.
  // At most three fetches per transition to waiting, and only with `outbox.notify = idle`.
  const bool early_look = wakeups_ && next_look_ < early_looks_.size();
  if (early_look) timeout = std::min(timeout, early_looks_[next_look_++]);
  const auto secs = timeout.count() / 1000;
  const auto usecs = (timeout.count() % 1000) * 1000;
  c.await_notification(secs, usecs);
  woke_at_ = std::chrono::steady_clock::now();
  if (notified_) next_look_ = std::numeric_limits<std::size_t>::max();
  return notified_ || early_look;
}

BacklogStats PgOutboxStore::backlog() {
  BacklogStats stats;
  pqxx::read_transaction tx(conn());
  const auto r = tx.exec(
      "SELECT source, count(*), coalesce(extract(epoch from clock_timestamp() - min(occurred_at)), 0) "
      "FROM outbox.events WHERE published_at IS NULL AND parked_at IS NULL GROUP BY source");
  for (const auto& row : r)
    stats.sources.push_back({row[0].as<std::string>(), row[1].as<std::int64_t>(), row[2].as<double>()});
  stats.parked = tx.exec("SELECT count(*) FROM outbox.events WHERE parked_at IS NOT NULL")[0][0]
                     .as<std::int64_t>();
  return stats;
}

std::int64_t PgOutboxStore::purge_published(std::chrono::milliseconds retention, std::size_t batch,
                                            std::chrono::milliseconds budget) {
  const auto start = std::chrono::steady_clock::now();
  std::int64_t total = 0;
  if (archive_) {
    // Whole archive partitions whose rows were all published before the retention: a DROP, no
    // dead tuples, no index left at its peak size. One partition per statement.
    try {
      while (std::chrono::steady_clock::now() - start < budget) {
        pqxx::nontransaction tx(conn());
        const auto r = tx.exec_params(
            "SELECT name, rows_estimate FROM outbox.archive_drop_oldest("
            "  clock_timestamp() - make_interval(secs => $1::double precision / 1000))",
            static_cast<double>(retention.count()));
        if (r.empty()) break;
        total += r[0][1].as<std::int64_t>();
        core::logger("relay")->info("msg=\"dropped archive partition past retention\" partition={} rows_estimate={}",
                                    r[0][0].as<std::string>(), r[0][1].as<std::int64_t>());
      }
    } catch (const pqxx::broken_connection&) {
      throw;
    } catch (const pqxx::sql_error& e) {
      core::logger("relay")->warn("msg=\"could not drop an archive partition; will retry\" error={}", core::q(e.what()));
    }
  }
  // Rows marked published in place (before schema version 3, or when no archive partition could
  // be created): bounded batches walking the primary key from the oldest position (published
  // rows are the oldest ones): short transactions, no long locks, producers (which only INSERT)
  // are never blocked.
  std::int64_t in_place_deleted = 0;
  bool recheck = false;
  while ((!archive_ || in_place_rows_) && std::chrono::steady_clock::now() - start < budget) {
    pqxx::work tx(conn());
    // One relay purges at a time; the others skip this round.
    if (!tx.exec_params("SELECT pg_try_advisory_xact_lock($1, 0)", kRetentionLockClass)[0][0].as<bool>())
      break;
    const auto r = tx.exec_params(
        "DELETE FROM outbox.events WHERE position IN ("
        "  SELECT position FROM outbox.events "
        "  WHERE published_at IS NOT NULL AND published_at < clock_timestamp() - make_interval(secs => $1::double precision / 1000) "
        "  ORDER BY position LIMIT $2 FOR UPDATE SKIP LOCKED)",
        static_cast<double>(retention.count()), static_cast<std::int64_t>(batch));
    tx.commit();
    const auto deleted = static_cast<std::int64_t>(r.affected_rows());
    total += deleted;
    in_place_deleted += deleted;
    if (static_cast<std::size_t>(deleted) < batch) {
      recheck = archive_ && in_place_deleted == 0;
      break;
    }
  }
  if (recheck) {
    // Nothing was due: stop looking once no such row is left at all.
    pqxx::read_transaction check(conn());
    in_place_rows_ =
        check.exec("SELECT EXISTS (SELECT 1 FROM outbox.events WHERE published_at IS NOT NULL)")[0][0].as<bool>();
  }
  return total;
}

}  // namespace oss::relay
