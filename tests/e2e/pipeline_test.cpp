// The walking skeleton's guarantees, shown from outside on real servers:
// committed events arrive exactly once in effect, rolled-back ones never, crashes lose nothing.
#include <atomic>
#include <csignal>
#include <pqxx/pqxx>
#include <thread>

#include "oss/amqp/connection.hpp"
#include "pipeline_fixture.hpp"

namespace oss::e2e {
namespace {

using namespace std::chrono_literals;
using testing::sql_scalar;

long count(const std::string& url, const std::string& sql) { return std::stol(sql_scalar(url, sql)); }

TEST_F(Pipeline, ConcurrentProducersCommittedOrdersArriveRolledBackNever) {
  auto service = start_service(http_port_);
  auto relay_crm = start_relay(crm_);
  auto relay_mes = start_relay(mes_);
  ASSERT_TRUE(wait_ready(http_port_)) << service->log();

  constexpr int kOrders = 1000;
  constexpr int kThreads = 8;
  // Expected status per order: "" = never committed.
  std::vector<std::string> expected(kOrders);
  std::vector<std::thread> producers;
  producers.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      pqxx::connection crm(crm_), mes(mes_);
      for (int i = t; i < kOrders; i += kThreads) {
        const std::string id = "ORD-" + std::to_string(i);
        {
          pqxx::work tx(crm);
          tx.exec(emit_sql("crm", id, "SUBMITTED"));
          if (i % 10 == 3) {
            tx.abort();  // the business change failed: the event must never exist
            continue;
          }
          tx.commit();
        }
        expected[static_cast<std::size_t>(i)] = "SUBMITTED";
        if (i % 20 == 4) {
          pqxx::work tx(mes);
          tx.exec(emit_sql("mes", id, "PRICE_CALCULATED"));
          tx.abort();
        }
        if (i % 2 == 0) {
          pqxx::work tx(mes);
          tx.exec(emit_sql("mes", id, "PRICE_CALCULATED"));
          tx.commit();
          expected[static_cast<std::size_t>(i)] = "PRICE_CALCULATED";
        }
      }
    });
  }
  for (auto& p : producers) p.join();

  long committed = 0, priced = 0;
  for (const auto& e : expected) {
    committed += e.empty() ? 0 : 1;
    priced += e == "PRICE_CALCULATED" ? 1 : 0;
  }
  ASSERT_EQ(committed, 900);
  ASSERT_TRUE(testing::wait_until(
      [&] {
        return count(oss_, "SELECT count(*) FROM oss.status_history") == committed + priced;
      },
      90s))
      << "history rows: " << sql_scalar(oss_, "SELECT count(*) FROM oss.status_history") << "\n" << service->log();

  for (int i = 0; i < kOrders; ++i) {
    const std::string id = "ORD-" + std::to_string(i);
    const auto o = order(id);
    const auto& want = expected[static_cast<std::size_t>(i)];
    if (want.empty()) {
      EXPECT_FALSE(o.has_value()) << id << " was rolled back but exists";
      continue;
    }
    ASSERT_TRUE(o.has_value()) << id;
    EXPECT_EQ(o->at("status"), want) << id;
    const auto h = testing::http("GET", http_port_, "/v1/orders/" + id + "/history");
    ASSERT_EQ(h.status, 200);
    const auto history = nlohmann::json::parse(h.body).at("history");
    ASSERT_EQ(history.size(), want == "SUBMITTED" ? 1u : 2u) << id;
    EXPECT_EQ(history[0].at("to"), "SUBMITTED");
    EXPECT_EQ(history[0].at("source"), "crm");
    EXPECT_TRUE(history[0].at("from").is_null());
    if (want == "PRICE_CALCULATED") {
      EXPECT_EQ(history[1].at("from"), "SUBMITTED");
      EXPECT_EQ(history[1].at("source"), "mes");
    }
  }
  EXPECT_EQ(count(oss_, "SELECT count(*) FROM oss.dead_letters"), 0);
  // Every committed event left the outboxes and was confirmed.
  EXPECT_EQ(count(crm_, "SELECT count(*) FROM outbox.events WHERE published_at IS NULL"), 0);
  EXPECT_EQ(count(mes_, "SELECT count(*) FROM outbox.events WHERE published_at IS NULL"), 0);
  EXPECT_EQ(count(crm_, "SELECT count(*) FROM outbox.all_events"), committed);
  // One notification per applied transition in the service's own outbox (outbox.emit_many),
  // with gapless per-order sequences in the order the transitions were applied.
  EXPECT_EQ(count(oss_, "SELECT count(*) FROM outbox.all_events WHERE event_type = 'order.status_changed'"),
            committed + priced);
  EXPECT_EQ(count(oss_, "SELECT count(*) FROM (SELECT aggregate_id FROM outbox.all_events GROUP BY aggregate_id "
                        "HAVING max(sequence) <> count(*) OR min(sequence) <> 1) gaps"),
            0);
  EXPECT_EQ(count(oss_, "SELECT count(*) FROM outbox.all_events e WHERE e.sequence = 2 AND e.payload->>'status' <> "
                        "'PRICE_CALCULATED'"),
            0);
}

