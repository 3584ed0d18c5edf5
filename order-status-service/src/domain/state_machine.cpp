#include "domain/state_machine.hpp"

#include <array>
#include <utility>

namespace oss::domain {
namespace {

constexpr std::array<std::pair<DeadLetterReason, std::string_view>, 5> kReasons{{
    {DeadLetterReason::malformed, "malformed"},
    {DeadLetterReason::unknown_status, "unknown_status"},
    {DeadLetterReason::source_not_allowed, "source_not_allowed"},
    {DeadLetterReason::invalid_transition, "invalid_transition"},
    {DeadLetterReason::retries_exhausted, "retries_exhausted"},
}};

std::string str(std::string_view s) { return std::string(s); }

Decision applied(std::string detail) {
  return Decision{Outcome::applied, std::nullopt, std::move(detail), true};
}
Decision stale(std::string detail, bool advances) {
  return Decision{Outcome::stale, std::nullopt, std::move(detail), advances};
}
Decision early(std::string detail) {
  return Decision{Outcome::early, std::nullopt, std::move(detail), false};
}
Decision dead_letter(DeadLetterReason reason, std::string detail, bool advances) {
  return Decision{Outcome::dead_letter, reason, std::move(detail), advances};
}

std::string unknown_status_detail(const Workflow& wf, std::string_view target) {
  return "status '" + str(target) + "' is not defined in workflow " + wf.name();
}

std::string transition_text(const std::optional<std::string>& from, std::string_view to) {
  return (from ? *from : std::string("(new order)")) + " → " + str(to);
}

}  // namespace

std::string_view to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::applied:
      return "applied";
    case Outcome::duplicate:
      return "duplicate";
    case Outcome::stale:
      return "stale";
    case Outcome::early:
      return "early";
    case Outcome::dead_letter:
      return "dead_letter";
  }
  return "unknown";
}

std::string_view to_string(DeadLetterReason reason) {
  for (const auto& [r, name] : kReasons) {
    if (r == reason) return name;
  }
  return "unknown";
}

std::optional<DeadLetterReason> dead_letter_reason_from_string(std::string_view text) {
  for (const auto& [r, name] : kReasons) {
    if (name == text) return r;
  }
  return std::nullopt;
}

Decision decide(const Workflow& wf, const std::optional<OrderState>& order,
                std::optional<std::int64_t> last_sequence, std::string_view source,
                std::int64_t sequence, std::string_view target) {
  const std::string src(source);
  const std::string seq = std::to_string(sequence);

  // (a) already consumed from this source
  if (last_sequence && sequence <= *last_sequence) {
    return stale("sequence " + seq + " already consumed from " + src + " (last " +
                     std::to_string(*last_sequence) + ")",
                 false);
  }
  const std::int64_t expected = last_sequence ? *last_sequence + 1 : 1;
  const bool gap = sequence > expected;

  // (b) the status does not exist: no amount of waiting helps
  if (!wf.is_known(target)) {
    return dead_letter(DeadLetterReason::unknown_status, unknown_status_detail(wf, target), !gap);
  }

  // (c) an earlier event from the same source is missing
  if (gap) {
    return early("sequence " + seq + " from " + src +
                 " arrived before its predecessors; waiting for " + src + " sequence " +
                 std::to_string(expected));
  }

  // (d) the order does not exist yet
  if (!order) {
    if (wf.is_initial(target)) {
      if (wf.source_may(std::nullopt, target, source)) {
        return applied("order created in " + str(target) + " by " + src);
      }
      return dead_letter(DeadLetterReason::source_not_allowed,
                         "source " + src + " may not create an order in " + str(target) +
                             " (workflow " + wf.name() + ")",
                         true);
    }
    return early("order unknown; waiting for its creation before applying " + str(target) +
                 " from " + src);
  }

  const std::string& current = order->status;
  const std::optional<std::string> from = current;

  // (e) nothing to change
  if (current == target) {
    return stale("order already in " + current, true);
  }

  // (f) a valid next status
  if (wf.allows(from, target)) {
    if (wf.source_may(from, target, source)) {
      return applied(current + " → " + str(target) + " by " + src);
    }
    return dead_letter(DeadLetterReason::source_not_allowed,
                       "source " + src + " may not make the transition " + current + " → " +
                           str(target) + " (workflow " + wf.name() + ")",
                       true);
  }

  // (g) the order is behind: something in between has not arrived yet
  if (wf.reachable(current, target)) {
    return early("order is at " + current + " and " + str(target) +
                 " is further ahead; waiting for the statuses in between");
  }

  // (h) the order is ahead of this event
  if (wf.reachable(target, current)) {
    return stale("order already at " + current + ", past " + str(target), true);
  }

  // (i) the workflow forbids it
  std::string detail = current + " → " + str(target) + " is not allowed by workflow " + wf.name();
  if (!wf.is_known(current)) {
    detail += " (the order's current status " + current + " is not defined in this workflow)";
  } else if (wf.is_terminal(current)) {
    detail += " (" + current + " is terminal)";
  }
  return dead_letter(DeadLetterReason::invalid_transition, std::move(detail), true);
}

Decision decide_correction(const Workflow& wf, const std::optional<OrderState>& order,
                           std::string_view target) {
  if (!wf.is_known(target)) {
    return dead_letter(DeadLetterReason::unknown_status, unknown_status_detail(wf, target), false);
  }
  const std::optional<std::string> from =
      order ? std::optional<std::string>(order->status) : std::nullopt;
  if (wf.allows(from, target)) {
    return Decision{Outcome::applied, std::nullopt,
                    "operator correction " + transition_text(from, target), false};
  }
  std::string detail;
  if (!order) {
    detail =
        "order unknown, and workflow " + wf.name() + " does not create orders in " + str(target);
  } else if (order->status == target) {
    detail = "order is already in " + str(target);
  } else {
    detail = transition_text(from, target) + " is not allowed by workflow " + wf.name();
    if (wf.is_terminal(order->status)) detail += " (" + order->status + " is terminal)";
  }
  return dead_letter(DeadLetterReason::invalid_transition, std::move(detail), false);
}

}  // namespace oss::domain
