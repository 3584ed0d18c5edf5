// The SLA engine's guarantees on real servers: each rung once per stay (also with concurrent
// passes and a running service), resolution on leaving a status, automatic transitions audited
// by `sla`, business calendars across a weekend and a holiday, source silence, and `stuck`.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "domain/envelope.hpp"
#include "domain/workflow.hpp"
#include "oss/core/time.hpp"
#include "oss/testing/support.hpp"
#include "store/order_store.hpp"

namespace oss {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::sql_scalar;

long count(const std::string& url, const std::string& sql) { return std::stol(sql_scalar(url, sql)); }

core::TimePoint at(const std::string& s) { return core::parse_rfc3339(s); }
std::string fmt(core::TimePoint t) { return core::format_rfc3339(t); }

class Sla : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = testing::fresh_database("sla");
    testing::Process migrate(testing::bin("order-status-service"), {"migrate", "--db", db_});
    ASSERT_EQ(migrate.wait(30s), 0) << migrate.log();
    store_ = std::make_unique<store::PgOrderStore>(pg::ConnectOptions{db_, "sla-test"});
  }
  void TearDown() override {
    store_.reset();
    std::error_code ignored;  // already gone is fine
    for (const auto& f : files_) std::filesystem::remove(f, ignored);
    // Servers may outlive the test (a developer's long-lived ones): the database goes after a
    // pass, and stays after a failure for a look.
    if (HasFailure() || db_.empty()) return;
    try {
      testing::drop_database(db_);
    } catch (const std::exception& e) {
      std::cerr << "[sla] dropping " << db_ << ": " << e.what() << "\n";  // best effort: the name is unique
    }
  }

  /// Applies one status change as the consumer would.
  void event(const std::string& order_id, const std::string& source, const std::string& status,
             core::TimePoint occurred_at, const domain::Workflow& wf = domain::shipped_workflow()) {
    domain::Envelope e;
    char id[64];
    ASSERT_EQ(std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012ld", ++event_counter_), 36);
    e.event_id = id;
    e.source = source;
    e.aggregate_type = "order";
    e.aggregate_id = order_id;
    e.sequence = ++sequences_[{order_id, source}];
    e.event_type = "order.status_changed";
    e.occurred_at = occurred_at;
    e.payload = {{"status", status}};
    processing::InboundEvent in;
    in.parsed = e;
    in.body = domain::to_json(e).dump();
    in.routing_key = source + ".order.status_changed";
    in.message_id = e.event_id;
    const auto plan = store_->apply(wf, {in}, 8);
    ASSERT_EQ(plan.results.at(0).outcome, domain::Outcome::applied) << order_id << " → " << status << ": "
                                                                    << plan.results.at(0).detail;
  }

  /// Runs `order-status-service <args>`; returns (exit code, output).
  std::pair<int, std::string> cli(std::vector<std::string> args) {
    args.emplace_back("--log-level");
    args.emplace_back("error");
    testing::Process p(testing::bin("order-status-service"), args);
    const auto rc = p.wait(60s);
    return {rc.value_or(-1), p.log()};
  }
  std::unique_ptr<testing::Process> start_escalate(core::TimePoint when, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"escalate", "--once", "--db", db_, "--at", fmt(when), "--log-level", "error"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<testing::Process>(testing::bin("order-status-service"), args);
  }
  void escalate(core::TimePoint when, const std::vector<std::string>& extra = {}) {
    auto p = start_escalate(when, extra);
    ASSERT_EQ(p->wait(60s), 0) << p->log();
  }
  long escalations(const std::string& where = "TRUE") {
    return count(db_, "SELECT count(*) FROM oss.escalations WHERE " + where);
  }
  long notifications(const std::string& type) {
    return count(db_, "SELECT count(*) FROM outbox.all_events WHERE event_type = '" + type + "'");
  }
  std::string status_of(const std::string& id) {
    return sql_scalar(db_, "SELECT status FROM oss.orders WHERE order_id = '" + id + "'");
  }
  std::string write_file(const std::string& name, const std::string& text) {
    std::string path = "/tmp/" + testing::unique_name(name) + ".json";
    std::ofstream(path) << text;
    files_.push_back(path);
    return path;
  }

  std::string db_;
  std::unique_ptr<store::PgOrderStore> store_;
  long event_counter_ = 0;
  std::map<std::pair<std::string, std::string>, std::int64_t> sequences_;
  std::vector<std::string> files_;  // written by write_file, removed at TearDown
};


