#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "outbox_row.hpp"
#include "outbox_store.hpp"

namespace oss::relay {

struct PublishOutcome {
  /// Rows the broker confirmed (and did not return): safe to mark published.
  std::vector<std::int64_t> confirmed;
  /// Rows the broker refused (returned as unroutable, nacked, rejected a single message). Each
  /// is charged an attempt unless RowFailure::charged is false (nacks are judged by the relay's
  /// NackPolicy, failure_policy.hpp).
  std::vector<RowFailure> failed;
  /// The broker failed us, not a row: the connection broke or could not be made, the broker
  /// closed the channel for a reason that is not the message's (failure_policy.hpp), or a
  /// confirm did not come in time. Rows neither confirmed nor failed are retried without
  /// counting an attempt (the broker may or may not have them: duplicates possible, counted by
  /// the caller).
  bool connection_lost = false;
  /// The broker closed the channel with 406 PRECONDITION_FAILED (the message's fault) during a
  /// multi-row batch: retry those rows one at a time so the one it refuses is isolated and only
  /// that one is charged an attempt.
  bool isolate = false;
  /// With connection_lost: connection | channel | confirm_timeout (a metric label).
  std::string fault;
  std::string error;
};

/// Publishes rows to the broker with publisher confirms. One thread.
class Publisher {
 public:
  virtual ~Publisher() = default;
  /// Publishes all rows pipelined (no round trip per message), then waits for their confirms.
  virtual PublishOutcome publish(const std::vector<OutboxRow>& rows) = 0;
  /// Pipelined batches: send() publishes a batch without waiting and returns its id; settle()
  /// waits for the confirms of the oldest unsettled batch (batches settle in send order), so
  /// the next batch is fetched and published while the broker confirms the previous one.
  /// The default keeps the batch and publishes it at settle() (no overlap).
  virtual std::uint64_t send(const std::vector<OutboxRow>& rows) {
    pending_.push_back(rows);
    return ++sent_;
  }
  virtual PublishOutcome settle() {
    auto rows = std::move(pending_.front());
    pending_.erase(pending_.begin());
    return publish(rows);
  }
  /// Drops the connection (it is re-opened on the next publish).
  virtual void reset() = 0;
  /// Called now and then while the relay has nothing to publish: keeps an idle connection
  /// alive (heartbeats), or drops a dead one so that the next publish reconnects at once.
  virtual void keep_alive() {}
  /// Forgets batches sent but not settled (after a fault; they are fetched again).
  void drop_pending() { pending_.clear(); }

 private:
  std::vector<std::vector<OutboxRow>> pending_;
  std::uint64_t sent_ = 0;
};

}  // namespace oss::relay
