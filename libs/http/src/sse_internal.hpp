#pragma once
// Internal: the shared state behind SseHub and the per-client queue the server drains.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "oss/http/sse_hub.hpp"

namespace oss::http::detail {

using SseFrame = std::shared_ptr<const std::string>;

/// One client's bounded queue of encoded frames. push*() from any thread (never blocks beyond
/// a short mutex); take() from the session's strand. wake() is called (outside the queue's
/// lock) when data arrives while the writer is idle; it must only post work.
class SseClientQueue {
 public:
  SseClientQueue(std::size_t max_queued, std::function<void()> wake)
      : max_queued_(max_queued), wake_(std::move(wake)) {}

  void push(SseFrame f) { push_impl(std::move(f), true); }
  void push_unbounded(SseFrame f) { push_impl(std::move(f), false); }
  void push_keepalive();

  bool overflowed();

  enum class Take { data, empty, overflow };
  /// Moves queued frames (up to about max_bytes) into out. When it returns empty, the next
  /// push() wakes the writer again.
  Take take(std::string& out, std::size_t max_bytes);

 private:
  void push_impl(SseFrame f, bool bounded);

  std::mutex mutex_;
  std::deque<SseFrame> queue_;
  bool overflow_ = false;
  bool wake_pending_ = false;
  const std::size_t max_queued_;
  const std::function<void()> wake_;
};

class SseHubState {
 public:
  SseHubState(std::size_t history, std::size_t max_queued, std::chrono::seconds keepalive)
      : history_(history), max_queued_(max_queued), keepalive_(keepalive) {}

  std::uint64_t publish(const std::string& event_type, const std::string& data);
  /// Registers the client and, atomically with that, queues the events after last_event_id
  /// when they are all still in the history.
  void subscribe(const std::shared_ptr<SseClientQueue>& client, std::optional<std::uint64_t> last_event_id);
  void unsubscribe(const SseClientQueue* client);
  std::size_t client_count() const;

  std::size_t max_queued() const { return max_queued_; }
  std::chrono::seconds keepalive() const { return keepalive_; }

 private:
  const std::size_t history_;
  const std::size_t max_queued_;
  const std::chrono::seconds keepalive_;
  mutable std::mutex mutex_;
  std::deque<std::pair<std::uint64_t, SseFrame>> ring_;
  std::uint64_t next_id_ = 1;
  std::vector<std::weak_ptr<SseClientQueue>> clients_;
};

struct SseHubAccess {
  static std::shared_ptr<SseHubState> state(const SseHub& hub) { return hub.state_; }
};

}  // namespace oss::http::detail