/// The shipped workflow's main line: (status, source). A function, so that building the vector
/// happens inside a test (where an exception is a failure), not at static initialisation.
const std::vector<std::pair<std::string, std::string>>& main_line() {
  static const std::vector<std::pair<std::string, std::string>> line = {{"SUBMITTED", "crm"},
                                                                        {"PRICE_CALCULATED", "mes"},
                                                                        {"PRICE_CONFIRMED", "crm"},
                                                                        {"MANUFACTURING_STARTED", "mes"},
                                                                        {"SHIPPED", "mes"}};
  return line;
}

TEST_F(Sla, EachShippedStatusEscalatesOncePerLevelEvenWithConcurrentPasses) {
  const auto t0 = at("2026-03-02T08:00:00Z");
  const auto& line = main_line();
  for (std::size_t i = 0; i < line.size(); ++i) {
    for (int n = 0; n < 20; ++n) {
      const std::string id = "ORD-" + line[i].first + "-" + std::to_string(n);
      // Earlier statuses left a minute apart; the target status entered at t0.
      for (std::size_t k = 0; k <= i; ++k)
        event(id, line[k].second, line[k].first, t0 - std::chrono::minutes(static_cast<int>(i - k)));
    }
  }
  // Two passes as of t0 + 59 min: nothing is due yet.
  escalate(t0 + 59min);
  EXPECT_EQ(escalations(), 0);
  // Four passes started together as of t0 + 1h: SUBMITTED's warning only, each once.
  {
    std::vector<std::unique_ptr<testing::Process>> passes;
    passes.reserve(4);
    for (int i = 0; i < 4; ++i) passes.push_back(start_escalate(t0 + 1h));
    for (auto& p : passes) ASSERT_EQ(p->wait(60s), 0) << p->log();
  }
  EXPECT_EQ(escalations(), 20);
  EXPECT_EQ(escalations("status = 'SUBMITTED' AND level = 'warning'"), 20);
  // As of t0 + 21d: every status's warning, SUBMITTED's critical; PRICE_CALCULATED is FROZEN by then.
  {
    std::vector<std::unique_ptr<testing::Process>> passes;
    passes.reserve(3);
    for (int i = 0; i < 3; ++i) passes.push_back(start_escalate(t0 + std::chrono::hours(21 * 24)));
    for (auto& p : passes) ASSERT_EQ(p->wait(60s), 0) << p->log();
  }
  escalate(t0 + std::chrono::hours(21 * 24));  // and once more: nothing new
  EXPECT_EQ(escalations("status = 'SUBMITTED' AND level = 'critical'"), 20);
  for (const auto& [status, source] : line)
    EXPECT_EQ(escalations("status = '" + status + "' AND level = 'warning'"), 20) << status;
  EXPECT_EQ(escalations(), 20 * 6);
  EXPECT_EQ(count(db_, "SELECT count(*) FROM (SELECT kind, subject, stay_started_at, level FROM oss.escalations "
                       "GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d"),
            0);
  EXPECT_EQ(notifications("order.escalation_raised"), escalations());
  // The ones raised as of t0+21d carry their own due times.
  EXPECT_EQ(sql_scalar(db_, "SELECT min(due_at) = '2026-03-23T08:00:00Z' FROM oss.escalations WHERE status = 'MANUFACTURING_STARTED'"),
            "t");
  // PRICE_CALCULATED orders were frozen at t0 + 7d; their warning is resolved.
  EXPECT_EQ(count(db_, "SELECT count(*) FROM oss.orders WHERE status = 'FROZEN'"), 20);
  EXPECT_EQ(escalations("status = 'PRICE_CALCULATED' AND resolved_at IS NULL"), 0);
}

