#include "consumer/event_consumer.hpp"

#include <algorithm>
#include <limits>
#include <set>
#include <stdexcept>
#include <thread>

#include "consumer/held_events.hpp"
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

struct EventConsumer::Worker {
  Worker(int i, pg::ConnectOptions db) : index(i), store(std::move(db)) {}
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
      on_applied_(std::move(on_applied)),
      // No held event is older than early_hold: touches older than that concern none.
      touched_(options_.early_hold + std::chrono::seconds(1)) {
  if (options_.workers < 1) throw std::invalid_argument("consumer workers must be at least 1");
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
  for (int i = 0; i < options_.workers; ++i) workers.push_back(std::make_unique<Worker>(i, db_));
  std::vector<std::thread> threads;
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
      log->info("msg=\"consuming\" queue={} worker={} prefetch={} batch_max={} early_hold_ms={}",
                options_.topology.events_queue, w.index, options_.prefetch, options_.batch_max,
                options_.early_hold.count());
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

/// The order an inbound event belongs to ("" when its body did not parse).
std::string order_of(const processing::InboundEvent& in) {
  const auto* env = std::get_if<domain::Envelope>(&in.parsed);
  return env ? env->aggregate_id : std::string();
}

processing::InboundEvent inbound_of(const amqp::Delivery& d) {
  processing::InboundEvent in;
  in.parsed = domain::parse_envelope(d.body);
  in.body = d.body;
  in.routing_key = d.routing_key;
  in.message_id = d.message_id;
  in.attempt = attempt_of(d);
  in.replay =
      std::any_of(d.headers.begin(), d.headers.end(), [](const auto& h) { return h.first == "x-oss-replay-of"; });
  return in;
}

}  // namespace

void EventConsumer::consume_loop(Worker& w, amqp::Connection& conn, const std::atomic<bool>& stop) {
  using Clock = std::chrono::steady_clock;
  auto log = core::logger("consumer");
  // Early events held back (unacked) for another decision with the next batches; their
  // delivery tags stay outstanding on this channel, so acks below never cover them.
  struct Held {
    amqp::Delivery delivery;
    processing::InboundEvent event;
    std::string order_id;
    HeldTiming timing;
  };
  std::vector<Held> held;
  const std::size_t held_max = std::min<std::size_t>(options_.batch_max, std::max<std::size_t>(1, options_.prefetch / 2));
  // With events held, the worker looks this often whether one of them is due (held_events.hpp);
  // one that nothing concerns is decided again after `held_recheck` (another instance may have
  // applied its predecessor).
  const auto held_poll = std::chrono::milliseconds(50);
  const auto held_recheck = std::chrono::milliseconds(250);

  std::vector<amqp::Delivery> deliveries;
  std::vector<processing::InboundEvent> batch;
  std::vector<Clock::time_point> held_since;  // per batch item: first held, or max() for fresh ones
  std::set<std::string> fresh_orders;
  int held_reported = 0;  // what this loop added to held_total_
  // Leaving (stop, or a broker error: held events go back to the queue unacked) takes this
  // worker's share of held_total_ with it.
  struct Unreport {
    std::atomic<int>& total;
    int& mine;
    ~Unreport() { total -= mine; }
  } unreport{held_total_, held_reported};
  while (!stop.load()) {
    deliveries.clear();
    batch.clear();
    held_since.clear();
    fresh_orders.clear();
    auto first = conn.next_delivery(held.empty() ? std::chrono::milliseconds(200) : held_poll);
    if (!first && held.empty()) continue;
    if (first) {
      deliveries.push_back(std::move(*first));
      const auto fill_until = Clock::now() + options_.batch_wait;
      // Fresh deliveries always get a whole batch: held events no longer take their room.
      while (deliveries.size() < options_.batch_max) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(fill_until - Clock::now());
        auto d = conn.next_delivery(std::max(left, std::chrono::milliseconds(0)));
        if (!d) break;
        deliveries.push_back(std::move(*d));
      }
    }
    const auto t0 = Clock::now();
    if (log->should_log(spdlog::level::debug))
      for (const auto& d : deliveries)
        log->debug("msg=\"delivered\" worker={} message_id={} tag={} attempt={} redelivered={}", w.index,
                   core::q(d.message_id), d.delivery_tag, attempt_of(d), d.redelivered);
    batch.reserve(deliveries.size() + held.size());
    for (const auto& d : deliveries) {
      batch.push_back(inbound_of(d));
      held_since.push_back(Clock::time_point::max());
      if (auto order = order_of(batch.back()); !order.empty()) fresh_orders.insert(std::move(order));
    }
    // Held events that are due go last: a predecessor among the fresh deliveries is then
    // decided first (plan_batch also decides early events again after the rest of the batch).
    // The others stay held, untouched (and unacked).
    std::vector<Held> aside;
    for (auto& h : held) {
      if (!held_is_due(h.order_id, h.timing, fresh_orders, touched_, t0, held_recheck, options_.early_hold)) {
        aside.push_back(std::move(h));
        continue;
      }
      deliveries.push_back(std::move(h.delivery));
      batch.push_back(std::move(h.event));
      held_since.push_back(h.timing.since);
    }
    held = std::move(aside);
    if (batch.empty()) continue;  // only held events, none due yet

    auto plan = apply_with_retry(w, batch, stop);
    if (!plan) return;  // stopping: leave the batch unacked, it will be redelivered

    // Route what needs routing, with confirms, before acking anything.
    std::uint64_t last_tag = 0;
    std::size_t published = 0;
    std::map<std::string, double> outcomes;
    std::vector<bool> keep(deliveries.size(), false);
    const auto now = core::SystemClock().now();
    const auto steady_now = Clock::now();
    std::size_t newly_held = 0;
    for (std::size_t i = 0; i < deliveries.size(); ++i) {
      const auto& r = plan->results[i];
      if (log->should_log(spdlog::level::debug))
        log->debug("msg=\"decided\" worker={} message_id={} tag={} outcome={}", w.index,
                   core::q(deliveries[i].message_id), deliveries[i].delivery_tag, domain::to_string(r.outcome));
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
          const bool fresh = held_since[i] == Clock::time_point::max();
          const auto since = fresh ? steady_now : held_since[i];
          if (options_.early_hold.count() > 0 && steady_now - since < options_.early_hold && held.size() < held_max) {
            keep[i] = true;
            if (fresh) ++newly_held;
            if (fresh && log->should_log(spdlog::level::debug))
              log->debug("msg=\"early event held\" worker={} message_id={} tag={} detail={}", w.index,
                         core::q(deliveries[i].message_id), deliveries[i].delivery_tag, core::q(r.detail));
            std::string order_id = order_of(batch[i]);
            held.push_back({std::move(deliveries[i]), std::move(batch[i]), std::move(order_id), {since, t0}});
            break;
          }
          outcomes["early"] += 1;
          auto m = forward(deliveries[i], options_.topology.retry_queue_for_attempt(batch[i].attempt));
          if (log->should_log(spdlog::level::debug))
            log->debug("msg=\"early event delayed\" worker={} message_id={} attempt={} queue={} detail={}", w.index,
                       core::q(deliveries[i].message_id), batch[i].attempt + 1, m.routing_key, core::q(r.detail));
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
    // Ack everything decided. Without held events one multiple-ack covers the batch (every
    // outstanding tag up to its highest is in it); with some, one multiple-ack covers the
    // decided ones below the lowest held tag and the rest are acked one by one.
    std::uint64_t lowest_held = std::numeric_limits<std::uint64_t>::max();
    for (const auto& h : held) lowest_held = std::min(lowest_held, h.delivery.delivery_tag);
    std::uint64_t below = 0;
    std::vector<std::uint64_t> above;
    for (std::size_t i = 0; i < deliveries.size(); ++i) {
      if (keep[i]) continue;
      const auto tag = deliveries[i].delivery_tag;
      if (tag < lowest_held) below = std::max(below, tag);
      else above.push_back(tag);
    }
    if (below > 0) conn.ack(below, /*multiple=*/true);
    for (const auto tag : above) conn.ack(tag, /*multiple=*/false);
    // Orders whose state or sequences this batch may have moved: events held for them (by any
    // worker of this process) are due again. Only worth collecting while some worker holds
    // events (the common case holds none); a hold that begins meanwhile still gets its
    // recheck, only later.
    if (held_total_.load() > 0) {
      std::vector<std::string> decided_orders;
      for (std::size_t i = 0; i < deliveries.size(); ++i)
        if (!keep[i] && plan->results[i].outcome != domain::Outcome::early)
          if (auto order = order_of(batch[i]); !order.empty()) decided_orders.push_back(std::move(order));
      if (!decided_orders.empty()) touched_.touch(decided_orders, Clock::now());
    }
    // This worker's share of held_total_.
    held_total_ += static_cast<int>(held.size()) - held_reported;
    held_reported = static_cast<int>(held.size());
    for (const auto& [o, n] : outcomes) metrics_.outcome(o, n);
    if (newly_held > 0) metrics_.early_held.inc(static_cast<double>(newly_held));
    metrics_.batch_size.observe(static_cast<double>(deliveries.size()));
    metrics_.batch_seconds.observe(std::chrono::duration<double>(Clock::now() - t0).count());
    if (on_applied_ && !plan->history.empty()) on_applied_(plan->history);
  }
}

}  // namespace oss::consumer
