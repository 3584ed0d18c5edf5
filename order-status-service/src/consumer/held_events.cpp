#include "consumer/held_events.hpp"

namespace oss::consumer {

void TouchedOrders::touch(const std::vector<std::string>& order_ids, Clock::time_point at) {
  std::lock_guard lock(mu_);
  for (const auto& id : order_ids) {
    auto& t = at_[id];
    if (t < at) t = at;
  }
  if (at - pruned_at_ >= keep_) {
    pruned_at_ = at;
    for (auto it = at_.begin(); it != at_.end();) {
      if (at - it->second > keep_) it = at_.erase(it);
      else ++it;
    }
  }
}

std::optional<TouchedOrders::Clock::time_point> TouchedOrders::when(const std::string& order_id) const {
  std::lock_guard lock(mu_);
  const auto it = at_.find(order_id);
  if (it == at_.end()) return std::nullopt;
  return it->second;
}

std::size_t TouchedOrders::size() const {
  std::lock_guard lock(mu_);
  return at_.size();
}

bool held_is_due(const std::string& order_id, const HeldTiming& t, const std::set<std::string>& fresh_orders,
                 const TouchedOrders& touched, std::chrono::steady_clock::time_point now,
                 std::chrono::milliseconds recheck, std::chrono::milliseconds hold) {
  if (now - t.since >= hold) return true;
  if (now - t.last_decided >= recheck) return true;
  if (fresh_orders.contains(order_id)) return true;
  const auto at = touched.when(order_id);
  return at && *at > t.last_decided;
}

}  // namespace oss::consumer
