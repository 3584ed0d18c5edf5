#include "reconcile/reconcile.hpp"

namespace oss::reconcile {

std::string_view to_string(State s) {
  switch (s) {
    case State::decided: return "decided";
    case State::in_flight: return "in_flight";
    case State::missing: return "missing";
    case State::unpublished: return "unpublished";
    case State::parked: return "parked";
  }
  return "unknown";
}

Report compare(const std::vector<EmittedEvent>& emitted, const std::map<std::string, std::string>& decided,
               core::TimePoint now, std::chrono::milliseconds grace, const std::set<std::string>& waiting) {
  Report r;
  r.emitted = emitted.size();
  const auto cutoff = now - std::chrono::duration_cast<std::chrono::microseconds>(grace);
  for (const auto& e : emitted) {
    if (auto it = decided.find(e.event_id); it != decided.end()) {
      ++r.decided_by_outcome[it->second];
      continue;
    }
    if (waiting.contains(e.event_id)) {
      ++r.waiting;
      continue;
    }
    if (e.parked) {
      // Parked rows need an operator whatever their age.
      r.problems.push_back({e, State::parked});
      continue;
    }
    if (e.occurred_at > cutoff) {
      ++r.in_flight;
      continue;
    }
    r.problems.push_back({e, e.published ? State::missing : State::unpublished});
  }
  return r;
}

}  // namespace oss::reconcile
