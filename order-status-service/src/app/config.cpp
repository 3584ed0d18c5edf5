#include "app/config.hpp"

#include <charconv>

#include "oss/core/duration.hpp"
#include "oss/core/url.hpp"

namespace oss::app {
namespace {

core::FlagSpec log_flag() { return {"log-level", "OSS_LOG_LEVEL", "trace, debug, info, warn, error", "info"}; }

}  // namespace

std::vector<core::FlagSpec> migrate_flags() {
  return {{"db", "OSS_DB_URL", "service database (libpq URI)", std::nullopt, true, false, true}, log_flag()};
}

std::vector<core::FlagSpec> run_flags() {
  return {
      {"db", "OSS_DB_URL", "service database (libpq URI)", std::nullopt, true, false, true},
      {"amqp", "OSS_AMQP_URL", "broker, amqp://user:pass@host:port/vhost", std::nullopt, true, false, true},
      {"http", "OSS_HTTP_LISTEN", "host:port of the HTTP API", "127.0.0.1:8080"},
      {"workflow", "OSS_WORKFLOW_FILE", "workflow JSON file (default: the shipped workflow)"},
      {"tokens", "OSS_TOKENS_FILE", "API tokens file: JSON [{\"name\", \"role\": viewer|operator, \"sha256\"}] "
                                    "(without it: loopback only, every caller a viewer)"},
      {"http-read-timeout", "OSS_HTTP_READ_TIMEOUT", "a request must arrive completely within this (else 408)", "10s"},
      {"exchange", "OSS_EVENTS_EXCHANGE", "exchange the relays publish to", "orders.events"},
      {"queue", "OSS_EVENTS_QUEUE", "queue the service consumes", "order-status-service.events"},
      {"dlq", "OSS_DLQ", "dead-letter queue", "order-status-service.dlq"},
      {"notifications-exchange", "OSS_NOTIFICATIONS_EXCHANGE", "exchange the service emits to", "orders.notifications"},
      {"notifications-tail", "OSS_NOTIFICATIONS_TAIL", "quorum queue bound to every notification that keeps the latest ones for inspection (and makes them routable before any subscriber exists); one per deployment sharing a broker", "order-status-service.notifications"},
      {"notifications-tail-max", "OSS_NOTIFICATIONS_TAIL_MAX", "notifications the tail queue keeps, the oldest dropped (RabbitMQ refuses a different value for an existing queue: delete it first)", "100000"},
      {"batch-size", "OSS_BATCH_SIZE", "messages per database transaction", "500"},
      {"prefetch", "OSS_PREFETCH", "unacked messages in flight per consumer thread", "1000"},
      {"early-retries", "OSS_EARLY_RETRIES", "retries of a parked early event (see --early-retry-delays) before it is dead-lettered; counted in place while its order is unchanged, through the queue otherwise and for the last one", "8"},
      {"early-retry-delays", "OSS_EARLY_RETRY_DELAYS", "waits of a parked early event before each retry, comma-separated (the last one repeats); each 100ms..1h", "1s,5s,30s,120s"},
      {"early-hold", "OSS_EARLY_HOLD", "deprecated, no effect: early events are parked in the database (docs/adr/0004); accepted so that existing scripts keep working", "1s"},
      {"consumers", "OSS_CONSUMERS", "consumer threads, each with its own broker connection (and --prefetch) and database connection", "4"},
      {"relay-notifications", "OSS_RELAY_NOTIFICATIONS", "publish the service's own outbox to the notifications exchange (true/false)", "true"},
      {"scan-interval", "OSS_SCAN_INTERVAL", "period of the in-service SLA/escalation scanner (0s: off)", "30s"},
      log_flag(),
  };
}

ServiceConfig parse_run_config(const core::FlagValues& f) {
  ServiceConfig c;
  c.db_url = f.get("db");
  core::require_pg_url(c.db_url, "--db");
  c.amqp_url = f.get("amqp");
  core::require_amqp_url(c.amqp_url, "--amqp");
  c.http_listen = f.get("http");
  c.workflow_file = f.get_optional("workflow");
  c.tokens_file = f.get_optional("tokens");
  try {
    const auto t = core::parse_duration(f.get("http-read-timeout"));
    c.http_read_timeout = std::chrono::duration_cast<std::chrono::seconds>(t);
    if (t < std::chrono::seconds(1) || t > std::chrono::seconds(600) || t % std::chrono::seconds(1) != std::chrono::milliseconds(0))
      throw core::DurationError("must be whole seconds from 1s to 600s");
  } catch (const core::DurationError& e) {
    throw core::UsageError("--http-read-timeout: " + std::string(e.what()));
  }
  c.log_level = f.get("log-level");
  c.consumer.connection.url = c.amqp_url;
  c.consumer.connection.connection_name = "order-status-service";
  c.consumer.topology.events_exchange = f.get("exchange");
  c.consumer.topology.events_queue = f.get("queue");
  c.consumer.topology.dlq = f.get("dlq");
  c.consumer.topology.notifications_exchange = f.get("notifications-exchange");
  c.consumer.topology.notifications_tail = f.get("notifications-tail");
  c.consumer.topology.notifications_tail_max = f.get_int("notifications-tail-max", 1, 100'000'000);
  c.consumer.batch_max = static_cast<std::size_t>(f.get_int("batch-size", 1, 5000));
  c.consumer.prefetch = static_cast<std::uint16_t>(f.get_int("prefetch", 1, 65535));
  c.consumer.max_early_retries = static_cast<int>(f.get_int("early-retries", 0, 100));
  {
    const std::string list = f.get("early-retry-delays");
    c.consumer.early_retry_delays.clear();
    std::size_t begin = 0;
    while (begin <= list.size()) {
      const auto end = std::min(list.find(',', begin), list.size());
      const std::string item = list.substr(begin, end - begin);
      try {
        const auto d = core::parse_duration(item);
        if (d < std::chrono::milliseconds(100) || d > std::chrono::hours(1))
          throw core::DurationError("each delay must be from 100ms to 1h");
        c.consumer.early_retry_delays.push_back(d);
      } catch (const std::exception& e) {
        throw core::UsageError("--early-retry-delays: '" + item + "': " + e.what());
      }
      if (c.consumer.early_retry_delays.size() > 20) throw core::UsageError("--early-retry-delays: at most 20 delays");
      begin = end + 1;
    }
  }
  // Deprecated (the in-process hold is gone): still validated, so that a typo is not hidden.
  if (f.get_duration("early-hold") > std::chrono::seconds(60)) throw core::UsageError("--early-hold: at most 60s");
  c.early_hold_deprecated = f.get("early-hold") != "1s";
  c.consumer.workers = static_cast<int>(f.get_int("consumers", 1, 32));
  const std::string rn = f.get("relay-notifications");
  if (rn != "true" && rn != "false") throw core::UsageError("--relay-notifications: expected true or false, got '" + rn + "'");
  c.relay_notifications = rn == "true";
  try {
    c.scan_interval = core::parse_duration(f.get("scan-interval"));
  } catch (const std::exception& e) {
    throw core::UsageError(std::string("--scan-interval: ") + e.what());
  }
  for (const auto* name : {"exchange", "queue", "dlq", "notifications-exchange", "notifications-tail"})
    if (f.get(name).empty()) throw core::UsageError(std::string("--") + name + ": must not be empty");
  return c;
}

}  // namespace oss::app
