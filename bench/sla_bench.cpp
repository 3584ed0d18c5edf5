// sla_bench: the cost of one SLA/escalation pass grows with the orders due, not with all orders
// (docs/performance.md, "## SLA scan").
//
//   sla_bench --db URL [--orders 1000000] [--due 10000]
//
// URL must name an EMPTY database (it is migrated and filled). Orders are inserted with SQL in
// bulk (SUBMITTED, timers as PgOrderStore::apply stores them): `--due` of them entered 2 h
// before the evaluation instant (warning rung due), the rest 10 min before (nothing due). Then
// one pass (the same EscalationPass as `escalate --once`) runs, timed, followed by a second
// pass (nothing left to do) and the plan of the candidate query (EXPLAIN ANALYZE, BUFFERS).
// Prints a markdown table.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <pqxx/pqxx>
#include <string>

#include "domain/workflow.hpp"
#include "oss/pg/connection.hpp"
#include "oss/pg/migrate.hpp"
#include "oss/schema/migrations.hpp"
#include "sla/calendar.hpp"
#include "sla/engine.hpp"

namespace {

long scalar(pqxx::connection& c, const std::string& sql) {
  pqxx::nontransaction tx(c);
  return tx.exec(sql)[0][0].as<long>();
}

int run(int argc, char** argv) {
  std::string url;
  long orders = 1'000'000, due = 10'000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--db") url = v;
    else if (k == "--orders") orders = std::stol(v);
    else if (k == "--due") due = std::stol(v);
  }
  if (url.empty() || due > orders) {
    std::cerr << "usage: sla_bench --db URL-of-an-empty-database [--orders N] [--due M]\n";
    return 2;
  }
  auto conn = oss::pg::connect({url, "sla_bench", std::chrono::seconds(5), std::chrono::milliseconds(0)});
  oss::pg::migrate(*conn, "outbox", oss::schema::outbox_migrations());
  oss::pg::migrate(*conn, "oss", oss::schema::service_migrations());
  const auto at = oss::core::parse_rfc3339("2026-03-02T12:00:00Z");
  const auto fill_start = std::chrono::steady_clock::now();
  {
    pqxx::work tx(*conn);
    // i <= due: entered 2h before `at` (warning due at -1h); others 10 min before (due at +50 min).
    tx.exec_params(
        "INSERT INTO oss.orders (order_id, status, status_entered_at, sla_due_at, version, next_escalation_at, "
        "  next_escalation_level) "
        "SELECT 'ORD-' || lpad(i::text, 8, '0'), 'SUBMITTED', e, e + interval '1 hour', 1, e + interval '1 hour', 0 "
        "FROM (SELECT i, $1::timestamptz - CASE WHEN i % ($2::bigint / $3::bigint) = 0 AND i / ($2::bigint / $3::bigint) <= $3::bigint "
        "      THEN interval '2 hours' ELSE interval '10 minutes' END - (i % 1000) * interval '1 ms' AS e "
        "      FROM generate_series(1, $2::bigint) i) s",
        oss::core::format_rfc3339(at), std::to_string(orders), std::to_string(due));
    tx.commit();
  }
  {
    pqxx::nontransaction tx(*conn);
    tx.exec("VACUUM ANALYZE oss.orders");
  }
  const double fill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - fill_start).count();
  const long due_now = scalar(*conn, "SELECT count(*) FROM oss.orders WHERE least(next_escalation_at, auto_transition_at) <= '" +
                                         oss::core::format_rfc3339(at) + "'");
  std::string plan;
  {
    pqxx::nontransaction tx(*conn);
    for (const auto& r : tx.exec(
             "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) SELECT order_id FROM oss.orders "
             "WHERE (next_escalation_at IS NOT NULL OR auto_transition_at IS NOT NULL) "
             "AND least(next_escalation_at, auto_transition_at) <= '" + oss::core::format_rfc3339(at) +
             "' ORDER BY least(next_escalation_at, auto_transition_at), order_id LIMIT 500"))
      plan += "    " + r[0].as<std::string>() + "\n";
  }
  const long outbox_before = scalar(*conn, "SELECT count(*) FROM outbox.events");
  oss::sla::TimerRules rules(oss::domain::shipped_workflow(), {});
  oss::sla::EscalationPass pass(rules, *conn);
  const auto s1 = pass.run(at);
  const long escalations = scalar(*conn, "SELECT count(*) FROM oss.escalations");
  const long notes = scalar(*conn, "SELECT count(*) FROM outbox.events") - outbox_before;
  const auto s2 = pass.run(at);
  std::cout << "| orders | due | fill (s) | pass (s) | orders read by the range scan | orders updated | escalation rows inserted | notifications | second pass (s), orders due |\n"
            << "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            << "| " << orders << " | " << due_now << " | " << fill_s << " | " << s1.seconds << " | " << s1.orders_due
            << " | " << s1.orders_handled << " | " << escalations << " | " << notes << " | " << s2.seconds << ", "
            << s2.orders_due << " |\n\nFirst batch of the candidate query:\n\n" << plan;
  return (s1.escalations_raised == static_cast<std::size_t>(due) && s2.escalations_raised == 0) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "sla_bench: error: " << e.what() << "\n";
    return 1;
  }
}
