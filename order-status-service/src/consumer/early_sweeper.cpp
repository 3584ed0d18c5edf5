#include "consumer/early_sweeper.hpp"

#include <stdexcept>
#include <thread>

#include "oss/core/backoff.hpp"
#include "oss/core/logging.hpp"
#include "oss/pg/arrays.hpp"
#include "oss/pg/errors.hpp"

namespace oss::consumer {

EarlySweeper::EarlySweeper(pg::ConnectOptions db, amqp::ConnectionOptions broker, Topology topology,
                           ConsumerMetrics& metrics, std::chrono::milliseconds interval,
                           std::vector<std::chrono::milliseconds> retry_delays, int max_attempts, std::size_t batch_max)
    : db_(std::move(db)),
      broker_(std::move(broker)),
      topology_(std::move(topology)),
      metrics_(metrics),
      interval_(interval),
      retry_delays_(std::move(retry_delays)),
      max_attempts_(max_attempts),
      batch_max_(batch_max) {
  if (retry_delays_.empty()) throw std::invalid_argument("early-event sweeper: retry delays must not be empty");
  std::vector<std::int64_t> ms;
  for (const auto d : retry_delays_) ms.push_back(d.count());
  retry_delays_ms_ = pg::array_literal(ms);
  broker_.connection_name += "-early-sweeper";
}

namespace {
// A due row that only needs its retry counted: its order still has the version it was decided
// against (0: no order yet), and this is not its last retry. $1 = max attempts.
constexpr const char* kUnchanged =
    "(e.decided_version = coalesce(o.version, 0) AND e.attempt + 1 < $1)";
}  // namespace

void EarlySweeper::forget_decided_versions(pqxx::connection& db) {
  pqxx::nontransaction tx(db);
  tx.exec("UPDATE oss.early_events SET decided_version = NULL WHERE decided_version IS NOT NULL");
}

std::size_t EarlySweeper::retry_in_place(pqxx::connection& db) {
  // Retry n + 1 waits retry_delays[min(n + 1, size - 1)] (0-based), as its re-park after a trip
  // through the queue would (PgOrderStore::park_delay). A transition of the order committed
  // meanwhile has set the row's decided_version to NULL (sla::write_transition); the row lock
  // re-checks the condition on that newest row, so it is not retried in place.
  pqxx::work tx(db);
  const auto r = tx.exec_params(
      std::string("WITH due AS ("
                  "  SELECT e.event_id FROM oss.early_events e LEFT JOIN oss.orders o ON o.order_id = e.order_id "
                  "  WHERE e.next_retry_at <= clock_timestamp() AND ") +
          kUnchanged +
          "  ORDER BY e.next_retry_at LIMIT $2 FOR UPDATE OF e SKIP LOCKED) "
          "UPDATE oss.early_events e SET attempt = e.attempt + 1, "
          "  next_retry_at = clock_timestamp() + "
          "    ($3::bigint[])[least(e.attempt + 2, cardinality($3::bigint[]))] * interval '1 millisecond' "
          "FROM due WHERE e.event_id = due.event_id",
      max_attempts_, static_cast<std::int64_t>(batch_max_), retry_delays_ms_);
  tx.commit();
  const auto n = static_cast<std::size_t>(r.affected_rows());
  metrics_.early_retries_in_place.inc(static_cast<double>(n));
  return n;
}

std::size_t EarlySweeper::send_back(pqxx::connection& db, amqp::Connection& broker) {
  pqxx::work tx(db);
  const auto rows = tx.exec_params(
      std::string("SELECT e.event_id::text, e.body, e.routing_key, e.message_id, e.attempt, e.replay, "
                  "       (extract(epoch from e.parked_at) * 1000000)::bigint "
                  "FROM oss.early_events e LEFT JOIN oss.orders o ON o.order_id = e.order_id "
                  "WHERE e.next_retry_at <= clock_timestamp() AND NOT coalesce(") +
          kUnchanged +
          ", false) "
          "ORDER BY e.next_retry_at LIMIT $2 FOR UPDATE OF e SKIP LOCKED",
      max_attempts_, static_cast<std::int64_t>(batch_max_));
  if (rows.empty()) return 0;
  std::vector<std::string> ids;
  std::uint64_t last_tag = 0;
  for (const auto& row : rows) {
    amqp::Message m;
    // Straight into the service's own queue (default exchange), as the delay tiers did: other
    // subscribers of orders.events must not see the event twice.
    m.exchange = "";
    m.routing_key = topology_.events_queue;
    m.body = row[1].as<std::string>();
    m.message_id = row[3].as<std::string>();
    m.content_type = "application/json";
    m.persistent = true;
    m.headers.emplace_back("x-oss-attempt", static_cast<std::int64_t>(row[4].as<int>() + 1));
    m.headers.emplace_back("x-oss-original-exchange", topology_.events_exchange);
    m.headers.emplace_back("x-oss-original-routing-key", row[2].as<std::string>());
    if (row[5].as<bool>()) m.headers.emplace_back("x-oss-replay-of", row[0].as<std::string>());
    // Parked again when it comes back still early: it keeps its first arrival time.
    m.headers.emplace_back("x-oss-parked-since", row[6].as<std::int64_t>());
    last_tag = broker.publish(m, /*mandatory=*/true);
    ids.push_back(row[0].as<std::string>());
  }
  const auto confirms = broker.wait_confirms(last_tag, broker_.io_timeout);
  if (!confirms.nacked.empty() || !confirms.returned.empty() || confirms.acked.size() < ids.size())
    throw amqp::ConnectionError("parked early events were not all confirmed by the broker; kept for the next pass");
  tx.exec_params("DELETE FROM oss.early_events WHERE event_id = ANY($1::uuid[])", pg::array_literal(ids));
  tx.commit();
  metrics_.early_retries.inc(static_cast<double>(ids.size()));
  return ids.size();
}

EarlySweeper::Pass EarlySweeper::sweep_once(pqxx::connection& db, amqp::Connection& broker) {
  Pass p;
  p.in_place = retry_in_place(db);
  p.sent = send_back(db, broker);
  return p;
}

void EarlySweeper::run(const std::atomic<bool>& stop) {
  auto log = core::logger("early-sweeper");
  core::Backoff backoff(std::chrono::milliseconds(200), std::chrono::seconds(10));
  std::unique_ptr<pqxx::connection> db;
  std::unique_ptr<amqp::Connection> broker;
  auto pause = [&](std::chrono::milliseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (!stop.load() && std::chrono::steady_clock::now() < until) {
      if (broker) {
        try {
          broker->keep_alive();  // an idle sweeper must still answer heartbeats
        } catch (const amqp::Error&) {
          broker.reset();
        }
      }
      std::this_thread::sleep_for(std::min(d, std::chrono::milliseconds(50)));
    }
  };
  while (!stop.load()) {
    Pass pass;
    try {
      if (!db || !db->is_open()) db = pg::connect(db_);
      if (!broker) {
        broker = std::make_unique<amqp::Connection>(broker_);
        broker->enable_confirms();
      }
      pass = sweep_once(*db, *broker);
      backoff.reset();
      if (pass.sent > 0) log->info("msg=\"parked early events sent back to the queue\" count={}", pass.sent);
      if (pass.in_place > 0)
        log->debug("msg=\"parked early events retried in place (their orders unchanged)\" count={}", pass.in_place);
    } catch (const amqp::Error& e) {
      broker.reset();
      metrics_.sweep_failures.inc();
      const auto delay = backoff.next();
      log->warn("msg=\"broker trouble; sweep retried\" error={} retry_in_ms={}", core::q(e.what()), delay.count());
      pause(delay);
      continue;
    } catch (const std::exception& e) {
      db.reset();
      metrics_.sweep_failures.inc();
      const auto delay = backoff.next();
      log->warn("msg=\"database trouble; sweep retried\" transient={} error={} retry_in_ms={}", pg::is_transient(e),
                core::q(e.what()), delay.count());
      pause(delay);
      continue;
    }
    if (pass.sent < batch_max_ && pass.in_place < batch_max_) pause(interval_);  // a full pass: more may be due
  }
}

}  // namespace oss::consumer
