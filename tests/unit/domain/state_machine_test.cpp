#include "domain/state_machine.hpp"

#include <gtest/gtest.h>

#include <string>

#include "domain/workflow.hpp"
#include "shipped_edges.hpp"

namespace oss::domain {
namespace {

const Workflow& wf() { return shipped_workflow(); }

std::optional<OrderState> at(std::string status) {
  return OrderState{std::move(status), core::TimePoint{}, 1};
}

void expect(const Decision& d, Outcome outcome, std::optional<DeadLetterReason> reason,
            bool advances, const std::string& detail) {
  EXPECT_EQ(to_string(d.outcome), to_string(outcome)) << d.detail;
  EXPECT_EQ(d.reason, reason) << d.detail;
  EXPECT_EQ(d.advances_sequence, advances) << d.detail;
  EXPECT_EQ(d.detail, detail);
}

TEST(OutcomeStringsTest, RoundTrip) {
  EXPECT_EQ(to_string(Outcome::applied), "applied");
  EXPECT_EQ(to_string(Outcome::duplicate), "duplicate");
  EXPECT_EQ(to_string(Outcome::stale), "stale");
  EXPECT_EQ(to_string(Outcome::early), "early");
  EXPECT_EQ(to_string(Outcome::dead_letter), "dead_letter");
  for (const auto r : {DeadLetterReason::malformed, DeadLetterReason::unknown_status,
                       DeadLetterReason::source_not_allowed, DeadLetterReason::invalid_transition,
                       DeadLetterReason::retries_exhausted}) {
    EXPECT_EQ(dead_letter_reason_from_string(to_string(r)), r);
  }
  EXPECT_EQ(to_string(DeadLetterReason::source_not_allowed), "source_not_allowed");
  EXPECT_EQ(to_string(DeadLetterReason::retries_exhausted), "retries_exhausted");
  EXPECT_EQ(dead_letter_reason_from_string("nope"), std::nullopt);
  EXPECT_EQ(dead_letter_reason_from_string(""), std::nullopt);
}

// Every shipped transition, made by its source in sequence, is applied.
TEST(DecideTest, EveryShippedTransitionIsApplied) {
  for (const auto& s : testing::shipped_edges()) {
    const auto order = s.from ? at(*s.from) : std::nullopt;
    const Decision d = decide(wf(), order, 4, s.source, 5, s.to);
    EXPECT_EQ(d.outcome, Outcome::applied) << s.from.value_or("-") << " -> " << s.to << ": " << d.detail;
    EXPECT_EQ(d.reason, std::nullopt);
    EXPECT_TRUE(d.advances_sequence);
  }
  expect(decide(wf(), at("FROZEN"), std::nullopt, "crm", 1, "PRICE_CONFIRMED"), Outcome::applied,
         std::nullopt, true, "FROZEN → PRICE_CONFIRMED by crm");
  expect(decide(wf(), std::nullopt, std::nullopt, "crm", 1, "SUBMITTED"), Outcome::applied,
         std::nullopt, true, "order created in SUBMITTED by crm");
  // The SLA scanner's automatic freeze goes through the same rules.
  expect(decide(wf(), at("PRICE_CALCULATED"), std::nullopt, "sla", 1, "FROZEN"), Outcome::applied,
         std::nullopt, true, "PRICE_CALCULATED → FROZEN by sla");
}

TEST(DecideTest, HappyPathEndToEnd) {
  // crm and mes keep separate sequences; simulate the order's life.
  std::optional<OrderState> order;
  std::optional<std::int64_t> crm;
  std::optional<std::int64_t> mes;
  const auto step = [&](const char* source, std::int64_t seq, const char* target) {
    auto& last = std::string_view(source) == "crm" ? crm : mes;
    const Decision d = decide(wf(), order, last, source, seq, target);
    ASSERT_EQ(d.outcome, Outcome::applied) << target << ": " << d.detail;
    last = seq;
    order = OrderState{target, {}, order ? order->version + 1 : 1};
  };
  step("crm", 1, "SUBMITTED");
  step("mes", 1, "PRICE_CALCULATED");
  step("crm", 2, "PRICE_CONFIRMED");
  step("mes", 2, "MANUFACTURING_STARTED");
  step("mes", 3, "SHIPPED");
  step("crm", 3, "DELIVERED");
  EXPECT_EQ(order->version, 6);
}

// (a)
TEST(DecideTest, AlreadyConsumedSequenceIsStale) {
  expect(decide(wf(), at("SHIPPED"), 7, "mes", 7, "SHIPPED"), Outcome::stale, std::nullopt, false,
         "sequence 7 already consumed from mes (last 7)");
  expect(decide(wf(), at("SHIPPED"), 7, "mes", 3, "PRICE_CALCULATED"), Outcome::stale, std::nullopt,
         false, "sequence 3 already consumed from mes (last 7)");
  // (a) comes before (b): an old sequence with an unknown status is still just stale.
  expect(decide(wf(), at("SHIPPED"), 7, "mes", 2, "SHIPPD"), Outcome::stale, std::nullopt, false,
         "sequence 2 already consumed from mes (last 7)");
}

// (b)
TEST(DecideTest, UnknownStatusIsDeadLettered) {
  expect(decide(wf(), at("MANUFACTURING_STARTED"), 2, "mes", 3, "SHIPPD"), Outcome::dead_letter,
         DeadLetterReason::unknown_status, true,
         "status 'SHIPPD' is not defined in workflow orders-default");
  expect(decide(wf(), std::nullopt, std::nullopt, "crm", 1, "submitted"), Outcome::dead_letter,
         DeadLetterReason::unknown_status, true,
         "status 'submitted' is not defined in workflow orders-default");
  // With earlier sequences still missing the sequence does not advance, so they are not
  // mistaken for stale when they arrive.
  expect(decide(wf(), at("MANUFACTURING_STARTED"), 2, "mes", 9, "SHIPPD"), Outcome::dead_letter,
         DeadLetterReason::unknown_status, false,
         "status 'SHIPPD' is not defined in workflow orders-default");
}

// (c)
TEST(DecideTest, SequenceGapIsEarly) {
  expect(decide(wf(), at("PRICE_CONFIRMED"), 2, "mes", 4, "SHIPPED"), Outcome::early, std::nullopt,
         false, "sequence 4 from mes arrived before its predecessors; waiting for mes sequence 3");
  expect(decide(wf(), std::nullopt, std::nullopt, "crm", 2, "SUBMITTED"), Outcome::early,
         std::nullopt, false,
         "sequence 2 from crm arrived before its predecessors; waiting for crm sequence 1");
  // A gap wins even when the status itself would be a fine next step.
  EXPECT_EQ(decide(wf(), at("PRICE_CONFIRMED"), 2, "mes", 4, "MANUFACTURING_STARTED").outcome,
            Outcome::early);
}

// (d)
TEST(DecideTest, UnknownOrder) {
  expect(decide(wf(), std::nullopt, std::nullopt, "mes", 1, "SUBMITTED"), Outcome::dead_letter,
         DeadLetterReason::source_not_allowed, true,
         "source mes may not create an order in SUBMITTED (workflow orders-default)");
  expect(decide(wf(), std::nullopt, std::nullopt, "mes", 1, "PRICE_CALCULATED"), Outcome::early,
         std::nullopt, false,
         "order unknown; waiting for its creation before applying PRICE_CALCULATED from mes");
  EXPECT_EQ(decide(wf(), std::nullopt, 3, "crm", 4, "CANCELLED").outcome, Outcome::early);
}

// (e)
TEST(DecideTest, SameStatusIsStaleButConsumesTheSequence) {
  expect(decide(wf(), at("SUBMITTED"), std::nullopt, "crm", 1, "SUBMITTED"), Outcome::stale,
         std::nullopt, true, "order already in SUBMITTED");
  expect(decide(wf(), at("DELIVERED"), 5, "crm", 6, "DELIVERED"), Outcome::stale, std::nullopt,
         true, "order already in DELIVERED");
}

// (f)
TEST(DecideTest, AllowedTransitionFromTheWrongSource) {
  expect(decide(wf(), at("SUBMITTED"), 1, "crm", 2, "PRICE_CALCULATED"), Outcome::dead_letter,
         DeadLetterReason::source_not_allowed, true,
         "source crm may not make the transition SUBMITTED → PRICE_CALCULATED (workflow "
         "orders-default)");
  EXPECT_EQ(decide(wf(), at("SHIPPED"), 1, "mes", 2, "CANCELLED").reason,
            DeadLetterReason::source_not_allowed);
  EXPECT_EQ(decide(wf(), at("SHIPPED"), 1, "mes", 2, "DELIVERED").reason,
            DeadLetterReason::source_not_allowed);
  EXPECT_EQ(decide(wf(), at("SUBMITTED"), 1, "sla", 2, "CANCELLED").reason,
            DeadLetterReason::source_not_allowed);
  EXPECT_EQ(decide(wf(), at("PRICE_CALCULATED"), 1, "operator", 2, "FROZEN").reason,
            DeadLetterReason::source_not_allowed);
}

// (g)
TEST(DecideTest, AheadOfTheOrderIsEarly) {
  expect(decide(wf(), at("PRICE_CALCULATED"), 1, "mes", 2, "MANUFACTURING_STARTED"), Outcome::early,
         std::nullopt, false,
         "order is at PRICE_CALCULATED and MANUFACTURING_STARTED is further ahead; waiting for the "
         "statuses in between");
  EXPECT_EQ(decide(wf(), at("SUBMITTED"), 1, "crm", 2, "DELIVERED").outcome, Outcome::early);
  EXPECT_EQ(decide(wf(), at("FROZEN"), 1, "mes", 2, "SHIPPED").outcome, Outcome::early);
  // Reachability does not care about the source: the wrong source is judged when it is next.
  EXPECT_EQ(decide(wf(), at("SUBMITTED"), 1, "mes", 2, "PRICE_CONFIRMED").outcome, Outcome::early);
}

// (h)
TEST(DecideTest, BehindTheOrderIsStale) {
  expect(decide(wf(), at("SHIPPED"), 1, "mes", 2, "PRICE_CALCULATED"), Outcome::stale, std::nullopt,
         true, "order already at SHIPPED, past PRICE_CALCULATED");
  expect(decide(wf(), at("CANCELLED"), 1, "mes", 2, "MANUFACTURING_STARTED"), Outcome::stale,
         std::nullopt, true, "order already at CANCELLED, past MANUFACTURING_STARTED");
  EXPECT_EQ(decide(wf(), at("PRICE_CONFIRMED"), 1, "crm", 2, "SUBMITTED").outcome, Outcome::stale);
  EXPECT_EQ(decide(wf(), at("PRICE_CONFIRMED"), 1, "crm", 2, "FROZEN").outcome, Outcome::stale);
}

// (i)
TEST(DecideTest, ForbiddenTransitionIsDeadLettered) {
  expect(decide(wf(), at("DELIVERED"), 1, "crm", 2, "CANCELLED"), Outcome::dead_letter,
         DeadLetterReason::invalid_transition, true,
         "DELIVERED → CANCELLED is not allowed by workflow orders-default (DELIVERED is terminal)");
  expect(decide(wf(), at("CANCELLED"), 1, "crm", 2, "DELIVERED"), Outcome::dead_letter,
         DeadLetterReason::invalid_transition, true,
         "CANCELLED → DELIVERED is not allowed by workflow orders-default (CANCELLED is terminal)");
  // In the shipped workflow every pair is related; two terminal branches are not.
  const Workflow branches = parse_workflow(nlohmann::json::parse(R"({
    "name": "branches",
    "statuses": [{"name": "NEW", "initial": true}, {"name": "LEFT", "terminal": true},
                 {"name": "RIGHT", "terminal": true}],
    "transitions": [{"from": null, "to": "NEW", "sources": ["crm"]},
                    {"from": "NEW", "to": "LEFT", "sources": ["crm"]},
                    {"from": "NEW", "to": "RIGHT", "sources": ["crm"]}]})"));
  expect(decide(branches, at("LEFT"), 1, "crm", 2, "RIGHT"), Outcome::dead_letter,
         DeadLetterReason::invalid_transition, true,
         "LEFT → RIGHT is not allowed by workflow branches (LEFT is terminal)");
  // The order's stored status vanished from the workflow (file edited).
  expect(decide(branches, at("OLD"), 1, "crm", 2, "LEFT"), Outcome::dead_letter,
         DeadLetterReason::invalid_transition, true,
         "OLD → LEFT is not allowed by workflow branches (the order's current status OLD is not "
         "defined in this workflow)");
}

TEST(DecideTest, CyclesPreferEarly) {
  const Workflow cyc = parse_workflow(nlohmann::json::parse(R"({
    "name": "cyc",
    "statuses": [{"name": "A", "initial": true}, {"name": "B"}, {"name": "C"}],
    "transitions": [{"from": null, "to": "A", "sources": ["x"]},
                    {"from": "A", "to": "B", "sources": ["x"]},
                    {"from": "B", "to": "C", "sources": ["x"]},
                    {"from": "C", "to": "A", "sources": ["x"]}]})"));
  EXPECT_EQ(decide(cyc, at("A"), 1, "x", 2, "C").outcome, Outcome::early);
  EXPECT_EQ(decide(cyc, at("C"), 1, "x", 2, "A").outcome, Outcome::applied);
}

TEST(DecideCorrectionTest, AllowedTransitionsIgnoreSources) {
  expect(decide_correction(wf(), at("SUBMITTED"), "PRICE_CALCULATED"), Outcome::applied,
         std::nullopt, false, "operator correction SUBMITTED → PRICE_CALCULATED");
  expect(decide_correction(wf(), at("FROZEN"), "PRICE_CONFIRMED"), Outcome::applied, std::nullopt,
         false, "operator correction FROZEN → PRICE_CONFIRMED");
  expect(decide_correction(wf(), std::nullopt, "SUBMITTED"), Outcome::applied, std::nullopt, false,
         "operator correction (new order) → SUBMITTED");
}

TEST(DecideCorrectionTest, Refusals) {
  expect(decide_correction(wf(), at("DELIVERED"), "CANCELLED"), Outcome::dead_letter,
         DeadLetterReason::invalid_transition, false,
         "DELIVERED → CANCELLED is not allowed by workflow orders-default (DELIVERED is terminal)");
  expect(decide_correction(wf(), at("SUBMITTED"), "SHIPPED"), Outcome::dead_letter,
         DeadLetterReason::invalid_transition, false,
         "SUBMITTED → SHIPPED is not allowed by workflow orders-default");
  expect(decide_correction(wf(), at("SHIPPED"), "SHIPPED"), Outcome::dead_letter,
         DeadLetterReason::invalid_transition, false, "order is already in SHIPPED");
  expect(decide_correction(wf(), std::nullopt, "SHIPPED"), Outcome::dead_letter,
         DeadLetterReason::invalid_transition, false,
         "order unknown, and workflow orders-default does not create orders in SHIPPED");
  expect(decide_correction(wf(), at("SHIPPED"), "LOST"), Outcome::dead_letter,
         DeadLetterReason::unknown_status, false,
         "status 'LOST' is not defined in workflow orders-default");
}

}  // namespace
}  // namespace oss::domain
