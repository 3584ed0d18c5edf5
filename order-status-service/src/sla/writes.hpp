#pragma once
/// SQL writes of the SLA engine shared by PgOrderStore::apply/apply_transition and the
/// escalation pass. Each runs inside the caller's transaction, which must hold the order's
/// advisory lock (`pg_advisory_xact_lock(hashtextextended(order_id, 0))`) for order writes, so
/// that the consumer, operators and every pass serialize per order. Notifications go through
/// the service's own outbox (outbox.emit) in that same transaction.
#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "domain/state_machine.hpp"
#include "oss/core/time.hpp"
#include "sla/calendar.hpp"
#include "store/order_store.hpp"

namespace oss::sla {

inline constexpr const char* kEscalationRaised = "order.escalation_raised";
inline constexpr const char* kEscalationResolved = "order.escalation_resolved";
inline constexpr const char* kSilenceRaised = "source.silence_raised";
inline constexpr const char* kSilenceResolved = "source.silence_resolved";

/// Resolves the open order_sla escalations of orders that left their status (order_ids[i]
/// moved to new_statuses[i] at at[i]) and emits order.escalation_resolved for each. Returns
/// how many were resolved.
std::size_t resolve_order_escalations(pqxx::work& tx, const std::vector<std::string>& order_ids,
                                      const std::vector<std::string>& new_statuses,
                                      const std::vector<core::TimePoint>& at);
/// The statement resolve_order_escalations runs: $1 order ids (text[]), $2 their new statuses
/// (text[]), $3 when they moved (bigint[], microseconds since the epoch); returns the count.
/// For callers that send it together with other statements (oss::pg::StatementBatch).
const std::string& resolve_order_escalations_sql();

struct Raise {
  std::string order_id, status, level;
  core::TimePoint stay_started_at{}, due_at{};
};
/// Inserts the rungs (ON CONFLICT DO NOTHING: a rung already raised for that stay is skipped)
/// and emits order.escalation_raised only for rows actually inserted. Returns the levels of the
/// inserted rows.
std::vector<std::string> raise_order_escalations(pqxx::work& tx, const std::vector<Raise>& raises,
                                                 core::TimePoint raised_at);

/// Writes an audited transition of one locked order (history row without event id, order row
/// with fresh timers, status-change notification, resolution of open escalations), and makes the
/// order's parked early events due at once, through the queue. `current` nullopt creates the
/// order.
store::OrderView write_transition(pqxx::work& tx, const TimerRules& rules, const std::string& order_id,
                                  const std::optional<domain::OrderState>& current, const std::string& target,
                                  const std::string& source, const std::string& actor, const std::string& reason,
                                  core::TimePoint occurred_at);

/// Apply-side source silence bookkeeping: `sources` (those with a rule) emitted at `now`.
/// Creates their activity rows, moves their silence deadline, and resolves an open silence.
void record_source_activity(pqxx::work& tx, const TimerRules& rules, const std::vector<std::string>& sources,
                            core::TimePoint now);

}  // namespace oss::sla
