// plan_batch(): the pure decision for a batch of deliveries (CONTRACT "What the service does
// with each message"), driven by wire-format bodies against the shipped workflow.
#include "processing/batch_plan.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "domain/workflow.hpp"
#include "oss/core/time.hpp"

namespace oss::processing {
namespace {

using namespace std::chrono_literals;
using domain::DeadLetterReason;
using domain::Outcome;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr int kMaxAttempts = 5;

std::string uuid(int n) {
  char buf[40];
  if (std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", n) != 36)
    throw std::invalid_argument("uuid: " + std::to_string(n) + " has more than 12 digits");
  return buf;
}

core::TimePoint t(int minutes) {
  return core::parse_rfc3339("2026-11-22T18:00:00Z") + std::chrono::minutes(minutes);
}

struct Ev {
  int id = 1;
  std::string source = "crm";
  std::string order = "ORD-1";
  std::int64_t sequence = 1;
  std::string status = "SUBMITTED";
  int minute = 0;  // occurred_at = base + minutes
  int attempt = 0;
  std::string event_type = "order.status_changed";
  std::string aggregate_type = "order";
};

InboundEvent from_body(std::string body, std::string routing_key, std::string message_id, int attempt = 0) {
  InboundEvent in;
  in.parsed = domain::parse_envelope(body);
  in.body = std::move(body);
  in.routing_key = std::move(routing_key);
  in.message_id = std::move(message_id);
  in.attempt = attempt;
  return in;
}

InboundEvent event(const Ev& e) {
  nlohmann::json payload = nlohmann::json::object();
  if (e.event_type == "order.status_changed") {
    payload = {{"status", e.status}, {"reason", "r" + std::to_string(e.id)}, {"actor", "a" + std::to_string(e.id)}};
  } else {
    payload = {{"note", "hello"}};
  }
  const nlohmann::json body = {{"event_id", uuid(e.id)},
                               {"source", e.source},
                               {"aggregate_type", e.aggregate_type},
                               {"aggregate_id", e.order},
                               {"sequence", e.sequence},
                               {"event_type", e.event_type},
                               {"occurred_at", core::format_rfc3339(t(e.minute))},
                               {"payload", payload}};
  auto in = from_body(body.dump(), e.source + "." + e.event_type, uuid(e.id), e.attempt);
  EXPECT_TRUE(std::holds_alternative<domain::Envelope>(in.parsed)) << body.dump();
  return in;
}

BatchPlan plan(const std::vector<InboundEvent>& batch, const LoadedState& state = {}) {
  return plan_batch(domain::shipped_workflow(), batch, state, kMaxAttempts);
}

std::vector<Outcome> outcomes(const BatchPlan& p) {
  std::vector<Outcome> out;
  for (const auto& r : p.results) out.push_back(r.outcome);
  return out;
}

std::vector<std::string> processed_outcomes(const BatchPlan& p) {
  std::vector<std::string> out;
  for (const auto& r : p.processed) out.push_back(r.outcome);
  return out;
}

bool nothing_written(const BatchPlan& p) {
  return p.processed.empty() && p.orders.empty() && p.last_sequences.empty() && p.history.empty() &&
         p.dead_letters.empty() && p.to_refresh.empty();
}

TEST(PlanBatch, FullLifecycleOfOneOrderInOneBatchChains) {
  const std::vector<InboundEvent> batch{
      event({.id = 1, .source = "crm", .sequence = 1, .status = "SUBMITTED", .minute = 0}),
      event({.id = 2, .source = "mes", .sequence = 1, .status = "PRICE_CALCULATED", .minute = 10}),
      event({.id = 3, .source = "crm", .sequence = 2, .status = "PRICE_CONFIRMED", .minute = 20}),
      event({.id = 4, .source = "mes", .sequence = 2, .status = "MANUFACTURING_STARTED", .minute = 30}),
      event({.id = 5, .source = "mes", .sequence = 3, .status = "SHIPPED", .minute = 40}),
      event({.id = 6, .source = "crm", .sequence = 3, .status = "DELIVERED", .minute = 50}),
  };
  const auto p = plan(batch);

  ASSERT_EQ(p.results.size(), batch.size());
  for (const auto& r : p.results) {
    EXPECT_EQ(r.outcome, Outcome::applied) << r.detail;
    EXPECT_FALSE(r.ignored);
    EXPECT_FALSE(r.reason.has_value());
  }

  const std::vector<std::pair<std::optional<std::string>, std::string>> expected{
      {std::nullopt, "SUBMITTED"},
      {"SUBMITTED", "PRICE_CALCULATED"},
      {"PRICE_CALCULATED", "PRICE_CONFIRMED"},
      {"PRICE_CONFIRMED", "MANUFACTURING_STARTED"},
      {"MANUFACTURING_STARTED", "SHIPPED"},
      {"SHIPPED", "DELIVERED"},
  };
  ASSERT_EQ(p.history.size(), expected.size());
  const std::vector<std::pair<std::string, std::int64_t>> origin{{"crm", 1}, {"mes", 1}, {"crm", 2},
                                                                 {"mes", 2}, {"mes", 3}, {"crm", 3}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& h = p.history[i];
    EXPECT_EQ(h.order_id, "ORD-1");
    EXPECT_EQ(h.from_status, expected[i].first) << i;
    EXPECT_EQ(h.to_status, expected[i].second) << i;
    EXPECT_EQ(h.event_id, uuid(static_cast<int>(i) + 1));
    EXPECT_EQ(h.source, origin[i].first);
    EXPECT_EQ(h.sequence, origin[i].second);
    EXPECT_EQ(h.occurred_at, t(static_cast<int>(i) * 10));
    EXPECT_EQ(h.actor, "a" + std::to_string(i + 1));
    EXPECT_EQ(h.reason, "r" + std::to_string(i + 1));
  }

  ASSERT_EQ(p.orders.size(), 1u);
  const auto& row = p.orders.at("ORD-1");
  EXPECT_EQ(row.state.status, "DELIVERED");
  EXPECT_EQ(row.state.version, 6);
  EXPECT_EQ(row.state.status_entered_at, t(50));
  EXPECT_EQ(row.sla_due_at, std::nullopt);  // terminal: no SLA
  EXPECT_TRUE(row.created);

  EXPECT_THAT(p.last_sequences, UnorderedElementsAre(Pair(Pair("ORD-1", "crm"), 3), Pair(Pair("ORD-1", "mes"), 3)));
  EXPECT_THAT(processed_outcomes(p), ElementsAre("applied", "applied", "applied", "applied", "applied", "applied"));
  ASSERT_EQ(p.processed.size(), 6u);
  EXPECT_EQ(p.processed[1].event_id, uuid(2));
  EXPECT_EQ(p.processed[1].source, "mes");
  EXPECT_EQ(p.processed[1].order_id, "ORD-1");
  EXPECT_EQ(p.processed[1].event_type, "order.status_changed");
  EXPECT_EQ(p.processed[1].sequence, 1);
  EXPECT_THAT(p.dead_letters, IsEmpty());
}

TEST(PlanBatch, NewOrderSubmittedGetsSlaOneHourAfterOccurredAt) {
  const auto p = plan({event({.id = 1, .minute = 7})});
  ASSERT_EQ(p.orders.count("ORD-1"), 1u);
  const auto& row = p.orders.at("ORD-1");
  EXPECT_EQ(row.state.status, "SUBMITTED");
  EXPECT_EQ(row.state.version, 1);
  EXPECT_EQ(row.state.status_entered_at, t(7));
  EXPECT_EQ(row.sla_due_at, t(7) + 1h);
  EXPECT_TRUE(row.created);
}

TEST(PlanBatch, SlaIsThatOfTheFinalStatusInTheBatch) {
  const auto p = plan({event({.id = 1, .minute = 0}),
                       event({.id = 2, .source = "mes", .status = "PRICE_CALCULATED", .minute = 5})});
  EXPECT_EQ(p.orders.at("ORD-1").sla_due_at, t(5) + 48h);
}

TEST(PlanBatch, DuplicateInsideOneBatchWritesNothingTheSecondTime) {
  const auto e = event({.id = 1});
  const auto p = plan({e, e});
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::applied, Outcome::duplicate));
  EXPECT_EQ(p.processed.size(), 1u);
  EXPECT_EQ(p.history.size(), 1u);
  EXPECT_EQ(p.orders.at("ORD-1").state.version, 1);
  EXPECT_THAT(p.dead_letters, IsEmpty());
}

TEST(PlanBatch, DuplicateOfAnAlreadySeenEventWritesNothing) {
  LoadedState state;
  state.seen_event_ids = {uuid(1)};
  const auto p = plan({event({.id = 1})}, state);
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::duplicate));
  EXPECT_FALSE(p.results[0].reason.has_value());
  EXPECT_TRUE(nothing_written(p));
}

