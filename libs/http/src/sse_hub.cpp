#include "oss/http/sse_hub.hpp"

#include <algorithm>
#include <stdexcept>

#include "sse_internal.hpp"

namespace oss::http {

namespace detail {

void SseClientQueue::push_impl(SseFrame f, bool bounded) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (overflow_) return;
    if (bounded && queue_.size() >= max_queued_) {
      // The client fell too far behind: drop its backlog and let the writer disconnect it.
      // Wake even if a write is in flight: the writer may be stuck on this very client.
      overflow_ = true;
      queue_.clear();
      wake = true;
    } else {
      queue_.push_back(std::move(f));
    }
    if (!wake_pending_) wake = wake_pending_ = true;
  }
  if (wake) wake_();
}

void SseClientQueue::push_keepalive() {
  static const auto kKeepalive = std::make_shared<const std::string>(":\n\n");
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (overflow_ || !queue_.empty()) return;
    queue_.push_back(kKeepalive);
    if (!wake_pending_) wake = wake_pending_ = true;
  }
  if (wake) wake_();
}

bool SseClientQueue::overflowed() {
  std::lock_guard lock(mutex_);
  return overflow_;
}

SseClientQueue::Take SseClientQueue::take(std::string& out, std::size_t max_bytes) {
  std::lock_guard lock(mutex_);
  if (overflow_) return Take::overflow;
  if (queue_.empty()) {
    wake_pending_ = false;
    return Take::empty;
  }
  out.clear();
  while (!queue_.empty() && (out.empty() || out.size() + queue_.front()->size() <= max_bytes)) {
    out += *queue_.front();
    queue_.pop_front();
  }
  return Take::data;
}

std::uint64_t SseHubState::publish(const std::string& event_type, const std::string& data) {
  if (event_type.find_first_of("\r\n") != std::string::npos)
    throw std::invalid_argument("SSE event type must not contain CR or LF");
  std::lock_guard lock(mutex_);
  const std::uint64_t id = next_id_++;
  std::string frame = "id: " + std::to_string(id) + "\n";
  if (!event_type.empty()) frame += "event: " + event_type + "\n";
  // Each line of data becomes one "data:" field; CRLF and CR count as line ends too.
  std::size_t pos = 0;
  while (true) {
    const auto end = data.find_first_of("\r\n", pos);
    frame += "data: ";
    frame.append(data, pos, end == std::string::npos ? std::string::npos : end - pos);
    frame += '\n';
    if (end == std::string::npos) break;
    pos = end + 1;
    if (data[end] == '\r' && pos < data.size() && data[pos] == '\n') ++pos;
  }
  frame += '\n';
  auto shared = std::make_shared<const std::string>(std::move(frame));

  if (history_ > 0) {
    ring_.emplace_back(id, shared);
    while (ring_.size() > history_) ring_.pop_front();
  }
  // Delivered under the hub lock so that every client sees events in id order.
  std::erase_if(clients_, [&](const std::weak_ptr<SseClientQueue>& w) {
    auto c = w.lock();
    if (!c) return true;
    c->push(shared);
    return false;
  });
  return id;
}

void SseHubState::subscribe(const std::shared_ptr<SseClientQueue>& client,
                            std::optional<std::uint64_t> last_event_id) {
  std::lock_guard lock(mutex_);
  const std::uint64_t last_published = next_id_ - 1;
  // Replay only when every event after last_event_id is still held; otherwise start live.
  if (last_event_id && *last_event_id < last_published && !ring_.empty() &&
      *last_event_id + 1 >= ring_.front().first) {
    for (const auto& [id, frame] : ring_)
      if (id > *last_event_id) client->push_unbounded(frame);
  }
  clients_.push_back(client);
}

void SseHubState::unsubscribe(const SseClientQueue* client) {
  std::lock_guard lock(mutex_);
  std::erase_if(clients_, [&](const std::weak_ptr<SseClientQueue>& w) {
    auto c = w.lock();
    return !c || c.get() == client;
  });
}

std::size_t SseHubState::client_count() const {
  std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(
      std::count_if(clients_.begin(), clients_.end(), [](const auto& w) { return !w.expired(); }));
}

}  // namespace detail

SseHub::SseHub(std::size_t history, std::size_t max_queued, std::chrono::seconds keepalive)
    : state_(std::make_shared<detail::SseHubState>(history, std::max<std::size_t>(max_queued, 1),
                                                   keepalive.count() > 0 ? keepalive : std::chrono::seconds(15))) {}

SseHub::~SseHub() = default;

std::uint64_t SseHub::publish(const std::string& event_type, const std::string& data_json) {
  return state_->publish(event_type, data_json);
}

std::size_t SseHub::client_count() const { return state_->client_count(); }

}  // namespace oss::http
