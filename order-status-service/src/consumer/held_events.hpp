#pragma once
// Early events held in process (unacked) by a consumer worker: when to decide one again.
//
// A worker used to put every held event into every batch. Under skew between two producers'
// relays (one relay seconds behind the other) hundreds of events are held at once, and each
// batch then re-planned all of them, locking and reading their orders in the database, while
// fresh deliveries got only the room left over (one per batch once the hold was full). A held
// event is now decided again only when that can change its outcome:
//   - an event of its order is among the fresh deliveries of the batch (its predecessor may be
//     one of them);
//   - an event of its order was decided by any worker of this process since its last decision
//     (TouchedOrders);
//   - `recheck` has passed since its last decision (the predecessor may have been applied by
//     another instance);
//   - its hold is over (it then goes to the first delay queue, as before).
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace oss::consumer {

/// When an event of an order was last decided (applied, ignored, stale, duplicate or
/// dead-lettered) by a worker of this process. Shared by the workers; entries older than the
/// longest hold are pruned, since no held event can be waiting for them any more.
class TouchedOrders {
 public:
  using Clock = std::chrono::steady_clock;
  explicit TouchedOrders(Clock::duration keep) : keep_(keep) {}
  void touch(const std::vector<std::string>& order_ids, Clock::time_point at);
  std::optional<Clock::time_point> when(const std::string& order_id) const;
  std::size_t size() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, Clock::time_point> at_;
  Clock::duration keep_;
  Clock::time_point pruned_at_{};
};

struct HeldTiming {
  std::chrono::steady_clock::time_point since;         // first held
  std::chrono::steady_clock::time_point last_decided;  // start of the batch that last decided it
};

/// Whether a held event of `order_id` belongs in the next batch (see the file comment).
bool held_is_due(const std::string& order_id, const HeldTiming& t, const std::set<std::string>& fresh_orders,
                 const TouchedOrders& touched, std::chrono::steady_clock::time_point now,
                 std::chrono::milliseconds recheck, std::chrono::milliseconds hold);

}  // namespace oss::consumer
