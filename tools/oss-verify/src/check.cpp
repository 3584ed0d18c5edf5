// The pure part of the checker: compares a Snapshot with the invariants (see verify.hpp).
// The "lost" rule is reconcile::compare() and the workflow rules are domain::Workflow and
// domain::decide_correction(), so the checker judges with the service's own definitions.
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "domain/state_machine.hpp"
#include "oss/verify/verify.hpp"

namespace oss::verify {

std::string_view to_string(ViolationKind kind) {
  switch (kind) {
    case ViolationKind::lost: return "lost";
    case ViolationKind::dead_letter_without_reason: return "dead_letter_without_reason";
    case ViolationKind::applied_twice: return "applied_twice";
    case ViolationKind::applied_and_dead_lettered: return "applied_and_dead_lettered";
    case ViolationKind::applied_without_history: return "applied_without_history";
    case ViolationKind::history_without_applied: return "history_without_applied";
    case ViolationKind::broken_chain: return "broken_chain";
    case ViolationKind::forbidden_transition: return "forbidden_transition";
    case ViolationKind::sequence_not_increasing: return "sequence_not_increasing";
    case ViolationKind::status_mismatch: return "status_mismatch";
  }
  return "unknown";
}

std::map<ViolationKind, std::size_t> Verdict::count_by_kind() const {
  std::map<ViolationKind, std::size_t> out;
  for (const auto& v : violations) ++out[v.kind];
  return out;
}

namespace {

std::string text_of(const std::optional<std::string>& status) { return status ? *status : std::string("(creation)"); }

/// Is this history row a transition its source may make? Returns an explanation when not.
std::optional<std::string> forbidden(const domain::Workflow& wf, const HistoryRow& h) {
  if (h.source == "operator") {
    // Operator corrections: any transition the workflow allows, whoever normally makes it.
    std::optional<domain::OrderState> current;
    if (h.from_status) current = domain::OrderState{*h.from_status, {}, 0};
    const auto d = domain::decide_correction(wf, current, h.to_status);
    if (d.outcome == domain::Outcome::applied) return std::nullopt;
    return "operator correction not allowed: " + d.detail;
  }
  if (!wf.is_known(h.to_status)) return "unknown status " + h.to_status;
  if (h.from_status && !wf.is_known(*h.from_status)) return "unknown status " + *h.from_status;
  if (!wf.allows(h.from_status, h.to_status))
    return fmt::format("{} -> {} is not a transition of workflow {}", text_of(h.from_status), h.to_status, wf.name());
  // The source "sla" may make exactly the auto transitions (Workflow::source_may knows them).
  if (!wf.source_may(h.from_status, h.to_status, h.source))
    return fmt::format("{} -> {} is not allowed for source {}", text_of(h.from_status), h.to_status, h.source);
  return std::nullopt;
}

}  // namespace

Verdict check(const Snapshot& s, const domain::Workflow& wf, const Options& options) {
  Verdict v;
  auto add = [&](ViolationKind k, std::string order, std::string event, std::string detail) {
    v.violations.push_back({k, std::move(order), std::move(event), std::move(detail)});
  };

  // --- decisions and dead letters, by event id
  std::unordered_map<std::string, const Decision*> decision_of;
  decision_of.reserve(s.decisions.size());
  for (const auto& d : s.decisions) decision_of[d.event_id] = &d;
  std::unordered_set<std::string> with_reason, open_dead_letter;
  for (const auto& d : s.dead_letters) {
    if (d.event_id.empty()) continue;
    if (!d.reason.empty()) with_reason.insert(d.event_id);
    if (!d.replayed) open_dead_letter.insert(d.event_id);
  }

  // --- zero lost (the reconcile command's rule: decided, in flight within grace, or a problem)
  {
    std::map<std::string, std::string> decided;
    for (const auto& e : s.emitted)
      if (auto it = decision_of.find(e.event_id); it != decision_of.end()) decided[e.event_id] = it->second->outcome;
    const auto r = reconcile::compare(s.emitted, decided, s.taken_at, options.grace, s.waiting);
    v.emitted = r.emitted;
    v.decided_by_outcome = r.decided_by_outcome;
    v.in_flight = r.in_flight;
    v.waiting = r.waiting;
    for (const auto& p : r.problems)
      add(ViolationKind::lost, p.event.aggregate_id, p.event.event_id,
          fmt::format("{} event {}/{} sequence {} ({}) emitted at {} was never decided: {}{}", p.event.source,
                      p.event.aggregate_id, p.event.event_type, p.event.sequence, p.event.event_id,
                      core::format_rfc3339(p.event.occurred_at), reconcile::to_string(p.state),
                      p.event.last_error.empty() ? "" : " (" + p.event.last_error + ")"));
  }

  // --- every dead-lettered decision has its dead letter with a reason
  for (const auto& d : s.decisions)
    if (d.outcome == "dead_lettered" && !with_reason.contains(d.event_id))
      add(ViolationKind::dead_letter_without_reason, d.order_id, d.event_id,
          "decided dead_lettered but oss.dead_letters has no row with a reason for it");

  // --- history rows by event: at most one, and consistent with the decision
  struct EventRows {
    std::size_t n = 0;
    std::string order;
  };
  std::unordered_map<std::string, EventRows> rows_of_event;
  for (const auto& h : s.history)
    if (h.event_id) {
      auto& r = rows_of_event[*h.event_id];
      ++r.n;
      r.order = h.order_id;
    }
  for (const auto& [event, rows] : rows_of_event) {
    const auto n = rows.n;
    const auto& order = rows.order;
    if (n > 1) add(ViolationKind::applied_twice, order, event, fmt::format("{} history rows for one event", n));
    const auto it = decision_of.find(event);
    if (it == decision_of.end()) {
      add(ViolationKind::history_without_applied, order, event, "history row for an event with no recorded decision");
    } else if (it->second->outcome == "dead_lettered") {
      add(ViolationKind::applied_and_dead_lettered, order, event, "history row for an event decided dead_lettered");
    } else if (it->second->outcome != "applied") {
      add(ViolationKind::history_without_applied, order, event,
          "history row for an event decided " + it->second->outcome);
    }
    if (open_dead_letter.contains(event) && (it == decision_of.end() || it->second->outcome != "dead_lettered"))
      add(ViolationKind::applied_and_dead_lettered, order, event,
          "applied, yet its dead letter is still open (not replayed)");
  }
  for (const auto& d : s.decisions)
    if (d.outcome == "applied" && !rows_of_event.contains(d.event_id))
      add(ViolationKind::applied_without_history, d.order_id, d.event_id, "decided applied but no history row");

  // --- per order: chain, transitions, sequences, current status
  std::map<std::string, std::vector<const HistoryRow*>> by_order;
  for (const auto& h : s.history) by_order[h.order_id].push_back(&h);
  v.history_rows = s.history.size();
  v.orders = s.orders.size();
  for (auto& [order, rows] : by_order) {
    std::sort(rows.begin(), rows.end(), [](const HistoryRow* a, const HistoryRow* b) { return a->id < b->id; });
    std::optional<std::string> current;  // status before the row
    std::map<std::string, std::int64_t> last_seq;  // per source
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& h = *rows[i];
      const std::string ev = h.event_id.value_or("");
      if (h.from_status != current) {
        add(ViolationKind::broken_chain, order, ev,
            fmt::format("history row {} goes {} -> {} but the order was {}", h.id, text_of(h.from_status), h.to_status,
                        i == 0 ? std::string("new (the first row must be a creation)") : text_of(current)));
      }
      if (auto why = forbidden(wf, h)) add(ViolationKind::forbidden_transition, order, ev, fmt::format("row {}: {}", h.id, *why));
      if (h.sequence) {
        auto it = last_seq.find(h.source);
        if (it != last_seq.end() && *h.sequence <= it->second)
          add(ViolationKind::sequence_not_increasing, order, ev,
              fmt::format("row {}: {} sequence {} applied after sequence {}", h.id, h.source, *h.sequence, it->second));
        last_seq[h.source] = it == last_seq.end() ? *h.sequence : std::max(it->second, *h.sequence);
      }
      current = h.to_status;
    }
    const auto o = s.orders.find(order);
    if (o == s.orders.end())
      add(ViolationKind::status_mismatch, order, "", "history rows for an order missing from oss.orders");
    else if (current && o->second != *current)
      add(ViolationKind::status_mismatch, order, "",
          fmt::format("oss.orders says {} but the last history row says {}", o->second, *current));
  }
  for (const auto& [order, status] : s.orders)
    if (!by_order.contains(order))
      add(ViolationKind::status_mismatch, order, "", "order " + status + " without any history row");
  return v;
}

