#include "pg_outbox_store.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <numeric>

#include "oss/pg/arrays.hpp"
#include "oss/pg/migrate.hpp"

namespace oss::relay {
namespace {

using pg::array_literal;

}  // namespace

class PgOutboxStore::Listener final : public pqxx::notification_receiver {
 public:
  Listener(pqxx::connection_base& c, bool& flag)
      : pqxx::notification_receiver(c, "outbox_events"), flag_(flag) {}
  void operator()(const std::string&, int) override { flag_ = true; }

 private:
  bool& flag_;
};

PgOutboxStore::PgOutboxStore(pg::ConnectOptions options) : options_(std::move(options)) { open(); }

PgOutboxStore::~PgOutboxStore() = default;

void PgOutboxStore::open() {
  listener_.reset();
  conn_.reset();
  owned_.clear();
  conn_ = pg::connect(options_);
  if (pg::installed_version(*conn_, "outbox") == 0)
    throw SchemaMissing("schema 'outbox' is not installed in this database; run `outbox-relay install --db URL` first");
  {
    pqxx::nontransaction tx(*conn_);
    partitions_ = tx.exec("SELECT outbox.partition_count()")[0][0].as<int>();
    tx.exec_params("SELECT pg_advisory_lock_shared($1, 0)", kMemberLockClass);
  }
  listener_ = std::make_unique<Listener>(*conn_, notified_);
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
      if (owned_.count(p)) continue;
      if (tx.exec_params("SELECT pg_try_advisory_lock($1, $2)", kPartitionLockClass, p)[0][0].as<bool>())
        owned_.insert(p);
    }
  }
  return owned();
}

std::vector<OutboxRow> PgOutboxStore::fetch(std::size_t limit, std::int64_t after_position) {
  std::vector<OutboxRow> rows;
  if (owned_.empty()) return rows;
  auto& c = conn();
  pqxx::nontransaction tx(c);
  const auto r = tx.exec_params(
      "SELECT position, event_id::text, source, aggregate_type, aggregate_id, sequence, event_type, "
      "       payload::text, headers::text, "
      "       (extract(epoch from occurred_at) * 1000000)::bigint, attempts, "
      "       (next_attempt_at IS NULL OR next_attempt_at <= now()), "
      "       EXISTS (SELECT 1 FROM outbox.events p WHERE p.source = e.source AND p.aggregate_id = e.aggregate_id "
      "               AND p.sequence = e.sequence - 1 AND p.published_at IS NULL AND p.parked_at IS NULL) "
      "FROM outbox.events e "
      "WHERE published_at IS NULL AND parked_at IS NULL AND partition = ANY($1::smallint[]) AND position > $3 "
      "ORDER BY position LIMIT $2",
      array_literal(owned()), static_cast<std::int64_t>(limit), after_position);
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
  return rows;
}

void PgOutboxStore::mark_published(const std::vector<std::int64_t>& positions) {
  if (positions.empty()) return;
  pqxx::work tx(conn());
  // The mark does not wait for its WAL flush: if a crash loses it, the rows are published
  // again (a duplicate after a fault, which consumers deduplicate), never lost. This keeps
  // an fsync off the relay's critical path.
  tx.exec("SET LOCAL synchronous_commit = off");
  tx.exec_params(
      "UPDATE outbox.events SET published_at = clock_timestamp(), last_error = NULL "
      "WHERE position = ANY($1::bigint[]) AND published_at IS NULL",
      array_literal(positions));
  tx.commit();
}

std::size_t PgOutboxStore::record_failures(const std::vector<RowFailure>& failures, int max_attempts,
                                           std::chrono::milliseconds retry_after) {
  if (failures.empty()) return 0;
  std::vector<std::int64_t> positions;
  std::vector<std::string> errors;
  for (const auto& f : failures) {
    positions.push_back(f.position);
    errors.push_back(f.error);
  }
  pqxx::work tx(conn());
  const auto r = tx.exec_params(
      "UPDATE outbox.events e SET attempts = e.attempts + 1, last_error = f.err, "
      "  next_attempt_at = clock_timestamp() + make_interval(secs => $3::double precision / 1000), "
      "  parked_at = CASE WHEN e.attempts + 1 >= $4 THEN clock_timestamp() END "
      "FROM unnest($1::bigint[], $2::text[]) AS f(pos, err) "
      "WHERE e.position = f.pos AND e.published_at IS NULL "
      "RETURNING e.parked_at IS NOT NULL",
      array_literal(positions), array_literal(errors), static_cast<double>(retry_after.count()), max_attempts);
  tx.commit();
  std::size_t parked = 0;
  for (const auto& row : r)
    if (row[0].as<bool>()) ++parked;
  return parked;
}

bool PgOutboxStore::wait_for_commit(std::chrono::milliseconds timeout) {
  auto& c = conn();
  notified_ = false;
  c.get_notifs();
  if (notified_) return true;
  const auto secs = timeout.count() / 1000;
  const auto usecs = (timeout.count() % 1000) * 1000;
  c.await_notification(secs, usecs);
  return notified_;
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
  while (std::chrono::steady_clock::now() - start < budget) {
    pqxx::work tx(conn());
    // One relay purges at a time; the others skip this round.
    if (!tx.exec_params("SELECT pg_try_advisory_xact_lock($1, 0)", kRetentionLockClass)[0][0].as<bool>())
      break;
    // Bounded batches walking the primary key from the oldest position (published rows are
    // the oldest ones): short transactions, no long locks, producers (which only INSERT) are
    // never blocked. No published_at index: it would cost an index insert on every mark.
    const auto r = tx.exec_params(
        "DELETE FROM outbox.events WHERE position IN ("
        "  SELECT position FROM outbox.events "
        "  WHERE published_at IS NOT NULL AND published_at < clock_timestamp() - make_interval(secs => $1::double precision / 1000) "
        "  ORDER BY position LIMIT $2 FOR UPDATE SKIP LOCKED)",
        static_cast<double>(retention.count()), static_cast<std::int64_t>(batch));
    tx.commit();
    const auto deleted = static_cast<std::int64_t>(r.affected_rows());
    total += deleted;
    if (static_cast<std::size_t>(deleted) < batch) break;
  }
  return total;
}

}  // namespace oss::relay
