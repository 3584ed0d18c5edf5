// `order-status-service run`: wiring only. Behaviour lives in the libraries under src/.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <iostream>
#include <set>
#include <thread>

#include "amqp_publisher.hpp"
#include "app/commands.hpp"
#include "api/http_api.hpp"
#include "api/live_events.hpp"
#include "auth/tokens.hpp"
#include "app/config.hpp"
#include "consumer/early_sweeper.hpp"
#include "consumer/event_consumer.hpp"
#include "consumer/stats_collector.hpp"
#include "sla/queries.hpp"
#include "domain/workflow.hpp"
#include "oss/core/logging.hpp"
#include "oss/amqp/nodes.hpp"
#include "oss/core/url.hpp"
#include "oss/http/server.hpp"
#include "oss/http/sse_hub.hpp"
#include "oss/pg/migrate.hpp"
#include "oss/schema/migrations.hpp"
#include "pg_outbox_store.hpp"
#include "relay.hpp"
#include "sla/calendar.hpp"
#include "sla/engine.hpp"

namespace oss::app {

int cmd_run(const std::vector<std::string>& args) {
  const auto specs = app::run_flags();
  if (wants_help(args)) {
    std::cout << core::format_help("order-status-service run --db URL --amqp URL [flags]", specs);
    return 0;
  }
  const auto config = app::parse_run_config(core::parse_flags(specs, args));
  core::init_logging("order-status-service", config.log_level);
  auto log = spdlog::default_logger();

  domain::Workflow workflow = domain::shipped_workflow();
  if (config.workflow_file) {
    try {
      workflow = domain::load_workflow_file(*config.workflow_file);
    } catch (const std::exception& e) {
      throw core::UsageError("--workflow " + *config.workflow_file + ": " + e.what());
    }
  }
  // API access: with --tokens every caller needs a token; without, the API is read-only and
  // must not be reachable from other hosts.
  std::optional<auth::TokenSet> tokens;
  if (config.tokens_file) {
    try {
      tokens = auth::TokenSet::load_file(*config.tokens_file);
    } catch (const auth::TokenFileError& e) {
      throw core::UsageError(std::string("--tokens: ") + e.what());
    }
  } else {
    boost::asio::ip::tcp::endpoint listen;
    try {
      listen = http::parse_listen_address(config.http_listen);
    } catch (const std::invalid_argument& e) {
      throw core::UsageError("--http " + config.http_listen + ": " + e.what());
    }
    if (!listen.address().is_loopback())
      throw core::UsageError("--http " + config.http_listen +
                             ": without --tokens the API has no authentication and may listen on a loopback address "
                             "only (127.0.0.1, [::1], localhost); give --tokens FILE to listen on other addresses");
  }

  // Fail fast: database reachable and migrated, broker reachable and topology declarable.
  {
    auto conn = connect_or_exit3(config.db_url, "order-status-service");
    if (pg::installed_version(*conn, "oss") == 0 || pg::installed_version(*conn, "outbox") == 0)
      throw core::UsageError("the service schema is not installed; run `order-status-service migrate --db URL` first");
    require_sla_schema(*conn);  // schema 4 and later
    try {
      (void)sla::load_timer_rules(workflow, *conn);  // calendars' time zones known to PostgreSQL
    } catch (const std::invalid_argument& e) {
      throw core::UsageError(std::string("workflow: ") + e.what());
    }
    // Parked early events were decided with the workflow of whichever instance parked them;
    // this one's may differ, so none is retried in place before it went through the queue once.
    consumer::EarlySweeper::forget_decided_versions(*conn);
  }
  try {
    amqp::Connection probe(config.consumer.connection);
    consumer::declare(probe, config.consumer.topology);
  } catch (const amqp::AuthError& e) {
    throw core::UsageError("the broker refused the login for " + core::mask_url(config.amqp_url) + ": " + e.what());
  } catch (const amqp::ChannelError& e) {
    throw core::UsageError("the broker refused the topology (exchange/queue arguments differ?): " + std::string(e.what()));
  } catch (const amqp::Error& e) {
    throw core::DependencyError("cannot connect to the broker " + core::mask_url(config.amqp_url) + ": " + e.what());
  }

  metrics::Registry registry;
  amqp::expose_node_metrics(registry);  // which cluster node each connection is on
  consumer::ConsumerMetrics consumer_metrics(registry);
  auto stream = std::make_shared<http::SseHub>();
  const pg::ConnectOptions db{config.db_url, "order-status-service"};
  consumer::EventConsumer event_consumer(
      config.consumer, db, workflow, consumer_metrics, [stream](const std::vector<processing::HistoryRow>& rows) {
        for (const auto& h : rows) stream->publish(api::kStatusChanged, api::status_changed_event(h).dump());
      });

  // The service's own outbox → orders.notifications, with the relay's code.
  relay::RelayMetrics notification_metrics(registry);
  relay::AmqpPublisher notification_publisher(
      {{config.amqp_url, std::chrono::milliseconds(5000), std::chrono::milliseconds(10000), 30,
        "order-status-service-notifications"},
       config.consumer.topology.notifications_exchange});
  // Short cycles (the relay sees the stop flag between cycles): with several consumer threads a
  // backlog of notifications builds up quickly, and 32 batches of 500 per cycle could hold
  // SIGTERM up for longer than a supervisor waits.
  relay::RelayOptions notification_relay_options;
  notification_relay_options.max_batches_per_cycle = 4;
  relay::Relay notification_relay([db] { return std::make_unique<relay::PgOutboxStore>(db); }, notification_publisher,
                                  notification_metrics, notification_relay_options);

  api::DbPool pool(db, 4, 1000);
  boost::asio::io_context io;
  http::ServerOptions http_options;
  http_options.listen = config.http_listen;
  http_options.read_timeout = config.http_read_timeout;
  amqp::ConnectionOptions replay_broker = config.consumer.connection;
  replay_broker.connection_name = "order-status-service-api";
  http::Server server(io, http_options,
                      api::make_router({.db = pool,
                                        .registry = registry,
                                        .broker_ok = [&] { return event_consumer.connected(); },
                                        .database_ok = [&] { return event_consumer.database_ok(); },
                                        .stream = stream,
                                        .workflow = workflow,
                                        .access = std::make_shared<const api::AccessControl>(std::move(tokens)),
                                        .broker = replay_broker,
                                        .events_queue = config.consumer.topology.events_queue}));
  try {
    server.start();
  } catch (const std::exception& e) {
    throw core::UsageError("--http " + config.http_listen + ": " + e.what());
  }

  std::atomic<bool> stop{false};
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log->info("msg=\"signal received; stopping\" signal={}", sig);
    stop = true;
  });
  log->info("msg=\"order-status-service running\" db={} amqp={} http_port={} workflow={} api_tokens={}",
            core::q(core::mask_url(config.db_url)), core::q(core::mask_url(config.amqp_url)), server.port(),
            workflow.name(), config.tokens_file ? "on" : "off");
  if (config.early_hold_deprecated)
    log->warn("msg=\"--early-hold has no effect: early events are parked in the database (docs/adr/0004)\"");
  std::thread consumer_thread([&] { event_consumer.run(stop); });
  std::thread relay_thread([&] {
    if (config.relay_notifications) notification_relay.run(stop);
  });
  // SLA scanner: the same pass as `escalate --once`, every --scan-interval.
  sla::SlaMetrics sla_metrics(registry);
  sla::SlaScanner sla_scanner(workflow, db, config.scan_interval, sla_metrics);
  std::thread sla_thread([&] {
    if (config.scan_interval.count() > 0) sla_scanner.run(stop);
  });
  // Escalations raised or resolved by any instance or cron pass → the live stream.
  std::thread escalation_feed([&] {
    const auto live = api::live_publisher(stream);
    std::unique_ptr<pqxx::connection> conn;
    std::int64_t after_id = -1;
    core::TimePoint since = core::SystemClock().now();
    std::set<std::int64_t> resolved_seen;  // ids already sent at `since` (the query is inclusive)
    while (!stop.load()) {
      try {
        if (!conn) conn = pg::connect(db);
        if (after_id < 0) {
          pqxx::read_transaction tx(*conn);
          after_id = tx.exec("SELECT coalesce(max(id), 0) FROM oss.escalations")[0][0].as<std::int64_t>();
        }
        const auto changes = sla::escalation_changes(*conn, after_id, since);
        for (const auto& e : changes.raised) {
          live(api::kEscalationRaised, sla::to_json(e).dump());
          after_id = std::max(after_id, e.id);
        }
        for (const auto& e : changes.resolved) {
          if (!e.resolved_at || resolved_seen.contains(e.id)) continue;
          live(api::kEscalationResolved, sla::to_json(e).dump());
          if (*e.resolved_at > since) {
            since = *e.resolved_at;
            resolved_seen.clear();
          }
          resolved_seen.insert(e.id);
        }
      } catch (const std::exception& e) {
        conn.reset();
        spdlog::warn("msg=\"escalation feed paused; database unavailable\" error={}", core::q(e.what()));
      }
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      while (!stop.load() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  // Query-based gauges (orders by status, open dead letters, queue depths) on their own thread.
  consumer::StatsCollector stats(db, config.consumer.connection, config.consumer.topology, registry);
  std::thread stats_thread([&] { stats.run(stop); });
  std::thread watcher([&] {
    consumer_thread.join();
    relay_thread.join();
    sla_thread.join();
    stats_thread.join();
    escalation_feed.join();
    boost::asio::post(io, [&] {
      server.stop();
      signals.cancel();
    });
  });
  io.run();
  watcher.join();
  pool.stop();
  log->info("msg=\"order-status-service stopped\"");
  return 0;
}

}  // namespace oss::app
