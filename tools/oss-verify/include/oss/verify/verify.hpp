#pragma once
/// The invariant checker: after any run (a test, a load scenario, a fault), proves that nothing
/// a producer emitted was lost or applied twice and that every order's history is one the
/// workflow allows.
///
/// Two steps, so that tests can check hand-made states without databases:
///   1. read_snapshot(): reads the producers' outboxes (outbox.all_events, through one function,
///      read_producer_events()) and the service's decisions (oss.processed_events,
///      oss.dead_letters, oss.status_history, oss.orders) into a Snapshot.
///   2. check(): pure; compares them and returns a Verdict listing every violation.
///
/// Invariants (ViolationKind):
///   - lost: an emitted event the service never decided (no oss.processed_events row with
///     outcome applied/stale/ignored/dead_lettered), or one the relay parked. Events younger
///     than Options::grace are counted as in flight instead (reconcile::compare decides this).
///   - dead_letter_without_reason: decided dead_lettered but no oss.dead_letters row with a
///     non-empty reason for that event id.
///   - applied_twice: more than one status_history row for one event id.
///   - applied_and_dead_lettered: a history row for an event whose decision is dead_lettered, or
///     which still has an open (not replayed) dead letter.
///   - applied_without_history / history_without_applied: the recorded decision and the history
///     disagree (decided applied but no history row; history row but decided stale/ignored or
///     never decided).
///   - broken_chain: an order's history does not start at creation (from NULL) or a row's
///     `from` is not the previous row's `to`.
///   - forbidden_transition: a history row the workflow does not allow for its source: producer
///     rows need Workflow::source_may(from, to, source); operator rows follow
///     domain::decide_correction (any allowed transition); sla rows need the status's
///     auto_transition (source_may with "sla").
///   - sequence_not_increasing: per (order, source) the applied sequences are not strictly
///     increasing in history order.
///   - status_mismatch: oss.orders.status differs from the order's last history row, or an
///     order has no history, or history exists for an order that is not in oss.orders.
///
/// Thread-safety: free functions without shared state.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "domain/workflow.hpp"
#include "reconcile/reconcile.hpp"
#include "oss/core/time.hpp"

namespace oss::verify {

/// One event as a producer's outbox recorded it (the reconcile command's type: the "lost"
/// rule is reconcile::compare()).
using ProducerEvent = reconcile::EmittedEvent;

/// One oss.processed_events row.
struct Decision {
  std::string event_id, order_id, source;
  std::int64_t sequence = 0;
  std::string outcome;  // applied, stale, ignored, dead_lettered
};

/// One oss.dead_letters row.
struct DeadLetter {
  std::string event_id;  // may be empty (a malformed message without message_id)
  std::string order_id, source, reason;
  bool replayed = false;
};

/// One oss.status_history row.
struct HistoryRow {
  std::int64_t id = 0;
  std::string order_id;
  std::optional<std::string> from_status;
  std::string to_status;
  std::optional<std::string> event_id;
  std::string source;
  std::optional<std::int64_t> sequence;
  core::TimePoint occurred_at{};
  core::TimePoint applied_at{};
};

/// Everything check() compares.
struct Snapshot {
  std::vector<ProducerEvent> emitted;             // all producers together
  std::vector<Decision> decisions;                // oss.processed_events
  std::vector<DeadLetter> dead_letters;           // oss.dead_letters
  std::vector<HistoryRow> history;                // oss.status_history, any order
  std::map<std::string, std::string> orders;      // oss.orders: order_id -> status
  /// Event ids parked as early in oss.early_events (service schema 3+; ADR 0004): arrived,
  /// waiting for a predecessor, retried with backoff and dead-lettered if it never comes.
  std::set<std::string> waiting;
  core::TimePoint taken_at{};                     // "now" for the grace period
};

enum class ViolationKind {
  lost,
  dead_letter_without_reason,
  applied_twice,
  applied_and_dead_lettered,
  applied_without_history,
  history_without_applied,
  broken_chain,
  forbidden_transition,
  sequence_not_increasing,
  status_mismatch,
};
std::string_view to_string(ViolationKind kind);

struct Violation {
  ViolationKind kind{};
  std::string order_id;  // empty when not about one order
  std::string event_id;  // empty when not about one event
  std::string detail;    // a sentence saying what is wrong
};

struct Options {
  /// Undecided events younger than this (relative to Snapshot::taken_at) are in flight, not
  /// lost. Zero after a drained run: everything must be decided.
  std::chrono::milliseconds grace{0};
};

struct Verdict {
  std::size_t emitted = 0;
  std::map<std::string, std::size_t> decided_by_outcome;  // producer events by outcome
  std::size_t in_flight = 0;
  std::size_t waiting = 0;  // undecided, parked as early (oss.early_events): not lost
  std::size_t orders = 0;
  std::size_t history_rows = 0;
  std::vector<Violation> violations;
  std::map<ViolationKind, std::size_t> count_by_kind() const;
  bool ok() const { return violations.empty(); }
};

/// Compares a snapshot against the invariants above. Pure.
Verdict check(const Snapshot& s, const domain::Workflow& wf, const Options& options = {});

/// A database could not be reached (exit code 3 in oss-verify).
struct Unreachable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Every event in one producer's outbox, in position order. The ONE place that knows where a
/// producer keeps its events (the view outbox.all_events = outbox.events + outbox.events_archive
/// since outbox schema 3; outbox.events before). Throws Unreachable when the database cannot be reached.
std::vector<ProducerEvent> read_producer_events(const std::string& source_db_url);

/// Reads the producers' outboxes and the service's tables. The service is read after the
/// producers, so an event emitted meanwhile can only look in flight/lost, never decided
/// without being emitted. Throws Unreachable.
Snapshot read_snapshot(const std::string& service_db_url, const std::vector<std::string>& source_db_urls);

/// Human-readable report: counts, verdict, and up to `limit` violations.
std::string format_text(const Verdict& verdict, std::size_t limit = 50);
/// One JSON document: {"ok", "emitted", "decided", "in_flight", "waiting", "orders", "history_rows",
/// "violations_by_kind", "violations": [{"kind","order_id","event_id","detail"}...] (up to limit)}.
std::string format_json(const Verdict& verdict, std::size_t limit = 1000);

}  // namespace oss::verify
