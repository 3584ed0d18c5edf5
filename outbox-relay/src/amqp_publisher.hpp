#pragma once
#include <memory>
#include <optional>

#include "oss/amqp/connection.hpp"
#include "publisher.hpp"

namespace oss::relay {

struct AmqpPublisherOptions {
  amqp::ConnectionOptions connection;
  std::string exchange = "orders.events";
  std::chrono::milliseconds confirm_timeout{10'000};
};

/// Publisher on RabbitMQ: mandatory publishes (so an unroutable event comes back as
/// basic.return and is never marked published), confirms pipelined per batch.
class AmqpPublisher final : public Publisher {
 public:
  explicit AmqpPublisher(AmqpPublisherOptions options);
  /// Connects and declares the exchange now; throws amqp::Error (used at start to fail fast).
  void connect();
  PublishOutcome publish(const std::vector<OutboxRow>& rows) override;
  void reset() override { conn_.reset(); }

 private:
  AmqpPublisherOptions options_;
  std::optional<amqp::Connection> conn_;
};

}  // namespace oss::relay
