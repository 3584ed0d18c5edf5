#pragma once
/// What the service does with one status-change event, decided purely from the workflow, the
/// order's current state and the per-source sequence bookkeeping (CONTRACT "What the service
/// does with each message"). No I/O; the caller loads the inputs and persists the result in one
/// transaction. Duplicate detection by event_id happens before decide() (Outcome::duplicate is
/// listed here so that all outcomes share one vocabulary).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "domain/workflow.hpp"
#include "oss/core/time.hpp"

namespace oss::domain {

/// An order as the state machine needs it.
struct OrderState {
  std::string status;
  core::TimePoint status_entered_at{};
  std::int64_t version = 0;
};

enum class Outcome { applied, duplicate, stale, early, dead_letter };

/// Why a message is dead-lettered; the strings are the `x-oss-reason` header values.
enum class DeadLetterReason {
  malformed,
  unknown_status,
  source_not_allowed,
  invalid_transition,
  retries_exhausted
};

std::string_view to_string(Outcome outcome);
std::string_view to_string(DeadLetterReason reason);
std::optional<DeadLetterReason> dead_letter_reason_from_string(std::string_view text);

struct Decision {
  Outcome outcome = Outcome::dead_letter;
  std::optional<DeadLetterReason> reason;  // set iff outcome == dead_letter
  std::string detail;                      // a sentence for logs, DLQ headers and the API
  /// Whether the caller records `sequence` as consumed from this source for this order.
  /// False for early (retried later) and for events already consumed.
  bool advances_sequence = false;
};

/// Decides one status-change event for `target` from `source` with `sequence`.
/// `order`: the current state, nullopt when the order is unknown. `last_sequence`: the highest
/// sequence already consumed from `source` for this order (nullopt: none yet). Rules, in order:
///  (a) sequence <= last_sequence → stale (already consumed)
///  (b) unknown target status → dead_letter unknown_status
///  (c) sequence gap (sequence > last+1, or > 1 when none yet) → early
///  (d) order unknown: initial target → applied if the source may create it, else
///      dead_letter source_not_allowed; non-initial target → early (creation not yet seen)
///  (e) target == current status → stale
///  (f) allowed transition → applied if the source may make it, else dead_letter
///      source_not_allowed
///  (g) target reachable from current → early (a predecessor status has not arrived)
///  (h) current reachable from target → stale (the order is already past it)
///  (i) otherwise dead_letter invalid_transition
/// Dead letters advance the sequence (they are final for that sequence), except (b) while
/// earlier sequences from the same source are still missing: advancing there would make them
/// look stale when they arrive.
Decision decide(const Workflow& wf, const std::optional<OrderState>& order,
                std::optional<std::int64_t> last_sequence, std::string_view source,
                std::int64_t sequence, std::string_view target);

/// An operator's correction (source "operator", no sequence): applied iff the workflow allows
/// current → target (creation when the order is unknown); source restrictions do not apply.
/// Otherwise dead_letter with unknown_status or invalid_transition (the HTTP layer answers 409).
/// advances_sequence is always false.
Decision decide_correction(const Workflow& wf, const std::optional<OrderState>& order,
                           std::string_view target);

}  // namespace oss::domain
