#pragma once
#include <deque>
#include <map>
#include <memory>
#include <set>
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
  std::uint64_t send(const std::vector<OutboxRow>& rows) override;
  PublishOutcome settle() override;
  void reset() override;
  void keep_alive() override;

 private:
  /// A batch published and not yet settled.
  struct InFlight {
    std::vector<std::int64_t> positions;
    std::map<std::uint64_t, std::int64_t> by_tag;
    std::map<std::string, std::int64_t> by_id;
    std::uint64_t last_tag = 0;
    std::vector<RowFailure> encode_failures;
    bool alone = false;  // published with nothing else in flight (publish(), not send())
  };
  /// Breaks the connection: every unsettled batch is reported as lost, or, when the broker
  /// refused a message (row_refused: channel closed with a row-specific code while publishing),
  /// to be isolated. `fault` is the metric label of a loss (connection | channel | confirm_timeout).
  void fail_all(const std::string& error, bool row_refused, const char* fault);
  /// fail_all for an amqp::Error thrown while publishing or waiting for confirms.
  void fail_on(const amqp::Error& e);

  AmqpPublisherOptions options_;
  std::optional<amqp::Connection> conn_;
  std::deque<InFlight> in_flight_;
  // Confirms read ahead while settling an older batch.
  std::set<std::uint64_t> acked_, nacked_;
  std::map<std::string, amqp::Returned> returned_;
  // Set when the connection broke with batches in flight; reported by their settle().
  std::string broken_error_;
  std::string broken_fault_;
  bool broken_ = false, row_refused_ = false;
};

}  // namespace oss::relay
