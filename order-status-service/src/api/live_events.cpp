#include "api/live_events.hpp"

#include "oss/core/time.hpp"

namespace oss::api {

LivePublisher live_publisher(std::shared_ptr<http::SseHub> hub) {
  return [hub = std::move(hub)](const std::string& type, const std::string& json) {
    if (hub) hub->publish(type, json);
  };
}

nlohmann::json status_changed_event(const processing::HistoryRow& row) {
  using nlohmann::json;
  return {{"order_id", row.order_id},
          {"from", row.from_status ? json(*row.from_status) : json(nullptr)},
          {"to", row.to_status},
          {"source", row.source},
          {"occurred_at", core::format_rfc3339(row.occurred_at)},
          {"actor", row.actor.empty() ? json(nullptr) : json(row.actor)},
          {"reason", row.reason.empty() ? json(nullptr) : json(row.reason)}};
}

}  // namespace oss::api