TEST(PlanBatch, DuplicateOfADeadLetterInTheSameBatchIsDuplicate) {
  const auto e = event({.id = 1, .source = "mes"});  // mes may not create orders
  const auto p = plan({e, e});
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::dead_letter, Outcome::duplicate));
  EXPECT_EQ(p.dead_letters.size(), 1u);
}

TEST(PlanBatch, StaleBySequenceIsRecordedButChangesNothing) {
  LoadedState state;
  state.orders["ORD-1"] = {"PRICE_CALCULATED", t(0), 2};
  state.last_sequences[{"ORD-1", "crm"}] = 3;
  const auto p = plan({event({.id = 9, .sequence = 2, .status = "PRICE_CONFIRMED"})}, state);
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::stale));
  EXPECT_THAT(processed_outcomes(p), ElementsAre("stale"));
  EXPECT_THAT(p.history, IsEmpty());
  EXPECT_THAT(p.orders, IsEmpty());
  EXPECT_THAT(p.last_sequences, IsEmpty());
  EXPECT_THAT(p.dead_letters, IsEmpty());
}

TEST(PlanBatch, EarlyGapIsNotRecordedAndDoesNotAdvanceTheSequence) {
  const auto p = plan({event({.id = 2, .sequence = 2, .status = "SUBMITTED", .attempt = 1})});
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::early));
  EXPECT_TRUE(nothing_written(p));
}

TEST(PlanBatch, EarlyStatusAheadOfTheOrderIsNotRecorded) {
  // mes#1 PRICE_CALCULATED before the order exists: no gap in mes's sequence, but early.
  const auto p = plan({event({.id = 2, .source = "mes", .sequence = 1, .status = "PRICE_CALCULATED"})});
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::early));
  EXPECT_TRUE(nothing_written(p));
}

TEST(PlanBatch, EarlyEventIsAppliedOnceItsPredecessorArrivesLaterInTheBatch) {
  // Decided again after its predecessor (no trip through a delay queue), and applied after it.
  const auto p = plan({event({.id = 2, .source = "mes", .status = "PRICE_CALCULATED"}), event({.id = 1})});
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::applied, Outcome::applied));
  ASSERT_EQ(p.history.size(), 2u);
  EXPECT_EQ(p.history[0].to_status, "SUBMITTED");
  EXPECT_EQ(p.history[1].from_status, "SUBMITTED");
  EXPECT_EQ(p.history[1].to_status, "PRICE_CALCULATED");
  EXPECT_THAT(processed_outcomes(p), ElementsAre("applied", "applied"));
  EXPECT_THAT(p.last_sequences, UnorderedElementsAre(Pair(Pair("ORD-1", "crm"), 1), Pair(Pair("ORD-1", "mes"), 1)));
  EXPECT_EQ(p.orders.at("ORD-1").state.status, "PRICE_CALCULATED");
  EXPECT_EQ(p.orders.at("ORD-1").state.version, 2);
}

