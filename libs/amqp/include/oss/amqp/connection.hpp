#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "oss/amqp/errors.hpp"
#include "oss/amqp/message.hpp"

namespace oss::amqp {

struct ConnectionOptions {
  /// amqp://user:pass@host:port/vhost (vhost percent-decoded: %2f -> /), or a comma-separated
  /// list of them, one per node of a RabbitMQ cluster (see "Cluster failover" below).
  std::string url;
  std::chrono::milliseconds connect_timeout{5000};  // TCP connect, and again the login handshake
  std::chrono::milliseconds io_timeout{10000};      // deadline for any single blocking RPC
  std::uint16_t heartbeat_seconds = 30;
  std::string connection_name;  // client property "connection_name" (shown in the management UI)
  std::uint32_t frame_max = 131072;
};

struct QueueOptions {
  bool durable = true;
  Table arguments;  // e.g. {"x-queue-type","quorum"}, {"x-single-active-consumer", true}
};

/// One AMQP connection with one channel (channel 1), used by ONE thread: not thread-safe, never
/// share it (rabbitmq-c forbids it). Every blocking call has a deadline (connect_timeout for the
/// constructor, io_timeout for RPCs and for the rest of a message once its first frame arrived,
/// the caller's timeout for wait_confirms/next_delivery).
///
/// Errors: ConnectionError (transient; reconnect; its subtype ConsumerCancelled when the broker
/// cancels our consumer), AuthError (permanent), ChannelError (broker closed the channel). After
/// any of them is_open() is false and the object is only good for destruction; make a new
/// Connection. std::invalid_argument for a malformed URL.
///
/// Frames are read by one internal pump: confirms that arrive while waiting for deliveries are
/// kept for the next wait_confirms(), deliveries that arrive while waiting for confirms are kept
/// for next_delivery() (bounded by set_prefetch). Heartbeats are answered only while the pump
/// or a publish runs: call next_delivery()/wait_confirms()/keep_alive() at least every
/// heartbeat_seconds/2.
///
/// Publishing writes without a deadline once the bytes are handed to rabbitmq-c (0.11 has no
/// send timeout): if the broker blocks publishers (connection.blocked, a memory or disk alarm)
/// publish() waits up to io_timeout for connection.unblocked and then throws ConnectionError,
/// but a block that starts in the middle of a large burst can still stall a write.
///
/// Cluster failover: with a list of URLs the constructor tries the nodes in turn, starting at the
/// node this process last connected to with the same list, and takes the first that accepts
/// (each attempt bounded by connect_timeout). When a connection is lost (socket error, the broker
/// closing it, a timeout), the next Connection made with that list starts at the following node,
/// so a client whose node died moves on without waiting for it. Only when every node failed does
/// the constructor throw: AuthError if every node refused the login, ConnectionError otherwise,
/// naming each node's error. The caller's reconnect loop (with its capped backoff) is unchanged.
/// node() tells which node a Connection is on; connections_by_node() (oss/amqp/nodes.hpp) counts
/// them for metrics.
class Connection {
 public:
  /// Connects (connect_timeout), logs in, opens channel 1. Throws ConnectionError/AuthError.
  explicit Connection(ConnectionOptions options);
  /// Closes gracefully (bounded by io_timeout); never throws.
  ~Connection();
  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void declare_exchange(const std::string& name, const std::string& type, bool durable = true,
                        const Table& args = {});
  void delete_exchange(const std::string& name);
  void declare_queue(const std::string& name, const QueueOptions& options = {});
  /// Passive declare; ChannelError 404 if the queue does not exist.
  std::uint32_t queue_message_count(const std::string& name);
  void bind_queue(const std::string& queue, const std::string& exchange,
                  const std::string& routing_key, const Table& args = {});
  void delete_queue(const std::string& name);
  void purge_queue(const std::string& name);

  /// confirm.select; publish sequence numbers start at 1. Idempotent.
  void enable_confirms();
  /// Returns the publisher-confirm sequence number (1, 2, 3... after enable_confirms; 0 when
  /// confirms are off). Never waits for the confirm. A broker-side rejection (unknown exchange,
  /// oversized message) closes the channel asynchronously and surfaces as ChannelError from a
  /// later call (publish itself drains incoming frames every few calls).
  std::uint64_t publish(const Message& message, bool mandatory);
  /// Reads frames until every sequence number <= up_to is acked or nacked, or the timeout
  /// passes; returns everything confirmed or returned since the last call (the caller checks
  /// what is missing). A basic.return is reported in `returned` AND its tag is acked too.
  /// After an error has made the connection unusable, one more call hands out the confirms
  /// that had already arrived (without reading), so the caller republishes fewer messages.
  ConfirmBatch wait_confirms(std::uint64_t up_to, std::chrono::milliseconds timeout);

  void set_prefetch(std::uint16_t count);
  /// Manual acks. Returns the consumer tag (the broker's when consumer_tag is empty).
  std::string consume(const std::string& queue, const std::string& consumer_tag = "",
                      bool exclusive = false);
  /// The next buffered or incoming delivery; nullopt on timeout.
  std::optional<Delivery> next_delivery(std::chrono::milliseconds timeout);
  /// Reads what has already arrived, without waiting (kept for wait_confirms()/next_delivery()),
  /// and sends a heartbeat if one is due. A publisher with nothing to publish calls it now and
  /// then (well within heartbeat_seconds/2) so that the broker does not drop it as dead.
  void keep_alive();
  void ack(std::uint64_t delivery_tag, bool multiple = false);
  void nack(std::uint64_t delivery_tag, bool multiple, bool requeue);
  /// Deliveries already buffered for this consumer stay buffered (nack or ack them).
  void cancel(const std::string& consumer_tag);

  bool is_open() const;

  /// The node this connection is on: its URL with the password masked, its 0-based position in
  /// the options' URL list, and the length of that list (1 for a single URL).
  const std::string& node() const;
  std::size_t node_index() const;
  std::size_t node_count() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  Impl& impl();
};

}  // namespace oss::amqp
