#include "sla/engine.hpp"

#include <algorithm>
#include <set>
#include <thread>

#include "oss/core/logging.hpp"
#include "oss/pg/arrays.hpp"
#include "sla/sql_time.hpp"
#include "sla/writes.hpp"

namespace oss::sla {
namespace {

using pg::array_literal;
using sqltime::from_micros;
using sqltime::micros;
using sqltime::ts_param;

// Must match orders_next_timer_idx (002_sla.sql) so that the planner uses it.
constexpr const char* kNextTimer = "least(next_escalation_at, auto_transition_at)";
constexpr const char* kHasTimer = "(next_escalation_at IS NOT NULL OR auto_transition_at IS NOT NULL)";

}  // namespace

EscalationPass::EscalationPass(const TimerRules& rules, pqxx::connection& conn, SlaMetrics* metrics,
                               std::size_t batch_size)
    : rules_(rules), conn_(conn), metrics_(metrics), batch_size_(std::max<std::size_t>(1, batch_size)) {}

PassStats EscalationPass::run(core::TimePoint at) {
  const auto started = std::chrono::steady_clock::now();
  PassStats stats;
  const std::string at_us = std::to_string(micros(at));
  // Phase 1: walk the due range once in (due, order_id) order.
  std::vector<std::string> skipped;
  std::optional<std::pair<std::string, std::string>> cursor;  // (due micros, order id)
  for (;;) {
    pqxx::result rows;
    {
      pqxx::read_transaction tx(conn_);
      const std::string base = std::string("SELECT order_id, ") + sqltime::epoch_us(kNextTimer) +
                               " FROM oss.orders WHERE " + kHasTimer + " AND " + kNextTimer + " <= " + ts_param(1);
      const std::string tail = std::string(" ORDER BY ") + kNextTimer + ", order_id LIMIT " + std::to_string(batch_size_);
      std::string sql = base;
      if (cursor) {
        sql += " AND (";
        sql += kNextTimer;
        sql += ", order_id) > (";
        sql += ts_param(2);
        sql += ", $3)";
      }
      sql += tail;
      rows = cursor ? tx.exec_params(sql, at_us, cursor->first, cursor->second) : tx.exec_params(sql, at_us);
    }
    if (rows.empty()) break;
    std::vector<std::string> ids;
    for (const auto& r : rows) ids.push_back(r[0].as<std::string>());
    cursor = std::make_pair(rows[rows.size() - 1][1].as<std::string>(), ids.back());
    stats.orders_due += ids.size();
    auto s = handle_orders(ids, at, false, stats);
    skipped.insert(skipped.end(), s.begin(), s.end());
  }
  // Phase 2: orders someone else held. Most are done by now (not due any more); wait for the rest.
  if (!skipped.empty()) {
    stats.lock_retries = skipped.size();
    std::vector<std::string> still;
    {
      pqxx::read_transaction tx(conn_);
      for (const auto& r : tx.exec_params(std::string("SELECT order_id FROM oss.orders WHERE order_id = ANY($1::text[]) AND ") +
                                              kHasTimer + " AND " + kNextTimer + " <= " + ts_param(2),
                                          array_literal(skipped), at_us))
        still.push_back(r[0].as<std::string>());
    }
    for (std::size_t i = 0; i < still.size(); i += batch_size_) {
      const std::vector<std::string> chunk(still.begin() + static_cast<std::ptrdiff_t>(i),
                                           still.begin() + static_cast<std::ptrdiff_t>(std::min(still.size(), i + batch_size_)));
      handle_orders(chunk, at, true, stats);
    }
  }
  handle_silence(at, stats);
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (metrics_ != nullptr) {
    metrics_->pass_done(stats.seconds, stats.orders_due);
    refresh_open_gauge();
  }
  return stats;
}

std::vector<std::string> EscalationPass::handle_orders(const std::vector<std::string>& ids, core::TimePoint at,
                                                       bool blocking, PassStats& stats) {
  const auto& workflow = rules_.workflow();
  pqxx::work tx(conn_);
  std::vector<std::string> locked, skipped;
  if (blocking) {
    // Same fixed order as PgOrderStore::apply, so that waiting cannot deadlock.
    tx.exec_params(
        "SELECT pg_advisory_xact_lock(k) FROM ("
        "  SELECT DISTINCT hashtextextended(id, 0) AS k FROM unnest($1::text[]) AS id ORDER BY 1) s",
        array_literal(ids));
    locked = ids;
  } else {
    // Never wait here: a consumer or another pass holding an order is handled in phase 2.
    std::set<std::string> got;
    for (const auto& r : tx.exec_params(
             "SELECT id FROM unnest($1::text[]) AS id WHERE pg_try_advisory_xact_lock(hashtextextended(id, 0))",
             array_literal(ids)))
      got.insert(r[0].as<std::string>());
    for (const auto& id : ids) (got.contains(id) ? locked : skipped).push_back(id);
  }
  if (locked.empty()) return skipped;

  // Re-read under the lock: another pass or the consumer may have moved things on.
  const auto rows = tx.exec_params(
      "SELECT order_id, status, " + sqltime::epoch_us("status_entered_at") + ", version, " +
          sqltime::epoch_us("next_escalation_at") + ", next_escalation_level, " + sqltime::epoch_us("auto_transition_at") +
          " FROM oss.orders WHERE order_id = ANY($1::text[]) AND " + kHasTimer + " AND " + kNextTimer + " <= " +
          ts_param(2) + " ORDER BY order_id",
      array_literal(locked), std::to_string(micros(at)));

  std::vector<Raise> raises;
  std::vector<std::string> upd_ids;
  std::vector<std::optional<std::string>> upd_next, upd_level, upd_auto;
  for (const auto& row : rows) {
    ++stats.orders_handled;
    const std::string id = row[0].as<std::string>();
    domain::OrderState state{row[1].as<std::string>(), from_micros(row[2].as<std::int64_t>()), row[3].as<std::int64_t>()};
    // Plain values rather than std::optional: GCC 12's -Wmaybe-uninitialized misfires on the latter here.
    bool has_next = !row[4].is_null() && !row[5].is_null(), has_auto = !row[6].is_null();
    core::TimePoint next_at = has_next ? from_micros(row[4].as<std::int64_t>()) : core::TimePoint{};
    int level = has_next ? row[5].as<int>() : -1;
    core::TimePoint auto_at = has_auto ? from_micros(row[6].as<std::int64_t>()) : core::TimePoint{};
    std::vector<Raise> own;
    for (int guard = 0; guard < 64; ++guard) {
      const auto* def = workflow.status(state.status);
      // A workflow changed since the timers were stored may no longer have that rung.
      if (has_next && (def == nullptr || level < 0 || static_cast<std::size_t>(level) >= def->escalations.size()))
        has_next = false;
      if (has_auto && (def == nullptr || !def->auto_transition)) has_auto = false;
      const bool esc_due = has_next && next_at <= at;
      const bool auto_due = has_auto && auto_at <= at;
      if (!esc_due && !auto_due) break;
      if (esc_due && (!auto_due || next_at <= auto_at)) {
        own.push_back({id, state.status, def->escalations[static_cast<std::size_t>(level)].level, state.status_entered_at,
                       next_at});
        if (auto r = rules_.rung_after(state.status, state.status_entered_at, level)) {
          level = r->first;
          next_at = r->second;
        } else {
          has_next = false;
        }
        continue;
      }
      // Automatic transition, as of the instant it fell due. Rungs due before it go first.
      for (const auto& l : raise_order_escalations(tx, own, at)) {
        ++stats.escalations_raised;
        if (metrics_ != nullptr) metrics_->raised(l);
      }
      own.clear();
      const auto& rule = *def->auto_transition;
      if (!workflow.source_may(state.status, rule.to, domain::kSlaSource)) {
        has_auto = false;
        continue;
      }
      const core::TimePoint when = auto_at;
      write_transition(tx, rules_, id, state, rule.to, std::string(domain::kSlaSource), std::string(domain::kSlaSource),
                       rule.reason, when);
      ++stats.auto_transitions;
      if (metrics_ != nullptr) metrics_->auto_transitioned();
      state = domain::OrderState{rule.to, when, state.version + 1};
      const auto timers = rules_.on_enter(rule.to, when);
      has_next = timers.next_escalation_at.has_value();
      next_at = timers.next_escalation_at.value_or(core::TimePoint{});
      level = timers.next_escalation_level.value_or(-1);
      has_auto = timers.auto_transition_at.has_value();
      auto_at = timers.auto_transition_at.value_or(core::TimePoint{});
    }
    raises.insert(raises.end(), own.begin(), own.end());
    upd_ids.push_back(id);
    upd_next.push_back(has_next ? std::optional<std::string>(std::to_string(micros(next_at))) : std::nullopt);
    upd_level.push_back(has_next ? std::optional<std::string>(std::to_string(level)) : std::nullopt);
    upd_auto.push_back(has_auto ? std::optional<std::string>(std::to_string(micros(auto_at))) : std::nullopt);
  }
  for (const auto& l : raise_order_escalations(tx, raises, at)) {
    ++stats.escalations_raised;
    if (metrics_ != nullptr) metrics_->raised(l);
  }
  if (!upd_ids.empty()) {
    tx.exec_params(
        "UPDATE oss.orders o SET next_escalation_at = timestamptz 'epoch' + u.ne * interval '1 microsecond', "
        "  next_escalation_level = u.nl, auto_transition_at = timestamptz 'epoch' + u.au * interval '1 microsecond' "
        "FROM unnest($1::text[], $2::bigint[], $3::integer[], $4::bigint[]) AS u(id, ne, nl, au) WHERE o.order_id = u.id",
        array_literal(upd_ids), array_literal(upd_next), array_literal(upd_level), array_literal(upd_auto));
  }
  tx.commit();
  return skipped;
}

void EscalationPass::handle_silence(core::TimePoint at, PassStats& stats) {
  const auto& rules = rules_.workflow().source_silence();
  if (rules.empty()) return;
  pqxx::work tx(conn_);
  // A source never seen starts its clock when the engine first looks (real time, not --at).
  const auto now = core::SystemClock().now();
  std::vector<std::string> sources;
  for (const auto& r : rules) {
    sources.push_back(r.source);
    tx.exec_params("INSERT INTO oss.source_activity (source, last_event_at, silence_due_at) VALUES ($1, " + ts_param(2) +
                       ", " + ts_param(3) + ") ON CONFLICT (source) DO NOTHING",
                   r.source, std::to_string(micros(now)), std::to_string(micros(rules_.silence_due(r, now))));
  }
  const auto due = tx.exec_params("SELECT source, " + sqltime::epoch_us("last_event_at") + ", " +
                                      sqltime::epoch_us("silence_due_at") +
                                      " FROM oss.source_activity WHERE silence_due_at <= " + ts_param(1) +
                                      " AND source = ANY($2::text[]) ORDER BY source FOR UPDATE SKIP LOCKED",
                                  std::to_string(micros(at)), array_literal(sources));
  for (const auto& row : due) {
    const std::string source = row[0].as<std::string>();
    const auto* rule = rules_.silence_rule(source);
    const auto r = tx.exec_params(
        "WITH r AS ("
        "  INSERT INTO oss.escalations (kind, subject, status, stay_started_at, level, due_at, raised_at) "
        "  VALUES ('source_silence', $1, '', " + ts_param(2) + ", $3, " + ts_param(4) + ", " + ts_param(5) + ") "
        "  ON CONFLICT (kind, subject, stay_started_at, level) DO NOTHING RETURNING *) "
        "SELECT outbox.emit(source => '" + std::string(store::kNotificationSource) + "', aggregate_type => 'source', "
        "  aggregate_id => r.subject, event_type => '" + kSilenceRaised + "', "
        "  payload => jsonb_build_object('escalation_id', r.id, 'kind', r.kind, 'subject', r.subject, 'source', r.subject, "
        "    'level', r.level, 'last_event_at', to_char(r.stay_started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
        "    'due_at', to_char(r.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
        "    'raised_at', to_char(r.raised_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))) FROM r",
        source, row[1].as<std::string>(), rule->level, row[2].as<std::string>(), std::to_string(micros(at)));
    if (!r.empty()) {
      ++stats.silences_raised;
      if (metrics_ != nullptr) metrics_->raised(rule->level);
    }
    tx.exec_params("UPDATE oss.source_activity SET silence_due_at = NULL, silence_open = true WHERE source = $1", source);
  }
  tx.commit();
}

void EscalationPass::refresh_open_gauge() {
  if (metrics_ == nullptr) return;
  std::map<std::pair<std::string, std::string>, double> open;
  pqxx::read_transaction tx(conn_);
  for (const auto& r : tx.exec(
           "SELECT CASE WHEN kind = 'order_sla' THEN status ELSE kind END, level, count(*) "
           "FROM oss.escalations WHERE resolved_at IS NULL GROUP BY 1, 2"))
    open[{r[0].as<std::string>(), r[1].as<std::string>()}] = r[2].as<double>();
  metrics_->set_open(open);
}

SlaScanner::SlaScanner(const domain::Workflow& workflow, pg::ConnectOptions db, std::chrono::milliseconds interval,
                       SlaMetrics& metrics)
    : workflow_(workflow), db_(std::move(db)), interval_(interval), metrics_(metrics) {}

void SlaScanner::run(const std::atomic<bool>& stop) {
  auto log = core::logger("sla");
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<TimerRules> rules;
  auto next = std::chrono::steady_clock::now();
  while (!stop) {
    if (std::chrono::steady_clock::now() < next) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    next = std::chrono::steady_clock::now() + interval_;
    try {
      if (!conn || !conn->is_open()) conn = pg::connect(db_);
      if (!rules) rules = std::make_unique<TimerRules>(load_timer_rules(workflow_, *conn));
      EscalationPass pass(*rules, *conn, &metrics_);
      const auto s = pass.run(core::SystemClock().now());
      if (s.orders_due + s.silences_raised > 0)
        log->info("msg=\"sla pass\" orders_due={} raised={} auto_transitions={} silences={} lock_retries={} seconds={:.3f}",
                  s.orders_due, s.escalations_raised, s.auto_transitions, s.silences_raised, s.lock_retries, s.seconds);
    } catch (const pqxx::broken_connection& e) {
      conn.reset();
      log->warn("msg=\"sla pass failed; database unreachable, retrying next interval\" error={}", core::q(e.what()));
    } catch (const std::exception& e) {
      log->warn("msg=\"sla pass failed; retrying next interval\" error={}", core::q(e.what()));
    }
  }
}

}  // namespace oss::sla
