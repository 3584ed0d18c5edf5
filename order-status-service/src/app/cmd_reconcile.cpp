// `order-status-service reconcile`: event ids emitted in a producer's outbox but neither applied,
// acked as duplicate/stale/ignored, nor dead-lettered. Exit 1 if anything older than the grace
// period is missing.
#include <fmt/format.h>
#include <iostream>
#include <set>
#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "oss/core/cli.hpp"
#include "oss/core/duration.hpp"
#include "oss/core/url.hpp"
#include "oss/pg/arrays.hpp"
#include "reconcile/reconcile.hpp"

namespace oss::app {
namespace {

std::vector<core::FlagSpec> flags() {
  return {{"db", "OSS_DB_URL", "service database (libpq URI)", std::nullopt, true, false, true},
          {"source-db", "OSS_RECONCILE_SOURCE_DB_URL", "producer database with the outbox (libpq URI)", std::nullopt,
           true, false, true},
          {"since", "OSS_RECONCILE_SINCE", "look at events emitted this far back (within the relay's retention)", "1h"},
          {"grace", "OSS_RECONCILE_GRACE", "younger undecided events are in flight, not missing", "5m"},
          {"at", "", "evaluate as of this instant (RFC 3339; default now)"},
          {"limit", "", "problems to list", "1000"},
          {"json", "", "JSON lines: one per problem, then a summary line", std::nullopt, false, true}};
}

core::TimePoint from_us(std::int64_t us) { return core::TimePoint(std::chrono::microseconds(us)); }

}  // namespace

int cmd_reconcile(const std::vector<std::string>& args) {
  const auto specs = flags();
  if (wants_help(args)) {
    std::cout << core::format_help("order-status-service reconcile --db URL --source-db URL [--since 1h] [--json]",
                                   specs);
    return 0;
  }
  const auto f = core::parse_flags(specs, args);
  core::require_pg_url(f.get("db"), "--db");
  core::require_pg_url(f.get("source-db"), "--source-db");
  std::chrono::milliseconds since, grace;
  core::TimePoint now = core::SystemClock().now();
  try {
    since = f.get_duration("since");
    grace = f.get_duration("grace");
    if (auto at = f.get_optional("at")) now = core::parse_rfc3339(*at);
  } catch (const std::invalid_argument& e) {
    throw core::UsageError(e.what());
  }
  const auto limit = static_cast<std::size_t>(f.get_int("limit", 1, 10'000'000));

  auto source = connect_or_exit3(f.get("source-db"), "oss-reconcile");
  auto service = connect_or_exit3(f.get("db"), "oss-reconcile");
  std::vector<reconcile::EmittedEvent> emitted;
  {
    pqxx::read_transaction tx(*source);
    // Every event of the producer's outbox: outbox.all_events (outbox schema >= 3: published rows
    // move to outbox.events_archive), or outbox.events in a producer database not yet upgraded.
    const std::string events =
        tx.exec("SELECT to_regclass('outbox.all_events') IS NOT NULL")[0][0].as<bool>() ? "outbox.all_events"
                                                                                     : "outbox.events";
    const auto from_us_epoch = (now.time_since_epoch() - std::chrono::duration_cast<std::chrono::microseconds>(since)).count();
    const auto to_us_epoch = now.time_since_epoch().count();
    for (const auto& row : tx.exec_params(
             "SELECT event_id::text, source, aggregate_id, event_type, sequence, "
             "       (extract(epoch from occurred_at) * 1000000)::bigint, published_at IS NOT NULL, "
             "       parked_at IS NOT NULL, coalesce(last_error, '') "
             "FROM " + events + " WHERE occurred_at >= to_timestamp($1::double precision / 1000000) "
             "  AND occurred_at <= to_timestamp($2::double precision / 1000000) ORDER BY position",
             from_us_epoch, to_us_epoch)) {
      reconcile::EmittedEvent e;
      e.event_id = row[0].as<std::string>();
      e.source = row[1].as<std::string>();
      e.aggregate_id = row[2].as<std::string>();
      e.event_type = row[3].as<std::string>();
      e.sequence = row[4].as<std::int64_t>();
      e.occurred_at = from_us(row[5].as<std::int64_t>());
      e.published = row[6].as<bool>();
      e.parked = row[7].as<bool>();
      e.last_error = row[8].as<std::string>();
      emitted.push_back(std::move(e));
    }
  }
  std::map<std::string, std::string> decided;
  std::set<std::string> waiting;  // parked as early, waiting for a predecessor
  {
    pqxx::read_transaction tx(*service);
    constexpr std::size_t kChunk = 10'000;
    for (std::size_t i = 0; i < emitted.size(); i += kChunk) {
      std::vector<std::string> ids;
      for (std::size_t k = i; k < std::min(emitted.size(), i + kChunk); ++k) ids.push_back(emitted[k].event_id);
      for (const auto& row : tx.exec_params(
               "SELECT event_id::text, outcome FROM oss.processed_events WHERE event_id = ANY($1::uuid[])",
               pg::array_literal(ids)))
        decided[row[0].as<std::string>()] = row[1].as<std::string>();
      for (const auto& row : tx.exec_params(
               "SELECT event_id::text FROM oss.early_events WHERE event_id = ANY($1::uuid[])", pg::array_literal(ids)))
        waiting.insert(row[0].as<std::string>());
    }
  }
  const auto report = reconcile::compare(emitted, decided, now, grace, waiting);
  std::size_t decided_total = 0;
  for (const auto& [o, n] : report.decided_by_outcome) decided_total += n;
  if (f.on("json")) {
    std::size_t shown = 0;
    for (const auto& p : report.problems) {
      if (shown++ >= limit) break;
      std::cout << nlohmann::json{{"event_id", p.event.event_id},    {"state", reconcile::to_string(p.state)},
                                  {"source", p.event.source},        {"aggregate_id", p.event.aggregate_id},
                                  {"sequence", p.event.sequence},    {"event_type", p.event.event_type},
                                  {"occurred_at", core::format_rfc3339(p.event.occurred_at)},
                                  {"last_error", p.event.last_error}}
                       .dump()
                << "\n";
    }
    std::cout << nlohmann::json{{"summary", true},
                                {"emitted", report.emitted},
                                {"decided", report.decided_by_outcome},
                                {"in_flight", report.in_flight},
                                {"waiting", report.waiting},
                                {"problems", report.problems.size()},
                                {"ok", report.ok()}}
                     .dump()
              << "\n";
  } else {
    if (!report.problems.empty()) {
      std::cout << fmt::format("{:<36}  {:<11}  {:<8}  {:<16}  {:>8}  {:<24}  {}\n", "EVENT_ID", "STATE", "SOURCE",
                               "AGGREGATE", "SEQUENCE", "OCCURRED_AT", "LAST_ERROR");
      std::size_t shown = 0;
      for (const auto& p : report.problems) {
        if (shown++ >= limit) break;
        std::cout << fmt::format("{:<36}  {:<11}  {:<8}  {:<16}  {:>8}  {:<24}  {}\n", p.event.event_id,
                                 reconcile::to_string(p.state), p.event.source, p.event.aggregate_id, p.event.sequence,
                                 core::format_rfc3339(p.event.occurred_at), p.event.last_error);
      }
    }
    std::cout << fmt::format("emitted {} since {}; decided {} (", report.emitted,
                             core::format_rfc3339(now - std::chrono::duration_cast<std::chrono::microseconds>(since)),
                             decided_total);
    bool first = true;
    for (const auto& [o, n] : report.decided_by_outcome) {
      std::cout << (first ? "" : ", ") << o << " " << n;
      first = false;
    }
    std::cout << fmt::format("); in flight {}; waiting for a predecessor {}; missing {}\n", report.in_flight,
                             report.waiting, report.problems.size());
    std::cout << (report.ok() ? "OK: nothing lost\n" : "PROBLEM: events emitted but not decided (see above)\n");
  }
  return report.ok() ? 0 : 1;
}

}  // namespace oss::app
