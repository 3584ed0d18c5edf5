// oss::verify::check() on hand-made snapshots: a clean run passes, and each kind of violation
// (lost, applied twice, broken chain, forbidden transition, ...) is caught and named.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "oss/verify/verify.hpp"

namespace oss::verify {
namespace {

using namespace std::chrono_literals;

// 2026-11-23T10:00:00Z
constexpr core::TimePoint kT0{std::chrono::sys_days{std::chrono::year{2026} / 11 / 23} + std::chrono::hours{10}};

/// A snapshot built the way a correct run leaves the databases: each producer event emitted,
/// decided, and (when applied) one history row continuing its order's chain.
struct FakeRun {
  Snapshot s;
  int next_id = 1;
  int next_event = 1;
  std::map<std::pair<std::string, std::string>, std::int64_t> seq;  // (order, source)

  FakeRun() { s.taken_at = kT0 + 1h; }

  std::string new_event_id() {
    char buf[40];
    if (std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", next_event++) != 36)
      throw std::logic_error("event id is not 36 characters");
    return buf;
  }
  /// A producer event that the service decided with `outcome`; returns its id.
  std::string emit(const std::string& source, const std::string& order, const std::string& outcome) {
    ProducerEvent e;
    e.event_id = new_event_id();
    e.source = source;
    e.aggregate_id = order;
    e.event_type = "order.status_changed";
    e.sequence = ++seq[{order, source}];
    e.occurred_at = kT0 + std::chrono::seconds(next_event);
    e.published = true;
    s.emitted.push_back(e);
    if (!outcome.empty()) s.decisions.push_back({e.event_id, order, source, e.sequence, outcome});
    return e.event_id;
  }
  /// An applied producer transition: emitted, decided applied, a history row, orders updated.
  std::string apply(const std::string& source, const std::string& order, const std::string& to) {
    auto id = emit(source, order, "applied");
    history(order, to, source, id, seq[{order, source}]);
    return id;
  }
  void history(const std::string& order, const std::string& to, const std::string& source,
               std::optional<std::string> event_id, std::optional<std::int64_t> sequence) {
    HistoryRow h;
    h.id = next_id++;
    h.order_id = order;
    if (auto it = s.orders.find(order); it != s.orders.end()) h.from_status = it->second;
    h.to_status = to;
    h.event_id = std::move(event_id);
    h.source = source;
    h.sequence = sequence;
    h.occurred_at = h.applied_at = kT0;
    s.history.push_back(h);
    s.orders[order] = to;
  }
  /// A full walk of the shipped workflow, with a stale duplicate-ish event and a dead letter.
  void happy_order(const std::string& order) {
    apply("crm", order, "SUBMITTED");
    apply("mes", order, "PRICE_CALCULATED");
    apply("crm", order, "PRICE_CONFIRMED");
    apply("mes", order, "MANUFACTURING_STARTED");
    apply("mes", order, "SHIPPED");
    apply("crm", order, "DELIVERED");
  }
  Verdict verdict(Options o = {}) const { return check(s, domain::shipped_workflow(), o); }
};

std::size_t count(const Verdict& v, ViolationKind k) {
  const auto m = v.count_by_kind();
  const auto it = m.find(k);
  return it == m.end() ? 0 : it->second;
}

TEST(VerifyCheck, CleanRunPasses) {
  FakeRun r;
  r.happy_order("ORD-1");
  r.happy_order("ORD-2");
  r.emit("crm", "ORD-2", "stale");
  const auto dl = r.emit("mes", "ORD-2", "dead_lettered");
  r.s.dead_letters.push_back({dl, "ORD-2", "mes", "source_not_allowed", false});
  r.emit("crm", "ORD-3", "ignored");
  // Operator correction and an SLA auto transition follow the correction rules.
  r.apply("crm", "ORD-4", "SUBMITTED");
  r.apply("mes", "ORD-4", "PRICE_CALCULATED");
  r.history("ORD-4", "FROZEN", "sla", std::nullopt, std::nullopt);
  r.history("ORD-4", "PRICE_CONFIRMED", "operator", std::nullopt, std::nullopt);
  const auto v = r.verdict();
  EXPECT_TRUE(v.ok()) << format_text(v);
  EXPECT_EQ(v.emitted, 6u * 2 + 1 + 1 + 1 + 2);
  EXPECT_EQ(v.decided_by_outcome.at("applied"), 14u);
  EXPECT_EQ(v.decided_by_outcome.at("stale"), 1u);
  EXPECT_EQ(v.decided_by_outcome.at("dead_lettered"), 1u);
  EXPECT_EQ(v.orders, 3u);
}

TEST(VerifyCheck, LostEventIsCaught) {
  FakeRun r;
  r.happy_order("ORD-1");
  const auto lost = r.emit("crm", "ORD-1", "");  // emitted, never decided
  const auto v = r.verdict();
  ASSERT_EQ(v.violations.size(), 1u) << format_text(v);
  EXPECT_EQ(v.violations[0].kind, ViolationKind::lost);
  EXPECT_EQ(v.violations[0].event_id, lost);
  EXPECT_EQ(v.violations[0].order_id, "ORD-1");
}

TEST(VerifyCheck, UndecidedEventWithinGraceIsInFlightNotLost) {
  FakeRun r;
  r.happy_order("ORD-1");
  r.emit("crm", "ORD-1", "");
  r.s.taken_at = r.s.emitted.back().occurred_at + 2s;
  EXPECT_FALSE(r.verdict().ok());
  const auto v = r.verdict({.grace = 10s});
  EXPECT_TRUE(v.ok()) << format_text(v);
  EXPECT_EQ(v.in_flight, 1u);
}

TEST(VerifyCheck, EarlyEventParkedByTheServiceIsWaitingNotLost) {
  FakeRun r;
  r.happy_order("ORD-1");
  const auto early = r.emit("mes", "ORD-9", "");  // arrived, parked in oss.early_events
  r.s.waiting.insert(early);
  const auto v = r.verdict();  // no grace: a drained run
  EXPECT_TRUE(v.ok()) << format_text(v);
  EXPECT_EQ(v.waiting, 1u);
  EXPECT_EQ(v.in_flight, 0u);
  EXPECT_NE(format_text(v).find("waiting for a predecessor 1"), std::string::npos) << format_text(v);
  EXPECT_NE(format_json(v).find("\"waiting\":1"), std::string::npos) << format_json(v);
  // The same event not parked is lost.
  r.s.waiting.clear();
  EXPECT_EQ(count(r.verdict(), ViolationKind::lost), 1u);
}

TEST(VerifyCheck, ParkedEventIsLostWhateverTheGrace) {
  FakeRun r;
  r.emit("crm", "ORD-1", "");
  r.s.emitted.back().parked = true;
  r.s.emitted.back().published = false;
  r.s.taken_at = r.s.emitted.back().occurred_at;
  const auto v = r.verdict({.grace = 1h});
  ASSERT_EQ(count(v, ViolationKind::lost), 1u) << format_text(v);
  EXPECT_NE(v.violations[0].detail.find("parked"), std::string::npos);
}

TEST(VerifyCheck, DoubleApplicationIsCaught) {
  FakeRun r;
  r.apply("crm", "ORD-1", "SUBMITTED");
  const auto ev = r.apply("mes", "ORD-1", "PRICE_CALCULATED");
  // The same event applied again (as if dedup failed), after another valid step.
  r.apply("crm", "ORD-1", "PRICE_CONFIRMED");
  r.s.orders["ORD-1"] = "PRICE_CALCULATED";
  r.history("ORD-1", "PRICE_CALCULATED", "mes", ev, 1);
  r.s.history.back().from_status = "PRICE_CONFIRMED";
  const auto v = r.verdict();
  EXPECT_EQ(count(v, ViolationKind::applied_twice), 1u) << format_text(v);
  // Its side effects are caught too: a transition backwards and a sequence applied again.
  EXPECT_EQ(count(v, ViolationKind::forbidden_transition), 1u);
  EXPECT_EQ(count(v, ViolationKind::sequence_not_increasing), 1u);
}

TEST(VerifyCheck, AppliedAndDeadLetteredIsCaught) {
  FakeRun r;
  const auto ev = r.apply("crm", "ORD-1", "SUBMITTED");
  r.s.decisions.back().outcome = "dead_lettered";
  r.s.dead_letters.push_back({ev, "ORD-1", "crm", "invalid_transition", false});
  auto v = r.verdict();
  EXPECT_GE(count(v, ViolationKind::applied_and_dead_lettered), 1u) << format_text(v);

  // Replayed and then applied: fine.
  r.s.decisions.back().outcome = "applied";
  r.s.dead_letters.back().replayed = true;
  v = r.verdict();
  EXPECT_TRUE(v.ok()) << format_text(v);

  // Applied while its dead letter is still open: not fine.
  r.s.dead_letters.back().replayed = false;
  v = r.verdict();
  EXPECT_EQ(count(v, ViolationKind::applied_and_dead_lettered), 1u) << format_text(v);
}

TEST(VerifyCheck, DeadLetterWithoutReasonIsCaught) {
  FakeRun r;
  r.emit("crm", "ORD-1", "dead_lettered");
  auto v = r.verdict();
  EXPECT_EQ(count(v, ViolationKind::dead_letter_without_reason), 1u) << format_text(v);
  r.s.dead_letters.push_back({r.s.emitted.back().event_id, "ORD-1", "crm", "", false});
  v = r.verdict();
  EXPECT_EQ(count(v, ViolationKind::dead_letter_without_reason), 1u) << format_text(v);
}

TEST(VerifyCheck, DecisionAndHistoryDisagreeingIsCaught) {
  FakeRun r;
  r.apply("crm", "ORD-1", "SUBMITTED");
  r.s.decisions.back().outcome = "stale";
  auto v = r.verdict();
  EXPECT_EQ(count(v, ViolationKind::history_without_applied), 1u) << format_text(v);

  FakeRun q;
  q.apply("crm", "ORD-1", "SUBMITTED");
  q.emit("mes", "ORD-1", "applied");  // decided applied, no history row
  v = q.verdict();
  EXPECT_EQ(count(v, ViolationKind::applied_without_history), 1u) << format_text(v);
}

TEST(VerifyCheck, BrokenChainIsCaught) {
  FakeRun r;
  r.happy_order("ORD-1");
  // Row 3 claims to leave SUBMITTED although the order was PRICE_CALCULATED.
  r.s.history[2].from_status = "SUBMITTED";
  auto v = r.verdict();
  EXPECT_EQ(count(v, ViolationKind::broken_chain), 1u) << format_text(v);

  // A history that does not start with a creation.
  FakeRun q;
  q.apply("crm", "ORD-1", "SUBMITTED");
  q.apply("mes", "ORD-1", "PRICE_CALCULATED");
  q.s.history.erase(q.s.history.begin());
  q.s.decisions.erase(q.s.decisions.begin());
  q.s.emitted.erase(q.s.emitted.begin());
  v = q.verdict();
  EXPECT_EQ(count(v, ViolationKind::broken_chain), 1u) << format_text(v);
}

TEST(VerifyCheck, ForbiddenTransitionIsCaught) {
  FakeRun r;
  r.apply("crm", "ORD-1", "SUBMITTED");
  r.apply("mes", "ORD-1", "SHIPPED");  // skips the price and manufacturing steps
  auto v = r.verdict();
  ASSERT_EQ(count(v, ViolationKind::forbidden_transition), 1u) << format_text(v);

  // Allowed transition, wrong source: CRM does not calculate prices.
  FakeRun q;
  q.apply("crm", "ORD-1", "SUBMITTED");
  q.apply("crm", "ORD-1", "PRICE_CALCULATED");
  v = q.verdict();
  ASSERT_EQ(count(v, ViolationKind::forbidden_transition), 1u) << format_text(v);
  EXPECT_NE(v.violations[0].detail.find("source crm"), std::string::npos);

  // Operators may correct along any allowed transition, but not out of a terminal status;
  // sla may only make auto transitions.
  FakeRun o;
  o.happy_order("ORD-1");
  o.history("ORD-1", "CANCELLED", "operator", std::nullopt, std::nullopt);
  o.apply("crm", "ORD-2", "SUBMITTED");
  o.history("ORD-2", "PRICE_CALCULATED", "sla", std::nullopt, std::nullopt);
  v = o.verdict();
  EXPECT_EQ(count(v, ViolationKind::forbidden_transition), 2u) << format_text(v);
}

TEST(VerifyCheck, SequencesGoingBackwardsAreCaught) {
  FakeRun r;
  r.apply("crm", "ORD-1", "SUBMITTED");
  r.apply("mes", "ORD-1", "PRICE_CALCULATED");
  r.apply("crm", "ORD-1", "PRICE_CONFIRMED");
  std::swap(r.s.history[0].sequence, r.s.history[2].sequence);  // crm 2 applied before crm 1
  const auto v = r.verdict();
  EXPECT_EQ(count(v, ViolationKind::sequence_not_increasing), 1u) << format_text(v);
}

TEST(VerifyCheck, CurrentStatusMustMatchTheLastHistoryRow) {
  FakeRun r;
  r.happy_order("ORD-1");
  r.s.orders["ORD-1"] = "SHIPPED";
  r.s.orders["ORD-GHOST"] = "SUBMITTED";
  const auto v = r.verdict();
  EXPECT_EQ(count(v, ViolationKind::status_mismatch), 2u) << format_text(v);
}

TEST(VerifyCheck, OutputNamesEveryViolation) {
  FakeRun r;
  r.apply("crm", "ORD-1", "SUBMITTED");
  r.emit("crm", "ORD-1", "");
  const auto v = r.verdict();
  const auto text = format_text(v);
  EXPECT_NE(text.find("VIOLATED: 1 violation(s): lost 1"), std::string::npos) << text;
  const auto json = nlohmann::json::parse(format_json(v));
  EXPECT_FALSE(json.at("ok").get<bool>());
  EXPECT_EQ(json.at("violations_by_kind").at("lost"), 1);
  EXPECT_EQ(json.at("violations").at(0).at("order_id"), "ORD-1");
}

}  // namespace
}  // namespace oss::verify
