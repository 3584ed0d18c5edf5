#include "consumer/event_consumer.hpp"

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "consumer/early_sweeper.hpp"
#include "oss/core/backoff.hpp"
#include "oss/core/logging.hpp"
#include "oss/pg/errors.hpp"

namespace oss::consumer {
namespace {

constexpr const char* kAttemptHeader = "x-oss-attempt";

int attempt_of(const amqp::Delivery& d) {
  for (const auto& [k, v] : d.headers)
    if (k == kAttemptHeader)
      if (const auto* n = std::get_if<std::int64_t>(&v)) return static_cast<int>(*n);
  return 0;
}

void interruptible_sleep(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (!stop.load() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

/// A copy of the delivery for the DLQ: same body and identity, plus why.
amqp::Message forward(const amqp::Delivery& d, const std::string& queue) {
  amqp::Message m;
  m.exchange = "";  // default exchange: routing key = queue name
  m.routing_key = queue;
  m.body = d.body;
  m.message_id = d.message_id;
  m.type = d.type;
  m.content_type = d.content_type.empty() ? "application/json" : d.content_type;
  m.persistent = true;
  m.timestamp = d.timestamp;
  for (const auto& h : d.headers)
    // Our own routing headers are set afresh, except the replay mark (a replayed event that
    // is dead-lettered again is still a replay).
    if ((h.first.rfind("x-oss-", 0) != 0 || h.first == "x-oss-replay-of") && h.first != "x-death")
      m.headers.push_back(h);
  // Where the event was first published (kept across a trip back from the early-event sweeper).
  std::string exchange = d.exchange, routing_key = d.routing_key;
  for (const auto& [k, v] : d.headers) {
    const auto* sv = std::get_if<std::string>(&v);
    if (sv != nullptr && k == "x-oss-original-exchange") exchange = *sv;
    if (sv != nullptr && k == "x-oss-original-routing-key") routing_key = *sv;
  }
  m.headers.emplace_back("x-oss-original-exchange", exchange);
  m.headers.emplace_back("x-oss-original-routing-key", routing_key);
  return m;
}

}  // namespace

struct EventConsumer::Worker {
  Worker(int i, pg::ConnectOptions db, const std::vector<std::chrono::milliseconds>& park_delays)
      : index(i), store(std::move(db)) {
    store.set_park_delays(park_delays);
  }
  int index;
  store::PgOrderStore store;
  bool connected = false;
  bool database_trouble = false;
};

EventConsumer::EventConsumer(ConsumerOptions options, pg::ConnectOptions db, const domain::Workflow& workflow,
                             ConsumerMetrics& metrics, AppliedHook on_applied)
    : options_(std::move(options)),
      db_(std::move(db)),
      workflow_(workflow),
      metrics_(metrics),
      on_applied_(std::move(on_applied)) {
  if (options_.workers < 1) throw std::invalid_argument("consumer workers must be at least 1");
  if (options_.early_retry_delays.empty()) throw std::invalid_argument("early_retry_delays must not be empty");
}

void EventConsumer::set_connected(Worker& w, bool on) {
  if (w.connected == on) return;
  w.connected = on;
  const int n = (connected_ += on ? 1 : -1);
  metrics_.broker_connected.set(n == options_.workers ? 1 : 0);
}

void EventConsumer::run(const std::atomic<bool>& stop) {
  std::vector<std::unique_ptr<Worker>> workers;
  workers.reserve(static_cast<std::size_t>(options_.workers));
  for (int i = 0; i < options_.workers; ++i) workers.push_back(std::make_unique<Worker>(i, db_, options_.early_retry_delays));
  std::vector<std::thread> threads;
  // Parked early events whose predecessor has not come: back through the queue when due.
  EarlySweeper sweeper(db_, options_.connection, options_.topology, metrics_, options_.sweep_interval,
                       options_.early_retry_delays, options_.max_early_retries);
  threads.emplace_back([&] { sweeper.run(stop); });
  for (int i = 1; i < options_.workers; ++i) threads.emplace_back([&, i] { worker_run(*workers[static_cast<std::size_t>(i)], stop); });
  worker_run(*workers[0], stop);
  for (auto& t : threads) t.join();
  core::logger("consumer")->info("msg=\"consumer stopped\" workers={}", options_.workers);
}

void EventConsumer::worker_run(Worker& w, const std::atomic<bool>& stop) {
  auto log = core::logger("consumer");
  core::Backoff backoff(options_.backoff_initial, options_.backoff_max);
  while (!stop.load()) {
    try {
      amqp::ConnectionOptions co = options_.connection;
      if (options_.workers > 1) co.connection_name += "-" + std::to_string(w.index);
      amqp::Connection conn(co);
      declare(conn, options_.topology);
      conn.enable_confirms();
      conn.set_prefetch(options_.prefetch);
      conn.consume(options_.topology.events_queue);
      set_connected(w, true);
      backoff.reset();
      log->info("msg=\"consuming\" queue={} worker={} prefetch={} batch_max={}", options_.topology.events_queue,
                w.index, options_.prefetch, options_.batch_max);
      consume_loop(w, conn, stop);
    } catch (const amqp::Error& e) {
      set_connected(w, false);
      metrics_.broker_errors.inc();
      const auto delay = backoff.next();
      log->warn("msg=\"broker unavailable; reconnecting\" worker={} error={} retry_in_ms={}", w.index, core::q(e.what()),
                delay.count());
      interruptible_sleep(delay, stop);
    }
  }
  set_connected(w, false);
}

std::optional<processing::BatchPlan> EventConsumer::apply_with_retry(
    Worker& w, const std::vector<processing::InboundEvent>& batch, const std::atomic<bool>& stop) {
  core::Backoff backoff(options_.backoff_initial, options_.backoff_max);
  while (!stop.load()) {
    try {
      auto plan = w.store.apply(workflow_, batch, options_.max_early_retries);
      if (w.database_trouble) {
        w.database_trouble = false;
        --database_trouble_;
        core::logger("consumer")->info("msg=\"database reachable again\" worker={}", w.index);
      }
      return plan;
    } catch (const std::exception& e) {
      // Database trouble is never a dead letter: the batch stays unacked and is retried whole
      // (nothing of it was committed).
      if (!w.database_trouble) {
        w.database_trouble = true;
        ++database_trouble_;
      }
      w.store.reset();
      metrics_.db_retries.inc();
      const auto delay = backoff.next();
      core::logger("consumer")->warn(
          "msg=\"database trouble; retrying batch\" worker={} transient={} error={} retry_in_ms={}", w.index,
          pg::is_transient(e), core::q(e.what()), delay.count());
      interruptible_sleep(delay, stop);
    }
  }
  return std::nullopt;
}

namespace {

processing::InboundEvent inbound_of(const amqp::Delivery& d) {
  processing::InboundEvent in;
  in.parsed = domain::parse_envelope(d.body);
  in.body = d.body;
  in.routing_key = d.routing_key;
  // Back from the early-event sweeper (or an old delay queue): the routing key it was published with.
  for (const auto& [k, v] : d.headers)
    if (k == "x-oss-original-routing-key")
      if (const auto* rk = std::get_if<std::string>(&v)) in.routing_key = *rk;
  in.message_id = d.message_id;
  in.attempt = attempt_of(d);
  in.replay =
      std::any_of(d.headers.begin(), d.headers.end(), [](const auto& h) { return h.first == "x-oss-replay-of"; });
  for (const auto& [k, v] : d.headers)
    if (k == "x-oss-parked-since")
      if (const auto* us = std::get_if<std::int64_t>(&v)) in.parked_since_us = *us;
  return in;
}

}  // namespace

void EventConsumer::consume_loop(Worker& w, amqp::Connection& conn, const std::atomic<bool>& stop) {
  using Clock = std::chrono::steady_clock;
  auto log = core::logger("consumer");
  std::vector<amqp::Delivery> deliveries;
  std::vector<processing::InboundEvent> batch;
  while (!stop.load()) {
    deliveries.clear();
    batch.clear();
    auto first = conn.next_delivery(std::chrono::milliseconds(200));
    if (!first) continue;
    deliveries.push_back(std::move(*first));
    const auto fill_until = Clock::now() + options_.batch_wait;
    while (deliveries.size() < options_.batch_max) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(fill_until - Clock::now());
      auto d = conn.next_delivery(std::max(left, std::chrono::milliseconds(0)));
      if (!d) break;
      deliveries.push_back(std::move(*d));
    }
    const auto t0 = Clock::now();
    if (log->should_log(spdlog::level::debug))
      for (const auto& d : deliveries)
        log->debug("msg=\"delivered\" worker={} message_id={} tag={} attempt={} redelivered={}", w.index,
                   core::q(d.message_id), d.delivery_tag, attempt_of(d), d.redelivered);
    batch.reserve(deliveries.size());
    for (const auto& d : deliveries) batch.push_back(inbound_of(d));

    auto plan = apply_with_retry(w, batch, stop);
    if (!plan) return;  // stopping: leave the batch unacked, it will be redelivered

    // Dead letters go to the DLQ with confirms before anything is acked. Early events were
    // parked in the batch's transaction (docs/adr/0004): acked like any decided event.
    std::uint64_t last_tag = 0;
    std::size_t published = 0;
    std::map<std::string, double> outcomes;
    const auto now = core::SystemClock().now();
    for (std::size_t i = 0; i < deliveries.size(); ++i) {
      const auto& r = plan->results[i];
      if (log->should_log(spdlog::level::debug))
        log->debug("msg=\"decided\" worker={} message_id={} tag={} outcome={} detail={}", w.index,
                   core::q(deliveries[i].message_id), deliveries[i].delivery_tag, domain::to_string(r.outcome),
                   core::q(r.detail));
      switch (r.outcome) {
        case domain::Outcome::applied:
          outcomes[r.ignored ? "ignored" : "applied"] += 1;
          break;
        case domain::Outcome::duplicate: outcomes["duplicate"] += 1; break;
        case domain::Outcome::stale: outcomes["stale"] += 1; break;
        case domain::Outcome::early: outcomes["early"] += 1; break;
        case domain::Outcome::dead_letter: {
          outcomes["dead_lettered"] += 1;
          const std::string reason(domain::to_string(r.reason.value_or(domain::DeadLetterReason::malformed)));
          metrics_.dead_letter(reason);
          auto m = forward(deliveries[i], options_.topology.dlq);
          m.headers.emplace_back("x-oss-reason", reason);
          m.headers.emplace_back("x-oss-error", r.detail);
          m.headers.emplace_back("x-oss-dead-lettered-at", core::format_rfc3339(now));
          last_tag = conn.publish(m, true);
          ++published;
          log->warn("msg=\"dead-lettered\" reason={} error={} routing_key={}", reason, core::q(r.detail),
                    core::q(deliveries[i].routing_key));
          break;
        }
      }
    }
    // Parked events this batch decided (loaded after its deliveries): applied, stale or
    // duplicates now; the rest stay parked. Counted in oss_events_total too (once "early" when
    // parked, then with their final outcome, as a trip through a delay queue used to be).
    for (std::size_t i = deliveries.size(); i < plan->results.size(); ++i) {
      const auto& r = plan->results[i];
      if (r.outcome == domain::Outcome::early) continue;
      const std::string o = r.outcome == domain::Outcome::applied ? (r.ignored ? "ignored" : "applied")
                                                                   : std::string(domain::to_string(r.outcome));
      metrics_.unparked(o);
      outcomes[o] += 1;
    }
    // End-to-end latency of every status applied here, parked events included (their wait is
    // part of it): the history rows are exactly those.
    for (const auto& h : plan->history)
      metrics_.end_to_end_seconds.observe(std::chrono::duration<double>(now - h.occurred_at).count());
    if (published > 0) {
      // This channel publishes nothing else, so every confirm read here belongs to this batch.
      const auto confirms = conn.wait_confirms(last_tag, options_.connection.io_timeout);
      if (!confirms.nacked.empty() || !confirms.returned.empty() || confirms.acked.size() < published) {
        // Not safely routed: do not ack; drop the connection so everything is redelivered.
        throw amqp::ConnectionError("dead-letter publishes were not confirmed; reconnecting");
      }
    }
    // Every outstanding tag up to the highest is in this batch: one multiple-ack covers it.
    conn.ack(deliveries.back().delivery_tag, /*multiple=*/true);
    for (const auto& [o, n] : outcomes) metrics_.outcome(o, n);
    if (!plan->to_park.empty()) metrics_.early_parked.inc(static_cast<double>(plan->to_park.size()));
    metrics_.batch_size.observe(static_cast<double>(deliveries.size()));
    metrics_.batch_seconds.observe(std::chrono::duration<double>(Clock::now() - t0).count());
    if (on_applied_ && !plan->history.empty()) on_applied_(plan->history);
  }
}

}  // namespace oss::consumer
