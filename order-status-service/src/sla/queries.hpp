#pragma once
/// Read-side SLA queries shared by the HTTP API (GET /v1/orders, GET /v1/escalations) and the
/// CLI (`stuck`), so both always answer the same question the same way.
/// Implemented in sla/queries.cpp (SLA engine).
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "oss/core/time.hpp"
#include "store/order_store.hpp"

namespace oss::sla {

struct OrderFilter {
  std::optional<std::string> status;
  bool stuck_only = false;                              // past the status SLA as of `at`
  std::optional<std::chrono::milliseconds> older_than;  // in the status for at least this long as of `at`
  std::optional<core::TimePoint> due_before;            // SLA due before this instant ("what will breach")
  core::TimePoint at{};                                 // evaluation instant ("now", or --at)
  std::size_t limit = 100;                              // 1..1000
  std::optional<std::string> cursor;                    // opaque, from OrderPage::next_cursor
};

struct OrderPage {
  std::vector<store::OrderView> orders;  // stuck/due_before: oldest due first; otherwise by order_id
  std::optional<std::string> next_cursor;
};

/// Keyset-paginated; throws std::invalid_argument for a malformed cursor.
OrderPage list_orders(pqxx::connection& conn, const OrderFilter& filter);

struct EscalationView {
  std::int64_t id = 0;
  std::string kind;     // order_sla | source_silence
  std::string subject;  // order id or source name
  std::string status;   // the order's status during the stay ("" for source_silence)
  std::string level;    // e.g. warning, critical
  core::TimePoint due_at{}, raised_at{};
  std::optional<core::TimePoint> resolved_at;
  std::string resolution;
};

struct EscalationFilter {
  bool open_only = true;
  std::optional<std::string> level;
  std::size_t limit = 100;
  std::optional<std::string> cursor;
};

struct EscalationPage {
  std::vector<EscalationView> escalations;  // newest first
  std::optional<std::string> next_cursor;
};

EscalationPage list_escalations(pqxx::connection& conn, const EscalationFilter& filter);
nlohmann::json to_json(const EscalationView& e);

/// Escalations raised (id > after_id) and resolved (resolved_at >= resolved_after: the caller
/// skips ids it already saw at that instant) since the
/// caller last looked, oldest first, at most 1,000 of each: feeds the live stream with what any
/// instance or cron pass did.
struct EscalationChanges {
  std::vector<EscalationView> raised, resolved;
};
EscalationChanges escalation_changes(pqxx::connection& conn, std::int64_t after_id, core::TimePoint resolved_after);

}  // namespace oss::sla