std::string format_text(const Verdict& v, std::size_t limit) {
  std::string out;
  std::size_t decided = 0;
  std::string outcomes;
  for (const auto& [o, n] : v.decided_by_outcome) {
    decided += n;
    outcomes += fmt::format("{}{} {}", outcomes.empty() ? "" : ", ", o, n);
  }
  out += fmt::format("emitted {}; decided {} ({}); in flight {}; waiting for a predecessor {}; orders {}; history rows {}\n",
                     v.emitted, decided, outcomes, v.in_flight, v.waiting, v.orders, v.history_rows);
  if (v.ok()) {
    out += "OK: nothing lost, nothing applied twice, every history follows the workflow\n";
    return out;
  }
  std::string kinds;
  for (const auto& [k, n] : v.count_by_kind()) kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", to_string(k), n);
  out += fmt::format("VIOLATED: {} violation(s): {}\n", v.violations.size(), kinds);
  std::size_t shown = 0;
  for (const auto& x : v.violations) {
    if (shown++ >= limit) {
      out += fmt::format("... {} more\n", v.violations.size() - limit);
      break;
    }
    out += fmt::format("  {:<26} order={} event={} {}\n", to_string(x.kind), x.order_id.empty() ? "-" : x.order_id,
                       x.event_id.empty() ? "-" : x.event_id, x.detail);
  }
  return out;
}

std::string format_json(const Verdict& v, std::size_t limit) {
  nlohmann::json kinds = nlohmann::json::object();
  for (const auto& [k, n] : v.count_by_kind()) kinds[std::string(to_string(k))] = n;
  nlohmann::json list = nlohmann::json::array();
  for (std::size_t i = 0; i < v.violations.size() && i < limit; ++i) {
    const auto& x = v.violations[i];
    list.push_back({{"kind", to_string(x.kind)}, {"order_id", x.order_id}, {"event_id", x.event_id}, {"detail", x.detail}});
  }
  return nlohmann::json{{"ok", v.ok()},
                        {"emitted", v.emitted},
                        {"decided", v.decided_by_outcome},
                        {"in_flight", v.in_flight},
                        {"waiting", v.waiting},
                        {"orders", v.orders},
                        {"history_rows", v.history_rows},
                        {"violations_by_kind", kinds},
                        {"violations_total", v.violations.size()},
                        {"violations", list}}
      .dump();
}

}  // namespace oss::verify
