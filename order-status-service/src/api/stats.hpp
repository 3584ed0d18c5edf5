#pragma once
/// GET /v1/stats: the dashboard's headline numbers in one round trip.
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "domain/workflow.hpp"
#include "oss/core/time.hpp"

namespace oss::api {

/// {"orders_by_status": {every workflow status: n, plus any other status found}, "statuses":
///  [the workflow's statuses in its order], "orders": n,
///  "stuck": n (SLA due at or before `now`), "open_escalations": n, "dead_letters_open": n,
///  "at": RFC 3339}. Blocking: run it on a DB worker.
nlohmann::json dashboard_stats(pqxx::connection& conn, const domain::Workflow& workflow, core::TimePoint now);

/// Open escalations are counted by paging sla::list_escalations; beyond this many the count
/// stops (and "open_escalations_capped": true says so).
inline constexpr std::size_t kMaxCountedEscalations = 10'000;

}  // namespace oss::api
