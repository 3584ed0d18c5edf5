#include "sla/writes.hpp"

#include <nlohmann/json.hpp>

#include "oss/pg/arrays.hpp"
#include "sla/sql_time.hpp"

namespace oss::sla {
namespace {

using pg::array_literal;
using sqltime::micros;
using sqltime::ts_param;

std::vector<std::int64_t> to_micros(const std::vector<core::TimePoint>& v) {
  std::vector<std::int64_t> out;
  out.reserve(v.size());
  for (auto t : v) out.push_back(micros(t));
  return out;
}

std::optional<std::string> opt_us(const std::optional<core::TimePoint>& t) {
  return t ? std::optional<std::string>(std::to_string(micros(*t))) : std::nullopt;
}

// The JSON of an escalation row, built in SQL so that raise and resolve emit the same shape.
constexpr const char* kEscalationJson =
    "jsonb_build_object('escalation_id', r.id, 'kind', r.kind, 'subject', r.subject, "
    "  'order_id', CASE WHEN r.kind = 'order_sla' THEN r.subject END, "
    "  'source', CASE WHEN r.kind = 'source_silence' THEN r.subject END, "
    "  'status', r.status, 'level', r.level, "
    "  'stay_started_at', to_char(r.stay_started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
    "  'due_at', to_char(r.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
    "  'raised_at', to_char(r.raised_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
    "  'resolved_at', to_char(r.resolved_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
    "  'resolution', r.resolution)";

std::string emit_escalation(const std::string& event_type_sql) {
  return "outbox.emit(source => '" + std::string(store::kNotificationSource) +
         "', aggregate_type => CASE WHEN r.kind = 'order_sla' THEN 'order' ELSE 'source' END, "
         "aggregate_id => r.subject, event_type => " +
         event_type_sql + ", payload => " + kEscalationJson + ")";
}

}  // namespace

std::size_t resolve_order_escalations(pqxx::work& tx, const std::vector<std::string>& order_ids,
                                      const std::vector<std::string>& new_statuses,
                                      const std::vector<core::TimePoint>& at) {
  if (order_ids.empty()) return 0;
  const auto r = tx.exec_params(resolve_order_escalations_sql(), array_literal(order_ids), array_literal(new_statuses),
                                array_literal(to_micros(at)));
  return r[0][0].as<std::size_t>();
}

const std::string& resolve_order_escalations_sql() {
  // Built once: it runs in every consumer batch that moves an order.
  static const std::string sql =
      "WITH r AS ("
      "  UPDATE oss.escalations e SET resolved_at = greatest(e.raised_at, timestamptz 'epoch' + u.at * interval '1 microsecond'), "
      "         resolution = 'order moved to ' || u.st "
      "  FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(id, st, at) "
      "  WHERE e.kind = 'order_sla' AND e.subject = u.id AND e.resolved_at IS NULL "
      "  RETURNING e.*) "
      "SELECT count(" + emit_escalation("'" + std::string(kEscalationResolved) + "'") + ") FROM (SELECT * FROM r ORDER BY id) r";
  return sql;
}

std::vector<std::string> raise_order_escalations(pqxx::work& tx, const std::vector<Raise>& raises,
                                                 core::TimePoint raised_at) {
  std::vector<std::string> levels;
  if (raises.empty()) return levels;
  std::vector<std::string> ids, statuses, lvls;
  std::vector<std::int64_t> stays, dues;
  for (const auto& r : raises) {
    ids.push_back(r.order_id);
    statuses.push_back(r.status);
    lvls.push_back(r.level);
    stays.push_back(micros(r.stay_started_at));
    dues.push_back(micros(r.due_at));
  }
  const auto rows = tx.exec_params(
      "WITH r AS ("
      "  INSERT INTO oss.escalations (kind, subject, status, stay_started_at, level, due_at, raised_at) "
      "  SELECT 'order_sla', id, st, timestamptz 'epoch' + sa * interval '1 microsecond', lv, "
      "         timestamptz 'epoch' + du * interval '1 microsecond', " + ts_param(6) +
      "  FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[]) WITH ORDINALITY AS u(id, st, sa, lv, du, n) "
      "  ORDER BY n "
      "  ON CONFLICT (kind, subject, stay_started_at, level) DO NOTHING RETURNING *) "
      "SELECT r.level, " + emit_escalation("'" + std::string(kEscalationRaised) + "'") + " FROM (SELECT * FROM r ORDER BY id) r",
      array_literal(ids), array_literal(statuses), array_literal(stays), array_literal(lvls), array_literal(dues),
      std::to_string(micros(raised_at)));
  for (const auto& row : rows) levels.push_back(row[0].as<std::string>());
  return levels;
}

store::OrderView write_transition(pqxx::work& tx, const TimerRules& rules, const std::string& order_id,
                                  const std::optional<domain::OrderState>& current, const std::string& target,
                                  const std::string& source, const std::string& actor, const std::string& reason,
                                  core::TimePoint occurred_at) {
  const auto timers = rules.on_enter(target, occurred_at);
  const std::int64_t version = current ? current->version + 1 : 1;
  const auto updated = tx.exec_params(
      "INSERT INTO oss.orders AS o (order_id, status, status_entered_at, sla_due_at, version, updated_at, "
      "  next_escalation_at, next_escalation_level, auto_transition_at) "
      "VALUES ($1, $2, " + ts_param(3) + ", " + ts_param(4) + ", $5, clock_timestamp(), " + ts_param(6) +
      ", $7::integer, " + ts_param(8) + ") "
      "ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, status_entered_at = excluded.status_entered_at, "
      "  sla_due_at = excluded.sla_due_at, version = excluded.version, updated_at = excluded.updated_at, "
      "  next_escalation_at = excluded.next_escalation_at, next_escalation_level = excluded.next_escalation_level, "
      "  auto_transition_at = excluded.auto_transition_at "
      "RETURNING " + sqltime::epoch_us("updated_at"),
      order_id, target, std::to_string(micros(occurred_at)), opt_us(timers.sla_due_at), version,
      opt_us(timers.next_escalation_at),
      timers.next_escalation_level ? std::optional<std::string>(std::to_string(*timers.next_escalation_level))
                                   : std::nullopt,
      opt_us(timers.auto_transition_at));
  nlohmann::json n = {{"order_id", order_id},
                      {"from", current ? nlohmann::json(current->status) : nlohmann::json(nullptr)},
                      {"status", target},
                      {"event_id", nullptr},
                      {"source", source},
                      {"occurred_at", core::format_rfc3339(occurred_at)},
                      {"actor", actor},
                      {"reason", reason},
                      {"sla_due_at", timers.sla_due_at ? nlohmann::json(core::format_rfc3339(*timers.sla_due_at))
                                                       : nlohmann::json(nullptr)}};
  tx.exec_params(
      "WITH h AS ("
      "  INSERT INTO oss.status_history (order_id, from_status, to_status, event_id, source, sequence, occurred_at, actor, reason) "
      "  VALUES ($1, $2, $3, NULL, $4, NULL, " + ts_param(5) + ", nullif($6, ''), nullif($7, '')) RETURNING 1) "
      "SELECT outbox.emit(source => $8, aggregate_type => 'order', aggregate_id => $1, "
      "                   event_type => 'order.status_changed', payload => $9::jsonb) FROM h",
      order_id, current ? std::optional<std::string>(current->status) : std::nullopt, target, source,
      std::to_string(micros(occurred_at)), actor, reason, std::string(store::kNotificationSource), n.dump());
  if (current) resolve_order_escalations(tx, {order_id}, {target}, {occurred_at});
  // The order's parked early events (docs/adr/0004) may apply from the new status: due at once,
  // and through the queue (decided_version NULL), where they are decided against it, instead of
  // at their next retry. Done under the order's lock, it also keeps the sweeper from counting a
  // retry in place against the old version after this commit.
  tx.exec_params(
      "UPDATE oss.early_events SET next_retry_at = clock_timestamp(), decided_version = NULL WHERE order_id = $1",
      order_id);
  store::OrderView v;
  v.order_id = order_id;
  v.status = target;
  v.status_entered_at = occurred_at;
  v.sla_due_at = timers.sla_due_at;
  v.version = version;
  v.updated_at = sqltime::from_micros(updated[0][0].as<std::int64_t>());
  return v;
}

void record_source_activity(pqxx::work& tx, const TimerRules& rules, const std::vector<std::string>& sources,
                            core::TimePoint now) {
  for (const auto& source : sources) {
    const auto* rule = rules.silence_rule(source);
    if (rule == nullptr) continue;
    const auto due = rules.silence_due(*rule, now);
    // Throttled: one write per source per 30 s at most (unless a silence is open), so that
    // consumers applying batches in parallel do not queue up on this one row.
    tx.exec_params(
        "INSERT INTO oss.source_activity (source, last_event_at, silence_due_at) VALUES ($1, " + ts_param(2) + ", " +
            ts_param(3) + ") ON CONFLICT (source) DO NOTHING",
        source, std::to_string(micros(now)), std::to_string(micros(due)));
    const auto moved = tx.exec_params(
        "UPDATE oss.source_activity SET last_event_at = " + ts_param(2) + ", silence_due_at = " + ts_param(3) +
            ", silence_open = false "
            "WHERE source = $1 AND (silence_open OR last_event_at < " + ts_param(2) + " - interval '30 seconds')",
        source, std::to_string(micros(now)), std::to_string(micros(due)));
    if (moved.affected_rows() == 0) continue;
    tx.exec_params(
        "WITH r AS ("
        "  UPDATE oss.escalations SET resolved_at = greatest(raised_at, " + ts_param(2) + "), "
        "         resolution = 'source emitted again' "
        "  WHERE kind = 'source_silence' AND subject = $1 AND resolved_at IS NULL RETURNING *) "
        "SELECT count(" + emit_escalation("'" + std::string(kSilenceResolved) + "'") + ") FROM r",
        source, std::to_string(micros(now)));
  }
}

}  // namespace oss::sla
