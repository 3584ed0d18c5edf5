// outbox-relay: wiring only. The behaviour lives in the library (relay.hpp & co).
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <thread>

#include "amqp_publisher.hpp"
#include "config.hpp"
#include "oss/core/logging.hpp"
#include "oss/amqp/nodes.hpp"
#include "oss/core/url.hpp"
#include "oss/http/server.hpp"
#include "oss/metrics/registry.hpp"
#include "oss/pg/connection.hpp"
#include "oss/pg/migrate.hpp"
#include "oss/schema/migrations.hpp"
#include "pg_outbox_store.hpp"

namespace {

using namespace oss;

constexpr const char* kUsage =
    "outbox-relay <command> [flags]\n\n"
    "commands:\n"
    "  install   install or upgrade the outbox schema in a producer's database (idempotent)\n"
    "  run       publish committed outbox rows to RabbitMQ until SIGTERM/SIGINT\n\n"
    "`outbox-relay <command> --help` lists a command's flags.\n"
    "exit codes: 0 done, 1 problem found, 2 bad usage/configuration, 3 dependency unreachable\n";

bool wants_help(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(), [](const std::string& a) { return a == "--help" || a == "-h"; });
}

int cmd_install(const std::vector<std::string>& args) {
  const auto specs = relay::install_flags();
  if (wants_help(args)) {
    std::cout << core::format_help("outbox-relay install --db URL", specs);
    return 0;
  }
  const auto flags = core::parse_flags(specs, args);
  core::init_logging("outbox-relay", flags.get("log-level"));
  const std::string url = flags.get("db");
  core::require_pg_url(url, "--db");
  std::unique_ptr<pqxx::connection> conn;
  try {
    conn = pg::connect({url, "outbox-relay-install"});
  } catch (const pqxx::broken_connection& e) {
    throw core::DependencyError("cannot connect to the database " + core::mask_url(url) + ": " + e.what());
  }
  const auto report = pg::migrate(*conn, "outbox", schema::outbox_migrations());
  spdlog::info("msg=\"outbox schema installed\" db={} from_version={} to_version={} applied={}",
               core::q(core::mask_url(url)), report.from_version, report.to_version, report.applied);
  return 0;
}

int cmd_run(const std::vector<std::string>& args) {
  const auto specs = relay::run_flags();
  if (wants_help(args)) {
    std::cout << core::format_help("outbox-relay run --db URL --amqp URL [flags]", specs);
    return 0;
  }
  const auto config = relay::parse_run_config(core::parse_flags(specs, args));
  core::init_logging("outbox-relay", config.log_level);
  auto log = spdlog::default_logger();
  const pg::ConnectOptions db{config.db_url, "outbox-relay"};
  const auto archive_width = relay::PgOutboxStore::archive_width_for(config.options.retention);

  // Fail fast on misconfiguration: reach both servers once before starting the loop.
  std::unique_ptr<relay::OutboxStore> first_store;
  try {
    first_store = std::make_unique<relay::PgOutboxStore>(db, archive_width);
  } catch (const relay::PgOutboxStore::SchemaMissing& e) {
    throw core::UsageError(e.what());
  } catch (const pqxx::broken_connection& e) {
    throw core::DependencyError("cannot connect to the database " + core::mask_url(config.db_url) + ": " + e.what());
  }
  relay::AmqpPublisher publisher({{config.amqp_url, std::chrono::milliseconds(5000), std::chrono::milliseconds(10000),
                                   static_cast<std::uint16_t>(config.amqp_heartbeat.count()), "outbox-relay"},
                                  config.exchange});
  try {
    publisher.connect();
  } catch (const amqp::AuthError& e) {
    throw core::UsageError("the broker refused the login for " + core::mask_url(config.amqp_url) + ": " + e.what());
  } catch (const amqp::ChannelError& e) {
    throw core::UsageError("the broker refused exchange '" + config.exchange + "': " + e.what());
  } catch (const amqp::Error& e) {
    throw core::DependencyError("cannot connect to the broker " + core::mask_url(config.amqp_url) + ": " + e.what());
  }

  metrics::Registry registry;
  amqp::expose_node_metrics(registry);  // which cluster node each connection is on
  relay::RelayMetrics relay_metrics(registry);
  relay::Relay relay_loop(
      [&first_store, db, archive_width]() -> std::unique_ptr<relay::OutboxStore> {
        if (first_store) return std::move(first_store);
        return std::make_unique<relay::PgOutboxStore>(db, archive_width);
      },
      publisher, relay_metrics, config.options);

  boost::asio::io_context io;
  http::Router router;
  router.add("GET", "/metrics", [&registry](const http::Request& /*req*/, const http::Respond& respond) {
    http::Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = registry.render();
    respond(std::move(r));
  });
  router.add("GET", "/healthz", [](const http::Request& /*req*/, const http::Respond& respond) {
    respond(http::json_response(200, {{"status", "ok"}}));
  });
  router.add("GET", "/readyz", [&relay_loop](const http::Request& /*req*/, const http::Respond& respond) {
    const bool ok = relay_loop.healthy();
    respond(ok ? http::json_response(200, {{"status", "ready"}})
               : http::problem(503, "database or broker unreachable; the relay is retrying"));
  });
  http::ServerOptions http_options;
  http_options.listen = config.metrics_listen;
  http::Server server(io, http_options, std::move(router));
  try {
    server.start();
  } catch (const std::exception& e) {
    throw core::UsageError("--metrics " + config.metrics_listen + ": " + e.what());
  }

  std::atomic<bool> stop{false};
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log->info("msg=\"signal received; finishing the in-flight batch\" signal={}", sig);
    stop = true;
  });
  log->info("msg=\"outbox-relay running\" db={} amqp={} exchange={} metrics={}", core::q(core::mask_url(config.db_url)),
            core::q(core::mask_url(config.amqp_url)), config.exchange, server.port());
  std::thread worker([&] {
    relay_loop.run(stop);
    boost::asio::post(io, [&] {
      server.stop();
      signals.cancel();
    });
  });
  io.run();
  worker.join();
  log->info("msg=\"outbox-relay stopped\"");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? core::kExitUsage : core::kExitOk;
  }
  const std::string cmd = args[0];
  args.erase(args.begin());
  try {
    if (cmd == "install") return cmd_install(args);
    if (cmd == "run") return cmd_run(args);
    std::cerr << "outbox-relay: unknown command '" << cmd << "'\n\n" << kUsage;
    return core::kExitUsage;
  } catch (const core::UsageError& e) {
    std::cerr << "outbox-relay: error: " << e.what() << "\n";
    return core::kExitUsage;
  } catch (const core::DependencyError& e) {
    std::cerr << "outbox-relay: error: " << e.what() << "\n";
    return core::kExitDependency;
  } catch (const pqxx::broken_connection& e) {
    std::cerr << "outbox-relay: error: database unreachable: " << e.what() << "\n";
    return core::kExitDependency;
  } catch (const std::exception& e) {
    std::cerr << "outbox-relay: error: " << e.what() << "\n";
    return core::kExitProblem;
  }
}
