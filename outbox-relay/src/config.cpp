#include "config.hpp"

#include "oss/core/duration.hpp"
#include "oss/core/url.hpp"

namespace oss::relay {
namespace {

core::FlagSpec log_level_flag() {
  return {"log-level", "RELAY_LOG_LEVEL", "trace, debug, info, warn, error", "info"};
}

}  // namespace

std::vector<core::FlagSpec> install_flags() {
  return {{"db", "RELAY_DB_URL", "producer database (libpq URI)", std::nullopt, true, false, true},
          log_level_flag()};
}

std::vector<core::FlagSpec> run_flags() {
  return {
      {"db", "RELAY_DB_URL", "producer database (libpq URI)", std::nullopt, true, false, true},
      {"amqp", "RELAY_AMQP_URL", "broker, amqp://user:pass@host:port/vhost", std::nullopt, true, false, true},
      {"exchange", "RELAY_EXCHANGE", "topic exchange to publish to", "orders.events"},
      {"amqp-heartbeat", "RELAY_AMQP_HEARTBEAT", "AMQP heartbeat proposed to the broker (whole seconds; 0s: none); an idle relay keeps it going", "30s"},
      {"metrics", "RELAY_METRICS_LISTEN", "host:port for /metrics, /healthz, /readyz", "127.0.0.1:9101"},
      {"batch-size", "RELAY_BATCH_SIZE", "rows per batch (confirms pipelined per batch)", "500"},
      {"pipeline-depth", "RELAY_PIPELINE_DEPTH", "batches published ahead of their confirms", "4"},
      {"max-attempts", "RELAY_MAX_ATTEMPTS", "broker refusals before a row is parked", "10"},
      {"broker-settle", "RELAY_BROKER_SETTLE", "after a broker fault, refusals are retried without counting toward --max-attempts until the broker routes messages again and for this long after (a recovering broker may return or nack messages)", "30s"},
      {"retention", "RELAY_RETENTION", "how long published rows are kept in outbox.events_archive (reconcile reads them; dropped a partition at a time, at most retention/8 late)", "24h"},
      {"vacuum-after", "RELAY_VACUUM_AFTER", "VACUUM outbox.events after this many rows published by this relay, at most every 2 s (dead index entries of published rows slow every fetch until vacuumed); 0: leave it to autovacuum", "20000"},
      {"poll-interval", "RELAY_POLL_INTERVAL", "polling safety net when no NOTIFY arrives (also the wake-up when outbox.notify = off)", "100ms"},
      log_level_flag(),
  };
}

RelayConfig parse_run_config(const core::FlagValues& f) {
  RelayConfig c;
  c.db_url = f.get("db");
  core::require_pg_url(c.db_url, "--db");
  c.amqp_url = f.get("amqp");
  core::require_amqp_url(c.amqp_url, "--amqp");
  c.exchange = f.get("exchange");
  if (c.exchange.empty()) throw core::UsageError("--exchange: must not be empty");
  {
    const auto hb = f.get_duration("amqp-heartbeat");
    if (hb.count() % 1000 != 0 || hb > std::chrono::hours(1))
      throw core::UsageError("--amqp-heartbeat: whole seconds, at most 3600s (got " + f.get("amqp-heartbeat") + ")");
    c.amqp_heartbeat = std::chrono::duration_cast<std::chrono::seconds>(hb);
  }
  c.metrics_listen = f.get("metrics");
  c.log_level = f.get("log-level");
  c.options.batch_size = static_cast<std::size_t>(f.get_int("batch-size", 1, 10000));
  c.options.pipeline_depth = static_cast<std::size_t>(f.get_int("pipeline-depth", 1, 64));
  c.options.max_attempts = static_cast<int>(f.get_int("max-attempts", 1, 1000));
  c.options.broker_settle = f.get_duration("broker-settle");
  c.options.retention = f.get_duration("retention");
  c.options.vacuum_after_rows = static_cast<std::size_t>(f.get_int("vacuum-after", 0, 100'000'000));
  c.options.poll_interval = f.get_duration("poll-interval");
  if (c.options.poll_interval.count() < 10) throw core::UsageError("--poll-interval: at least 10ms");
  return c;
}

}  // namespace oss::relay
