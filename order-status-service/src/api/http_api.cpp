#include "api/http_api.hpp"

#include "oss/core/logging.hpp"
#include "oss/http/message.hpp"
#include "oss/pg/errors.hpp"

namespace oss::api {
namespace {

using nlohmann::json;

json opt(const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); }

/// Runs `work` on the pool and responds with its result; maps database trouble to 503.
void on_db(DbPool& db, http::Respond respond, std::function<http::Response(store::PgOrderStore&)> work) {
  auto shared_respond = std::make_shared<http::Respond>(std::move(respond));
  const bool queued = db.submit([shared_respond, work = std::move(work)](store::PgOrderStore& s) {
    try {
      (*shared_respond)(work(s));
    } catch (const std::exception& e) {
      s.reset();
      core::logger("api")->warn("msg=\"database error while serving a request\" error={}", core::q(e.what()));
      (*shared_respond)(http::problem(503, "the database is unavailable; retry shortly"));
    }
  });
  if (!queued) (*shared_respond)(http::problem(503, "too many requests in flight; retry shortly"));
}

}  // namespace

json to_json(const store::OrderView& o) {
  return {{"order_id", o.order_id},
          {"status", o.status},
          {"status_entered_at", core::format_rfc3339(o.status_entered_at)},
          {"sla_due_at", o.sla_due_at ? json(core::format_rfc3339(*o.sla_due_at)) : json(nullptr)},
          {"breached", o.breached},
          {"version", o.version},
          {"updated_at", core::format_rfc3339(o.updated_at)}};
}

json to_json(const store::HistoryEntry& h) {
  return {{"from", opt(h.from_status)},
          {"to", h.to_status},
          {"event_id", opt(h.event_id)},
          {"source", h.source},
          {"sequence", h.sequence ? json(*h.sequence) : json(nullptr)},
          {"occurred_at", core::format_rfc3339(h.occurred_at)},
          {"applied_at", core::format_rfc3339(h.applied_at)},
          {"actor", h.actor.empty() ? json(nullptr) : json(h.actor)},
          {"reason", h.reason.empty() ? json(nullptr) : json(h.reason)}};
}

http::Router make_router(ApiDependencies deps) {
  http::Router router;
  router.add("GET", "/healthz", [](http::Request, http::Respond respond) {
    respond(http::json_response(200, {{"status", "ok"}}));
  });
  router.add("GET", "/readyz", [deps](http::Request, http::Respond respond) {
    const bool broker = deps.broker_ok();
    on_db(deps.db, std::move(respond), [broker](store::PgOrderStore& s) {
      s.ping();
      if (!broker) return http::problem(503, "the broker is unreachable; the consumer is reconnecting");
      return http::json_response(200, {{"status", "ready"}, {"database", "ok"}, {"broker", "ok"}});
    });
  });
  router.add("GET", "/metrics", [deps](http::Request, http::Respond respond) {
    http::Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = deps.registry.render();
    respond(std::move(r));
  });
  router.add("GET", "/v1/orders/{id}", [deps](http::Request req, http::Respond respond) {
    const std::string id = req.params.at("id");
    on_db(deps.db, std::move(respond), [id](store::PgOrderStore& s) {
      const auto o = s.order(id, core::SystemClock().now());
      if (!o) return http::problem(404, "order '" + id + "' is not known");
      return http::json_response(200, to_json(*o));
    });
  });
  router.add("GET", "/v1/orders/{id}/history", [deps](http::Request req, http::Respond respond) {
    const std::string id = req.params.at("id");
    on_db(deps.db, std::move(respond), [id](store::PgOrderStore& s) {
      const auto h = s.history(id);
      if (h.empty()) return http::problem(404, "order '" + id + "' is not known");
      json items = json::array();
      for (const auto& e : h) items.push_back(to_json(e));
      return http::json_response(200, {{"order_id", id}, {"history", items}});
    });
  });
  if (deps.stream) router.add_sse("/v1/stream", deps.stream);
  return router;
}

}  // namespace oss::api