TEST_F(Sla, AnOrderThatMovesOnResolvesItsEscalationsAndRaisesNoNewOnes) {
  const auto t0 = at("2026-03-02T08:00:00Z");
  event("ORD-1", "crm", "SUBMITTED", t0);
  escalate(t0 + 2h);
  ASSERT_EQ(escalations("subject = 'ORD-1' AND resolved_at IS NULL"), 1);
  event("ORD-1", "mes", "PRICE_CALCULATED", t0 + 3h);
  EXPECT_EQ(escalations("subject = 'ORD-1' AND resolved_at IS NULL"), 0);
  EXPECT_EQ(sql_scalar(db_, "SELECT resolution FROM oss.escalations WHERE subject = 'ORD-1'"),
            "order moved to PRICE_CALCULATED");
  EXPECT_EQ(notifications("order.escalation_resolved"), 1);
  // SUBMITTED's critical rung (24h) never comes; PRICE_CALCULATED's warning is at t0+3h+2d.
  escalate(t0 + 25h);
  EXPECT_EQ(escalations(), 1);
  escalate(t0 + 3h + 48h);
  EXPECT_EQ(escalations("status = 'PRICE_CALCULATED' AND level = 'warning' AND resolved_at IS NULL"), 1);
  EXPECT_EQ(escalations(), 2);
}

TEST_F(Sla, PriceCalculatedPastSevenDaysIsFrozenBySlaAndThenFollowsTheWorkflow) {
  const auto t0 = at("2026-03-02T08:00:00Z");
  event("ORD-7", "crm", "SUBMITTED", t0 - 1h);
  event("ORD-7", "mes", "PRICE_CALCULATED", t0);
  escalate(t0 + std::chrono::hours(7 * 24) - 1s);
  EXPECT_EQ(status_of("ORD-7"), "PRICE_CALCULATED");
  escalate(t0 + std::chrono::hours(7 * 24) + 1s);
  EXPECT_EQ(status_of("ORD-7"), "FROZEN");
  const auto history = store_->history("ORD-7");
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[2].source, "sla");
  EXPECT_EQ(history[2].actor, "sla");
  EXPECT_EQ(history[2].from_status, "PRICE_CALCULATED");
  EXPECT_EQ(history[2].to_status, "FROZEN");
  EXPECT_FALSE(history[2].event_id.has_value());
  EXPECT_EQ(history[2].reason, "customer did not confirm the price in time");
  EXPECT_EQ(fmt(history[2].occurred_at), fmt(t0 + std::chrono::hours(7 * 24)));
  EXPECT_EQ(count(db_, "SELECT count(*) FROM outbox.all_events WHERE event_type = 'order.status_changed' "
                       "AND payload->>'status' = 'FROZEN' AND payload->>'source' = 'sla'"),
            1);
  // The 2d warning was raised before the freeze and resolved by it.
  EXPECT_EQ(escalations("subject = 'ORD-7' AND level = 'warning' AND resolution = 'order moved to FROZEN'"), 1);
  // A second pass does nothing more; a late event is handled by the workflow from FROZEN.
  escalate(t0 + std::chrono::hours(30 * 24));
  EXPECT_EQ(store_->history("ORD-7").size(), 3u);
  event("ORD-7", "crm", "PRICE_CONFIRMED", t0 + std::chrono::hours(8 * 24));
  EXPECT_EQ(status_of("ORD-7"), "PRICE_CONFIRMED");
}

