#pragma once
/// The HTTP API (CONTRACT "HTTP API", docs/api.md, docs/openapi.yaml): routes → handlers that
/// check access, validate parameters, run store calls on the DbPool and turn results into JSON.
/// Handlers never block the I/O thread: everything that touches the database or the broker runs
/// on a DbPool worker and responds from there.
#include <functional>
#include <memory>
#include <string>

#include "api/access.hpp"
#include "api/db_pool.hpp"
#include "api/live_events.hpp"
#include "domain/workflow.hpp"
#include "oss/amqp/connection.hpp"
#include "oss/http/router.hpp"
#include "oss/http/sse_hub.hpp"
#include "oss/metrics/registry.hpp"

namespace oss::api {

struct ApiDependencies {
  DbPool& db;
  metrics::Registry& registry;
  std::function<bool()> broker_ok;
  std::function<bool()> database_ok;
  /// The live stream (GET /v1/stream). Operator corrections publish "status_changed" to it;
  /// the consumer and the SLA scanner publish through live_publisher(stream) (live_events.hpp).
  std::shared_ptr<http::SseHub> stream;
  /// Must outlive the server and the pool.
  const domain::Workflow& workflow;
  std::shared_ptr<const AccessControl> access;
  /// POST /v1/dead-letters/replay opens one broker connection per request, on a DB worker.
  amqp::ConnectionOptions broker;
  std::string events_queue;
};

http::Router make_router(ApiDependencies deps);

nlohmann::json to_json(const store::OrderView& o);
nlohmann::json to_json(const store::HistoryEntry& h);

/// The dashboard page (dashboard.html, embedded at build time).
std::string_view dashboard_html();

}  // namespace oss::api
