#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace oss::amqp {

/// An AMQP field value as we use it: strings are sent as long strings ('S'), integers as
/// signed 64-bit ('l'), booleans as 't'. On receipt every integer kind becomes int64 (a u64
/// above INT64_MAX is dropped); floats, decimals, nested tables and arrays (e.g. x-death) are
/// dropped.
using FieldValue = std::variant<std::string, std::int64_t, bool>;
/// Ordered (key, value) pairs, as on the wire.
using Table = std::vector<std::pair<std::string, FieldValue>>;

/// An outgoing message.
struct Message {
  std::string exchange, routing_key, body;
  std::string message_id, type, content_type = "application/json";
  bool persistent = true;      // delivery_mode 2
  std::int64_t timestamp = 0;  // seconds since epoch, 0 = unset
  Table headers;
};

/// A mandatory message the broker could not route (basic.return). The broker still acks its
/// publish sequence number afterwards: treat it as NOT delivered, matched by message_id.
struct Returned {
  std::string message_id;
  std::uint16_t reply_code = 0;  // 312 NO_ROUTE
  std::string reply_text;
  std::string exchange, routing_key;
};

/// Publisher confirms received so far. acked/nacked hold individual sequence numbers (a
/// multiple=true confirm is expanded), in the order the broker confirmed them.
struct ConfirmBatch {
  std::vector<std::uint64_t> acked, nacked;
  std::vector<Returned> returned;
};

/// An incoming message from consume().
struct Delivery {
  std::uint64_t delivery_tag = 0;
  bool redelivered = false;
  std::string exchange, routing_key, consumer_tag;
  std::string body, message_id, type, content_type;
  Table headers;
  std::int64_t timestamp = 0;  // 0 when the publisher did not set it
};

}  // namespace oss::amqp