TEST(PlanBatch, WholeLifecycleInReverseOrderIsAppliedInLifecycleOrder) {
  const std::vector<InboundEvent> batch{
      event({.id = 6, .source = "crm", .sequence = 3, .status = "DELIVERED", .minute = 50}),
      event({.id = 5, .source = "mes", .sequence = 3, .status = "SHIPPED", .minute = 40}),
      event({.id = 4, .source = "mes", .sequence = 2, .status = "MANUFACTURING_STARTED", .minute = 30}),
      event({.id = 3, .source = "crm", .sequence = 2, .status = "PRICE_CONFIRMED", .minute = 20}),
      event({.id = 2, .source = "mes", .sequence = 1, .status = "PRICE_CALCULATED", .minute = 10}),
      event({.id = 1, .source = "crm", .sequence = 1, .status = "SUBMITTED", .minute = 0}),
  };
  const auto p = plan(batch);
  EXPECT_THAT(outcomes(p), ::testing::Each(Outcome::applied));
  std::vector<std::string> statuses;
  for (const auto& h : p.history) statuses.push_back(h.to_status);
  EXPECT_THAT(statuses, ElementsAre("SUBMITTED", "PRICE_CALCULATED", "PRICE_CONFIRMED", "MANUFACTURING_STARTED",
                                    "SHIPPED", "DELIVERED"));
  EXPECT_EQ(p.orders.at("ORD-1").state.status, "DELIVERED");
  EXPECT_EQ(p.orders.at("ORD-1").state.version, 6);
  EXPECT_THAT(p.last_sequences, UnorderedElementsAre(Pair(Pair("ORD-1", "crm"), 3), Pair(Pair("ORD-1", "mes"), 3)));
}

TEST(PlanBatch, EarlyEventWhosePredecessorNeverComesStaysEarlyAfterTheOtherPasses) {
  // ORD-2's predecessor is later in the batch; ORD-1's never comes.
  const auto p = plan({event({.id = 1, .source = "mes", .status = "PRICE_CALCULATED"}),
                       event({.id = 2, .source = "mes", .order = "ORD-2", .status = "PRICE_CALCULATED"}),
                       event({.id = 3, .order = "ORD-2"})});
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::early, Outcome::applied, Outcome::applied));
  EXPECT_EQ(p.history.size(), 2u);
  EXPECT_THAT(p.orders, ::testing::ElementsAre(Pair("ORD-2", ::testing::_)));
}

TEST(PlanBatch, EarlyAtMaxAttemptsIsAppliedWhenItsPredecessorIsLaterInTheBatch) {
  const auto p = plan({event({.id = 2, .source = "mes", .status = "PRICE_CALCULATED", .attempt = kMaxAttempts}),
                       event({.id = 1})});
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::applied, Outcome::applied));
  EXPECT_THAT(p.dead_letters, IsEmpty());
}

TEST(PlanBatch, SameExhaustedEarlyEventTwiceInABatchIsDeadLetteredOnce) {
  const auto in = event({.id = 2, .sequence = 2, .attempt = kMaxAttempts});
  const auto p = plan({in, in});
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::dead_letter, Outcome::duplicate));
  EXPECT_EQ(p.dead_letters.size(), 1u);
  EXPECT_THAT(processed_outcomes(p), ElementsAre("dead_lettered"));
}

TEST(PlanBatch, EarlyBelowMaxAttemptsStaysEarly) {
  const auto p = plan({event({.id = 2, .sequence = 2, .attempt = kMaxAttempts - 1})});
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::early));
  EXPECT_TRUE(nothing_written(p));
}

TEST(PlanBatch, EarlyAtMaxAttemptsIsDeadLetteredRetriesExhausted) {
  const auto in = event({.id = 2, .sequence = 2, .attempt = kMaxAttempts});
  const auto p = plan({in});
  ASSERT_THAT(outcomes(p), ElementsAre(Outcome::dead_letter));
  EXPECT_EQ(p.results[0].reason, DeadLetterReason::retries_exhausted);
  EXPECT_THAT(processed_outcomes(p), ElementsAre("dead_lettered"));
  EXPECT_EQ(p.processed[0].event_id, uuid(2));
  EXPECT_EQ(p.processed[0].sequence, 2);
  ASSERT_EQ(p.dead_letters.size(), 1u);
  const auto& d = p.dead_letters[0];
  EXPECT_EQ(d.item, 0u);
  EXPECT_EQ(d.reason, "retries_exhausted");
  EXPECT_EQ(d.event_id, uuid(2));
  EXPECT_EQ(d.order_id, "ORD-1");
  EXPECT_EQ(d.source, "crm");
  EXPECT_EQ(d.routing_key, "crm.order.status_changed");
  EXPECT_EQ(d.body, in.body);
  EXPECT_EQ(d.error, p.results[0].detail);
  EXPECT_THAT(p.history, IsEmpty());
  EXPECT_THAT(p.last_sequences, IsEmpty());  // the gap is still there
}

TEST(PlanBatch, MalformedBodyIsDeadLetteredUnderItsMessageId) {
  const auto in = from_body("{not json", "crm.order.status_changed", "msg-77");
  const auto p = plan({in});
  ASSERT_THAT(outcomes(p), ElementsAre(Outcome::dead_letter));
  EXPECT_EQ(p.results[0].reason, DeadLetterReason::malformed);
  EXPECT_FALSE(p.results[0].detail.empty());
  EXPECT_THAT(p.processed, IsEmpty());
  ASSERT_EQ(p.dead_letters.size(), 1u);
  const auto& d = p.dead_letters[0];
  EXPECT_EQ(d.reason, "malformed");
  EXPECT_EQ(d.event_id, "msg-77");
  EXPECT_EQ(d.order_id, std::nullopt);
  EXPECT_EQ(d.source, std::nullopt);
  EXPECT_EQ(d.routing_key, "crm.order.status_changed");
  EXPECT_EQ(d.body, "{not json");
  EXPECT_EQ(d.error, p.results[0].detail);
}

TEST(PlanBatch, MalformedBodyWithoutMessageIdHasNoEventId) {
  const auto p = plan({from_body(R"({"event_id": "nope"})", "x", "")});
  ASSERT_EQ(p.dead_letters.size(), 1u);
  EXPECT_EQ(p.dead_letters[0].event_id, std::nullopt);
}

