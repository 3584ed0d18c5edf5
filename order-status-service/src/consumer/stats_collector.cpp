#include "consumer/stats_collector.hpp"

#include <map>
#include <optional>
#include <thread>

#include "oss/core/logging.hpp"

namespace oss::consumer {

StatsCollector::StatsCollector(pg::ConnectOptions db, amqp::ConnectionOptions broker, Topology topology,
                               metrics::Registry& registry, std::chrono::milliseconds interval)
    : db_(std::move(db)),
      broker_(std::move(broker)),
      topology_(std::move(topology)),
      registry_(registry),
      interval_(interval),
      dead_letters_open_(registry.gauge("oss_dead_letters_open", "Dead letters not replayed yet (oss.dead_letters)")),
      dlq_messages_(registry.gauge("oss_dlq_messages", "Messages waiting in the dead-letter queue")),
      lag_messages_(registry.gauge("oss_consumer_lag_messages", "Messages waiting in the events queue (consumer lag)")),
      retry_messages_(registry.gauge("oss_retry_messages",
                                     "Messages in the old delay queues (unused since early events are parked; drains after an upgrade)")),
      early_parked_(registry.gauge("oss_early_parked", "Early events parked in oss.early_events, waiting for their predecessor")),
      early_parked_oldest_(registry.gauge("oss_early_parked_oldest_seconds",
                                          "Age of the oldest parked early event (0 when none)")),
      refresh_failures_(registry.counter("oss_stats_refresh_failures_total", "Failed refreshes of the query-based gauges")) {}

bool StatsCollector::refresh_once() {
  bool ok = true;
  try {
    auto conn = pg::connect(db_);
    pqxx::read_transaction tx(*conn);
    std::map<std::string, double> counts;
    for (const auto& row : tx.exec("SELECT status, count(*) FROM oss.orders GROUP BY status"))
      counts[row[0].as<std::string>()] = row[1].as<double>();
    for (const auto& s : statuses_seen_) counts.try_emplace(s, 0.0);  // a status that emptied reads 0
    for (const auto& [status, n] : counts) {
      registry_.gauge("oss_orders", "Orders by current status", {{"status", status}}).set(n);
      statuses_seen_.insert(status);
    }
    dead_letters_open_.set(
        tx.exec("SELECT count(*) FROM oss.dead_letters WHERE replayed_at IS NULL")[0][0].as<double>());
    const auto parked = tx.exec(
        "SELECT count(*), coalesce(extract(epoch from clock_timestamp() - min(parked_at)), 0) FROM oss.early_events");
    early_parked_.set(parked[0][0].as<double>());
    early_parked_oldest_.set(parked[0][1].as<double>());
  } catch (const std::exception& e) {
    ok = false;
    core::logger("stats")->warn("msg=\"database gauges not refreshed\" error={}", core::q(e.what()));
  }
  try {
    amqp::Connection conn(broker_);
    lag_messages_.set(conn.queue_message_count(topology_.events_queue));
    dlq_messages_.set(conn.queue_message_count(topology_.dlq));
    double retry = 0;
    for (std::size_t i = 0; i < topology_.retry_delays.size(); ++i)
      retry += conn.queue_message_count(topology_.retry_queue(i));
    retry_messages_.set(retry);
  } catch (const amqp::Error& e) {
    ok = false;
    core::logger("stats")->warn("msg=\"broker gauges not refreshed\" error={}", core::q(e.what()));
  }
  if (!ok) refresh_failures_.inc();
  return ok;
}

void StatsCollector::run(const std::atomic<bool>& stop) {
  while (!stop.load()) {
    refresh_once();
    const auto until = std::chrono::steady_clock::now() + interval_;
    while (!stop.load() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace oss::consumer
