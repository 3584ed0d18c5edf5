// `order-status-service dlq list|replay`: what failed and why, and putting it back.
#include <fmt/format.h>
#include <iostream>

#include "app/commands.hpp"
#include "dlq/dead_letters.hpp"
#include "oss/core/cli.hpp"
#include "oss/core/logging.hpp"
#include "oss/core/url.hpp"

namespace oss::app {
namespace {

std::vector<core::FlagSpec> list_flags() {
  return {{"db", "OSS_DB_URL", "service database (libpq URI)", std::nullopt, true, false, true},
          {"amqp", "OSS_AMQP_URL", "broker (accepted for symmetry with replay; not used by list)"},
          {"reason", "", "only this reason (malformed, unknown_status, source_not_allowed, invalid_transition, retries_exhausted)"},
          {"all", "", "include dead letters already replayed", std::nullopt, false, true},
          {"limit", "", "rows to show", "100"},
          {"json", "", "JSON lines instead of a table", std::nullopt, false, true}};
}

std::vector<core::FlagSpec> replay_flags() {
  return {{"db", "OSS_DB_URL", "service database (libpq URI)", std::nullopt, true, false, true},
          {"amqp", "OSS_AMQP_URL", "broker, amqp://user:pass@host:port/vhost", std::nullopt, true, false, true},
          {"queue", "OSS_EVENTS_QUEUE", "the service's events queue", "order-status-service.events"},
          {"event-id", "", "replay this event id (repeatable, or comma-separated)"},
          {"reason", "", "replay every open dead letter with this reason"},
          {"json", "", "JSON output", std::nullopt, false, true}};
}

std::vector<std::string> split_ids(const std::vector<std::string>& args) {
  // --event-id may repeat; parse_flags keeps the last, so collect them here.
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string v;
    if (args[i] == "--event-id" && i + 1 < args.size()) v = args[++i];
    else if (args[i].rfind("--event-id=", 0) == 0) v = args[i].substr(11);
    else continue;
    std::size_t start = 0;
    while (start <= v.size()) {
      const auto comma = v.find(',', start);
      const auto piece = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!piece.empty()) ids.push_back(piece);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return ids;
}

int dlq_list(const std::vector<std::string>& args) {
  const auto specs = list_flags();
  if (wants_help(args)) {
    std::cout << core::format_help("order-status-service dlq list --db URL [--reason R] [--all] [--json]", specs);
    return 0;
  }
  const auto f = core::parse_flags(specs, args);
  core::require_pg_url(f.get("db"), "--db");
  dlq::ListFilter filter;
  filter.reason = f.get_optional("reason");
  filter.include_replayed = f.on("all");
  filter.limit = static_cast<std::size_t>(f.get_int("limit", 1, 100000));
  auto conn = connect_or_exit3(f.get("db"), "oss-dlq");
  const auto rows = dlq::list(*conn, filter);
  if (f.on("json")) {
    for (const auto& d : rows) std::cout << dlq::to_json(d).dump() << "\n";
    return 0;
  }
  std::cout << fmt::format("{:>6}  {:<36}  {:<14}  {:<19}  {:<24}  {}\n", "ID", "EVENT_ID", "ORDER", "REASON",
                           "DEAD_LETTERED_AT", "ERROR");
  for (const auto& d : rows)
    std::cout << fmt::format("{:>6}  {:<36}  {:<14}  {:<19}  {:<24}  {}{}\n", d.id, d.event_id.value_or("-"),
                             d.order_id.value_or("-"), d.reason, core::format_rfc3339(d.dead_lettered_at), d.error,
                             d.replayed_at ? " (replayed)" : "");
  std::cout << fmt::format("{} dead letter(s); {} open in total\n", rows.size(), dlq::open_count(*conn));
  return 0;
}

int dlq_replay(const std::vector<std::string>& args) {
  const auto specs = replay_flags();
  if (wants_help(args)) {
    std::cout << core::format_help(
        "order-status-service dlq replay --db URL --amqp URL (--event-id ID [--event-id ID ...] | --reason R)", specs);
    return 0;
  }
  const auto f = core::parse_flags(specs, args);
  core::require_pg_url(f.get("db"), "--db");
  core::require_amqp_url(f.get("amqp"), "--amqp");
  dlq::ReplaySelection sel;
  sel.event_ids = split_ids(args);
  sel.reason = f.get_optional("reason");
  if (sel.event_ids.empty() == !sel.reason.has_value())
    throw core::UsageError("give either --event-id (one or more) or --reason, not both");
  auto conn = connect_or_exit3(f.get("db"), "oss-dlq-replay");
  amqp::ConnectionOptions o;
  o.url = f.get("amqp");
  o.connection_name = "order-status-service dlq replay";
  std::optional<amqp::Connection> broker;
  try {
    broker.emplace(o);
  } catch (const amqp::AuthError& e) {
    throw core::UsageError("the broker refused the login for " + core::mask_url(o.url) + ": " + e.what());
  } catch (const amqp::Error& e) {
    throw core::DependencyError("cannot connect to the broker " + core::mask_url(o.url) + ": " + e.what());
  }
  const auto r = dlq::replay(*conn, *broker, f.get("queue"), sel);
  if (f.on("json")) {
    std::cout << nlohmann::json{{"replayed", r.replayed}, {"not_found", r.not_found}}.dump() << "\n";
  } else {
    for (const auto& id : r.replayed) std::cout << "replayed " << id << "\n";
    for (const auto& id : r.not_found) std::cout << "not found (no open dead letter): " << id << "\n";
    std::cout << r.replayed.size() << " replayed, " << r.not_found.size() << " not found\n";
  }
  return r.not_found.empty() ? 0 : 1;
}

}  // namespace

int cmd_dlq(const std::vector<std::string>& args) {
  if (args.empty() || (args[0] != "list" && args[0] != "replay")) {
    std::cerr << "usage: order-status-service dlq list|replay [flags]   (--help after the subcommand for flags)\n";
    return args.size() == 1 && (args[0] == "--help" || args[0] == "-h") ? 0 : 2;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  return args[0] == "list" ? dlq_list(rest) : dlq_replay(rest);
}

}  // namespace oss::app