TEST(PlanBatch, StatusChangeWithoutStatusIsMalformedAndRecorded) {
  const nlohmann::json body = {{"event_id", uuid(1)},    {"source", "crm"},
                               {"aggregate_type", "order"}, {"aggregate_id", "ORD-1"},
                               {"sequence", 1},          {"event_type", "order.status_changed"},
                               {"occurred_at", "2026-11-22T18:00:00Z"}, {"payload", {{"reason", "x"}}}};
  const auto p = plan({from_body(body.dump(), "crm.order.status_changed", uuid(1))});
  ASSERT_THAT(outcomes(p), ElementsAre(Outcome::dead_letter));
  EXPECT_EQ(p.results[0].reason, DeadLetterReason::malformed);
  EXPECT_THAT(processed_outcomes(p), ElementsAre("dead_lettered"));
  ASSERT_EQ(p.dead_letters.size(), 1u);
  EXPECT_EQ(p.dead_letters[0].event_id, uuid(1));
  EXPECT_EQ(p.dead_letters[0].order_id, "ORD-1");
  EXPECT_THAT(p.orders, IsEmpty());
}

TEST(PlanBatch, SourceNotAllowedIsDeadLetteredAndAdvancesTheSequence) {
  const auto p = plan({event({.id = 1, .source = "mes", .status = "SUBMITTED"})});
  ASSERT_THAT(outcomes(p), ElementsAre(Outcome::dead_letter));
  EXPECT_EQ(p.results[0].reason, DeadLetterReason::source_not_allowed);
  EXPECT_THAT(processed_outcomes(p), ElementsAre("dead_lettered"));
  ASSERT_EQ(p.dead_letters.size(), 1u);
  EXPECT_EQ(p.dead_letters[0].reason, "source_not_allowed");
  EXPECT_EQ(p.dead_letters[0].source, "mes");
  EXPECT_THAT(p.last_sequences, ElementsAre(Pair(Pair("ORD-1", "mes"), 1)));
  EXPECT_THAT(p.orders, IsEmpty());
  EXPECT_THAT(p.history, IsEmpty());
}

TEST(PlanBatch, InvalidTransitionIsDeadLettered) {
  LoadedState state;
  state.orders["ORD-1"] = {"DELIVERED", t(0), 6};
  state.last_sequences[{"ORD-1", "crm"}] = 3;
  const auto p = plan({event({.id = 7, .sequence = 4, .status = "CANCELLED"})}, state);
  ASSERT_THAT(outcomes(p), ElementsAre(Outcome::dead_letter));
  EXPECT_EQ(p.results[0].reason, DeadLetterReason::invalid_transition);
  ASSERT_EQ(p.dead_letters.size(), 1u);
  EXPECT_EQ(p.dead_letters[0].reason, "invalid_transition");
  EXPECT_THAT(processed_outcomes(p), ElementsAre("dead_lettered"));
  EXPECT_THAT(p.last_sequences, ElementsAre(Pair(Pair("ORD-1", "crm"), 4)));
  EXPECT_THAT(p.orders, IsEmpty());
}

TEST(PlanBatch, UnknownStatusIsDeadLettered) {
  const auto p = plan({event({.id = 1, .status = "SHIPPD"})});
  ASSERT_THAT(outcomes(p), ElementsAre(Outcome::dead_letter));
  EXPECT_EQ(p.results[0].reason, DeadLetterReason::unknown_status);
  ASSERT_EQ(p.dead_letters.size(), 1u);
  EXPECT_EQ(p.dead_letters[0].reason, "unknown_status");
  EXPECT_THAT(processed_outcomes(p), ElementsAre("dead_lettered"));
  EXPECT_THAT(p.last_sequences, ElementsAre(Pair(Pair("ORD-1", "crm"), 1)));
}

TEST(PlanBatch, UnknownStatusAfterAGapDoesNotAdvanceTheSequence) {
  const auto p = plan({event({.id = 1, .sequence = 3, .status = "SHIPPD"})});
  ASSERT_THAT(outcomes(p), ElementsAre(Outcome::dead_letter));
  EXPECT_EQ(p.results[0].reason, DeadLetterReason::unknown_status);
  EXPECT_THAT(p.last_sequences, IsEmpty());
}

TEST(PlanBatch, NoteOfAnOrderIsIgnoredButAdvancesTheSequence) {
  const auto p = plan({
      event({.id = 1, .sequence = 1, .status = "SUBMITTED"}),
      event({.id = 2, .sequence = 2, .event_type = "order.note_added"}),
      event({.id = 3, .source = "mes", .sequence = 1, .status = "PRICE_CALCULATED"}),
      event({.id = 4, .sequence = 3, .status = "PRICE_CONFIRMED"}),  // waits on nothing: crm#2 consumed
  });
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::applied, Outcome::applied, Outcome::applied, Outcome::applied));
  EXPECT_FALSE(p.results[0].ignored);
  EXPECT_TRUE(p.results[1].ignored);
  EXPECT_FALSE(p.results[1].reason.has_value());
  EXPECT_THAT(processed_outcomes(p), ElementsAre("applied", "ignored", "applied", "applied"));
  EXPECT_EQ(p.processed[1].event_type, "order.note_added");
  EXPECT_EQ(p.processed[1].sequence, 2);
  ASSERT_EQ(p.history.size(), 3u);  // the note is not a transition
  EXPECT_EQ(p.orders.at("ORD-1").state.status, "PRICE_CONFIRMED");
  EXPECT_EQ(p.orders.at("ORD-1").state.version, 3);
  EXPECT_EQ(p.last_sequences.at({"ORD-1", "crm"}), 3);
}

TEST(PlanBatch, NoteOnlyAdvancesTheSequence) {
  LoadedState state;
  state.orders["ORD-1"] = {"SUBMITTED", t(0), 1};
  state.last_sequences[{"ORD-1", "crm"}] = 1;
  const auto p = plan({event({.id = 2, .sequence = 2, .event_type = "order.note_added"})}, state);
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::applied));
  EXPECT_TRUE(p.results[0].ignored);
  EXPECT_THAT(p.last_sequences, ElementsAre(Pair(Pair("ORD-1", "crm"), 2)));
  EXPECT_THAT(p.orders, IsEmpty());
  EXPECT_THAT(p.history, IsEmpty());
  EXPECT_THAT(p.dead_letters, IsEmpty());
}

TEST(PlanBatch, NoteWithAGapIsEarly) {
  const auto p = plan({event({.id = 2, .sequence = 2, .event_type = "order.note_added"})});
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::early));
  EXPECT_TRUE(nothing_written(p));
}

