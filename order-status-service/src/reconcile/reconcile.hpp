#pragma once
/// Reconciliation: did every event a producer committed reach a decision in the service?
/// Pure comparison here; app/cmd_reconcile.cpp reads both databases.
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "oss/core/time.hpp"

namespace oss::reconcile {

struct EmittedEvent {
  std::string event_id, source, aggregate_id, event_type;
  std::int64_t sequence = 0;
  core::TimePoint occurred_at{};
  bool published = false;  // confirmed by the broker (outbox published_at set)
  bool parked = false;     // the relay gave up on it (needs an operator)
  std::string last_error;
};

enum class State { decided, in_flight, missing, unpublished, parked };
std::string_view to_string(State s);

struct Finding {
  EmittedEvent event;
  State state = State::missing;
};

struct Report {
  std::size_t emitted = 0;
  std::map<std::string, std::size_t> decided_by_outcome;  // applied, stale, ignored, dead_lettered
  std::size_t in_flight = 0;  // younger than the grace period and not decided yet
  /// Arrived and parked as early (oss.early_events), waiting for a predecessor: not lost, and
  /// decided (applied, or dead-lettered as retries_exhausted) by the service without help.
  std::size_t waiting = 0;
  std::vector<Finding> problems;  // missing, unpublished, parked: older than the grace period
  bool ok() const { return problems.empty(); }
};

/// `decided`: event_id → outcome recorded by the service (oss.processed_events); `waiting`:
/// event ids parked as early (oss.early_events). An event younger than `grace` that is neither
/// is in flight, not lost.
Report compare(const std::vector<EmittedEvent>& emitted, const std::map<std::string, std::string>& decided,
               core::TimePoint now, std::chrono::milliseconds grace, const std::set<std::string>& waiting = {});

}  // namespace oss::reconcile
