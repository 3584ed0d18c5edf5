#pragma once
/// The SLA/escalation pass: raises due escalation rungs, makes due automatic transitions and
/// raises source-silence escalations, as of an instant `at`. The in-service scanner and
/// `order-status-service escalate --once [--at T]` run this same code.
///
/// Cost: each step is an index range scan over stored due times (orders_next_timer_idx,
/// source_activity_due_idx), so a pass costs in proportion to what is due, not to all orders.
///
/// Exactly once: every order is handled under its advisory lock (the one PgOrderStore::apply
/// takes), its state re-read under the lock, and each rung inserted with ON CONFLICT DO NOTHING
/// on (kind, subject, stay_started_at, level); the notification is emitted only for rows
/// actually inserted, in the same transaction. Passes may run concurrently with each other and
/// with consumers: an order locked by someone else is skipped at first and retried with a
/// blocking lock at the end of the pass, when it is usually no longer due.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "oss/core/time.hpp"
#include "oss/pg/connection.hpp"
#include "sla/calendar.hpp"
#include "sla/metrics.hpp"

namespace oss::sla {

struct PassStats {
  std::size_t orders_due = 0;        // candidate orders found by the range scan
  std::size_t orders_handled = 0;    // re-read under their lock and still due
  std::size_t escalations_raised = 0;
  std::size_t auto_transitions = 0;
  std::size_t silences_raised = 0;
  std::size_t lock_retries = 0;      // orders first skipped because someone else held the lock
  double seconds = 0;
};

/// One pass over one connection. Not thread-safe (the connection is not); cheap to construct.
class EscalationPass {
 public:
  EscalationPass(const TimerRules& rules, pqxx::connection& conn, SlaMetrics* metrics = nullptr,
                 std::size_t batch_size = 500);
  /// Runs the pass as of `at`. Throws on database trouble; what was committed stays committed
  /// and the next pass continues from there.
  PassStats run(core::TimePoint at);
  /// Refreshes oss_escalations_open from the database (no-op without metrics).
  void refresh_open_gauge();

 private:
  std::vector<std::string> handle_orders(const std::vector<std::string>& ids, core::TimePoint at, bool blocking,
                                         PassStats& stats);
  void handle_silence(core::TimePoint at, PassStats& stats);

  const TimerRules& rules_;
  pqxx::connection& conn_;
  SlaMetrics* metrics_;
  std::size_t batch_size_;
};

/// The in-service scanner: a pass every `interval` until `stop`. Owns its connection; run() on
/// its own thread; returns within ~100 ms of `stop` becoming true (or when the pass in flight ends).
class SlaScanner {
 public:
  SlaScanner(const domain::Workflow& workflow, pg::ConnectOptions db, std::chrono::milliseconds interval,
             SlaMetrics& metrics);
  void run(const std::atomic<bool>& stop);

 private:
  const domain::Workflow& workflow_;
  pg::ConnectOptions db_;
  std::chrono::milliseconds interval_;
  SlaMetrics& metrics_;
};

}  // namespace oss::sla
