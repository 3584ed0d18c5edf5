#include "store/order_store.hpp"

#include <nlohmann/json.hpp>
#include <algorithm>
#include <set>
#include <stdexcept>

#include "oss/pg/arrays.hpp"
#include "oss/pg/statement_batch.hpp"
#include "sla/calendar.hpp"
#include "sla/writes.hpp"

namespace oss::store {
namespace {

using pg::array_literal;

std::int64_t micros(core::TimePoint t) { return t.time_since_epoch().count(); }
core::TimePoint from_micros(std::int64_t us) { return core::TimePoint(std::chrono::microseconds(us)); }

constexpr const char* kEpochUs = "(extract(epoch from {}) * 1000000)::bigint";

std::string epoch_us(const std::string& column) {
  std::string s = kEpochUs;
  return s.replace(s.find("{}"), 2, column);
}

// A batch's state in one prepared statement (one round trip, parsed and analysed once per
// connection): the orders ('o': order, status, entered at in microseconds, version), their
// sources' last sequences ('s': order, source, sequence) and the events already processed
// ('p': event id, outcome). $1: the orders, $2: the event ids.
constexpr const char* kBatchStateStatement = "oss_batch_state";
std::string batch_state_sql() {
  return "SELECT 'o'::text AS kind, order_id AS a, status AS b, " + epoch_us("status_entered_at") +
         " AS n1, version AS n2 FROM oss.orders WHERE order_id = ANY($1::text[]) "
         "UNION ALL "
         "SELECT 's', order_id, source, last_sequence, NULL FROM oss.order_sources WHERE order_id = ANY($1::text[]) "
         "UNION ALL "
         "SELECT 'p', event_id::text, outcome, NULL, NULL FROM oss.processed_events WHERE event_id = ANY($2::uuid[])";
}

}  // namespace

PgOrderStore::PgOrderStore(pg::ConnectOptions options) : options_(std::move(options)) {}

std::chrono::milliseconds PgOrderStore::park_delay(int attempt) const {
  if (park_delays_.empty()) return std::chrono::milliseconds(1000);
  const auto tier = std::min<std::size_t>(static_cast<std::size_t>(std::max(attempt, 0)), park_delays_.size() - 1);
  return park_delays_[tier];
}

pqxx::connection& PgOrderStore::conn() {
  if (!conn_ || !conn_->is_open()) {
    conn_ = pg::connect(options_);
    conn_->prepare(kBatchStateStatement, batch_state_sql());
  }
  return *conn_;
}

const sla::TimerRules& PgOrderStore::timer_rules(const domain::Workflow& workflow) {
  if (!rules_ || rules_for_ != &workflow) {
    rules_ = std::make_shared<const sla::TimerRules>(sla::load_timer_rules(workflow, conn()));
    rules_for_ = &workflow;
  }
  return *rules_;
}

void PgOrderStore::ping() {
  pqxx::nontransaction tx(conn());
  tx.exec("SELECT 1");
}

processing::BatchPlan PgOrderStore::apply(const domain::Workflow& workflow,
                                          const std::vector<processing::InboundEvent>& batch, int max_attempts) {
  try {
    const sla::TimerRules& rules = timer_rules(workflow);
    pqxx::work tx(conn());
    const auto order_ids = processing::order_ids_of(batch);
    processing::LoadedState state;
    // The batch's deliveries, then the parked early events of its orders (docs/adr/0004):
    // decided after the deliveries, so a predecessor among them is applied first.
    std::vector<processing::InboundEvent> all(batch);
    if (!order_ids.empty()) {
      // The orders' locks, then their parked events, in one round trip (two statements of one
      // message, oss/pg/statement_batch.hpp). Each statement takes its own snapshot (READ
      // COMMITTED), so the second one, and the state read after it, see everything another
      // instance committed before it released a lock waited for here.
      pg::StatementBatch locked(tx);
      const std::string ids = array_literal(order_ids);
      locked.add(
          "SELECT pg_advisory_xact_lock(k) FROM ("
          "  SELECT DISTINCT hashtextextended(id, 0) AS k FROM unnest($1::text[]) AS id ORDER BY 1) s",
          ids);
      // FOR UPDATE: a sweeper sending one of them back to the queue right now is waited for
      // (the row is then gone and not decided twice).
      locked.add(
          "SELECT body, routing_key, message_id, attempt, replay FROM oss.early_events "
          "WHERE order_id = ANY($1::text[]) ORDER BY order_id, source, sequence FOR UPDATE",
          ids);
      for (const auto& row : locked.run()) {
        processing::InboundEvent in;
        in.body = row[0].as<std::string>();
        in.parsed = domain::parse_envelope(in.body);
        in.routing_key = row[1].as<std::string>();
        in.message_id = row[2].as<std::string>();
        in.attempt = row[3].as<int>();
        in.replay = row[4].as<bool>();
        in.parked = true;
        all.push_back(std::move(in));
      }
    }
    const auto event_ids = processing::event_ids_of(all);
    if (!order_ids.empty() || !event_ids.empty()) {
      for (const auto& row : tx.exec_prepared(kBatchStateStatement, array_literal(order_ids), array_literal(event_ids))) {
        const auto kind = row[0].as<std::string>();
        if (kind == "o") {
          state.orders[row[1].as<std::string>()] =
              domain::OrderState{row[2].as<std::string>(), from_micros(row[3].as<std::int64_t>()), row[4].as<std::int64_t>()};
        } else if (kind == "s") {
          state.last_sequences[{row[1].as<std::string>(), row[2].as<std::string>()}] = row[3].as<std::int64_t>();
        } else {
          state.seen_event_ids.insert(row[1].as<std::string>());
          if (row[2].as<std::string>() == "dead_lettered") state.dead_lettered_event_ids.insert(row[1].as<std::string>());
        }
      }
    }

    auto plan = processing::plan_batch(workflow, all, state, max_attempts);
    plan.parked_loaded = all.size() - batch.size();

    // The batch's writes, in the order below, go to the server together in one round trip
    // (oss/pg/statement_batch.hpp): they need no result from each other, and sent one by one
    // they were seven round trips of a loaded machine per batch.
    pg::StatementBatch writes(tx);

    if (!plan.to_park.empty()) {
      std::vector<std::string> ids, orders, sources, types, bodies, keys, message_ids, waiting;
      std::vector<std::int64_t> seqs, delays_ms, versions;
      std::vector<int> attempts;
      std::vector<std::string> replays;
      std::vector<std::optional<std::string>> since;
      for (std::size_t k = 0; k < plan.to_park.size(); ++k) {
        const auto i = plan.to_park[k];
        const auto& in = all[i];
        versions.push_back(plan.to_park_versions.at(k));
        const auto& env = std::get<domain::Envelope>(in.parsed);
        ids.push_back(env.event_id);
        orders.push_back(env.aggregate_id);
        sources.push_back(env.source);
        seqs.push_back(env.sequence);
        types.push_back(env.event_type);
        bodies.push_back(in.body);
        keys.push_back(in.routing_key);
        message_ids.push_back(in.message_id);
        attempts.push_back(in.attempt);
        replays.push_back(in.replay ? "true" : "false");
        waiting.push_back(plan.results[i].detail);
        delays_ms.push_back(park_delay(in.attempt).count());
        since.push_back(in.parked_since_us ? std::optional<std::string>(std::to_string(*in.parked_since_us)) : std::nullopt);
      }
      // A redelivery of an event parked already keeps the first row.
      writes.add(
          "INSERT INTO oss.early_events (event_id, order_id, source, sequence, event_type, body, routing_key, "
          "  message_id, attempt, replay, waiting_for, next_retry_at, parked_at, decided_version) "
          "SELECT ev, o, src, sq, ty, b, rk, mi, at, rp, wf, clock_timestamp() + d * interval '1 millisecond', "
          "       coalesce(timestamptz 'epoch' + ps * interval '1 microsecond', clock_timestamp()), dv "
          "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], "
          "            $8::text[], $9::integer[], $10::boolean[], $11::text[], $12::bigint[], $13::bigint[], "
          "            $14::bigint[]) "
          "     AS u(ev, o, src, sq, ty, b, rk, mi, at, rp, wf, d, ps, dv) "
          "ON CONFLICT (event_id) DO NOTHING",
          array_literal(ids), array_literal(orders), array_literal(sources), array_literal(seqs), array_literal(types),
          array_literal(bodies), array_literal(keys), array_literal(message_ids), array_literal(attempts),
          array_literal(replays), array_literal(waiting), array_literal(delays_ms), array_literal(since),
          array_literal(versions));
    }
    if (!plan.to_unpark.empty())
      writes.add("DELETE FROM oss.early_events WHERE event_id = ANY($1::uuid[])", array_literal(plan.to_unpark));
    // A recheck must go through the queue (where it is dead-lettered with confirms): no retry in
    // place for it.
    if (!plan.to_recheck.empty())
      writes.add(
          "UPDATE oss.early_events SET next_retry_at = clock_timestamp(), decided_version = NULL "
          "WHERE event_id = ANY($1::uuid[])",
          array_literal(plan.to_recheck));
    if (!plan.to_refresh.empty()) {
      std::vector<std::string> ids;
      std::vector<std::int64_t> versions;
      for (const auto& [id, version] : plan.to_refresh) {
        ids.push_back(id);
        versions.push_back(version);
      }
      writes.add(
          "UPDATE oss.early_events e SET decided_version = u.v "
          "FROM unnest($1::uuid[], $2::bigint[]) AS u(id, v) WHERE e.event_id = u.id",
          array_literal(ids), array_literal(versions));
    }

    if (!plan.processed.empty()) {
      std::vector<std::string> ids, orders, sources, types, outcomes;
      std::vector<std::int64_t> seqs;
      for (const auto& p : plan.processed) {
        ids.push_back(p.event_id);
        orders.push_back(p.order_id);
        sources.push_back(p.source);
        types.push_back(p.event_type);
        outcomes.push_back(p.outcome);
        seqs.push_back(p.sequence);
      }
      writes.add(
          "INSERT INTO oss.processed_events (event_id, order_id, source, sequence, event_type, outcome) "
          "SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[]) "
          // A replayed dead letter gets its new outcome; anything else keeps its first decision.
          "ON CONFLICT (event_id) DO UPDATE SET outcome = excluded.outcome, processed_at = excluded.processed_at "
          "WHERE oss.processed_events.outcome = 'dead_lettered'",
          array_literal(ids), array_literal(orders), array_literal(sources), array_literal(seqs),
          array_literal(types), array_literal(outcomes));
    }
    if (!plan.orders.empty()) {
      std::vector<std::string> ids, statuses;
      std::vector<std::int64_t> entered, versions;
      std::vector<std::optional<std::string>> due, next_esc, next_level, auto_at;
      const auto opt_us = [](const std::optional<core::TimePoint>& t) {
        return t ? std::optional<std::string>(std::to_string(micros(*t))) : std::nullopt;
      };
      for (auto& [id, row] : plan.orders) {
        // SLA timers of the new stay (business calendars included), stored so that a pass
        // finds what is due with an index range scan.
        const auto timers = rules.on_enter(row.state.status, row.state.status_entered_at);
        row.sla_due_at = timers.sla_due_at;
        ids.push_back(id);
        statuses.push_back(row.state.status);
        entered.push_back(micros(row.state.status_entered_at));
        versions.push_back(row.state.version);
        due.push_back(opt_us(row.sla_due_at));
        next_esc.push_back(opt_us(timers.next_escalation_at));
        next_level.push_back(timers.next_escalation_level
                                 ? std::optional<std::string>(std::to_string(*timers.next_escalation_level))
                                 : std::nullopt);
        auto_at.push_back(opt_us(timers.auto_transition_at));
      }
      writes.add(
          "INSERT INTO oss.orders AS o (order_id, status, status_entered_at, sla_due_at, version, updated_at, "
          "  next_escalation_at, next_escalation_level, auto_transition_at) "
          "SELECT id, st, timestamptz 'epoch' + en * interval '1 microsecond', "
          "       timestamptz 'epoch' + du * interval '1 microsecond', v, clock_timestamp(), "
          "       timestamptz 'epoch' + ne * interval '1 microsecond', nl, timestamptz 'epoch' + au * interval '1 microsecond' "
          "FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::integer[], "
          "            $8::bigint[]) AS u(id, st, en, du, v, ne, nl, au) "
          "ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, status_entered_at = excluded.status_entered_at, "
          "  sla_due_at = excluded.sla_due_at, version = excluded.version, updated_at = excluded.updated_at, "
          "  next_escalation_at = excluded.next_escalation_at, next_escalation_level = excluded.next_escalation_level, "
          "  auto_transition_at = excluded.auto_transition_at",
          array_literal(ids), array_literal(statuses), array_literal(entered), array_literal(due), array_literal(versions),
          array_literal(next_esc), array_literal(next_level), array_literal(auto_at));
    }
    if (!plan.last_sequences.empty()) {
      std::vector<std::string> ids, sources;
      std::vector<std::int64_t> seqs;
      for (const auto& [key, seq] : plan.last_sequences) {
        ids.push_back(key.first);
        sources.push_back(key.second);
        seqs.push_back(seq);
      }
      writes.add(
          "INSERT INTO oss.order_sources AS s (order_id, source, last_sequence) "
          "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) "
          "ON CONFLICT (order_id, source) DO UPDATE SET last_sequence = greatest(s.last_sequence, excluded.last_sequence)",
          array_literal(ids), array_literal(sources), array_literal(seqs));
    }
    if (!plan.history.empty()) {
      std::vector<std::string> ids, tos, sources, actors, reasons, payloads;
      std::vector<std::optional<std::string>> froms, events, seqs;
      std::vector<std::int64_t> occurred;
      for (const auto& h : plan.history) {
        ids.push_back(h.order_id);
        froms.push_back(h.from_status);
        tos.push_back(h.to_status);
        events.push_back(h.event_id);
        sources.push_back(h.source);
        seqs.push_back(h.sequence ? std::optional<std::string>(std::to_string(*h.sequence)) : std::nullopt);
        occurred.push_back(micros(h.occurred_at));
        actors.push_back(h.actor);
        reasons.push_back(h.reason);
        nlohmann::json n = {{"order_id", h.order_id},
                            {"from", h.from_status ? nlohmann::json(*h.from_status) : nlohmann::json(nullptr)},
                            {"status", h.to_status},
                            {"event_id", h.event_id ? nlohmann::json(*h.event_id) : nlohmann::json(nullptr)},
                            {"source", h.source},
                            {"occurred_at", core::format_rfc3339(h.occurred_at)},
                            {"actor", h.actor},
                            {"reason", h.reason}};
        const auto due = rules.on_enter(h.to_status, h.occurred_at).sla_due_at;
        n["sla_due_at"] = due ? nlohmann::json(core::format_rfc3339(*due)) : nlohmann::json(nullptr);
        payloads.push_back(n.dump());
      }
      // History and notifications in application order (WITH ORDINALITY): a notification
      // consumer sees one order's changes in the order they were applied.
      writes.add(
          "WITH h AS ("
          "  INSERT INTO oss.status_history (order_id, from_status, to_status, event_id, source, sequence, occurred_at, actor, reason) "
          "  SELECT id, fr, t, ev, src, sq, to_timestamp(oc::double precision / 1000000), nullif(ac, ''), nullif(re, '') "
          "  FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::bigint[], $7::bigint[], $8::text[], $9::text[]) "
          "       AS u(id, fr, t, ev, src, sq, oc, ac, re) RETURNING 1) "
          // One set-based emit for the whole batch (outbox.emit_many keeps array order per order).
          "SELECT outbox.emit_many($11, 'order', $1::text[], 'order.status_changed', $10::jsonb[])",
          array_literal(ids), array_literal(froms), array_literal(tos), array_literal(events), array_literal(sources),
          array_literal(seqs), array_literal(occurred), array_literal(actors), array_literal(reasons),
          array_literal(payloads), std::string(kNotificationSource));
    }
    {
      // SLA: orders that left their status resolve that stay's open escalations (after the
      // status notification, so consumers see "moved" before "resolved").
      std::vector<std::string> moved_ids, moved_to;
      std::vector<std::int64_t> moved_us;
      for (const auto& [id, row] : plan.orders) {
        if (row.created) continue;
        moved_ids.push_back(id);
        moved_to.push_back(row.state.status);
        moved_us.push_back(micros(row.state.status_entered_at));
      }
      if (!moved_ids.empty())
        writes.add(sla::resolve_order_escalations_sql(), array_literal(moved_ids), array_literal(moved_to),
                   array_literal(moved_us));
      writes.run();
      if (!workflow.source_silence().empty()) {
        std::set<std::string> sources;
        for (const auto& p : plan.processed) sources.insert(p.source);
        sla::record_source_activity(tx, rules, {sources.begin(), sources.end()}, core::SystemClock().now());
      }
    }
    for (const auto& d : plan.dead_letters) {
      tx.exec_params(
          "INSERT INTO oss.dead_letters (event_id, order_id, source, reason, error, routing_key, body) "
          "VALUES ($1, $2, $3, $4, $5, $6, $7)",
          d.event_id, d.order_id, d.source, d.reason, d.error, d.routing_key, pqxx::binarystring(d.body));
    }
    tx.commit();
    return plan;
  } catch (const pqxx::broken_connection&) {
    conn_.reset();
    throw;
  }
}

TransitionResult PgOrderStore::apply_transition(const domain::Workflow& workflow, const std::string& order_id,
                                                const std::string& target_status, const std::string& source,
                                                const std::string& actor, const std::string& reason,
                                                core::TimePoint now) {
  if (source != "operator" && source != domain::kSlaSource)
    throw std::invalid_argument("apply_transition: source must be \"operator\" or \"sla\", got \"" + source + "\"");
  try {
    const sla::TimerRules& rules = timer_rules(workflow);
    pqxx::work tx(conn());
    tx.exec_params("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", order_id);
    std::optional<domain::OrderState> current;
    const auto r = tx.exec_params("SELECT status, " + epoch_us("status_entered_at") +
                                      ", version FROM oss.orders WHERE order_id = $1",
                                  order_id);
    if (!r.empty())
      current = domain::OrderState{r[0][0].as<std::string>(), from_micros(r[0][1].as<std::int64_t>()), r[0][2].as<std::int64_t>()};
    TransitionResult result;
    if (source == "operator") {
      result.decision = domain::decide_correction(workflow, current, target_status);
    } else {
      const auto* def = current ? workflow.status(current->status) : nullptr;
      const bool ok = def != nullptr && def->auto_transition && def->auto_transition->to == target_status &&
                      workflow.source_may(current->status, target_status, domain::kSlaSource);
      result.decision.outcome = ok ? domain::Outcome::applied : domain::Outcome::dead_letter;
      if (!ok) {
        result.decision.reason = domain::DeadLetterReason::invalid_transition;
        result.decision.detail = current ? "status " + current->status + " has no automatic transition to " + target_status
                                         : "order '" + order_id + "' is not known";
      }
    }
    if (result.decision.outcome != domain::Outcome::applied) {
      tx.abort();
      result.order = order(order_id, now);
      return result;
    }
    auto view = sla::write_transition(tx, rules, order_id, current, target_status, source, actor, reason, now);
    tx.commit();
    view.breached = view.sla_due_at && *view.sla_due_at <= now;
    result.order = std::move(view);
    return result;
  } catch (const pqxx::broken_connection&) {
    conn_.reset();
    throw;
  }
}

std::optional<OrderView> PgOrderStore::order(const std::string& order_id, core::TimePoint now) {
  pqxx::read_transaction tx(conn());
  const auto r = tx.exec_params("SELECT order_id, status, " + epoch_us("status_entered_at") + ", " +
                                    epoch_us("sla_due_at") + ", version, " + epoch_us("updated_at") +
                                    " FROM oss.orders WHERE order_id = $1",
                                order_id);
  if (r.empty()) return std::nullopt;
  OrderView v;
  v.order_id = r[0][0].as<std::string>();
  v.status = r[0][1].as<std::string>();
  v.status_entered_at = from_micros(r[0][2].as<std::int64_t>());
  if (!r[0][3].is_null()) v.sla_due_at = from_micros(r[0][3].as<std::int64_t>());
  v.version = r[0][4].as<std::int64_t>();
  v.updated_at = from_micros(r[0][5].as<std::int64_t>());
  v.breached = v.sla_due_at && *v.sla_due_at <= now;
  return v;
}

std::vector<HistoryEntry> PgOrderStore::history(const std::string& order_id) {
  pqxx::read_transaction tx(conn());
  std::vector<HistoryEntry> out;
  for (const auto& row : tx.exec_params(
           "SELECT from_status, to_status, event_id::text, source, sequence, " + epoch_us("occurred_at") + ", " +
               epoch_us("applied_at") + ", coalesce(actor, ''), coalesce(reason, '') "
               "FROM oss.status_history WHERE order_id = $1 ORDER BY id",
           order_id)) {
    HistoryEntry h;
    if (!row[0].is_null()) h.from_status = row[0].as<std::string>();
    h.to_status = row[1].as<std::string>();
    if (!row[2].is_null()) h.event_id = row[2].as<std::string>();
    h.source = row[3].as<std::string>();
    if (!row[4].is_null()) h.sequence = row[4].as<std::int64_t>();
    h.occurred_at = from_micros(row[5].as<std::int64_t>());
    h.applied_at = from_micros(row[6].as<std::int64_t>());
    h.actor = row[7].as<std::string>();
    h.reason = row[8].as<std::string>();
    out.push_back(std::move(h));
  }
  return out;
}

}  // namespace oss::store
