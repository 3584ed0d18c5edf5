#pragma once
/// The service's database: applying batches, reading orders and their history.
/// One instance per thread (it owns one connection).
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "domain/state_machine.hpp"
#include "domain/workflow.hpp"
#include "oss/pg/connection.hpp"
#include "processing/batch_plan.hpp"

namespace oss::sla {
class TimerRules;
}

namespace oss::store {

struct OrderView {
  std::string order_id, status;
  core::TimePoint status_entered_at{}, updated_at{};
  std::optional<core::TimePoint> sla_due_at;
  bool breached = false;
  std::int64_t version = 0;
};

struct HistoryEntry {
  std::optional<std::string> from_status;
  std::string to_status;
  std::optional<std::string> event_id;
  std::string source;
  std::optional<std::int64_t> sequence;
  core::TimePoint occurred_at{}, applied_at{};
  std::string actor, reason;
};

/// The result of apply_transition: the decision and, when applied (or refused), the order as it is
/// now (nullopt when the order is unknown and was not created).
struct TransitionResult {
  domain::Decision decision;
  std::optional<OrderView> order;
};

/// Name of the service's own notification source in its outbox.
inline constexpr const char* kNotificationSource = "order-status-service";

class PgOrderStore {
 public:
  explicit PgOrderStore(pg::ConnectOptions options);

  /// Applies a batch in one transaction: locks the batch's orders (advisory locks in a fixed
  /// order, so concurrent instances cannot deadlock), loads their state and their parked early
  /// events (decided after the batch, plan.results has one entry per delivery and then one per
  /// parked event), parks what is still early, plans, writes history,
  /// orders, inbox rows, dead-letter records and notifications (into the service's own outbox).
  /// Throws on database trouble (the caller retries the whole batch; nothing was written).
  processing::BatchPlan apply(const domain::Workflow& workflow, const std::vector<processing::InboundEvent>& batch,
                              int max_attempts);

  /// A transition that is not an event: an operator's correction (source "operator", decided by
  /// domain::decide_correction) or an automatic one (source "sla": only the current status's
  /// auto_transition target). In one transaction under the order's advisory lock (the same as
  /// apply): history row (no event id), order row with fresh SLA timers, resolution of open
  /// escalations, notification through the outbox. `now` is the transition's occurred_at.
  /// Throws std::invalid_argument for another source; on database trouble like apply().
  TransitionResult apply_transition(const domain::Workflow& workflow, const std::string& order_id,
                                    const std::string& target_status, const std::string& source,
                                    const std::string& actor, const std::string& reason, core::TimePoint now);

  /// How long an early event parked after `attempt` retries waits before the sweeper sends it
  /// back through the queue: delays[min(attempt, size - 1)] (the consumer's retry tiers).
  void set_park_delays(std::vector<std::chrono::milliseconds> delays) { park_delays_ = std::move(delays); }
  std::chrono::milliseconds park_delay(int attempt) const;

  std::optional<OrderView> order(const std::string& order_id, core::TimePoint now);
  std::vector<HistoryEntry> history(const std::string& order_id);
  void ping();
  void reset() { conn_.reset(); }

 private:
  pqxx::connection& conn();
  /// The workflow's timer rules (calendar zones resolved through the database), cached per workflow.
  const sla::TimerRules& timer_rules(const domain::Workflow& workflow);
  pg::ConnectOptions options_;
  std::shared_ptr<const sla::TimerRules> rules_;
  const domain::Workflow* rules_for_ = nullptr;
  std::unique_ptr<pqxx::connection> conn_;
  std::vector<std::chrono::milliseconds> park_delays_{std::chrono::seconds(1), std::chrono::seconds(5),
                                                      std::chrono::seconds(30), std::chrono::seconds(120)};
};

}  // namespace oss::store
