#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace oss::http {

namespace detail {
class SseHubState;
struct SseHubAccess;
}  // namespace detail

/// Broadcasts server-sent events to many clients (served via Router::add_sse).
/// publish() is thread-safe, never blocks on a client and delivers events to every client in
/// id order. The last `history` events are kept (ring buffer) so a reconnecting client that
/// sends Last-Event-ID gets what it missed; if that id is older than the buffer (or unknown),
/// the client just starts live. Each client has a bounded queue: a client more than
/// `max_queued` events behind is disconnected (never unbounded buffering). A comment
/// keepalive (":\n\n") goes to idle clients every `keepalive`.
/// Ids start at 1 in each process: they are only meaningful against this hub's history.
class SseHub {
 public:
  explicit SseHub(std::size_t history = 1000, std::size_t max_queued = 1000,
                  std::chrono::seconds keepalive = std::chrono::seconds(15));
  ~SseHub();
  SseHub(const SseHub&) = delete;
  SseHub& operator=(const SseHub&) = delete;

  /// Assigns the next id (1, 2, ...). event_type must not contain CR/LF
  /// (std::invalid_argument); data_json may span lines (one "data:" line each).
  /// Returns the assigned id.
  std::uint64_t publish(const std::string& event_type, const std::string& data_json);
  std::size_t client_count() const;

 private:
  friend struct detail::SseHubAccess;
  std::shared_ptr<detail::SseHubState> state_;
};

}  // namespace oss::http
