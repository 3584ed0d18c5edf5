#include "processing/batch_plan.hpp"

#include <fmt/format.h>

namespace oss::processing {

using domain::DeadLetterReason;
using domain::Outcome;

std::vector<std::string> order_ids_of(const std::vector<InboundEvent>& batch) {
  std::set<std::string> ids;
  for (const auto& e : batch)
    if (const auto* env = std::get_if<domain::Envelope>(&e.parsed)) ids.insert(env->aggregate_id);
  return {ids.begin(), ids.end()};
}

std::vector<std::string> event_ids_of(const std::vector<InboundEvent>& batch) {
  std::set<std::string> ids;
  for (const auto& e : batch)
    if (const auto* env = std::get_if<domain::Envelope>(&e.parsed)) ids.insert(env->event_id);
  return {ids.begin(), ids.end()};
}

std::optional<core::TimePoint> sla_due(const domain::Workflow& workflow, const std::string& status,
                                       core::TimePoint entered_at) {
  const auto* def = workflow.status(status);
  if (def == nullptr || !def->sla) return std::nullopt;
  return entered_at + std::chrono::duration_cast<std::chrono::microseconds>(*def->sla);
}

BatchPlan plan_batch(const domain::Workflow& workflow, const std::vector<InboundEvent>& batch,
                     const LoadedState& state, int max_attempts) {
  BatchPlan plan;
  plan.results.reserve(batch.size());
  std::set<std::string> seen = state.seen_event_ids;
  std::set<std::string> decided_in_batch;  // event ids decided by this batch (a replay counts once)
  // Working copies: several events of one order in a batch chain on each other's results.
  std::map<std::string, std::optional<domain::OrderState>> orders;
  auto order_of = [&](const std::string& id) -> std::optional<domain::OrderState>& {
    auto it = orders.find(id);
    if (it != orders.end()) return it->second;
    auto loaded = state.orders.find(id);
    return orders.emplace(id, loaded == state.orders.end() ? std::nullopt
                                                            : std::optional<domain::OrderState>(loaded->second))
        .first->second;
  };
  auto last_seq = [&](const std::string& order, const std::string& source) -> std::optional<std::int64_t> {
    const auto key = std::make_pair(order, source);
    if (auto it = plan.last_sequences.find(key); it != plan.last_sequences.end()) return it->second;
    if (auto it = state.last_sequences.find(key); it != state.last_sequences.end()) return it->second;
    return std::nullopt;
  };

  // Decides item i. An early item changes nothing (its retry decision is made after the last
  // pass, below), so deciding it again later in the batch is the same as a retry.
  auto decide_item = [&](std::size_t i) -> ItemResult {
    const auto& in = batch[i];
    ItemResult r;
    auto dead_letter = [&](DeadLetterReason reason, std::string detail, const domain::Envelope* env) {
      r.outcome = Outcome::dead_letter;
      r.reason = reason;
      r.detail = std::move(detail);
      DeadLetterRow d;
      d.item = i;
      d.reason = std::string(domain::to_string(reason));
      d.error = r.detail;
      d.routing_key = in.routing_key;
      d.body = in.body;
      if (env != nullptr) {
        d.event_id = env->event_id;
        d.order_id = env->aggregate_id;
        d.source = env->source;
        plan.processed.push_back({env->event_id, env->aggregate_id, env->source, env->event_type, "dead_lettered",
                                  env->sequence});
      } else if (!in.message_id.empty()) {
        d.event_id = in.message_id;
      }
      plan.dead_letters.push_back(std::move(d));
    };

    if (const auto* err = std::get_if<domain::EnvelopeError>(&in.parsed)) {
      dead_letter(DeadLetterReason::malformed, err->detail, nullptr);
      return r;
    }
    const auto& env = std::get<domain::Envelope>(in.parsed);
    const bool replay_of_dead_letter =
        in.replay && state.dead_lettered_event_ids.contains(env.event_id) && !decided_in_batch.contains(env.event_id);
    if (seen.contains(env.event_id) && !replay_of_dead_letter) {
      r.outcome = Outcome::duplicate;
      r.detail = "event " + env.event_id + " was already processed";
      return r;
    }
    const bool is_order = env.aggregate_type == "order";
    const bool is_status_change = is_order && env.event_type == kStatusChanged;
    if (!is_status_change) {
      // Not ours to apply, but it holds a place in the source's sequence for this aggregate:
      // consume it in order so that later status changes do not wait for it.
      r.ignored = true;
      const auto last = is_order ? last_seq(env.aggregate_id, env.source) : std::nullopt;
      if (is_order && last && env.sequence <= *last) {
        r.outcome = Outcome::stale;
        r.detail = fmt::format("sequence {} already consumed from {}", env.sequence, env.source);
      } else if (is_order && (last ? env.sequence > *last + 1 : env.sequence > 1)) {
        r.outcome = Outcome::early;
        r.detail = fmt::format("waiting for {} sequence {}", env.source, last ? *last + 1 : 1);
      } else {
        r.outcome = Outcome::applied;
        r.detail = "ignored: " + env.aggregate_type + "/" + env.event_type + " is not a status change";
        if (is_order) plan.last_sequences[{env.aggregate_id, env.source}] = env.sequence;
        plan.processed.push_back({env.event_id, env.aggregate_id, env.source, env.event_type, "ignored", env.sequence});
        seen.insert(env.event_id);
      }
      return r;
    }
    const auto change = domain::status_change_of(env);
    if (const auto* err = std::get_if<domain::EnvelopeError>(&change); err != nullptr && in.parked) {
      r.outcome = Outcome::early;  // as above: dead-lettered from the queue, never from the park
      r.recheck = true;
      r.detail = "to be dead-lettered from the queue: " + err->detail;
      return r;
    }
    if (const auto* err = std::get_if<domain::EnvelopeError>(&change)) {
      dead_letter(DeadLetterReason::malformed, err->detail, &env);
      seen.insert(env.event_id);
      // A dead letter is final for its sequence (as in decide()), unless earlier sequences of
      // this source are still missing: advancing then would make them look stale.
      const auto last = last_seq(env.aggregate_id, env.source);
      if (last ? env.sequence == *last + 1 : env.sequence == 1)
        plan.last_sequences[{env.aggregate_id, env.source}] = env.sequence;
      return r;
    }
    const auto& sc = std::get<domain::StatusChange>(change);
    auto& order = order_of(env.aggregate_id);
    const auto consumed = last_seq(env.aggregate_id, env.source);
    // A replayed dead letter already consumed its sequence when it was dead-lettered: decide it
    // on the order's status alone (after the operator fixed the cause it may apply now; if the
    // order moved past it, the status rules call it stale).
    auto effective_last = consumed;
    if (replay_of_dead_letter && consumed && *consumed >= env.sequence) effective_last = env.sequence - 1;
    const auto decision =
        domain::decide(workflow, order, effective_last, env.source, env.sequence, sc.status);
    if (in.parked && decision.outcome == Outcome::dead_letter) {
      // Its dead letter is published with confirms from the queue path, never from here (the
      // parked row is its only copy): due at once, it goes back through the queue.
      r.outcome = Outcome::early;
      r.recheck = true;
      r.detail = "to be dead-lettered from the queue: " + decision.detail;
      return r;
    }
    r.outcome = decision.outcome;
    r.reason = decision.reason;
    r.detail = decision.detail;
    switch (decision.outcome) {
      case Outcome::applied: {
        HistoryRow h;
        h.order_id = env.aggregate_id;
        if (order) h.from_status = order->status;
        h.to_status = sc.status;
        h.event_id = env.event_id;
        h.source = env.source;
        h.sequence = env.sequence;
        h.occurred_at = env.occurred_at;
        h.actor = sc.actor;
        h.reason = sc.reason;
        plan.history.push_back(std::move(h));
        const bool created = !order.has_value();
        domain::OrderState next{sc.status, env.occurred_at, order ? order->version + 1 : 1};
        order = next;
        auto& row = plan.orders[env.aggregate_id];
        row.created = row.created || (created && !state.orders.contains(env.aggregate_id));
        row.state = next;
        row.sla_due_at = sla_due(workflow, sc.status, env.occurred_at);
        plan.processed.push_back({env.event_id, env.aggregate_id, env.source, env.event_type, "applied", env.sequence});
        seen.insert(env.event_id);
        break;
      }
      case Outcome::stale:
        plan.processed.push_back({env.event_id, env.aggregate_id, env.source, env.event_type, "stale", env.sequence});
        seen.insert(env.event_id);
        break;
      case Outcome::early:
        return r;  // decided (again) in a later pass or after the last one
      case Outcome::dead_letter:
        dead_letter(decision.reason.value_or(DeadLetterReason::invalid_transition), decision.detail, &env);
        seen.insert(env.event_id);
        break;
      case Outcome::duplicate:
        break;
    }
    if (decision.advances_sequence && r.outcome != Outcome::early && (!consumed || env.sequence > *consumed))
      plan.last_sequences[{env.aggregate_id, env.source}] = env.sequence;
    decided_in_batch.insert(env.event_id);
    return r;
  };

  // Passes: first every item in order; then the early ones again, in order, as long as a pass
  // applies something (an event whose predecessor comes later in the same batch is applied
  // right after it instead of taking a trip through a delay queue).
  std::vector<ItemResult> results(batch.size());
  std::vector<std::size_t> early;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    results[i] = decide_item(i);
    if (results[i].outcome == Outcome::early) early.push_back(i);
  }
  for (bool progress = !early.empty(); progress;) {
    progress = false;
    std::vector<std::size_t> still;
    for (const auto i : early) {
      results[i] = decide_item(i);
      if (results[i].outcome == Outcome::early) still.push_back(i);
      else progress = true;
    }
    early.swap(still);
  }
  // Still early: retried later (delay queue), or dead-lettered once the retries are used up.
  std::set<std::string> exhausted;
  for (const auto i : early) {
    const auto& in = batch[i];
    auto& r = results[i];
    if (in.parked || in.attempt < max_attempts) continue;
    const auto& env = std::get<domain::Envelope>(in.parsed);
    if (!exhausted.insert(env.event_id).second) {  // the same event twice in this batch: decided once
      r = ItemResult{Outcome::duplicate, std::nullopt, "event " + env.event_id + " was already processed", false};
      continue;
    }
    const std::string detail = fmt::format("still early after {} retries: {}", in.attempt, r.detail);
    r = ItemResult{};
    r.outcome = Outcome::dead_letter;
    r.reason = DeadLetterReason::retries_exhausted;
    r.detail = detail;
    DeadLetterRow d;
    d.item = i;
    d.reason = std::string(domain::to_string(DeadLetterReason::retries_exhausted));
    d.error = detail;
    d.routing_key = in.routing_key;
    d.body = in.body;
    d.event_id = env.event_id;
    d.order_id = env.aggregate_id;
    d.source = env.source;
    plan.processed.push_back({env.event_id, env.aggregate_id, env.source, env.event_type, "dead_lettered", env.sequence});
    plan.dead_letters.push_back(std::move(d));
  }
  // Parking: what is still early waits in the database next to its order (docs/adr/0004),
  // with the order version it was decided against.
  const auto version_after = [&](const std::string& order_id) -> std::int64_t {
    if (const auto it = plan.orders.find(order_id); it != plan.orders.end()) return it->second.state.version;
    if (const auto it = state.orders.find(order_id); it != state.orders.end()) return it->second.version;
    return 0;
  };
  std::set<std::string> parking;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto* env = std::get_if<domain::Envelope>(&batch[i].parsed);
    if (env == nullptr) continue;
    const bool early_now = results[i].outcome == Outcome::early;
    if (batch[i].parked) {
      if (!early_now) plan.to_unpark.push_back(env->event_id);
      else if (results[i].recheck) plan.to_recheck.push_back(env->event_id);
      else if (plan.orders.count(env->aggregate_id) != 0)
        plan.to_refresh.emplace_back(env->event_id, version_after(env->aggregate_id));
    } else if (early_now && parking.insert(env->event_id).second) {
      plan.to_park.push_back(i);
      plan.to_park_versions.push_back(version_after(env->aggregate_id));
    }
  }
  plan.results = std::move(results);
  return plan;
}

}  // namespace oss::processing