TEST(PlanBatch, NoteWithAGapAtMaxAttemptsIsDeadLettered) {
  const auto p = plan({event({.id = 2, .sequence = 2, .attempt = kMaxAttempts, .event_type = "order.note_added"})});
  ASSERT_THAT(outcomes(p), ElementsAre(Outcome::dead_letter));
  EXPECT_FALSE(p.results[0].ignored);
  EXPECT_EQ(p.results[0].reason, DeadLetterReason::retries_exhausted);
  EXPECT_THAT(processed_outcomes(p), ElementsAre("dead_lettered"));
  ASSERT_EQ(p.dead_letters.size(), 1u);
  EXPECT_EQ(p.dead_letters[0].reason, "retries_exhausted");
}

TEST(PlanBatch, StaleNoteIsNotApplied) {
  LoadedState state;
  state.last_sequences[{"ORD-1", "crm"}] = 5;
  const auto p = plan({event({.id = 2, .sequence = 4, .event_type = "order.note_added"})}, state);
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::stale));
  EXPECT_THAT(p.last_sequences, IsEmpty());
}

TEST(PlanBatch, NonOrderAggregateIsIgnoredWithoutSequenceTracking) {
  const auto p = plan({event({.id = 1, .order = "CUST-9", .sequence = 42, .event_type = "customer.updated",
                              .aggregate_type = "customer"})});
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::applied));
  EXPECT_TRUE(p.results[0].ignored);
  EXPECT_THAT(processed_outcomes(p), ElementsAre("ignored"));
  EXPECT_THAT(p.last_sequences, IsEmpty());
  EXPECT_THAT(p.orders, IsEmpty());
  EXPECT_THAT(p.history, IsEmpty());
}

TEST(PlanBatch, StatusChangedOfANonOrderAggregateIsIgnored) {
  const auto p = plan({event({.id = 1, .order = "CUST-9", .aggregate_type = "customer"})});
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::applied));
  EXPECT_TRUE(p.results[0].ignored);
  EXPECT_THAT(p.orders, IsEmpty());
  EXPECT_THAT(p.last_sequences, IsEmpty());
}

TEST(PlanBatch, LoadedOrderAndSequencesAreRespected) {
  LoadedState state;
  state.orders["ORD-1"] = {"PRICE_CALCULATED", t(0), 2};
  state.last_sequences[{"ORD-1", "crm"}] = 1;
  state.last_sequences[{"ORD-1", "mes"}] = 1;
  const auto p = plan({event({.id = 3, .sequence = 2, .status = "PRICE_CONFIRMED", .minute = 90})}, state);
  ASSERT_THAT(outcomes(p), ElementsAre(Outcome::applied));
  ASSERT_EQ(p.history.size(), 1u);
  EXPECT_EQ(p.history[0].from_status, "PRICE_CALCULATED");
  const auto& row = p.orders.at("ORD-1");
  EXPECT_EQ(row.state.status, "PRICE_CONFIRMED");
  EXPECT_EQ(row.state.version, 3);
  EXPECT_EQ(row.state.status_entered_at, t(90));
  EXPECT_EQ(row.sla_due_at, t(90) + 48h);
  EXPECT_FALSE(row.created);
  EXPECT_THAT(p.last_sequences, ElementsAre(Pair(Pair("ORD-1", "crm"), 2)));  // only changed ones
}

TEST(PlanBatch, LoadedSequenceMakesTheNextOneEarlyWhenThereIsAGap) {
  LoadedState state;
  state.orders["ORD-1"] = {"PRICE_CALCULATED", t(0), 2};
  state.last_sequences[{"ORD-1", "crm"}] = 1;
  const auto p = plan({event({.id = 3, .sequence = 3, .status = "PRICE_CONFIRMED"})}, state);
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::early));
  EXPECT_TRUE(nothing_written(p));
}

TEST(PlanBatch, StatusAlreadyReachedIsStale) {
  LoadedState state;
  state.orders["ORD-1"] = {"PRICE_CONFIRMED", t(0), 3};
  state.last_sequences[{"ORD-1", "crm"}] = 2;
  state.last_sequences[{"ORD-1", "mes"}] = 0;
  const auto p = plan({event({.id = 5, .source = "mes", .sequence = 1, .status = "PRICE_CALCULATED"})}, state);
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::stale));
  EXPECT_THAT(processed_outcomes(p), ElementsAre("stale"));
  EXPECT_THAT(p.orders, IsEmpty());
  EXPECT_THAT(p.last_sequences, ElementsAre(Pair(Pair("ORD-1", "mes"), 1)));
}

TEST(PlanBatch, TwoOrdersInterleavedInOneBatch) {
  const auto p = plan({
      event({.id = 1, .order = "A", .sequence = 1, .status = "SUBMITTED", .minute = 0}),
      event({.id = 2, .order = "B", .sequence = 1, .status = "SUBMITTED", .minute = 1}),
      event({.id = 3, .source = "mes", .order = "A", .sequence = 1, .status = "PRICE_CALCULATED", .minute = 2}),
      event({.id = 4, .order = "B", .sequence = 2, .status = "CANCELLED", .minute = 3}),
      event({.id = 5, .order = "A", .sequence = 2, .status = "PRICE_CONFIRMED", .minute = 4}),
  });
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::applied, Outcome::applied, Outcome::applied, Outcome::applied,
                                       Outcome::applied));
  ASSERT_EQ(p.history.size(), 5u);
  std::vector<std::string> seq;
  for (const auto& h : p.history) seq.push_back(h.order_id + ":" + h.to_status);
  EXPECT_THAT(seq, ElementsAre("A:SUBMITTED", "B:SUBMITTED", "A:PRICE_CALCULATED", "B:CANCELLED", "A:PRICE_CONFIRMED"));
  EXPECT_EQ(p.history[3].from_status, "SUBMITTED");
  EXPECT_EQ(p.orders.at("A").state.status, "PRICE_CONFIRMED");
  EXPECT_EQ(p.orders.at("A").state.version, 3);
  EXPECT_EQ(p.orders.at("B").state.status, "CANCELLED");
  EXPECT_EQ(p.orders.at("B").state.version, 2);
  EXPECT_EQ(p.orders.at("B").sla_due_at, std::nullopt);
  EXPECT_THAT(p.last_sequences,
              UnorderedElementsAre(Pair(Pair("A", "crm"), 2), Pair(Pair("A", "mes"), 1), Pair(Pair("B", "crm"), 2)));
}

