#pragma once
/// The decision for a batch of deliveries, as a pure function: given what the database holds
/// for the batch's orders, say what happens to each message and which rows to write. The
/// store loads the inputs and writes the plan in one transaction; the consumer acks, retries
/// or dead-letters according to the per-message results.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "domain/envelope.hpp"
#include "domain/state_machine.hpp"
#include "domain/workflow.hpp"

namespace oss::processing {

inline constexpr std::string_view kStatusChanged = "order.status_changed";

struct InboundEvent {
  std::variant<domain::Envelope, domain::EnvelopeError> parsed;
  std::string body;
  std::string routing_key;
  std::string message_id;  // AMQP property (used when the body has no usable event_id)
  int attempt = 0;         // early retries so far (x-oss-attempt)
  bool replay = false;     // an operator's DLQ replay (x-oss-replay-of): decided afresh
  /// A parked early event (oss.early_events) loaded for its order, not a delivery. It is
  /// never dead-lettered by a batch: one that would be goes back through the queue (recheck).
  bool parked = false;
  /// When the event was first parked (µs since the epoch), carried across trips through the
  /// queue (x-oss-parked-since), so that a re-parked event keeps its first arrival time.
  std::optional<std::int64_t> parked_since_us;
};

/// What happens to one message.
struct ItemResult {
  domain::Outcome outcome = domain::Outcome::dead_letter;
  std::optional<domain::DeadLetterReason> reason;
  std::string detail;
  bool ignored = false;  // not a status change of an order: acked and recorded, nothing applied
  /// A parked event that would be dead-lettered now: it stays early, due at once, and the
  /// sweeper sends it back through the queue, where it is dead-lettered with confirms.
  bool recheck = false;
};

struct LoadedState {
  std::set<std::string> seen_event_ids;
  /// Subset of seen_event_ids whose recorded outcome is dead_lettered: a replay of one of
  /// these is decided again; any other repeat is a duplicate.
  std::set<std::string> dead_lettered_event_ids;
  std::map<std::string, domain::OrderState> orders;
  std::map<std::pair<std::string, std::string>, std::int64_t> last_sequences;  // (order, source)
};

struct ProcessedRow {
  std::string event_id, order_id, source, event_type, outcome;
  std::int64_t sequence = 0;
};
struct OrderRow {
  domain::OrderState state;
  std::optional<core::TimePoint> sla_due_at;
  bool created = false;
};
struct HistoryRow {
  std::string order_id;
  std::optional<std::string> from_status;
  std::string to_status;
  std::optional<std::string> event_id;
  std::string source;
  std::optional<std::int64_t> sequence;
  core::TimePoint occurred_at{};
  std::string actor, reason;
};
struct DeadLetterRow {
  std::size_t item = 0;  // index into the batch
  std::optional<std::string> event_id, order_id, source;
  std::string reason, error, routing_key, body;
};

struct BatchPlan {
  std::vector<ItemResult> results;  // one per input, same order
  std::vector<ProcessedRow> processed;
  std::map<std::string, OrderRow> orders;  // final state per changed order
  std::map<std::pair<std::string, std::string>, std::int64_t> last_sequences;  // changed ones
  std::vector<HistoryRow> history;         // in application order (notifications follow it)
  std::vector<DeadLetterRow> dead_letters;
  /// Parking (docs/adr/0004): fresh items still early after the last pass (indexes into the
  /// batch, one per event id), parked events decided by this batch (to delete), and parked
  /// events due at once (recheck).
  std::vector<std::size_t> to_park;
  std::vector<std::string> to_unpark;
  std::vector<std::string> to_recheck;
  /// The order version each event in to_park was decided against (same positions; 0: the order
  /// does not exist yet). The sweeper retries a parked event in place, without a trip through
  /// the queue, while its order's version is still this one (nothing that could decide it
  /// differently has happened; schema/service/004_early_recheck.sql).
  std::vector<std::int64_t> to_park_versions;
  /// Parked events decided again by this batch and still early while their order changed:
  /// (event id, the order's new version), so that their next retry can still be done in place.
  std::vector<std::pair<std::string, std::int64_t>> to_refresh;
  std::size_t parked_loaded = 0;  // parked events the store added after the batch's items
};

/// Order ids the batch touches (for locking and loading).
std::vector<std::string> order_ids_of(const std::vector<InboundEvent>& batch);
/// Event ids the batch carries (for the duplicate check).
std::vector<std::string> event_ids_of(const std::vector<InboundEvent>& batch);

/// Early events that already had `max_attempts` retries become dead letters
/// (retries_exhausted) here, so the decision and its record are made in the same transaction.
/// Parked items (InboundEvent::parked) are decided after the fresh ones, never dead-lettered.
BatchPlan plan_batch(const domain::Workflow& workflow, const std::vector<InboundEvent>& batch,
                     const LoadedState& state, int max_attempts);

/// Due time of the SLA clock for an order that entered `status` at `entered_at`.
std::optional<core::TimePoint> sla_due(const domain::Workflow& workflow, const std::string& status,
                                       core::TimePoint entered_at);

}  // namespace oss::processing
