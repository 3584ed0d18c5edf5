#pragma once
/// The HTTP API (CONTRACT "HTTP API"): routes → handlers that translate HTTP to store calls
/// run on the DbPool, and store results to JSON.
#include <functional>
#include <memory>

#include "api/db_pool.hpp"
#include "oss/http/router.hpp"
#include "oss/http/sse_hub.hpp"
#include "oss/metrics/registry.hpp"

namespace oss::api {

struct ApiDependencies {
  DbPool& db;
  metrics::Registry& registry;
  std::function<bool()> broker_ok;
  std::function<bool()> database_ok;
  std::shared_ptr<http::SseHub> stream;
};

http::Router make_router(ApiDependencies deps);

nlohmann::json to_json(const store::OrderView& o);
nlohmann::json to_json(const store::HistoryEntry& h);

}  // namespace oss::api
