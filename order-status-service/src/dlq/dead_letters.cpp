#include "dlq/dead_letters.hpp"

#include <map>

#include "oss/pg/arrays.hpp"

namespace oss::dlq {
namespace {

constexpr const char* kColumns =
    "id, event_id, order_id, source, reason, error, coalesce(routing_key, ''), "
    "(extract(epoch from dead_lettered_at) * 1000000)::bigint, "
    "(extract(epoch from replayed_at) * 1000000)::bigint, octet_length(body)";

core::TimePoint from_us(std::int64_t us) { return core::TimePoint(std::chrono::microseconds(us)); }

DeadLetter row_to_dead_letter(const pqxx::row& r) {
  DeadLetter d;
  d.id = r[0].as<std::int64_t>();
  if (!r[1].is_null()) d.event_id = r[1].as<std::string>();
  if (!r[2].is_null()) d.order_id = r[2].as<std::string>();
  if (!r[3].is_null()) d.source = r[3].as<std::string>();
  d.reason = r[4].as<std::string>();
  d.error = r[5].as<std::string>();
  d.routing_key = r[6].as<std::string>();
  d.dead_lettered_at = from_us(r[7].as<std::int64_t>());
  if (!r[8].is_null()) d.replayed_at = from_us(r[8].as<std::int64_t>());
  d.body_bytes = r[9].as<std::size_t>();
  return d;
}

nlohmann::json opt(const std::optional<std::string>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); }

}  // namespace

std::vector<DeadLetter> list(pqxx::connection& conn, const ListFilter& filter) {
  pqxx::read_transaction tx(conn);
  // Appended piecewise: GCC 12 reports a false -Warray-bounds inside libstdc++ for
  // std::string("..") + const char* + ".." at -O2 (GCC PR105651 family).
  std::string sql = "SELECT ";
  sql += kColumns;
  sql += " FROM oss.dead_letters WHERE id > $1";
  if (!filter.include_replayed) sql += " AND replayed_at IS NULL";
  if (filter.reason) sql += " AND reason = $3";
  sql += " ORDER BY id LIMIT $2";
  const auto after = filter.after_id.value_or(0);
  const auto limit = static_cast<std::int64_t>(filter.limit);
  const auto r = filter.reason ? tx.exec_params(sql, after, limit, *filter.reason) : tx.exec_params(sql, after, limit);
  std::vector<DeadLetter> out;
  out.reserve(r.size());
  for (const auto& row : r) out.push_back(row_to_dead_letter(row));
  return out;
}

std::int64_t open_count(pqxx::connection& conn) {
  pqxx::read_transaction tx(conn);
  return tx.exec("SELECT count(*) FROM oss.dead_letters WHERE replayed_at IS NULL")[0][0].as<std::int64_t>();
}

nlohmann::json to_json(const DeadLetter& d) {
  return {{"id", d.id},
          {"event_id", opt(d.event_id)},
          {"order_id", opt(d.order_id)},
          {"source", opt(d.source)},
          {"reason", d.reason},
          {"error", d.error},
          {"routing_key", d.routing_key},
          {"dead_lettered_at", core::format_rfc3339(d.dead_lettered_at)},
          {"replayed_at", d.replayed_at ? nlohmann::json(core::format_rfc3339(*d.replayed_at)) : nlohmann::json(nullptr)},
          {"body_bytes", d.body_bytes}};
}

ReplayResult replay(pqxx::connection& conn, amqp::Connection& broker, const std::string& events_queue,
                    const ReplaySelection& selection) {
  ReplayResult result;
  pqxx::work tx(conn);
  // Lock the selected open dead letters so two concurrent replays do not both send them.
  pqxx::result rows;
  if (!selection.event_ids.empty()) {
    rows = tx.exec_params(
        "SELECT id, event_id, routing_key, body FROM oss.dead_letters "
        "WHERE replayed_at IS NULL AND event_id = ANY($1::text[]) ORDER BY id FOR UPDATE SKIP LOCKED",
        pg::array_literal(selection.event_ids));
  } else if (selection.reason) {
    rows = tx.exec_params(
        "SELECT id, event_id, routing_key, body FROM oss.dead_letters "
        "WHERE replayed_at IS NULL AND reason = $1 ORDER BY id FOR UPDATE SKIP LOCKED",
        *selection.reason);
  } else {
    throw std::invalid_argument("nothing selected: give event ids or a reason");
  }
  // One event may have been dead-lettered more than once (e.g. replayed and failed again):
  // send it once.
  std::map<std::string, std::int64_t> newest_by_event;
  std::vector<std::int64_t> ids;
  std::vector<amqp::Message> messages;
  std::vector<std::string> labels;
  for (const auto& r : rows) {
    const auto id = r[0].as<std::int64_t>();
    ids.push_back(id);
    const std::string event_id = r[1].is_null() ? "" : r[1].as<std::string>();
    if (!event_id.empty()) {
      if (newest_by_event.contains(event_id)) continue;
      newest_by_event[event_id] = id;
    }
    amqp::Message m;
    m.exchange = "";  // default exchange: straight into the service's queue, not to other consumers of orders.events
    m.routing_key = events_queue;
    m.body = pqxx::binarystring(r[3]).str();
    m.message_id = event_id;
    m.type = "order.status_changed";
    m.headers.emplace_back("x-oss-replay-of", id);
    if (!r[2].is_null()) m.headers.emplace_back("x-oss-original-routing-key", r[2].as<std::string>());
    messages.push_back(std::move(m));
    labels.push_back(event_id.empty() ? "dl:" + std::to_string(id) : event_id);
  }
  for (const auto& wanted : selection.event_ids)
    if (!newest_by_event.contains(wanted)) result.not_found.push_back(wanted);
  if (messages.empty()) return result;

  broker.enable_confirms();
  std::uint64_t last = 0;
  for (const auto& m : messages) last = broker.publish(m, /*mandatory=*/true);
  const auto confirms = broker.wait_confirms(last, std::chrono::seconds(30));
  if (!confirms.nacked.empty() || !confirms.returned.empty() || confirms.acked.size() < messages.size())
    throw amqp::ConnectionError("the broker did not confirm every replayed message; nothing was marked replayed "
                                "(replaying again is safe: applied events are deduplicated)");
  // Marked only after the broker confirmed. The consumer re-decides a replayed event even
  // though its inbox record says dead_lettered (x-oss-replay-of); applied events stay deduplicated.
  tx.exec_params("UPDATE oss.dead_letters SET replayed_at = clock_timestamp() WHERE id = ANY($1::bigint[])",
                 pg::array_literal(ids));
  tx.commit();
  result.replayed = std::move(labels);
  return result;
}

}  // namespace oss::dlq
