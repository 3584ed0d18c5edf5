#include "consumer/early_sweeper.hpp"

#include <thread>

#include "oss/core/backoff.hpp"
#include "oss/core/logging.hpp"
#include "oss/pg/arrays.hpp"
#include "oss/pg/errors.hpp"

namespace oss::consumer {

EarlySweeper::EarlySweeper(pg::ConnectOptions db, amqp::ConnectionOptions broker, Topology topology,
                           ConsumerMetrics& metrics, std::chrono::milliseconds interval, std::size_t batch_max)
    : db_(std::move(db)),
      broker_(std::move(broker)),
      topology_(std::move(topology)),
      metrics_(metrics),
      interval_(interval),
      batch_max_(batch_max) {
  broker_.connection_name += "-early-sweeper";
}

std::size_t EarlySweeper::sweep_once(pqxx::connection& db, amqp::Connection& broker) {
  pqxx::work tx(db);
  const auto rows = tx.exec_params(
      "SELECT event_id::text, body, routing_key, message_id, attempt, replay, "
      "       (extract(epoch from parked_at) * 1000000)::bigint FROM oss.early_events "
      "WHERE next_retry_at <= clock_timestamp() ORDER BY next_retry_at LIMIT $1 FOR UPDATE SKIP LOCKED",
      static_cast<std::int64_t>(batch_max_));
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
    std::size_t sent = 0;
    try {
      if (!db || !db->is_open()) db = pg::connect(db_);
      if (!broker) {
        broker = std::make_unique<amqp::Connection>(broker_);
        broker->enable_confirms();
      }
      sent = sweep_once(*db, *broker);
      backoff.reset();
      if (sent > 0) log->info("msg=\"parked early events sent back to the queue\" count={}", sent);
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
    if (sent < batch_max_) pause(interval_);  // a full pass: more may be due at once
  }
}

}  // namespace oss::consumer
