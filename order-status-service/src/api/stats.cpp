#include "api/stats.hpp"

#include "dlq/dead_letters.hpp"
#include "sla/queries.hpp"

namespace oss::api {

nlohmann::json dashboard_stats(pqxx::connection& conn, const domain::Workflow& workflow, core::TimePoint now) {
  using nlohmann::json;
  json by_status = json::object();
  json statuses = json::array();  // JSON objects have no order: this list keeps the workflow's
  for (const auto& s : workflow.statuses()) {
    by_status[s.name] = 0;
    statuses.push_back(s.name);
  }
  std::int64_t total = 0, stuck = 0;
  {
    pqxx::read_transaction tx(conn);
    // GROUP BY over (status, order_id) index; fine for the dashboard's occasional refresh.
    for (const auto& row : tx.exec("SELECT status, count(*) FROM oss.orders GROUP BY status")) {
      const auto n = row[1].as<std::int64_t>();
      by_status[row[0].as<std::string>()] = n;
      total += n;
    }
    // Same rule as OrderView::breached (sla_due_at <= now); a range scan of
    // orders_sla_due_key_idx (sla_due_at is its leading column).
    const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
    stuck = tx.exec_params("SELECT count(*) FROM oss.orders WHERE sla_due_at IS NOT NULL "
                           "AND sla_due_at <= to_timestamp($1::double precision / 1000000)",
                           now_us)[0][0]
                .as<std::int64_t>();
  }
  std::size_t escalations = 0;
  bool capped = false;
  sla::EscalationFilter f;
  f.open_only = true;
  f.limit = 1000;
  for (;;) {
    const auto page = sla::list_escalations(conn, f);
    escalations += page.escalations.size();
    if (!page.next_cursor || page.escalations.empty()) break;
    if (escalations >= kMaxCountedEscalations) {
      capped = true;
      break;
    }
    f.cursor = page.next_cursor;
  }
  json out = {{"orders_by_status", by_status},
              {"statuses", statuses},
              {"orders", total},
              {"stuck", stuck},
              {"open_escalations", escalations},
              {"dead_letters_open", dlq::open_count(conn)},
              {"at", core::format_rfc3339(now)}};
  if (capped) out["open_escalations_capped"] = true;
  return out;
}

}  // namespace oss::api
