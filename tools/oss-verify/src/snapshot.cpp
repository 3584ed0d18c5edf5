// Reading what the checker compares: producers' outboxes and the service's decision tables.
#include <pqxx/pqxx>

#include "oss/core/url.hpp"
#include "oss/pg/connection.hpp"
#include "oss/verify/verify.hpp"

namespace oss::verify {
namespace {

core::TimePoint from_us(std::int64_t us) { return core::TimePoint(std::chrono::microseconds(us)); }

std::unique_ptr<pqxx::connection> open(const std::string& url) {
  try {
    // A full read of a large run may take a while; the deadline is generous but present.
    return pg::connect({url, "oss-verify", std::chrono::seconds(5), std::chrono::milliseconds(600'000)});
  } catch (const pqxx::broken_connection& e) {
    throw Unreachable("cannot connect to the database " + core::mask_url(url) + ": " + e.what());
  }
}

}  // namespace

std::vector<ProducerEvent> read_producer_events(const std::string& source_db_url) {
  auto conn = open(source_db_url);
  std::vector<ProducerEvent> out;
  try {
    pqxx::read_transaction tx(*conn);
    // Where a producer keeps its events: the view outbox.all_events (outbox schema 3: unpublished
    // rows in outbox.events, published ones moved by the relay into outbox.events_archive; one
    // query sees each event once), or outbox.events alone on a producer not upgraded yet.
    const std::string from =
        tx.exec("SELECT to_regclass('outbox.all_events') IS NOT NULL")[0][0].as<bool>() ? "outbox.all_events"
                                                                                         : "outbox.events";
    for (const auto& row : tx.exec(
             "SELECT event_id::text, source, aggregate_id, event_type, sequence, "
             "       (extract(epoch from occurred_at) * 1000000)::bigint, published_at IS NOT NULL, "
             "       parked_at IS NOT NULL, coalesce(last_error, '') "
             "FROM " + from + " ORDER BY position")) {
      ProducerEvent e;
      e.event_id = row[0].as<std::string>();
      e.source = row[1].as<std::string>();
      e.aggregate_id = row[2].as<std::string>();
      e.event_type = row[3].as<std::string>();
      e.sequence = row[4].as<std::int64_t>();
      e.occurred_at = from_us(row[5].as<std::int64_t>());
      e.published = row[6].as<bool>();
      e.parked = row[7].as<bool>();
      e.last_error = row[8].as<std::string>();
      out.push_back(std::move(e));
    }
  } catch (const pqxx::broken_connection& e) {
    throw Unreachable("lost the connection to " + core::mask_url(source_db_url) + ": " + e.what());
  }
  return out;
}

Snapshot read_snapshot(const std::string& service_db_url, const std::vector<std::string>& source_db_urls) {
  Snapshot s;
  auto service = open(service_db_url);  // fail fast (exit 3) before reading large outboxes
  for (const auto& url : source_db_urls) {
    auto events = read_producer_events(url);
    s.emitted.insert(s.emitted.end(), std::make_move_iterator(events.begin()), std::make_move_iterator(events.end()));
  }
  try {
    // One snapshot of the service's tables (repeatable read), taken after the producers.
    pqxx::transaction<pqxx::isolation_level::repeatable_read, pqxx::readwrite_policy::read_only> tx(*service);
    s.taken_at = from_us(tx.exec("SELECT (extract(epoch from clock_timestamp()) * 1000000)::bigint")[0][0].as<std::int64_t>());
    for (const auto& row : tx.exec("SELECT event_id::text, coalesce(order_id, ''), coalesce(source, ''), "
                                   "coalesce(sequence, 0), outcome FROM oss.processed_events")) {
      s.decisions.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
                             row[3].as<std::int64_t>(), row[4].as<std::string>()});
    }
    for (const auto& row : tx.exec("SELECT coalesce(event_id, ''), coalesce(order_id, ''), coalesce(source, ''), "
                                   "reason, replayed_at IS NOT NULL FROM oss.dead_letters")) {
      s.dead_letters.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
                                row[3].as<std::string>(), row[4].as<bool>()});
    }
    for (const auto& row : tx.exec("SELECT id, order_id, from_status, to_status, event_id::text, source, sequence, "
                                   "(extract(epoch from occurred_at) * 1000000)::bigint, "
                                   "(extract(epoch from applied_at) * 1000000)::bigint "
                                   "FROM oss.status_history ORDER BY id")) {
      HistoryRow h;
      h.id = row[0].as<std::int64_t>();
      h.order_id = row[1].as<std::string>();
      if (!row[2].is_null()) h.from_status = row[2].as<std::string>();
      h.to_status = row[3].as<std::string>();
      if (!row[4].is_null()) h.event_id = row[4].as<std::string>();
      h.source = row[5].as<std::string>();
      if (!row[6].is_null()) h.sequence = row[6].as<std::int64_t>();
      h.occurred_at = from_us(row[7].as<std::int64_t>());
      h.applied_at = from_us(row[8].as<std::int64_t>());
      s.history.push_back(std::move(h));
    }
    for (const auto& row : tx.exec("SELECT order_id, status FROM oss.orders"))
      s.orders[row[0].as<std::string>()] = row[1].as<std::string>();
    // Early events parked until their predecessor comes (service schema 3, ADR 0004); a service
    // database not migrated that far has none.
    if (tx.exec("SELECT to_regclass('oss.early_events') IS NOT NULL")[0][0].as<bool>())
      for (const auto& row : tx.exec("SELECT event_id::text FROM oss.early_events"))
        s.waiting.insert(row[0].as<std::string>());
  } catch (const pqxx::broken_connection& e) {
    throw Unreachable("lost the connection to " + core::mask_url(service_db_url) + ": " + e.what());
  }
  return s;
}

}  // namespace oss::verify
