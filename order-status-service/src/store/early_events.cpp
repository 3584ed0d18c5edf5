#include "store/early_events.hpp"

namespace oss::store {

std::vector<ParkedEvent> list_parked(pqxx::connection& conn, const ParkedFilter& filter) {
  pqxx::read_transaction tx(conn);
  std::vector<ParkedEvent> out;
  for (const auto& row : tx.exec_params(
           "SELECT event_id::text, order_id, source, event_type, waiting_for, sequence, attempt, replay, "
           "       (extract(epoch from parked_at) * 1000000)::bigint, (extract(epoch from next_retry_at) * 1000000)::bigint "
           "FROM oss.early_events WHERE ($1::text IS NULL OR order_id = $1) "
           "ORDER BY parked_at, event_id LIMIT $2",
           filter.order_id, static_cast<std::int64_t>(filter.limit))) {
    ParkedEvent e;
    e.event_id = row[0].as<std::string>();
    e.order_id = row[1].as<std::string>();
    e.source = row[2].as<std::string>();
    e.event_type = row[3].as<std::string>();
    e.waiting_for = row[4].as<std::string>();
    e.sequence = row[5].as<std::int64_t>();
    e.attempt = row[6].as<int>();
    e.replay = row[7].as<bool>();
    e.parked_at = core::TimePoint(std::chrono::microseconds(row[8].as<std::int64_t>()));
    e.next_retry_at = core::TimePoint(std::chrono::microseconds(row[9].as<std::int64_t>()));
    out.push_back(std::move(e));
  }
  return out;
}

std::int64_t parked_count(pqxx::connection& conn) {
  pqxx::read_transaction tx(conn);
  return tx.exec("SELECT count(*) FROM oss.early_events")[0][0].as<std::int64_t>();
}

nlohmann::json to_json(const ParkedEvent& e) {
  return {{"event_id", e.event_id},
          {"order_id", e.order_id},
          {"source", e.source},
          {"sequence", e.sequence},
          {"event_type", e.event_type},
          {"waiting_for", e.waiting_for},
          {"attempt", e.attempt},
          {"replay", e.replay},
          {"parked_at", core::format_rfc3339(e.parked_at)},
          {"next_retry_at", core::format_rfc3339(e.next_retry_at)}};
}

}  // namespace oss::store
