// `order-status-service escalate --once`: one SLA/escalation pass for cron, the same code as the
// in-service scanner (sla/engine.hpp).
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "oss/core/cli.hpp"
#include "oss/core/logging.hpp"
#include "oss/core/url.hpp"
#include "oss/pg/migrate.hpp"
#include "sla/calendar.hpp"
#include "sla/engine.hpp"

namespace oss::app {

domain::Workflow load_workflow_or_exit2(const std::optional<std::string>& file) {
  if (!file) return domain::shipped_workflow();
  try {
    return domain::load_workflow_file(*file);
  } catch (const std::exception& e) {
    throw core::UsageError("--workflow " + *file + ": " + e.what());
  }
}

void require_sla_schema(pqxx::connection& conn) {
  if (pg::installed_version(conn, "oss") < 2 || pg::installed_version(conn, "outbox") == 0)
    throw core::UsageError("the service schema is missing or older than the SLA tables; run `order-status-service migrate --db URL` first");
  // A transition (the SLA engine's, an operator's) also makes the order's parked early events due
  // at once (sla::write_transition): oss.early_events.decided_version, schema 4.
  if (pg::installed_version(conn, "oss") < 4)
    throw core::UsageError("the service schema is older than this version (needs schema 4: "
                           "oss.early_events.decided_version); run `order-status-service migrate --db URL` first");
}

core::TimePoint parse_at(const std::optional<std::string>& text, const std::string& flag) {
  if (!text) return core::SystemClock().now();
  try {
    return core::parse_rfc3339(*text);
  } catch (const std::exception& e) {
    throw core::UsageError(flag + ": " + e.what());
  }
}

namespace {

std::vector<core::FlagSpec> escalate_flags() {
  return {{"db", "OSS_DB_URL", "service database (libpq URI)", std::nullopt, true, false, true},
          {"once", "OSS_ESCALATE_ONCE", "run one pass and exit (required; the service runs passes continuously)",
           std::nullopt, false, true},
          {"at", "OSS_ESCALATE_AT", "evaluate as of this instant (RFC 3339; default now): back-fills and forecasts"},
          {"workflow", "OSS_WORKFLOW_FILE", "workflow JSON file (default: the shipped workflow)"},
          {"json", "OSS_ESCALATE_JSON", "print the pass's summary as one JSON object", std::nullopt, false, true},
          {"log-level", "OSS_LOG_LEVEL", "trace, debug, info, warn, error", "info"}};
}

}  // namespace

int cmd_escalate(const std::vector<std::string>& args) {
  const auto specs = escalate_flags();
  if (wants_help(args)) {
    std::cout << core::format_help("order-status-service escalate --once --db URL [--at RFC3339]", specs);
    return 0;
  }
  const auto flags = core::parse_flags(specs, args);
  core::init_logging("order-status-service", flags.get("log-level"));
  if (!flags.on("once"))
    throw core::UsageError("escalate runs a single pass: pass --once (the running service scans continuously)");
  const std::string url = flags.get("db");
  core::require_pg_url(url, "--db");
  const auto at = parse_at(flags.get_optional("at"), "--at");
  const auto workflow = load_workflow_or_exit2(flags.get_optional("workflow"));
  auto conn = connect_or_exit3(url, "order-status-service-escalate");
  require_sla_schema(*conn);
  std::optional<sla::TimerRules> rules;
  try {
    rules.emplace(sla::load_timer_rules(workflow, *conn));
  } catch (const std::invalid_argument& e) {
    throw core::UsageError(std::string("workflow: ") + e.what());
  }
  sla::EscalationPass pass(*rules, *conn);
  const auto s = pass.run(at);
  nlohmann::json j = {{"at", core::format_rfc3339(at)},          {"orders_due", s.orders_due},
                      {"orders_handled", s.orders_handled},      {"escalations_raised", s.escalations_raised},
                      {"auto_transitions", s.auto_transitions},  {"silences_raised", s.silences_raised},
                      {"lock_retries", s.lock_retries},          {"seconds", s.seconds}};
  if (flags.on("json")) {
    std::cout << j.dump() << "\n";
  } else {
    std::cout << "escalation pass as of " << core::format_rfc3339(at) << ": " << s.orders_due << " orders due, "
              << s.escalations_raised << " escalations raised, " << s.auto_transitions << " automatic transitions, "
              << s.silences_raised << " source silences raised (" << s.seconds << " s)\n";
  }
  return 0;
}

}  // namespace oss::app
