#include "api/http_api.hpp"

#include <algorithm>
#include <chrono>
#include <variant>

#include "api/params.hpp"
#include "api/stats.hpp"
#include "dlq/dead_letters.hpp"
#include "oss/core/logging.hpp"
#include "oss/http/message.hpp"
#include "sla/queries.hpp"

namespace oss::api {
namespace {

using nlohmann::json;
using auth::Principal;
using auth::Role;

json opt(const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); }

/// oss_http_requests_total{route,status} and oss_http_request_seconds{route}: the route is the
/// pattern ("/v1/orders/{id}"), so label cardinality stays bounded whatever the clients send.
class HttpMetrics {
 public:
  explicit HttpMetrics(metrics::Registry& registry) : registry_(registry) {}

  metrics::Histogram& latency(const std::string& route) {
    return registry_.histogram("oss_http_request_seconds", "HTTP request duration from dispatch to response, by route",
                               metrics::latency_buckets_seconds(), {{"route", route}});
  }
  void count(const std::string& route, unsigned status) {
    registry_.counter("oss_http_requests_total", "HTTP requests answered, by route and status",
                      {{"route", route}, {"status", std::to_string(status)}})
        .inc();
  }

 private:
  metrics::Registry& registry_;
};

/// Router::add with per-route metrics around every handler.
class Routes {
 public:
  explicit Routes(metrics::Registry& registry) : metrics_(std::make_shared<HttpMetrics>(registry)) {}

  void add(const std::string& method, const std::string& pattern, http::Handler handler) {
    auto* histogram = &metrics_->latency(pattern);
    router_.add(method, pattern,
                [metrics = metrics_, histogram, pattern, handler = std::move(handler)](http::Request req,
                                                                                       http::Respond respond) {
                  const auto start = std::chrono::steady_clock::now();
                  http::Respond counted = [metrics, histogram, pattern, start,
                                           respond = std::move(respond)](http::Response r) {
                    histogram->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
                    metrics->count(pattern, r.status);
                    respond(std::move(r));
                  };
                  try {
                    handler(std::move(req), std::move(counted));
                  } catch (...) {
                    metrics->count(pattern, 500);  // the server answers 500 for a throwing handler
                    throw;
                  }
                });
  }

  void add_sse(const std::string& pattern, std::shared_ptr<http::SseHub> hub,
               std::function<std::optional<http::Response>(const http::Request&)> authorize) {
    router_.add_sse(pattern, std::move(hub),
                    [metrics = metrics_, pattern, authorize = std::move(authorize)](const http::Request& req) {
                      auto refused = authorize(req);
                      metrics->count(pattern, refused ? refused->status : 200);
                      return refused;
                    });
  }

  http::Router take() { return std::move(router_); }