TEST(PlanBatch, ResultsHaveOneEntryPerInputInOrder) {
  LoadedState state;
  state.seen_event_ids = {uuid(50)};
  const std::vector<InboundEvent> batch{
      event({.id = 50}),                                          // duplicate
      from_body("[]", "rk", "m"),                                 // malformed
      event({.id = 1}),                                           // applied
      event({.id = 2, .sequence = 5}),                            // early
      event({.id = 3, .source = "mes", .status = "DELIVERED"}),   // early: order is behind
      event({.id = 4, .sequence = 2, .status = "BOGUS"}),         // unknown status
      event({.id = 1}),                                           // duplicate
  };
  const auto p = plan(batch, state);
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::duplicate, Outcome::dead_letter, Outcome::applied, Outcome::early,
                                       Outcome::early, Outcome::dead_letter, Outcome::duplicate));
  ASSERT_EQ(p.dead_letters.size(), 2u);
  EXPECT_EQ(p.dead_letters[0].item, 1u);
  EXPECT_EQ(p.dead_letters[1].item, 5u);
}

TEST(PlanBatch, EmptyBatchIsAnEmptyPlan) {
  const auto p = plan({});
  EXPECT_THAT(p.results, IsEmpty());
  EXPECT_TRUE(nothing_written(p));
}

TEST(BatchIds, OrderAndEventIdsOfParsedEventsDeduplicated) {
  const std::vector<InboundEvent> batch{event({.id = 2, .order = "B"}), event({.id = 1, .order = "A"}),
                                        event({.id = 2, .order = "B"}), from_body("x", "rk", "m")};
  EXPECT_THAT(order_ids_of(batch), ElementsAre("A", "B"));
  EXPECT_THAT(event_ids_of(batch), ElementsAre(uuid(1), uuid(2)));
}

TEST(SlaDue, FromTheWorkflow) {
  const auto& wf = domain::shipped_workflow();
  EXPECT_EQ(sla_due(wf, "SUBMITTED", t(0)), t(0) + 1h);
  EXPECT_EQ(sla_due(wf, "MANUFACTURING_STARTED", t(0)), t(0) + 21 * 24h);
  EXPECT_EQ(sla_due(wf, "FROZEN", t(0)), std::nullopt);
  EXPECT_EQ(sla_due(wf, "DELIVERED", t(0)), std::nullopt);
  EXPECT_EQ(sla_due(wf, "NOPE", t(0)), std::nullopt);
}

}  // namespace
}  // namespace oss::processing

namespace oss::processing {
namespace {

TEST(PlanBatch, StatusChangeWithoutStatusIsDeadLetteredAndConsumesItsSequence) {
  const nlohmann::json bad = {{"event_id", uuid(900)},
                              {"source", "crm"},
                              {"aggregate_type", "order"},
                              {"aggregate_id", "ORD-9"},
                              {"sequence", 1},
                              {"event_type", "order.status_changed"},
                              {"occurred_at", "2026-11-22T18:00:00Z"},
                              {"payload", {{"reason", "x"}}}};
  const auto p = plan({from_body(bad.dump(), "crm.order.status_changed", uuid(900)),
                       event({.id = 901, .order = "ORD-9", .sequence = 2, .status = "SUBMITTED"})});
  ASSERT_EQ(p.results.size(), 2u);
  EXPECT_EQ(p.results[0].outcome, Outcome::dead_letter);
  EXPECT_EQ(p.results[0].reason, DeadLetterReason::malformed);
  EXPECT_EQ(p.results[1].outcome, Outcome::applied) << p.results[1].detail;
  EXPECT_THAT(p.last_sequences, ElementsAre(Pair(Pair("ORD-9", "crm"), 2)));
}

}  // namespace
}  // namespace oss::processing

namespace oss::processing {
namespace {

LoadedState submitted_order_with_dead_letter(const std::string& dead_event) {
  // ORD-R is SUBMITTED; its crm sequence 2 was dead-lettered (consumed) earlier.
  LoadedState s;
  s.orders["ORD-R"] = domain::OrderState{"SUBMITTED", t(0), 1};
  s.last_sequences[{"ORD-R", "crm"}] = 2;
  s.seen_event_ids = {dead_event};
  s.dead_lettered_event_ids = {dead_event};
  return s;
}

TEST(PlanBatchReplay, ReplayedDeadLetterIsDecidedAgainOnTheOrdersStatus) {
  auto replayed = event({.id = 700, .order = "ORD-R", .sequence = 2, .status = "CANCELLED"});
  replayed.replay = true;
  const auto p = plan({replayed}, submitted_order_with_dead_letter(uuid(700)));
  ASSERT_EQ(p.results.size(), 1u);
  EXPECT_EQ(p.results[0].outcome, Outcome::applied) << p.results[0].detail;
  ASSERT_EQ(p.history.size(), 1u);
  EXPECT_EQ(p.history[0].to_status, "CANCELLED");
  EXPECT_TRUE(p.last_sequences.empty()) << "the consumed sequence never moves backwards";
}

TEST(PlanBatchReplay, SameEventWithoutTheReplayMarkIsADuplicate) {
  const auto p = plan({event({.id = 700, .order = "ORD-R", .sequence = 2, .status = "CANCELLED"})},
                      submitted_order_with_dead_letter(uuid(700)));
  EXPECT_EQ(p.results[0].outcome, Outcome::duplicate);
  EXPECT_TRUE(p.history.empty());
}

TEST(PlanBatchReplay, ReplayOfAnAppliedEventStaysADuplicate) {
  LoadedState s = submitted_order_with_dead_letter(uuid(701));
  s.seen_event_ids.insert(uuid(702));  // applied, not dead-lettered
  auto replayed = event({.id = 702, .order = "ORD-R", .sequence = 1, .status = "SUBMITTED"});
  replayed.replay = true;
  const auto p = plan({replayed}, s);
  EXPECT_EQ(p.results[0].outcome, Outcome::duplicate);
}

TEST(PlanBatchReplay, EarlyReplayIsStillAReplayWhenItsPredecessorIsLaterInTheBatch) {
  // crm#2 PRICE_CONFIRMED was dead-lettered; replayed while the order is SUBMITTED it is early,
  // and the mes PRICE_CALCULATED after it in the batch makes it applicable (not a duplicate).
  auto replayed = event({.id = 704, .order = "ORD-R", .sequence = 2, .status = "PRICE_CONFIRMED"});
  replayed.replay = true;
  const auto p = plan({replayed, event({.id = 705, .source = "mes", .order = "ORD-R", .status = "PRICE_CALCULATED"})},
                      submitted_order_with_dead_letter(uuid(704)));
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::applied, Outcome::applied));
  ASSERT_EQ(p.history.size(), 2u);
  EXPECT_EQ(p.history[0].to_status, "PRICE_CALCULATED");
  EXPECT_EQ(p.history[1].to_status, "PRICE_CONFIRMED");
}

