#pragma once
/// In-memory OutboxStore for relay unit tests (habit 4: a fake at each I/O boundary).
///
/// Owns every partition; `fetch` returns unpublished, unparked rows in position order with
/// `due` computed against a settable fake "now"; `record_failures` counts attempts of charged
/// failures, parks rows at max_attempts and schedules the next attempt at
/// now + retry_after * 2^min(attempts-1, 10) (an uncharged failure: now + retry_after), as
/// PgOutboxStore does.
/// Single-threaded, like the relay that drives it. ForwardingOutboxStore lets a test hand the
/// relay a unique_ptr while keeping the fake itself for inspection.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "oss/core/time.hpp"
#include "outbox_store.hpp"

namespace oss::relay::testing {

class FakeOutboxStore final : public OutboxStore {
 public:
  struct StoredRow {
    OutboxRow row;
    bool published = false;
    bool parked = false;
    core::TimePoint next_attempt_at{};
    std::vector<RowFailure> failures;
  };

  explicit FakeOutboxStore(int partitions = 4) : partitions_(partitions) {
    now_ = core::parse_rfc3339("2026-11-22T18:00:00Z");
  }

  // ---- test controls -------------------------------------------------------------------
  /// Appends a row (position and per-(source, aggregate) sequence assigned) and returns its position.
  std::int64_t add(const std::string& source, const std::string& aggregate_id,
                   const std::string& payload_json = R"({"status":"SUBMITTED"})",
                   const std::string& event_type = "order.status_changed") {
    StoredRow s;
    s.row.position = ++last_position_;
    s.row.event_id = event_id_for(s.row.position);
    s.row.source = source;
    s.row.aggregate_type = "order";
    s.row.aggregate_id = aggregate_id;
    s.row.sequence = ++sequences_[{source, aggregate_id}];
    s.row.event_type = event_type;
    s.row.payload_json = payload_json;
    s.row.headers_json = "{}";
    s.row.occurred_at = now_;
    s.next_attempt_at = now_;
    rows_.push_back(std::move(s));
    return last_position_;
  }
  static std::string event_id_for(std::int64_t position) {
    std::string digits = std::to_string(position);
    return "00000000-0000-4000-8000-" + std::string(12 - digits.size(), '0') + digits;
  }

  void set_now(core::TimePoint t) { now_ = t; }
  void advance(std::chrono::microseconds d) { now_ += d; }
  core::TimePoint now() const { return now_; }

  const StoredRow& row(std::int64_t position) const {
    for (const auto& s : rows_)
      if (s.row.position == position) return s;
    throw std::out_of_range("no outbox row at position " + std::to_string(position));
  }
  bool published(std::int64_t position) const { return row(position).published; }
  bool parked(std::int64_t position) const { return row(position).parked; }
  int attempts(std::int64_t position) const { return row(position).row.attempts; }
  std::vector<std::int64_t> published_positions() const {
    std::vector<std::int64_t> out;
    for (const auto& s : rows_)
      if (s.published) out.push_back(s.row.position);
    return out;
  }
  /// Every mark_published call, in order.
  const std::vector<std::vector<std::int64_t>>& mark_calls() const { return mark_calls_; }
  /// Every failure recorded, in order.
  const std::vector<RowFailure>& failures() const { return failures_; }
  int rebalance_calls() const { return rebalance_calls_; }
  int fetch_calls() const { return fetch_calls_; }
  /// How often the relay went to sleep waiting for a commit (a NOTIFY or its poll interval).
  int wait_calls() const { return wait_calls_; }
  int vacuum_calls() const { return vacuum_calls_; }
  /// The timeout of each wait_for_commit, in order.
  const std::vector<std::chrono::milliseconds>& wait_timeouts() const { return wait_timeouts_; }
  /// Called at each wait_for_commit / after each mark_published (e.g. to stop Relay::run, or to
  /// commit a row "while the relay waits for its confirms").
  void on_wait(std::function<void()> f) { on_wait_ = std::move(f); }
  void on_mark(std::function<void()> f) { on_mark_ = std::move(f); }
  /// What wait_for_commit returns: true as if a commit notification had come (default false:
  /// the wait timed out).
  void notify_on_wait(bool notified) { notify_on_wait_ = notified; }

  // ---- OutboxStore ---------------------------------------------------------------------
  std::vector<int> rebalance() override {
    ++rebalance_calls_;
    owned_.clear();
    for (int p = 0; p < partitions_; ++p) owned_.push_back(p);
    return owned_;
  }
  std::vector<int> owned() const override { return owned_; }

