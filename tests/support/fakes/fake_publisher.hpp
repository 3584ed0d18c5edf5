#pragma once
/// Scriptable Publisher for relay unit tests (habit 4). By default the broker confirms every
/// row. Scripts: event ids returned as unroutable or nacked (every time they are published),
/// a connection lost after k rows of the next publish (once), and a poison position that makes
/// the broker close the channel (isolate) for any multi-row batch containing it and refuse it
/// when published alone. Records every batch it was given. Single-threaded.
#include <cstddef>
#include <cstdint>
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
};

}  // namespace oss::relay::testing