TEST_F(Pipeline, SameEventDeliveredTwiceIsAppliedOnce) {
  auto service = start_service(http_port_);
  ASSERT_TRUE(wait_ready(http_port_)) << service->log();
  amqp::ConnectionOptions options;
  options.url = amqp_;
  amqp::Connection conn(options);
  conn.enable_confirms();
  const nlohmann::json body = {{"event_id", "6f1c7a40-1111-4a5b-8c9d-000000000001"},
                               {"source", "crm"},
                               {"aggregate_type", "order"},
                               {"aggregate_id", "ORD-TWICE"},
                               {"sequence", 1},
                               {"event_type", "order.status_changed"},
                               {"occurred_at", "2026-11-22T18:00:00.123Z"},
                               {"payload", {{"status", "SUBMITTED"}, {"actor", "anna"}}}};
  amqp::Message m;
  m.exchange = exchange_;
  m.routing_key = "crm.order.status_changed";
  m.body = body.dump();
  m.message_id = body["event_id"];
  m.type = "order.status_changed";
  conn.publish(m, true);
  const auto tag = conn.publish(m, true);
  const auto confirms = conn.wait_confirms(tag, 10s);
  ASSERT_EQ(confirms.acked.size(), 2u);
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto metrics = testing::http("GET", http_port_, "/metrics").body;
        return testing::metric(metrics, "oss_events_total{outcome=\"duplicate\"}") == 1 &&
               testing::metric(metrics, "oss_events_total{outcome=\"applied\"}") == 1;
      },
      30s))
      << testing::http("GET", http_port_, "/metrics").body;
  const auto h = testing::http("GET", http_port_, "/v1/orders/ORD-TWICE/history");
  ASSERT_EQ(h.status, 200);
  const auto history = nlohmann::json::parse(h.body).at("history");
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].at("event_id"), "6f1c7a40-1111-4a5b-8c9d-000000000001");
  EXPECT_EQ(history[0].at("occurred_at"), "2026-11-22T18:00:00.123Z");
  EXPECT_EQ(history[0].at("actor"), "anna");
  const auto o = order("ORD-TWICE");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->at("version"), 1);
  EXPECT_EQ(o->at("status_entered_at"), "2026-11-22T18:00:00.123Z");
  EXPECT_EQ(o->at("sla_due_at"), "2026-11-22T19:00:00.123Z");  // SUBMITTED: 1h
  EXPECT_EQ(o->at("breached"), true);
}

