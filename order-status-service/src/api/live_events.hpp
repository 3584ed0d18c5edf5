#pragma once
/// The live stream's events (GET /v1/stream, server-sent events). One place for their names and
/// JSON shapes so that the consumer, operator corrections and the SLA scanner publish alike.
///
/// Event types (the SSE `event:` field) and their `data:` JSON:
///  - "status_changed": {"order_id", "from" (null on creation), "to", "source", "occurred_at",
///    "actor" (null unless set), "reason" (null unless set)}. Published after the commit, by the
///    consumer for applied events and by POST /v1/orders/{id}/status for corrections.
///  - "escalation_raised", "escalation_resolved": sla::to_json(EscalationView) (published by
///    the SLA scanner after its commit).
/// Every event has an `id:` (the hub's, per process) for Last-Event-ID resumption.
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "oss/http/sse_hub.hpp"
#include "processing/batch_plan.hpp"

namespace oss::api {

inline constexpr const char* kStatusChanged = "status_changed";
inline constexpr const char* kEscalationRaised = "escalation_raised";
inline constexpr const char* kEscalationResolved = "escalation_resolved";

/// Publishes one event (type, JSON text) to the live stream. Thread-safe, never blocks.
using LivePublisher = std::function<void(std::string type, std::string json)>;

/// A publisher into `hub` (a no-op when hub is null).
LivePublisher live_publisher(std::shared_ptr<http::SseHub> hub);

nlohmann::json status_changed_event(const processing::HistoryRow& row);

}  // namespace oss::api