TEST(PlanBatchReplay, ReplayStillInvalidIsDeadLetteredAgain) {
  auto replayed = event({.id = 703, .order = "ORD-R", .sequence = 2, .status = "SUBMITED"});
  replayed.replay = true;
  const auto p = plan({replayed}, submitted_order_with_dead_letter(uuid(703)));
  EXPECT_EQ(p.results[0].outcome, Outcome::dead_letter);
  EXPECT_EQ(p.results[0].reason, DeadLetterReason::unknown_status);
  EXPECT_EQ(p.dead_letters.size(), 1u);
}

}  // namespace
}  // namespace oss::processing

// Parking (docs/adr/0004): what stays early is parked, parked events the store loads for the
// batch's orders are decided after the deliveries, and a parked event is never dead-lettered
// by a batch (its row is its only copy; it goes back through the queue instead).
namespace oss::processing {
namespace {

InboundEvent parked(const Ev& e) {
  auto in = event(e);
  in.parked = true;
  return in;
}

TEST(PlanBatchParking, EventsStillEarlyAfterTheLastPassAreParkedOncePerEventId) {
  const auto early = event({.id = 800, .source = "mes", .order = "ORD-P", .status = "PRICE_CALCULATED"});
  const auto p = plan({early, event({.id = 801, .order = "ORD-Q"}), early});
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::early, Outcome::applied, Outcome::early));
  EXPECT_THAT(p.to_park, ElementsAre(0u));
  EXPECT_THAT(p.to_unpark, IsEmpty());
  EXPECT_THAT(p.to_recheck, IsEmpty());
}

TEST(PlanBatchParking, AParkedEventIsAppliedAfterItsPredecessorInTheBatchAndUnparked) {
  const auto p = plan({event({.id = 810, .order = "ORD-P", .status = "SUBMITTED"}),
                       parked({.id = 811, .source = "mes", .order = "ORD-P", .status = "PRICE_CALCULATED", .minute = 5})});
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::applied, Outcome::applied));
  ASSERT_EQ(p.history.size(), 2u);
  EXPECT_EQ(p.history[1].to_status, "PRICE_CALCULATED");
  EXPECT_EQ(p.history[1].event_id, uuid(811));
  EXPECT_THAT(p.to_park, IsEmpty());
  EXPECT_THAT(p.to_unpark, ElementsAre(uuid(811)));
}

TEST(PlanBatchParking, AParkedEventStillEarlyStaysParkedUntouched) {
  const auto p = plan({event({.id = 820, .order = "ORD-OTHER"}),
                       parked({.id = 821, .source = "mes", .order = "ORD-P", .status = "PRICE_CALCULATED"})});
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::applied, Outcome::early));
  EXPECT_FALSE(p.results[1].recheck);
  EXPECT_THAT(p.to_park, IsEmpty()) << "already parked";
  EXPECT_THAT(p.to_unpark, IsEmpty());
  EXPECT_THAT(p.to_recheck, IsEmpty());
}

TEST(PlanBatchParking, AParkedEventThatWouldBeDeadLetteredIsRecheckedThroughTheQueueNotDeadLetteredHere) {
  // crm#2 PRICE_CALCULATED waited for crm#1; now SUBMITTED → PRICE_CALCULATED is a mes-only step.
  const auto p = plan({event({.id = 830, .order = "ORD-P", .sequence = 1, .status = "SUBMITTED"}),
                       parked({.id = 831, .order = "ORD-P", .sequence = 2, .status = "PRICE_CALCULATED"})});
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::applied, Outcome::early));
  EXPECT_TRUE(p.results[1].recheck);
  EXPECT_THAT(p.results[1].detail, ::testing::HasSubstr("may not make the transition"));
  EXPECT_THAT(p.dead_letters, IsEmpty());
  EXPECT_THAT(processed_outcomes(p), ElementsAre("applied")) << "nothing recorded for the parked event";
  EXPECT_THAT(p.last_sequences, ElementsAre(Pair(Pair("ORD-P", "crm"), 1)));
  EXPECT_THAT(p.to_recheck, ElementsAre(uuid(831)));
  EXPECT_THAT(p.to_unpark, IsEmpty());
}

TEST(PlanBatchParking, ARedeliveredCopyOfAParkedEventIsAppliedOnceAndTheRowRemoved) {
  // The broker redelivered event 841 (its ack was lost) while its parked row exists; its
  // predecessor arrives in the same batch.
  const auto copy = event({.id = 841, .source = "mes", .order = "ORD-P", .status = "PRICE_CALCULATED"});
  const auto p = plan({copy, event({.id = 840, .order = "ORD-P", .status = "SUBMITTED"}),
                       parked({.id = 841, .source = "mes", .order = "ORD-P", .status = "PRICE_CALCULATED"})});
  // The parked copy is decided in the first pass, right after its predecessor; the delivered
  // copy, early in that pass, is a duplicate when decided again.
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::duplicate, Outcome::applied, Outcome::applied));
  EXPECT_EQ(p.history.size(), 2u);
  EXPECT_THAT(p.to_unpark, ElementsAre(uuid(841)));
  EXPECT_THAT(p.to_park, IsEmpty());
}

