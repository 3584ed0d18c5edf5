#pragma once
/// Scriptable Publisher for relay unit tests (habit 4). By default the broker confirms every
/// row. Scripts: event ids returned as unroutable or nacked (every time they are published),
/// a connection lost after k rows of the next publish (once), and a poison position that makes
/// the broker close the channel (isolate) for any multi-row batch containing it and refuse it
/// when published alone. Records every batch it was given. Single-threaded.
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "publisher.hpp"

namespace oss::relay::testing {

class FakePublisher final : public Publisher {
 public:
  void return_as_unroutable(const std::string& event_id) { unroutable_.insert(event_id); }
  void nack(const std::string& event_id) { nacked_.insert(event_id); }
  void clear_refusals() {
    unroutable_.clear();
    nacked_.clear();
  }
  /// The next publish confirms its first `k` rows, then the connection breaks.
  void lose_connection_after(std::size_t k) { lose_after_ = k; }
  void poison(std::int64_t position) { poison_ = position; }

  /// Positions of every batch published, in order.
  const std::vector<std::vector<std::int64_t>>& batches() const { return batches_; }
  /// How often the row at `position` was handed to the broker.
  int times_published(std::int64_t position) const {
    int n = 0;
    for (const auto& b : batches_)
      for (auto p : b) n += p == position ? 1 : 0;
    return n;
  }
  int resets() const { return resets_; }
  /// The next `n` wait_settled() calls report the confirms as not yet in (a slow broker);
  /// `during` runs at each of them (e.g. a producer commits meanwhile).
  void slow_confirms(int n, std::function<void()> during = {}) {
    slow_waits_ = n;
    during_wait_ = std::move(during);
  }
  int wait_settled_calls() const { return wait_settled_calls_; }
  /// Most batches sent and not yet settled at any time.
  int max_in_flight() const { return max_in_flight_; }
  std::uint64_t send(const std::vector<OutboxRow>& rows) override {
    max_in_flight_ = std::max(max_in_flight_, ++in_flight_);
    return Publisher::send(rows);
  }
  PublishOutcome settle() override {
    --in_flight_;
    return Publisher::settle();
  }
  bool wait_settled(std::chrono::milliseconds) override {
    ++wait_settled_calls_;
    if (slow_waits_ <= 0) return true;
    --slow_waits_;
    if (during_wait_) during_wait_();
    return false;
  }
  /// How often the relay asked to keep an idle connection alive.
  int keep_alives() const { return keep_alives_; }

  PublishOutcome publish(const std::vector<OutboxRow>& rows) override {
    std::vector<std::int64_t> positions;
    positions.reserve(rows.size());
    for (const auto& r : rows) positions.push_back(r.position);
    batches_.push_back(positions);

    PublishOutcome out;
    if (poison_ && rows.size() > 1) {
      for (const auto& r : rows) {
        if (r.position == *poison_) {
          out.isolate = true;
          out.error = "channel closed: PRECONDITION_FAILED";
          return out;
        }
      }
    }
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      if (lose_after_ && i >= *lose_after_) {
        out.connection_lost = true;
        out.fault = "connection";
        out.error = "connection reset by peer";
        lose_after_.reset();
        return out;
      }
      if (poison_ && r.position == *poison_) {
        out.failed.push_back({r.position, "message refused", "refused"});
      } else if (unroutable_.contains(r.event_id)) {
        out.failed.push_back({r.position, "312 NO_ROUTE", "returned"});
      } else if (nacked_.contains(r.event_id)) {
        out.failed.push_back({r.position, "nacked", "nacked", false});  // judged by the relay, as AmqpPublisher's
      } else {
        out.confirmed.push_back(r.position);
      }
    }
    lose_after_.reset();
    return out;
  }

  void reset() override { ++resets_; }
  void keep_alive() override { ++keep_alives_; }

 private:
  std::set<std::string> unroutable_, nacked_;
  std::optional<std::size_t> lose_after_;
  std::optional<std::int64_t> poison_;
  std::vector<std::vector<std::int64_t>> batches_;
  int resets_ = 0;
  int keep_alives_ = 0;
  int slow_waits_ = 0;
  int wait_settled_calls_ = 0;
  int in_flight_ = 0, max_in_flight_ = 0;
  std::function<void()> during_wait_;
};

}  // namespace oss::relay::testing