// The SLA engine's automatic transition may be what an order's parked early events wait for:
// they become due at once and go through the queue (decided_version NULL), where the consumer
// decides them against the new status, instead of at their next retry. Another order's stay.
TEST_F(Sla, AnAutomaticTransitionMakesTheOrdersParkedEventsDueAtOnceThroughTheQueue) {
  const auto t0 = at("2026-03-02T08:00:00Z");
  event("ORD-PK", "crm", "SUBMITTED", t0);
  event("ORD-PK", "mes", "PRICE_CALCULATED", t0 + 1h);
  event("ORD-OTHER", "crm", "SUBMITTED", t0);
  const auto park = [&](const std::string& id, const std::string& order) {
    testing::sql_exec(db_, "INSERT INTO oss.early_events (event_id, order_id, source, sequence, event_type, body, "
                           "  waiting_for, next_retry_at, decided_version) "
                           "VALUES ('" + id + "', '" + order + "', 'crm', 5, 'order.status_changed', '{}', 'test', "
                           "        clock_timestamp() + interval '1 hour', 2)");
  };
  park("00000000-0000-4000-8000-00000000aa01", "ORD-PK");
  park("00000000-0000-4000-8000-00000000aa02", "ORD-OTHER");
  escalate(t0 + std::chrono::hours(8 * 24));  // PRICE_CALCULATED → FROZEN after 7 days
  ASSERT_EQ(status_of("ORD-PK"), "FROZEN");
  EXPECT_EQ(sql_scalar(db_, "SELECT (next_retry_at <= clock_timestamp())::text || ' ' || "
                            "coalesce(decided_version::text, 'null') FROM oss.early_events WHERE order_id = 'ORD-PK'"),
            "true null");
  EXPECT_EQ(sql_scalar(db_, "SELECT (next_retry_at > clock_timestamp())::text || ' ' || "
                            "coalesce(decided_version::text, 'null') FROM oss.early_events WHERE order_id = 'ORD-OTHER'"),
            "true 2");
}

TEST_F(Sla, OperatorTransitionIsAuditedAndResolvesEscalations) {
  const auto t0 = at("2026-03-02T08:00:00Z");
  event("ORD-OP", "crm", "SUBMITTED", t0);
  escalate(t0 + 2h);
  const auto wrong = store_->apply_transition(domain::shipped_workflow(), "ORD-OP", "SHIPPED", "operator", "ops-anna",
                                              "typo", t0 + 3h);
  EXPECT_NE(wrong.decision.outcome, domain::Outcome::applied);
  ASSERT_TRUE(wrong.order.has_value());
  EXPECT_EQ(wrong.order->status, "SUBMITTED");
  const auto r = store_->apply_transition(domain::shipped_workflow(), "ORD-OP", "CANCELLED", "operator", "ops-anna",
                                          "customer called", t0 + 3h);
  ASSERT_EQ(r.decision.outcome, domain::Outcome::applied) << r.decision.detail;
  EXPECT_EQ(r.order->status, "CANCELLED");
  EXPECT_EQ(r.order->version, 2);
  EXPECT_EQ(escalations("subject = 'ORD-OP' AND resolved_at IS NULL"), 0);
  const auto h = store_->history("ORD-OP");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[1].source, "operator");
  EXPECT_EQ(h[1].actor, "ops-anna");
  EXPECT_EQ(h[1].reason, "customer called");
  EXPECT_EQ(sql_scalar(db_, "SELECT next_escalation_at IS NULL AND auto_transition_at IS NULL FROM oss.orders "
                            "WHERE order_id = 'ORD-OP'"),
            "t");
  // sla may make only the status's auto transition.
  EXPECT_NE(store_->apply_transition(domain::shipped_workflow(), "ORD-OP", "FROZEN", "sla", "sla", "x", t0 + 4h)
                .decision.outcome,
            domain::Outcome::applied);
}

constexpr const char* kCalendarWorkflow = R"({
  "name": "calendar-test",
  "statuses": [
    {"name": "SUBMITTED", "initial": true},
    {"name": "PRICE_CALCULATED", "sla": "1h", "calendar": "berlin-office",
     "escalations": [{"level": "warning", "after": "1h"}, {"level": "critical", "after": "8h"}]},
    {"name": "DONE", "terminal": true}
  ],
  "transitions": [
    {"from": null, "to": "SUBMITTED", "sources": ["crm"]},
    {"from": "SUBMITTED", "to": "PRICE_CALCULATED", "sources": ["mes"]},
    {"from": "PRICE_CALCULATED", "to": "DONE", "sources": ["crm"]}
  ],
  "calendars": {
    "berlin-office": {"time_zone": "Europe/Berlin",
                      "working_hours": {"mon": ["09:00-17:00"], "tue": ["09:00-17:00"], "wed": ["09:00-17:00"],
                                        "thu": ["09:00-17:00"], "fri": ["09:00-17:00"]},
                      "holidays": ["2026-12-25", "2026-12-28"]}
  },
  "source_silence": [{"source": "mes", "window": "2h", "calendar": "berlin-office", "level": "critical"}]
})";