 private:
  std::shared_ptr<HttpMetrics> metrics_;
  http::Router router_;
};

/// Runs `work` on a DB worker and responds with its result. Database trouble → 503 (retry
/// later), broker trouble → 503, BadRequest → 400, anything else → 500 (logged).
void on_db(DbPool& db, const http::Respond& respond, std::function<http::Response(DbSession&)> work) {
  const bool queued = db.submit([respond, work = std::move(work)](DbSession& s) {
    auto log = core::logger("api");
    try {
      respond(work(s));
    } catch (const BadRequest& e) {
      respond(http::problem(400, e.what()));
    } catch (const pqxx::pqxx_exception& e) {
      s.reset();
      log->warn("msg=\"database error while serving a request\" error={}", core::q(e.base().what()));
      respond(http::problem(503, "the database is unavailable; retry shortly"));
    } catch (const amqp::Error& e) {
      log->warn("msg=\"broker error while serving a request\" error={}", core::q(e.what()));
      respond(http::problem(503, std::string("the broker is unavailable; retry shortly (") + e.what() + ")"));
    } catch (const std::exception& e) {
      s.reset();
      log->error("msg=\"request failed\" error={}", core::q(e.what()));
      respond(http::problem(500, "internal error"));
    }
  });
  if (!queued) respond(http::problem(503, "too many requests in flight; retry shortly"));
}

/// A handler body that runs after the access check, with the caller known. Parameter errors
/// thrown as BadRequest before any asynchronous work become 400 problems.
using Guarded = std::function<void(http::Request, const Principal&, const http::Respond&)>;

http::Handler guarded(std::shared_ptr<const AccessControl> access, Role role, Guarded body) {
  return [access = std::move(access), role, body = std::move(body)](http::Request req, const http::Respond& respond) {
    auto who = access->check(req, role);
    if (auto* refused = std::get_if<http::Response>(&who)) return respond(std::move(*refused));
    try {
      body(std::move(req), std::get<Principal>(who), respond);
    } catch (const BadRequest& e) {
      respond(http::problem(400, e.what()));
    }
  };
}

/// POST bodies are JSON: a declared Content-Type must say so (absent is accepted).
void require_json(const http::Request& req) {
  const auto ct = req.header("Content-Type");
  if (!ct) return;
  std::string media = ct->substr(0, ct->find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.pop_back();
  for (auto& c : media) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (media != "application/json" && !(media.size() > 5 && media.compare(media.size() - 5, 5, "+json") == 0))
    throw BadRequest("the request body must be application/json");
}

/// The live "status_changed" event for a correction just applied: from the history row it
/// wrote (so "from" is exactly what the transaction saw), or built from the result.
processing::HistoryRow correction_row(store::PgOrderStore& s, const std::string& id, const store::OrderView& after,
                                      const std::string& actor, const std::string& reason,
                                      const std::optional<std::string>& before) {
  const auto history = s.history(id);
  // Newest first. (Reverse iterators, not std::ranges::reverse_view: clang-tidy's clang 14
  // cannot compile libstdc++ 12's <ranges>.)
  const auto it = std::find_if(history.rbegin(), history.rend(), [&](const auto& h) {
    return h.source == "operator" && h.actor == actor && h.to_status == after.status && !h.event_id;
  });
  if (it != history.rend())
    return {id, it->from_status, it->to_status, std::nullopt, it->source, std::nullopt, it->occurred_at,
            it->actor, it->reason};
  return {id, before, after.status, std::nullopt, "operator", std::nullopt, after.status_entered_at, actor, reason};
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
  if (!deps.access) deps.access = std::make_shared<AccessControl>();
  Routes routes(deps.registry);
  const auto access = deps.access;
  const domain::Workflow* workflow = &deps.workflow;  // outlives the server (ApiDependencies)
  DbPool* db = &deps.db;

  // ---- operations: no token needed ----
  routes.add("GET", "/healthz", [](const http::Request&, const http::Respond& respond) {
    respond(http::json_response(200, {{"status", "ok"}}));
  });
  routes.add("GET", "/readyz", [db, broker_ok = deps.broker_ok](const http::Request&, const http::Respond& respond) {
    const bool broker = broker_ok();
    on_db(*db, respond, [broker](DbSession& s) {
      s.store().ping();
      if (!broker) return http::problem(503, "the broker is unreachable; the consumer is reconnecting");
      return http::json_response(200, {{"status", "ready"}, {"database", "ok"}, {"broker", "ok"}});
    });
  });
  routes.add("GET", "/metrics", [registry = &deps.registry](const http::Request&, const http::Respond& respond) {
    http::Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = registry->render();
    respond(std::move(r));
  });

  // ---- the dashboard page: static, no data in it, so no token (its API calls carry one) ----
  routes.add("GET", "/", [](const http::Request&, const http::Respond& respond) {
    http::Response r;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::string(dashboard_html());
    r.headers = {{"Cache-Control", "no-cache"},
                 {"X-Content-Type-Options", "nosniff"},
                 {"Referrer-Policy", "no-referrer"},
                 {"Content-Security-Policy",
                  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
                  "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"}};
    respond(std::move(r));
  });

  // ---- reading: viewer ----
  routes.add("GET", "/v1/stats", guarded(access, Role::viewer, [db, workflow](const http::Request& req, const Principal&,
                                                                             const http::Respond& respond) {
               only_parameters(req.query, {});
               on_db(*db, respond, [workflow](DbSession& s) {
                 return http::json_response(200, dashboard_stats(s.conn(), *workflow, core::SystemClock().now()));
               });
             }));

  routes.add("GET", "/v1/orders", guarded(access, Role::viewer, [db, workflow](const http::Request& req, const Principal&,
                                                                              const http::Respond& respond) {
               const auto filter = order_filter(req.query, *workflow, core::SystemClock().now());
               on_db(*db, respond, [filter](DbSession& s) {
                 sla::OrderPage page;
                 try {
                   page = sla::list_orders(s.conn(), filter);
                 } catch (const pqxx::pqxx_exception&) {
                   throw;
                 } catch (const std::invalid_argument&) {
                   throw BadRequest("cursor: not a cursor from a previous page's next_cursor (for these filters)");
                 }
                 json items = json::array();
                 for (const auto& o : page.orders) items.push_back(to_json(o));
                 return http::json_response(200, {{"orders", items}, {"next_cursor", opt(page.next_cursor)}});
               });
             }));

  routes.add("GET", "/v1/orders/{id}", guarded(access, Role::viewer, [db](http::Request req, const Principal&,
                                                                         const http::Respond& respond) {
               const std::string id = req.params.at("id");
               on_db(*db, respond, [id](DbSession& s) {
                 const auto o = s.store().order(id, core::SystemClock().now());
                 if (!o) return http::problem(404, "order '" + id + "' is not known");
                 return http::json_response(200, to_json(*o));
               });
             }));

  routes.add("GET", "/v1/orders/{id}/history", guarded(access, Role::viewer, [db](http::Request req, const Principal&,
                                                                                 const http::Respond& respond) {
               const std::string id = req.params.at("id");
               on_db(*db, respond, [id](DbSession& s) {
                 const auto h = s.store().history(id);
                 if (h.empty()) return http::problem(404, "order '" + id + "' is not known");
                 json items = json::array();
                 for (const auto& e : h) items.push_back(to_json(e));
                 return http::json_response(200, {{"order_id", id}, {"history", items}});
               });
             }));

  routes.add("GET", "/v1/escalations", guarded(access, Role::viewer, [db](const http::Request& req, const Principal&,
                                                                         const http::Respond& respond) {
               const auto filter = escalation_filter(req.query);
               on_db(*db, respond, [filter](DbSession& s) {
                 sla::EscalationPage page;
                 try {
                   page = sla::list_escalations(s.conn(), filter);
                 } catch (const pqxx::pqxx_exception&) {
                   throw;
                 } catch (const std::invalid_argument&) {
                   throw BadRequest("cursor: not a cursor from a previous page's next_cursor (for these filters)");
                 }
                 json items = json::array();
                 for (const auto& e : page.escalations) items.push_back(sla::to_json(e));
                 return http::json_response(200, {{"escalations", items}, {"next_cursor", opt(page.next_cursor)}});
               });
             }));

  routes.add("GET", "/v1/dead-letters", guarded(access, Role::viewer, [db](const http::Request& req, const Principal&,
                                                                          const http::Respond& respond) {
               auto filter = dead_letter_filter(req.query);
               on_db(*db, respond, [filter](DbSession& s) mutable {
                 const std::size_t limit = filter.limit;
                 filter.limit = limit + 1;  // one more tells whether there is a next page
                 auto rows = dlq::list(s.conn(), filter);
                 std::optional<std::string> next;
                 if (rows.size() > limit) {
                   rows.resize(limit);
                   next = std::to_string(rows.back().id);
                 }
                 json items = json::array();
                 for (const auto& d : rows) items.push_back(dlq::to_json(d));
                 return http::json_response(
                     200, {{"dead_letters", items}, {"open_count", dlq::open_count(s.conn())}, {"next_cursor", opt(next)}});
               });
             }));

  routes.add("GET", "/v1/early-events", guarded(access, Role::viewer, [db](const http::Request& req, const Principal&,
                                                                         const http::Respond& respond) {
               const auto filter = parked_filter(req.query);
               on_db(*db, respond, [filter](DbSession& s) {
                 json items = json::array();
                 for (const auto& e : store::list_parked(s.conn(), filter)) items.push_back(store::to_json(e));
                 return http::json_response(200, {{"early_events", items}, {"count", store::parked_count(s.conn())}});
               });
             }));

  // ---- changing: operator ----
  routes.add("POST", "/v1/orders/{id}/status",
             guarded(access, Role::operator_role,
                     [db, workflow, live = live_publisher(deps.stream)](http::Request req, const Principal& who,
                                                                        const http::Respond& respond) {
                       require_json(req);
                       const std::string id = req.params.at("id");
                       const Correction c = parse_correction(req.body, *workflow);
                       on_db(*db, respond, [id, c, workflow, live, actor = who.name](DbSession& s) {
                         const auto now = core::SystemClock().now();
                         auto& store = s.store();
                         // Corrections are for orders the service knows: an unknown id is far more
                         // likely a typo than an order to create by hand (creation belongs to the
                         // source systems). No race: orders are never deleted.
                         const auto before = store.order(id, now);
                         if (!before) return http::problem(404, "order '" + id + "' is not known");
                         const auto result = store.apply_transition(*workflow, id, c.status, "operator", actor, c.reason, now);
                         if (result.decision.outcome != domain::Outcome::applied || !result.order)
                           return http::problem(409, result.decision.detail.empty()
                                                         ? "the workflow does not allow " + before->status + " → " + c.status
                                                         : result.decision.detail);
                         core::logger("api")->info("msg=\"operator correction applied\" order_id={} to={} actor={}",
                                                   core::q(id), core::q(c.status), core::q(actor));
                         live(kStatusChanged,
                              status_changed_event(correction_row(store, id, *result.order, actor, c.reason, before->status))
                                  .dump());
                         return http::json_response(200, to_json(*result.order));
                       });
                     }));

  routes.add("POST", "/v1/dead-letters/replay",
             guarded(access, Role::operator_role,
                     [db, broker = deps.broker, queue = deps.events_queue](const http::Request& req, const Principal& who,
                                                                          const http::Respond& respond) {
                       require_json(req);
                       const auto selection = parse_replay(req.body);
                       on_db(*db, respond, [selection, broker, queue, actor = who.name](DbSession& s) {
                         // One short-lived connection per replay, on this worker thread (rabbitmq-c
                         // connections are single-threaded; replays are rare).
                         amqp::Connection conn(broker);
                         const auto result = dlq::replay(s.conn(), conn, queue, selection);
                         core::logger("api")->info("msg=\"dead letters replayed\" replayed={} not_found={} actor={}",
                                                   result.replayed.size(), result.not_found.size(), core::q(actor));
                         return http::json_response(200, {{"replayed", result.replayed}, {"not_found", result.not_found}});
                       });
                     }));

  // ---- live stream: viewer; EventSource cannot send headers, so ?access_token= too ----
  if (deps.stream) {
    routes.add_sse("/v1/stream", deps.stream, [access](const http::Request& req) -> std::optional<http::Response> {
      auto who = access->check(req, Role::viewer, /*allow_query_token=*/true);
      if (auto* refused = std::get_if<http::Response>(&who)) return std::move(*refused);
      return std::nullopt;
    });
  }
  return routes.take();
}

}  // namespace oss::api
