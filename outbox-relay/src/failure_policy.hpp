#pragma once
/// Which publish failures are the row's fault and which are the broker's.
///
/// Parking exists for rows that can never be published: only a failure that is about the row
/// itself counts toward --max-attempts. Everything that is about the broker (connection refused
/// or closed, 320 CONNECTION_FORCED, 541 INTERNAL_ERROR, 504 CHANNEL_ERROR, a channel closed for
/// any reason but the message, a confirm that did not come in time, nacks while the broker
/// recovers) is retried with the loop's capped, jittered backoff for as long as it takes, and is
/// counted in outbox_relay_broker_faults_total{kind} and logged — never charged to the row.
///
/// The settle window: after any broker fault no refusal is charged either (all are retried
/// after the row's retry delay) until the broker has routed a message again, and then for
/// --broker-settle (30 s). A broker recovering from a crash may return messages as unroutable
/// before its bindings are back (for more than 20 s after a SIGKILL on a loaded host), nack
/// them while its queues recover, or close channels with odd codes; a row that truly cannot be
/// published is still parked once the broker has been routing for that long. Encoding failures
/// always count.
///
/// Row-specific (charged, outside the settle window):
///   - basic.return (312 NO_ROUTE, published mandatory): nothing is bound for its routing key;
///   - the channel closed with 406 PRECONDITION_FAILED while the row was published alone (the
///     isolation path): RabbitMQ refuses the message itself (larger than max_message_size,
///     invalid properties);
///   - the envelope cannot be encoded;
///   - a nack, only under the NackPolicy rule below.
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "outbox_store.hpp"
#include "publisher.hpp"

namespace oss::relay {

/// A channel the broker closed while we published is the message's fault only for 406
/// PRECONDITION_FAILED. 404 (exchange gone), 403 (permissions), 504, 506, 541 and the rest are
/// about the broker or its configuration: the same for every row, so never charged.
constexpr bool row_specific_channel_close(std::uint16_t reply_code) { return reply_code == 406; }

/// The nack rule. RabbitMQ nacks a publish when it could not take responsibility for it: a
/// queue process failed or is still recovering, a quorum queue has no leader yet, a queue with
/// overflow=reject-publish is full. Those are the broker's state, not the row's, and right after
/// a broker restart they come in bursts (the finding in docs/reliability.md). The one
/// content-dependent case is a message larger than a reject-publish queue's x-max-length-bytes,
/// which is nacked every time while other messages go through. So a nack is charged an attempt
/// only when all of these hold:
///   1. the same batch had other messages acked (the broker was taking the stream), and the
///      connection stayed up through the batch's confirms;
///   2. the row was nacked that way kStreakToCharge times in a row, with no broker fault (lost
///      connection, closed channel, confirm timeout, a batch nacked whole) anywhere in between —
///      any such fault starts every row's count again.
/// Every other nack is retried without an attempt (after the row's retry delay). A batch nacked
/// whole is a broker fault: the loop backs off. The count lives in memory only: a relay restart
/// starts it again (errs toward not parking).
class NackPolicy {
 public:
  static constexpr int kStreakToCharge = 3;
  /// Above this many tracked rows the counts are dropped (bounded memory; errs toward retrying).
  static constexpr std::size_t kMaxTracked = 100'000;

  /// Judges the nacks of one settled batch: sets RowFailure::charged on those the rule charges
  /// and forgets the rows that were confirmed. Returns true when the batch was nacked whole (a
  /// broker fault; every count was cleared).
  bool judge(PublishOutcome& out) {
    for (auto pos : out.confirmed) streak_.erase(pos);
    if (out.connection_lost) {
      broker_fault();
      return false;
    }
    std::size_t nacked = 0;
    for (const auto& f : out.failed) nacked += f.kind == "nacked" ? 1U : 0U;
    if (nacked == 0) return false;
    if (out.confirmed.empty() && nacked == out.failed.size()) {
      broker_fault();
      return true;
    }
    if (out.confirmed.empty()) return false;  // nothing acked alongside: not judged
    if (streak_.size() > kMaxTracked) streak_.clear();
    for (auto& f : out.failed) {
      if (f.kind != "nacked") continue;
      f.charged = ++streak_[f.position] >= kStreakToCharge;
    }
    return false;
  }
  /// The broker misbehaved as a whole: every row's count starts again.
  void broker_fault() { streak_.clear(); }
  int streak(std::int64_t position) const {
    auto it = streak_.find(position);
    return it == streak_.end() ? 0 : it->second;
  }

 private:
  std::map<std::int64_t, int> streak_;
};

}  // namespace oss::relay