TEST_F(Sla, BusinessHoursSlaAcrossAWeekendAndAHoliday) {
  const auto wf = domain::parse_workflow_text(kCalendarWorkflow);
  const std::string file = write_file("calendar-workflow", kCalendarWorkflow);
  // Thursday 24 Dec 2026, 16:30 in Berlin (CET, UTC+1): 30 working minutes left that day;
  // Friday 25th is a holiday, then the weekend, Monday 28th a holiday: due Tuesday 09:30 CET.
  const auto entered = at("2026-12-24T15:30:00Z");
  event("ORD-CAL", "crm", "SUBMITTED", entered - 1h, wf);
  event("ORD-CAL", "mes", "PRICE_CALCULATED", entered, wf);
  EXPECT_EQ(sql_scalar(db_, "SELECT sla_due_at = '2026-12-29T08:30:00Z' FROM oss.orders WHERE order_id = 'ORD-CAL'"), "t");
  escalate(at("2026-12-27T12:00:00Z"), {"--workflow", file});  // Sunday: wall-clock 1h long gone
  EXPECT_EQ(escalations("kind = 'order_sla'"), 0);
  const auto [rc, out] = cli({"stuck", "--db", db_, "--at", "2026-12-28T12:00:00Z", "--json"});
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out.find("ORD-CAL"), std::string::npos) << out;
  escalate(at("2026-12-29T08:30:00Z"), {"--workflow", file});
  EXPECT_EQ(escalations("kind = 'order_sla' AND level = 'warning'"), 1);
  // critical after 8 working hours: 30 minutes on Thursday + 7h30 on Tuesday → Tuesday 16:30 CET.
  escalate(at("2026-12-29T15:29:59Z"), {"--workflow", file});
  EXPECT_EQ(escalations("kind = 'order_sla' AND level = 'critical'"), 0);
  escalate(at("2026-12-29T15:30:00Z"), {"--workflow", file});
  EXPECT_EQ(escalations("kind = 'order_sla' AND level = 'critical'"), 1);
  // A bad time zone is bad configuration.
  auto bad = json::parse(kCalendarWorkflow);
  bad["calendars"]["berlin-office"]["time_zone"] = "Europe/Atlantis";
  const auto [rc2, out2] = cli({"escalate", "--once", "--db", db_, "--workflow", write_file("bad", bad.dump())});
  EXPECT_EQ(rc2, 2) << out2;
  EXPECT_NE(out2.find("Europe/Atlantis"), std::string::npos) << out2;
}

TEST_F(Sla, SourceSilenceIsRaisedDuringWorkingHoursAndResolvedWhenTheSourceEmits) {
  auto doc = json::parse(kCalendarWorkflow);
  doc["source_silence"] = json::parse(R"([{"source": "mes", "window": "2h", "level": "critical"}])");
  const auto wf = domain::parse_workflow(doc);
  const std::string file = write_file("silence-workflow", doc.dump());
  const auto now = core::SystemClock().now();
  event("ORD-S", "crm", "SUBMITTED", now - 1h, wf);
  event("ORD-S", "mes", "PRICE_CALCULATED", now, wf);  // mes emitted now
  escalate(now + 1h, {"--workflow", file});
  EXPECT_EQ(escalations("kind = 'source_silence'"), 0);
  escalate(now + 3h, {"--workflow", file});
  escalate(now + 4h, {"--workflow", file});
  EXPECT_EQ(escalations("kind = 'source_silence' AND subject = 'mes' AND level = 'critical' AND resolved_at IS NULL"), 1);
  EXPECT_EQ(notifications("source.silence_raised"), 1);
  // mes emits again: resolved in the same transaction as the event.
  event("ORD-S2", "crm", "SUBMITTED", now, wf);
  event("ORD-S2", "mes", "PRICE_CALCULATED", now + 1min, wf);
  EXPECT_EQ(escalations("kind = 'source_silence' AND resolved_at IS NULL"), 0);
  EXPECT_EQ(notifications("source.silence_resolved"), 1);
  // crm has no rule: never tracked.
  EXPECT_EQ(count(db_, "SELECT count(*) FROM oss.source_activity WHERE source = 'crm'"), 0);
}