  std::vector<OutboxRow> fetch(std::size_t limit, std::int64_t after_position = 0) override {
    ++fetch_calls_;
    std::vector<const StoredRow*> candidates;
    for (const auto& s : rows_)
      if (!s.published && !s.parked && s.row.position > after_position) candidates.push_back(&s);
    std::sort(candidates.begin(), candidates.end(),
              [](const StoredRow* a, const StoredRow* b) { return a->row.position < b->row.position; });
    std::vector<OutboxRow> out;
    for (const auto* s : candidates) {
      if (out.size() >= limit) break;
      OutboxRow r = s->row;
      r.due = s->next_attempt_at <= now_;
      out.push_back(std::move(r));
    }
    return out;
  }

  bool vacuum() override {
    ++vacuum_calls_;
    return true;
  }

  void mark_published(const std::vector<std::int64_t>& positions) override {
    mark_calls_.push_back(positions);
    for (auto p : positions) find(p).published = true;
    if (on_mark_) on_mark_();
  }

  std::size_t record_failures(const std::vector<RowFailure>& failures, int max_attempts,
                              std::chrono::milliseconds retry_after) override {
    std::size_t parked = 0;
    for (const auto& f : failures) {
      failures_.push_back(f);
      auto& s = find(f.position);
      s.failures.push_back(f);
      if (!f.charged) {  // not the row's fault: only waits retry_after
        s.next_attempt_at = now_ + std::chrono::duration_cast<std::chrono::microseconds>(retry_after);
        continue;
      }
      ++s.row.attempts;
      if (s.row.attempts >= max_attempts) {
        s.parked = true;
        ++parked;
        continue;
      }
      const auto delay = retry_after * (std::int64_t{1} << std::min(s.row.attempts - 1, 10));
      s.next_attempt_at = now_ + std::chrono::duration_cast<std::chrono::microseconds>(delay);
    }
    return parked;
  }

  bool wait_for_commit(std::chrono::milliseconds timeout) override {
    ++wait_calls_;
    wait_timeouts_.push_back(timeout);
    if (on_wait_) on_wait_();
    return notify_on_wait_;
  }

  BacklogStats backlog() override {
    BacklogStats stats;
    std::map<std::string, SourceBacklog> per_source;
    for (const auto& s : rows_) {
      if (s.parked) ++stats.parked;
      if (s.published || s.parked) continue;
      auto& b = per_source[s.row.source];
      b.source = s.row.source;
      ++b.rows;
      b.oldest_age_seconds = std::max(
          b.oldest_age_seconds, std::chrono::duration<double>(now_ - s.row.occurred_at).count());
    }
    for (auto& [_, b] : per_source) stats.sources.push_back(b);
    return stats;
  }

  std::int64_t purge_published(std::chrono::milliseconds, std::size_t, std::chrono::milliseconds) override {
    return 0;
  }

 private:
  StoredRow& find(std::int64_t position) {
    for (auto& s : rows_)
      if (s.row.position == position) return s;
    throw std::out_of_range("no outbox row at position " + std::to_string(position));
  }

  int partitions_;
  std::vector<int> owned_;
  std::vector<StoredRow> rows_;
  std::map<std::pair<std::string, std::string>, std::int64_t> sequences_;
  std::int64_t last_position_ = 0;
  core::TimePoint now_{};
  std::vector<std::vector<std::int64_t>> mark_calls_;
  std::vector<RowFailure> failures_;
  int rebalance_calls_ = 0;
  int fetch_calls_ = 0;
  int wait_calls_ = 0;
  int vacuum_calls_ = 0;
  bool notify_on_wait_ = false;
  std::vector<std::chrono::milliseconds> wait_timeouts_;
  std::function<void()> on_wait_, on_mark_;
};

/// Forwards every call to a store the test keeps (the relay owns the proxy, not the fake).
class ForwardingOutboxStore final : public OutboxStore {
 public:
  explicit ForwardingOutboxStore(OutboxStore& target) : target_(target) {}
  std::vector<int> rebalance() override { return target_.rebalance(); }
  std::vector<int> owned() const override { return target_.owned(); }
  std::vector<OutboxRow> fetch(std::size_t limit, std::int64_t after_position = 0) override {
    return target_.fetch(limit, after_position);
  }
  void mark_published(const std::vector<std::int64_t>& positions) override { target_.mark_published(positions); }
  bool vacuum() override { return target_.vacuum(); }
  std::size_t record_failures(const std::vector<RowFailure>& failures, int max_attempts,
                              std::chrono::milliseconds retry_after) override {
    return target_.record_failures(failures, max_attempts, retry_after);
  }
  bool wait_for_commit(std::chrono::milliseconds timeout) override { return target_.wait_for_commit(timeout); }
  BacklogStats backlog() override { return target_.backlog(); }
  std::int64_t purge_published(std::chrono::milliseconds retention, std::size_t batch,
                               std::chrono::milliseconds budget) override {
    return target_.purge_published(retention, batch, budget);
  }

 private:
  OutboxStore& target_;
};

}  // namespace oss::relay::testing
