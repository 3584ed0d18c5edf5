#pragma once
#include <cstdint>
#include <string>

#include "oss/amqp/connection.hpp"
#include "oss/core/time.hpp"

namespace oss::relay {

/// One committed, unpublished outbox row as the relay reads it.
struct OutboxRow {
  std::int64_t position = 0;
  std::string event_id;
  std::string source;
  std::string aggregate_type;
  std::string aggregate_id;
  std::int64_t sequence = 0;
  std::string event_type;
  std::string payload_json;   // jsonb text
  std::string headers_json;   // jsonb text
  core::TimePoint occurred_at{};
  int attempts = 0;
  bool due = true;            // false while a failed row waits for its next attempt
  /// The aggregate's previous sequence is still unpublished (and not parked), and may have been
  /// committed too late for the earlier fetches of this cycle to see it (only checked for rows
  /// written since the cycle's first snapshot: PgOutboxStore::fetch_sql). A row fetched beyond
  /// rows already in flight may only go out if that predecessor went out before it.
  bool predecessor_pending = false;
};

/// The wire form (CONTRACT "Event on the wire"): body, routing key `<source>.<event_type>`,
/// message_id = event_id, type = event_type, persistent. Producer headers (e.g. traceparent)
/// are copied to AMQP headers; x-aggregate-id / x-source / x-sequence are added so consumers
/// can partition and order without parsing the body.
amqp::Message to_message(const OutboxRow& row, const std::string& exchange);

/// The JSON body alone.
std::string envelope_body(const OutboxRow& row);

}  // namespace oss::relay