TEST(PlanBatchParking, AParkedReplayOfADeadLetterIsAppliedOnceItsPredecessorComes) {
  // crm#2 PRICE_CONFIRMED was dead-lettered, then replayed while the order was still SUBMITTED:
  // early, so parked with its replay mark. The MES price arrives: the replay applies.
  auto replay = parked({.id = 860, .order = "ORD-R", .sequence = 2, .status = "PRICE_CONFIRMED"});
  replay.replay = true;
  const auto p = plan({event({.id = 861, .source = "mes", .order = "ORD-R", .status = "PRICE_CALCULATED"}), replay},
                      submitted_order_with_dead_letter(uuid(860)));
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::applied, Outcome::applied));
  ASSERT_EQ(p.history.size(), 2u);
  EXPECT_EQ(p.history[1].to_status, "PRICE_CONFIRMED");
  EXPECT_THAT(processed_outcomes(p), ElementsAre("applied", "applied"));
  EXPECT_THAT(p.to_unpark, ElementsAre(uuid(860)));
  // Without the mark it would be a duplicate of the dead letter, and still leave the park.
  auto plain = parked({.id = 860, .order = "ORD-R", .sequence = 2, .status = "PRICE_CONFIRMED"});
  const auto q = plan({event({.id = 861, .source = "mes", .order = "ORD-R", .status = "PRICE_CALCULATED"}), plain},
                      submitted_order_with_dead_letter(uuid(860)));
  EXPECT_THAT(outcomes(q), ElementsAre(Outcome::applied, Outcome::duplicate));
  EXPECT_THAT(q.to_unpark, ElementsAre(uuid(860)));
}

TEST(PlanBatchParking, ParkedEventsAreNeverDeadLetteredForExhaustedRetries) {
  auto in = parked({.id = 850, .source = "mes", .order = "ORD-P", .status = "PRICE_CALCULATED"});
  in.attempt = kMaxAttempts + 3;  // only the queue path dead-letters retries_exhausted
  const auto p = plan({in});
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::early));
  EXPECT_TRUE(nothing_written(p));
  // A delivery with its retries spent is dead-lettered, not parked.
  auto spent = event({.id = 851, .source = "mes", .order = "ORD-P", .status = "PRICE_CALCULATED", .attempt = kMaxAttempts});
  const auto q = plan({spent});
  EXPECT_EQ(q.results[0].reason, DeadLetterReason::retries_exhausted);
  EXPECT_THAT(q.to_park, IsEmpty());
}

// The order version an early event was decided against (schema/service/004_early_recheck.sql):
// the sweeper retries it in place while its order still has that version.
TEST(PlanBatchParking, AParkedEventRecordsTheOrderVersionItWasDecidedAgainst) {
  // No order yet: version 0.
  const auto p = plan({event({.id = 870, .source = "mes", .order = "ORD-V", .status = "PRICE_CALCULATED"})});
  EXPECT_THAT(p.to_park, ElementsAre(0u));
  EXPECT_THAT(p.to_park_versions, ElementsAre(0));
  // An order at version 2, unchanged by the batch: 2.
  LoadedState state;
  state.orders["ORD-V"] = {"PRICE_CALCULATED", t(0), 2};
  state.last_sequences[{"ORD-V", "crm"}] = 1;
  state.last_sequences[{"ORD-V", "mes"}] = 1;
  const auto q = plan({event({.id = 871, .source = "mes", .order = "ORD-V", .sequence = 2, .status = "SHIPPED"})}, state);
  EXPECT_THAT(outcomes(q), ElementsAre(Outcome::early));
  EXPECT_THAT(q.to_park_versions, ElementsAre(2));
  // The batch moves the order on (version 3) and the event is still early: it was decided
  // against version 3, not the version loaded.
  const auto r = plan({event({.id = 872, .order = "ORD-V", .sequence = 2, .status = "PRICE_CONFIRMED", .minute = 5}),
                       event({.id = 873, .source = "mes", .order = "ORD-V", .sequence = 3, .status = "SHIPPED"})},
                      state);
  EXPECT_THAT(outcomes(r), ElementsAre(Outcome::applied, Outcome::early));
  EXPECT_THAT(r.to_park, ElementsAre(1u));
  EXPECT_THAT(r.to_park_versions, ElementsAre(3));
}

TEST(PlanBatchParking, AParkedEventStillEarlyGetsTheNewVersionOnlyWhenItsOrderChanged) {
  LoadedState state;
  state.orders["ORD-V"] = {"PRICE_CALCULATED", t(0), 2};
  state.last_sequences[{"ORD-V", "crm"}] = 1;
  state.last_sequences[{"ORD-V", "mes"}] = 1;
  // mes#3 SHIPPED waits for mes#2 (a gap). The CRM confirmation moves the order to version 3.
  const auto waiting = parked({.id = 880, .source = "mes", .order = "ORD-V", .sequence = 3, .status = "SHIPPED"});
  const auto p = plan({event({.id = 881, .order = "ORD-V", .sequence = 2, .status = "PRICE_CONFIRMED", .minute = 5}), waiting}, state);
  EXPECT_THAT(outcomes(p), ElementsAre(Outcome::applied, Outcome::early));
  EXPECT_THAT(p.to_refresh, ElementsAre(Pair(uuid(880), 3)));
  EXPECT_THAT(p.to_park, IsEmpty());
  EXPECT_THAT(p.to_unpark, IsEmpty());
  // Another order's event leaves it as it was: nothing to write for it.
  const auto q = plan({event({.id = 882, .order = "ORD-OTHER"}), waiting}, state);
  EXPECT_THAT(outcomes(q), ElementsAre(Outcome::applied, Outcome::early));
  EXPECT_THAT(q.to_refresh, IsEmpty());
  // A recheck goes through the queue whatever the version: not refreshed.
  const auto r = plan({event({.id = 883, .order = "ORD-P", .sequence = 1, .status = "SUBMITTED"}),
                       parked({.id = 884, .order = "ORD-P", .sequence = 2, .status = "PRICE_CALCULATED"})});
  EXPECT_THAT(r.to_recheck, ElementsAre(uuid(884)));
  EXPECT_THAT(r.to_refresh, IsEmpty());
}

}  // namespace
}  // namespace oss::processing
