// The invariant checker on a real run: orders walk the shipped workflow through two producers,
// two relays and a service; oss-verify (the program) and read_snapshot()+check() (the library)
// agree that nothing was lost or doubled. Then the databases are damaged the ways the checker
// exists to catch (a lost event, a double application, a broken chain, a forbidden transition)
// and each one is reported.
#include <pqxx/pqxx>

#include "oss/verify/verify.hpp"
#include "pipeline_fixture.hpp"

namespace oss::e2e {
namespace {

using namespace std::chrono_literals;
using testing::sql_exec;

class Verify : public Pipeline {
 protected:
  /// Runs oss-verify; returns (exit code, JSON document or null).
  std::pair<int, nlohmann::json> run_verify(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--db", oss_, "--source-db", crm_, "--source-db", mes_, "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    testing::Process p(testing::bin("oss-verify"), args);
    const auto rc = p.wait(120s);
    EXPECT_TRUE(rc.has_value()) << "oss-verify did not finish";
    const auto log = p.log();
    nlohmann::json doc;
    const auto at = log.find("{\"");
    if (at != std::string::npos) doc = nlohmann::json::parse(log.substr(at, log.find('\n', at) - at));
    return {rc.value_or(-1), doc};
  }

  /// Emits the walk of `n` orders through the shipped workflow (crm and mes in turn, each step
  /// one transaction in its producer's database), plus one event CRM is not allowed to send.
  void emit_orders(int n) {
    const std::vector<std::pair<std::string, std::string>> steps = {
        {"crm", "SUBMITTED"}, {"mes", "PRICE_CALCULATED"}, {"crm", "PRICE_CONFIRMED"},
        {"mes", "MANUFACTURING_STARTED"}, {"mes", "SHIPPED"}, {"crm", "DELIVERED"}};
    pqxx::connection crm(crm_), mes(mes_);
    for (const auto& [source, status] : steps)
      for (int i = 0; i < n; ++i) {
        pqxx::work tx(source == "crm" ? crm : mes);
        tx.exec(emit_sql(source, "ORD-V" + std::to_string(i), status));
        tx.commit();
      }
    pqxx::work tx(crm);
    tx.exec(emit_sql("crm", "ORD-V0", "PRICE_CALCULATED"));  // stale/forbidden: decided, not applied
    tx.commit();
    emitted_ = static_cast<std::size_t>(n) * steps.size() + 1;
  }
  std::size_t emitted_ = 0;
};

std::size_t kind_count(const nlohmann::json& doc, const std::string& kind) {
  const auto& k = doc.at("violations_by_kind");
  return k.contains(kind) ? k.at(kind).get<std::size_t>() : 0;
}

TEST_F(Verify, CleanRunPassesAndEachDamageIsReported) {
  emit_orders(20);
  auto relay1 = start_relay(crm_);
  auto relay2 = start_relay(mes_);
  auto service = start_service(http_port_);
  ASSERT_TRUE(wait_ready(http_port_)) << service->log();

  // The program waits for the pipeline to drain, then passes.
  auto [rc, doc] = run_verify({"--wait", "90s"});
  ASSERT_EQ(rc, 0) << doc.dump(2);
  EXPECT_TRUE(doc.at("ok").get<bool>());
  EXPECT_EQ(doc.at("emitted").get<std::size_t>(), emitted_);
  EXPECT_EQ(doc.at("decided").at("applied").get<std::size_t>(), 20u * 6);
  EXPECT_EQ(doc.at("orders").get<std::size_t>(), 20u);
  EXPECT_EQ(doc.at("history_rows").get<std::size_t>(), 20u * 6);

  // The library gives the same verdict.
  const auto snap = verify::read_snapshot(oss_, {crm_, mes_});
  const auto verdict = verify::check(snap, domain::shipped_workflow());
  EXPECT_TRUE(verdict.ok()) << verify::format_text(verdict);
  EXPECT_EQ(verdict.emitted, emitted_);

  service->signal(SIGTERM);
  relay1->signal(SIGTERM);
  relay2->signal(SIGTERM);
  ASSERT_EQ(service->wait(30s), 0);
  ASSERT_EQ(relay1->wait(30s), 0);
  ASSERT_EQ(relay2->wait(30s), 0);

  // 1. A lost event: committed in the outbox and marked published, never decided by the service.
  sql_exec(crm_, emit_sql("crm", "ORD-V3", "CANCELLED"));
  sql_exec(crm_, "UPDATE outbox.events SET published_at = now() WHERE published_at IS NULL");
  // Younger than a grace period it is in flight ...
  std::tie(rc, doc) = run_verify({"--grace", "10m"});
  EXPECT_EQ(rc, 0) << doc.dump(2);
  EXPECT_EQ(doc.at("in_flight").get<int>(), 1);
  // ... without one it is lost.
  std::tie(rc, doc) = run_verify();
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(kind_count(doc, "lost"), 1u) << doc.dump(2);
  EXPECT_EQ(doc.at("violations_total").get<int>(), 1);
  // The same event parked by the service as early (oss.early_events, ADR 0004) has arrived and
  // waits for a predecessor: not lost, counted as waiting.
  const auto lost_id = testing::sql_scalar(
      crm_, "SELECT event_id::text FROM outbox.all_events WHERE aggregate_id = 'ORD-V3' "
            "AND payload->>'status' = 'CANCELLED'");
  sql_exec(oss_, "INSERT INTO oss.early_events (event_id, order_id, source, sequence, event_type, body, next_retry_at) "
                 "VALUES ('" + lost_id + "', 'ORD-V3', 'crm', 99, 'order.status_changed', '{}', now() + interval '1 hour')");
  std::tie(rc, doc) = run_verify();
  EXPECT_EQ(rc, 0) << doc.dump(2);
  EXPECT_EQ(doc.at("waiting").get<int>(), 1) << doc.dump(2);
  sql_exec(oss_, "DELETE FROM oss.early_events");

  // 2. A double application (the unique index that normally prevents it dropped for the test).
  sql_exec(oss_, "DROP INDEX oss.status_history_event_idx");
  sql_exec(oss_,
           "INSERT INTO oss.status_history (order_id, from_status, to_status, event_id, source, sequence, occurred_at) "
           "SELECT order_id, 'DELIVERED', to_status, event_id, source, sequence, occurred_at FROM oss.status_history "
           "WHERE order_id = 'ORD-V5' AND to_status = 'SHIPPED'");
  sql_exec(oss_, "UPDATE oss.orders SET status = 'SHIPPED' WHERE order_id = 'ORD-V5'");
  // 3. A broken chain: ORD-V7's row into PRICE_CONFIRMED claims to leave SUBMITTED.
  sql_exec(oss_, "UPDATE oss.status_history SET from_status = 'FROZEN' "
                 "WHERE order_id = 'ORD-V7' AND to_status = 'PRICE_CONFIRMED'");
  // 4. A forbidden transition: ORD-V9 jumped from SUBMITTED straight to SHIPPED.
  sql_exec(oss_, "DELETE FROM oss.status_history WHERE order_id = 'ORD-V9' "
                 "AND to_status IN ('PRICE_CALCULATED', 'PRICE_CONFIRMED', 'MANUFACTURING_STARTED')");
  sql_exec(oss_, "UPDATE oss.status_history SET from_status = 'SUBMITTED' "
                 "WHERE order_id = 'ORD-V9' AND to_status = 'SHIPPED'");
  sql_exec(oss_, "DELETE FROM oss.processed_events WHERE order_id = 'ORD-V9' AND outcome = 'applied' "
                 "AND sequence IN (1, 2) AND source = 'mes'");  // the removed mes steps become lost too
  std::tie(rc, doc) = run_verify({"--limit", "100"});
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(kind_count(doc, "lost"), 3u) << doc.dump(2);
  EXPECT_EQ(kind_count(doc, "applied_twice"), 1u) << doc.dump(2);
  EXPECT_GE(kind_count(doc, "broken_chain"), 1u) << doc.dump(2);
  EXPECT_GE(kind_count(doc, "forbidden_transition"), 2u) << doc.dump(2);  // V5's and V9's
  bool named_v9 = false;
  for (const auto& v : doc.at("violations"))
    if (v.at("kind") == "forbidden_transition" && v.at("order_id") == "ORD-V9") named_v9 = true;
  EXPECT_TRUE(named_v9) << doc.dump(2);
}

TEST_F(Verify, BadUsageAndUnreachableDatabases) {
  {
    testing::Process p(testing::bin("oss-verify"), {"--db", oss_});
    EXPECT_EQ(p.wait(30s), 2) << p.log();
    EXPECT_NE(p.log().find("--source-db"), std::string::npos) << p.log();
  }
  {
    testing::Process p(testing::bin("oss-verify"), {"--db", oss_, "--source-db", crm_, "--grace", "soon"});
    EXPECT_EQ(p.wait(30s), 2) << p.log();
  }
  {
    // Nothing listens on port 1.
    testing::Process p(testing::bin("oss-verify"),
                       {"--db", oss_, "--source-db", "postgresql://postgres@127.0.0.1:1/none"});
    EXPECT_EQ(p.wait(30s), 3) << p.log();
  }
  {
    // An empty run (nothing emitted, nothing decided) holds every invariant.
    testing::Process p(testing::bin("oss-verify"), {"--db", oss_, "--source-db", crm_, "--source-db", mes_});
    EXPECT_EQ(p.wait(30s), 0) << p.log();
    EXPECT_NE(p.log().find("OK: nothing lost"), std::string::npos) << p.log();
  }
}

}  // namespace
}  // namespace oss::e2e
