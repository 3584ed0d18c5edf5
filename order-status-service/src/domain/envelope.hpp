#pragma once
/// The event as it travels on the wire (CONTRACT "Event on the wire"):
///
///     {"event_id": "6f1c…", "source": "crm", "aggregate_type": "order",
///      "aggregate_id": "ORD-1001", "sequence": 3, "event_type": "order.status_changed",
///      "occurred_at": "2026-11-22T18:00:00.123Z",
///      "payload": {"status": "PRICE_CALCULATED", "reason": "…", "actor": "…"}}
///
/// Parsing is total: a body that does not parse is a normal outcome (it gets dead-lettered as
/// "malformed"), so the functions here return typed results and never throw for any input.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>

#include "oss/core/time.hpp"

namespace oss::domain {

/// The only event type the order workflow consumes, and the aggregate type it belongs to.
inline constexpr std::string_view kStatusChangedEventType = "order.status_changed";
inline constexpr std::string_view kOrderAggregateType = "order";

/// Limits applied by parse_envelope(): nesting depth of the whole body, and the length of each
/// identifier field (source, aggregate_type, aggregate_id, event_type).
inline constexpr std::size_t kDefaultMaxEnvelopeBytes = 256 * std::size_t{1024};
inline constexpr std::size_t kMaxEnvelopeDepth = 64;
inline constexpr std::size_t kMaxIdentifierBytes = 256;

/// A validated event. `event_id` is a lowercase UUID; `sequence` ≥ 1; `source`, `aggregate_type`,
/// `aggregate_id` and `event_type` are non-empty, at most kMaxIdentifierBytes, without control
/// characters; `payload` is an object that contains no NUL characters (PostgreSQL cannot store
/// them). Unknown top-level fields are ignored (tolerant reader).
struct Envelope {
  std::string event_id;
  std::string source;
  std::string aggregate_type;
  std::string aggregate_id;
  std::int64_t sequence = 0;
  std::string event_type;
  core::TimePoint occurred_at{};
  nlohmann::json payload = nlohmann::json::object();
  bool operator==(const Envelope&) const = default;
};

/// Why a body was refused. `reason` is "malformed" for every parse failure (it maps onto
/// DeadLetterReason::malformed); `detail` is a sentence naming the field and the problem.
struct EnvelopeError {
  std::string reason;
  std::string detail;
};

/// Parses and validates one message body. Never throws for any input.
std::variant<Envelope, EnvelopeError> parse_envelope(
    std::string_view body, std::size_t max_bytes = kDefaultMaxEnvelopeBytes);

/// Exactly the wire format (occurred_at as RFC 3339 UTC with milliseconds).
nlohmann::json to_json(const Envelope& envelope);

/// The payload of an `order.status_changed` event.
struct StatusChange {
  std::string status;  // non-empty
  std::string reason;  // empty when absent
  std::string actor;   // empty when absent
  bool operator==(const StatusChange&) const = default;
};

/// Reads payload.status (required non-empty string) and payload.reason / payload.actor
/// (optional strings; null counts as absent). Does not check event_type. Never throws.
std::variant<StatusChange, EnvelopeError> status_change_of(const Envelope& envelope);

}  // namespace oss::domain
