#pragma once
/// RabbitMQ names the service uses (CONTRACT "RabbitMQ topology"), declared idempotently.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace oss::amqp {
class Connection;
}

namespace oss::consumer {

struct Topology {
  std::string events_exchange = "orders.events";
  std::string events_queue = "order-status-service.events";
  std::string dlq = "order-status-service.dlq";
  std::string notifications_exchange = "orders.notifications";
  /// A bounded quorum queue bound to every notification: keeps the latest ones for inspection
  /// and makes notifications routable even before any subscriber exists (the notification
  /// relay publishes mandatory and never marks an unroutable event published).
  std::string notifications_tail = "order-status-service.notifications";
  std::int64_t notifications_tail_max = 100'000;
  /// Delay tiers for early events: one quorum queue per tier (per-message TTL only expires at
  /// a queue's head, so one queue per delay), dead-lettering back into events_queue.
  std::vector<std::chrono::seconds> retry_delays{std::chrono::seconds(1), std::chrono::seconds(5),
                                                 std::chrono::seconds(30), std::chrono::seconds(120)};
  std::string retry_queue(std::size_t tier) const;
  std::string retry_queue_for_attempt(int attempt) const;  // attempt 0 → first tier
};

void declare(amqp::Connection& conn, const Topology& t);

}  // namespace oss::consumer