TEST_F(Pipeline, RelayKilledWhilePublishingLosesNothing) {
  constexpr int kOrders = 10000;
  // 20,000 events: each order created and then cancelled by the CRM (sequences 1 and 2).
  testing::sql_exec(crm_, "SELECT " + std::string("outbox.emit('crm', 'order', 'K-' || g, 'order.status_changed', "
                                                  "'{\"status\": \"SUBMITTED\"}'::jsonb) FROM generate_series(1, ") +
                              std::to_string(kOrders) + ") g");
  testing::sql_exec(crm_, "SELECT outbox.emit('crm', 'order', 'K-' || g, 'order.status_changed', "
                          "'{\"status\": \"CANCELLED\", \"reason\": \"customer withdrew\"}'::jsonb) "
                          "FROM generate_series(1, " + std::to_string(kOrders) + ") g");
  auto service = start_service(http_port_);
  ASSERT_TRUE(wait_ready(http_port_)) << service->log();

  auto relay = start_relay(crm_, {"--batch-size", "100"});
  ASSERT_TRUE(testing::wait_until(
      [&] { return count(crm_, "SELECT count(*) FROM outbox.all_events WHERE published_at IS NOT NULL") >= 2000; }, 60s))
      << relay->log();
  relay->signal(SIGKILL);
  ASSERT_EQ(relay->wait(10s), 128 + SIGKILL);
  const long published_at_kill = count(crm_, "SELECT count(*) FROM outbox.all_events WHERE published_at IS NOT NULL");
  ASSERT_LT(published_at_kill, 2 * kOrders) << "the relay finished before it could be killed";

  auto restarted = start_relay(crm_);
  ASSERT_TRUE(testing::wait_until(
      [&] { return count(crm_, "SELECT count(*) FROM outbox.events WHERE published_at IS NULL") == 0; }, 90s))
      << restarted->log();
  ASSERT_TRUE(testing::wait_until(
      [&] { return count(oss_, "SELECT count(*) FROM oss.orders WHERE status = 'CANCELLED'") == kOrders; }, 120s))
      << "cancelled: " << sql_scalar(oss_, "SELECT count(*) FROM oss.orders WHERE status = 'CANCELLED'") << "\n"
      << service->log();
  // Each transition applied exactly once, whatever the relay re-sent after the crash.
  EXPECT_EQ(count(oss_, "SELECT count(*) FROM oss.status_history"), 2 * kOrders);
  EXPECT_EQ(count(oss_, "SELECT count(*) FROM oss.processed_events WHERE outcome = 'applied'"), 2 * kOrders);
  EXPECT_EQ(count(oss_, "SELECT count(*) FROM oss.dead_letters"), 0);
  EXPECT_EQ(count(oss_, "SELECT count(DISTINCT order_id) FROM oss.status_history"), kOrders);
}

TEST_F(Pipeline, ProgramsStopCleanlyOnSigterm) {
  auto service = start_service(http_port_);
  auto relay = start_relay(crm_);
  ASSERT_TRUE(wait_ready(http_port_)) << service->log();
  testing::sql_exec(crm_, emit_sql("crm", "ORD-TERM", "SUBMITTED"));
  ASSERT_TRUE(testing::wait_until([&] { return order("ORD-TERM").has_value(); }, 30s)) << relay->log();
  relay->signal(SIGTERM);
  service->signal(SIGTERM);
  EXPECT_EQ(relay->wait(15s), 0) << relay->log();
  EXPECT_EQ(service->wait(15s), 0) << service->log();
  EXPECT_NE(service->log().find("order-status-service stopped"), std::string::npos);
}

TEST(Cli, BadUsageExits2AndUnreachableDependencyExits3) {
  using testing::Process;
  auto run = [](const std::string& prog, const std::vector<std::string>& args) {
    Process p(testing::bin(prog), args, {{"RELAY_DB_URL", ""}, {"OSS_DB_URL", ""}});
    const auto rc = p.wait(30s);
    return std::make_pair(rc.value_or(-1), p.log());
  };
  auto [rc1, log1] = run("outbox-relay", {"run", "--amqp", "amqp://guest:guest@127.0.0.1:1/%2f"});
  EXPECT_EQ(rc1, 2);
  EXPECT_NE(log1.find("--db"), std::string::npos) << log1;
  auto [rc2, log2] = run("outbox-relay", {"frobnicate"});
  EXPECT_EQ(rc2, 2);
  auto [rc3, log3] = run("order-status-service", {"migrate", "--db", "postgresql://postgres@127.0.0.1:1/none"});
  EXPECT_EQ(rc3, 3) << log3;
  EXPECT_NE(log3.find("cannot connect to the database"), std::string::npos) << log3;
  auto [rc4, log4] = run("order-status-service", {"run", "--db", "mysql://x", "--amqp", "amqp://a:b@127.0.0.1:1/"});
  EXPECT_EQ(rc4, 2) << log4;
  auto [rc5, log5] = run("outbox-relay", {"run", "--help"});
  EXPECT_EQ(rc5, 0);
  EXPECT_NE(log5.find("RELAY_AMQP_URL"), std::string::npos) << log5;
  auto [rc6, log6] = run("order-status-service",
                         {"run", "--db", testing::pg_base_url() + "/oss", "--amqp", "amqp://guest:guest@127.0.0.1:1/%2f",
                          "--workflow", "/nonexistent/workflow.json"});
  EXPECT_EQ(rc6, 2) << log6;
  EXPECT_NE(log6.find("/nonexistent/workflow.json"), std::string::npos) << log6;
}

}  // namespace
}  // namespace oss::e2e
