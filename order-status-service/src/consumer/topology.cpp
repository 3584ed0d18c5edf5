#include "consumer/topology.hpp"

#include <algorithm>

#include "oss/amqp/connection.hpp"

namespace oss::consumer {

std::string Topology::retry_queue(std::size_t tier) const {
  return events_queue + ".retry." + std::to_string(retry_delays.at(tier).count()) + "s";
}

std::string Topology::retry_queue_for_attempt(int attempt) const {
  const auto tier = std::min<std::size_t>(static_cast<std::size_t>(std::max(attempt, 0)), retry_delays.size() - 1);
  return retry_queue(tier);
}

void declare(amqp::Connection& conn, const Topology& t) {
  conn.declare_exchange(t.events_exchange, "topic", true);
  conn.declare_exchange(t.notifications_exchange, "topic", true);
  conn.declare_queue(t.events_queue, {true, {{"x-queue-type", std::string("quorum")}}});
  // Every event reaches the queue: events that are not status changes still hold a place in
  // their source's sequence for the order and are consumed (as "ignored") in order.
  conn.bind_queue(t.events_queue, t.events_exchange, "#");
  conn.declare_queue(t.notifications_tail, {true,
                                            {{"x-queue-type", std::string("quorum")},
                                             {"x-max-length", t.notifications_tail_max},
                                             {"x-overflow", std::string("drop-head")}}});
  conn.bind_queue(t.notifications_tail, t.notifications_exchange, "#");
  conn.declare_queue(t.dlq, {true, {{"x-queue-type", std::string("quorum")}}});
  for (std::size_t i = 0; i < t.retry_delays.size(); ++i) {
    conn.declare_queue(
        t.retry_queue(i),
        {true,
         {{"x-queue-type", std::string("quorum")},
          {"x-message-ttl", static_cast<std::int64_t>(t.retry_delays[i].count() * 1000)},
          {"x-dead-letter-exchange", std::string("")},
          {"x-dead-letter-routing-key", t.events_queue},
          // At-least-once dead-lettering back to the events queue (quorum queues, 3.10+).
          {"x-overflow", std::string("reject-publish")},
          {"x-dead-letter-strategy", std::string("at-least-once")}}});
  }
}

}  // namespace oss::consumer
