#include "consumer/event_consumer.hpp"

#include <algorithm>
#include <thread>

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

/// A copy of the delivery for the DLQ or a delay queue: same body and identity, plus why.
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
    // Our own routing headers are set afresh, except the replay mark, which must survive a
    // trip through a delay queue (an early replayed event is still a replay when it returns).
    if ((h.first.rfind("x-oss-", 0) != 0 || h.first == "x-oss-replay-of") && h.first != "x-death")
      m.headers.push_back(h);
  m.headers.emplace_back("x-oss-original-exchange", d.exchange);
  m.headers.emplace_back("x-oss-original-routing-key", d.routing_key);
  return m;
}

}  // namespace

EventConsumer::EventConsumer(ConsumerOptions options, pg::ConnectOptions db, const domain::Workflow& workflow,
                             ConsumerMetrics& metrics, AppliedHook on_applied)
    : options_(std::move(options)),
      store_(std::move(db)),
      workflow_(workflow),
      metrics_(metrics),
      on_applied_(std::move(on_applied)) {}

void EventConsumer::run(const std::atomic<bool>& stop) {
  auto log = core::logger("consumer");
  core::Backoff backoff(options_.backoff_initial, options_.backoff_max);
  while (!stop.load()) {
    try {
      amqp::Connection conn(options_.connection);
      declare(conn, options_.topology);
      conn.enable_confirms();
      conn.set_prefetch(options_.prefetch);
      conn.consume(options_.topology.events_queue);
      connected_ = true;
      metrics_.broker_connected.set(1);
      backoff.reset();
      log->info("msg=\"consuming\" queue={} prefetch={} batch_max={}", options_.topology.events_queue,
                options_.prefetch, options_.batch_max);
      consume_loop(conn, stop);
    } catch (const amqp::Error& e) {
      connected_ = false;
      metrics_.broker_connected.set(0);
      metrics_.broker_errors.inc();
      const auto delay = backoff.next();
      log->warn("msg=\"broker unavailable; reconnecting\" error={} retry_in_ms={}", core::q(e.what()), delay.count());
      interruptible_sleep(delay, stop);
    }
  }
  connected_ = false;
  metrics_.broker_connected.set(0);
  log->info("msg=\"consumer stopped\"");
}

std::optional<processing::BatchPlan> EventConsumer::apply_with_retry(
    const std::vector<processing::InboundEvent>& batch, const std::atomic<bool>& stop) {
  core::Backoff backoff(options_.backoff_initial, options_.backoff_max);
  while (!stop.load()) {
    try {
      auto plan = store_.apply(workflow_, batch, options_.max_early_retries);
      if (!database_ok_.exchange(true)) core::logger("consumer")->info("msg=\"database reachable again\"");
      return plan;
    } catch (const std::exception& e) {
      // Database trouble is never a dead letter: the batch stays unacked and is retried whole
      // (nothing of it was committed).
      database_ok_ = false;
      store_.reset();
      metrics_.db_retries.inc();
      const auto delay = backoff.next();
      core::logger("consumer")->warn("msg=\"database trouble; retrying batch\" transient={} error={} retry_in_ms={}",
                                     pg::is_transient(e), core::q(e.what()), delay.count());
      interruptible_sleep(delay, stop);
    }
  }
  return std::nullopt;
}

void EventConsumer::consume_loop(amqp::Connection& conn, const std::atomic<bool>& stop) {
  auto log = core::logger("consumer");
  std::vector<amqp::Delivery> deliveries;
  std::vector<processing::InboundEvent> batch;
  while (!stop.load()) {
    deliveries.clear();
    batch.clear();
    auto first = conn.next_delivery(std::chrono::milliseconds(200));
    if (!first) continue;
    deliveries.push_back(std::move(*first));
    const auto fill_until = std::chrono::steady_clock::now() + options_.batch_wait;
    while (deliveries.size() < options_.batch_max) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(fill_until - std::chrono::steady_clock::now());
      auto d = conn.next_delivery(std::max(left, std::chrono::milliseconds(0)));
      if (!d) break;
      deliveries.push_back(std::move(*d));
    }
    const auto t0 = std::chrono::steady_clock::now();
    batch.reserve(deliveries.size());
    for (const auto& d : deliveries) {
      processing::InboundEvent in;
      in.parsed = domain::parse_envelope(d.body);
      in.body = d.body;
      in.routing_key = d.routing_key;
      in.message_id = d.message_id;
      in.attempt = attempt_of(d);
      in.replay = std::any_of(d.headers.begin(), d.headers.end(),
                              [](const auto& h) { return h.first == "x-oss-replay-of"; });
      batch.push_back(std::move(in));
    }
    auto plan = apply_with_retry(batch, stop);
    if (!plan) return;  // stopping: leave the batch unacked, it will be redelivered

    // Route what needs routing, with confirms, before acking anything.
    std::uint64_t last_tag = 0;
    std::size_t published = 0;
    std::map<std::string, double> outcomes;
    const auto now = core::SystemClock().now();
    for (std::size_t i = 0; i < deliveries.size(); ++i) {
      const auto& r = plan->results[i];
      switch (r.outcome) {
        case domain::Outcome::applied:
          outcomes[r.ignored ? "ignored" : "applied"] += 1;
          if (!r.ignored)
            if (const auto* env = std::get_if<domain::Envelope>(&batch[i].parsed))
              metrics_.end_to_end_seconds.observe(std::chrono::duration<double>(now - env->occurred_at).count());
          break;
        case domain::Outcome::duplicate: outcomes["duplicate"] += 1; break;
        case domain::Outcome::stale: outcomes["stale"] += 1; break;
        case domain::Outcome::early: {
          outcomes["early"] += 1;
          auto m = forward(deliveries[i], options_.topology.retry_queue_for_attempt(batch[i].attempt));
          m.headers.emplace_back(kAttemptHeader, static_cast<std::int64_t>(batch[i].attempt + 1));
          last_tag = conn.publish(m, true);
          ++published;
          break;
        }
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
    if (published > 0) {
      // This channel publishes nothing else, so every confirm read here belongs to this batch.
      const auto confirms = conn.wait_confirms(last_tag, options_.connection.io_timeout);
      if (!confirms.nacked.empty() || !confirms.returned.empty() || confirms.acked.size() < published) {
        // Not safely routed: do not ack; drop the connection so everything is redelivered.
        throw amqp::ConnectionError("delay/dead-letter publishes were not confirmed; reconnecting");
      }
    }
    conn.ack(deliveries.back().delivery_tag, /*multiple=*/true);
    for (const auto& [o, n] : outcomes) metrics_.outcome(o, n);
    metrics_.batch_size.observe(static_cast<double>(deliveries.size()));
    metrics_.batch_seconds.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (on_applied_ && !plan->history.empty()) on_applied_(plan->history);
  }
}

}  // namespace oss::consumer