TEST_F(Sla, UsageAndDependencyErrors) {
  EXPECT_EQ(cli({"escalate", "--db", db_}).first, 2);  // --once is required
  EXPECT_EQ(cli({"escalate", "--once", "--db", db_, "--at", "yesterday"}).first, 2);
  EXPECT_EQ(cli({"stuck", "--db", db_, "--older-than", "forever"}).first, 2);
  EXPECT_EQ(cli({"escalate", "--once", "--db", "postgresql://nobody:x@127.0.0.1:1/none"}).first, 3);
  const auto [rc, help] = cli({"stuck", "--help"});
  EXPECT_EQ(rc, 0);
  EXPECT_NE(help.find("OSS_STUCK_OLDER_THAN"), std::string::npos);
  EXPECT_NE(cli({"escalate", "--help"}).second.find("OSS_ESCALATE_AT"), std::string::npos);
}

// A running service (scanner every 200 ms) and cron passes at the same moment raise each rung
// once; `stuck --json` and GET /v1/orders?stuck=true list the same orders the same way.
TEST_F(Sla, RunningServiceAndCronPassesTogetherAndStuckAgreesWithTheApi) {
  const auto now = core::SystemClock().now();
  const auto t0 = core::TimePoint(std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch())) - 30h;
  for (int n = 0; n < 150; ++n) event("ORD-R" + std::to_string(n), "crm", "SUBMITTED", t0 + std::chrono::minutes(n));
  event("ORD-FRESH", "crm", "SUBMITTED", now);
  const std::string id = testing::unique_name("sla");
  const auto port = testing::free_port();
  testing::Process service(
      testing::bin("order-status-service"),
      {"run", "--db", db_, "--amqp", testing::amqp_url(), "--http", "127.0.0.1:" + std::to_string(port), "--exchange",
       "orders.events." + id, "--queue", "order-status-service.events." + id, "--dlq", "order-status-service.dlq." + id,
       "--notifications-exchange", "orders.notifications." + id, "--notifications-tail",
       "order-status-service.notifications." + id, "--scan-interval", "200ms"});
  std::vector<std::unique_ptr<testing::Process>> passes;
  passes.reserve(3);
  for (int i = 0; i < 3; ++i) passes.push_back(start_escalate(core::SystemClock().now()));
  for (auto& p : passes) ASSERT_EQ(p->wait(60s), 0) << p->log();
  ASSERT_TRUE(testing::wait_until([&] { return escalations() == 300; }, 30s)) << escalations() << "\n" << service.log();
  std::this_thread::sleep_for(1s);  // a few more scanner passes: still nothing twice
  EXPECT_EQ(escalations(), 300);
  EXPECT_EQ(notifications("order.escalation_raised"), 300);
  ASSERT_TRUE(testing::wait_until([&] { return testing::http("GET", port, "/readyz").status == 200; }, 30s));
  const std::string metrics = testing::http("GET", port, "/metrics").body;
  EXPECT_EQ(testing::metric(metrics, "oss_escalations_open{level=\"critical\",status=\"SUBMITTED\"}"), 150) << metrics;

  const auto [rc, out] = cli({"stuck", "--db", db_, "--json"});
  ASSERT_EQ(rc, 0) << out;
  std::vector<json> cli_orders;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] == '{') cli_orders.push_back(json::parse(line));
  std::vector<json> api_orders;
  std::string cursor;
  for (;;) {
    const auto r = testing::http("GET", port, "/v1/orders?stuck=true&limit=60" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(r.status, 200) << r.body;
    const auto page = json::parse(r.body);
    for (const auto& o : page.at("orders")) api_orders.push_back(o);
    if (page.at("next_cursor").is_null()) break;
    cursor = page.at("next_cursor").get<std::string>();
  }
  ASSERT_EQ(cli_orders.size(), 150u);
  EXPECT_EQ(cli_orders, api_orders);
  EXPECT_EQ(cli_orders.front().at("order_id"), "ORD-R0");  // oldest breach first
  service.signal(SIGTERM);
  EXPECT_EQ(service.wait(30s), 0) << service.log();
}

}  // namespace
}  // namespace oss
