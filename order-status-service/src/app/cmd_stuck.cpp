// `order-status-service stuck`: orders past their status SLA as of --at, oldest breach first.
// The same query as GET /v1/orders?stuck=true (sla/queries.hpp) and the same JSON per order.
#include <iomanip>
#include <iostream>

#include "api/http_api.hpp"
#include "app/commands.hpp"
#include "oss/core/cli.hpp"
#include "oss/core/duration.hpp"
#include "oss/core/logging.hpp"
#include "oss/core/url.hpp"
#include "sla/queries.hpp"

namespace oss::app {
namespace {

std::vector<core::FlagSpec> stuck_flags() {
  return {{"db", "OSS_DB_URL", "service database (libpq URI)", std::nullopt, true, false, true},
          {"status", "OSS_STUCK_STATUS", "only orders in this status"},
          {"older-than", "OSS_STUCK_OLDER_THAN", "only orders in their status at least this long (e.g. 24h)"},
          {"at", "OSS_STUCK_AT", "evaluate as of this instant (RFC 3339; default now)"},
          {"json", "OSS_STUCK_JSON", "one JSON object per line (as GET /v1/orders/{id})", std::nullopt, false, true},
          {"log-level", "OSS_LOG_LEVEL", "trace, debug, info, warn, error", "info"}};
}

std::string overdue(core::TimePoint due, core::TimePoint at) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(at - due);
  return core::format_duration(std::chrono::duration_cast<std::chrono::seconds>(ms));
}

}  // namespace

int cmd_stuck(const std::vector<std::string>& args) {
  const auto specs = stuck_flags();
  if (wants_help(args)) {
    std::cout << core::format_help("order-status-service stuck --db URL [--status S] [--older-than 24h] [--at RFC3339] [--json]",
                                   specs);
    return 0;
  }
  const auto flags = core::parse_flags(specs, args);
  core::init_logging("order-status-service", flags.get("log-level"));
  const std::string url = flags.get("db");
  core::require_pg_url(url, "--db");
  sla::OrderFilter filter;
  filter.stuck_only = true;
  filter.at = parse_at(flags.get_optional("at"), "--at");
  filter.status = flags.get_optional("status");
  if (const auto older = flags.get_optional("older-than")) {
    try {
      filter.older_than = core::parse_duration(*older);
    } catch (const std::exception& e) {
      throw core::UsageError(std::string("--older-than: ") + e.what());
    }
  }
  filter.limit = 1000;
  const bool json = flags.on("json");
  auto conn = connect_or_exit3(url, "order-status-service-stuck");
  require_sla_schema(*conn);
  if (!json)
    std::cout << std::left << std::setw(24) << "ORDER_ID" << std::setw(24) << "STATUS" << std::setw(26) << "SLA_DUE_AT"
              << "OVERDUE\n";
  for (;;) {
    const auto page = sla::list_orders(*conn, filter);
    for (const auto& o : page.orders) {
      if (json) {
        std::cout << api::to_json(o).dump() << "\n";
      } else {
        std::cout << std::left << std::setw(24) << o.order_id << std::setw(24) << o.status << std::setw(26)
                  << core::format_rfc3339(*o.sla_due_at) << overdue(*o.sla_due_at, filter.at) << "\n";
      }
    }
    if (!page.next_cursor) break;
    filter.cursor = page.next_cursor;
  }
  return 0;
}

}  // namespace oss::app
