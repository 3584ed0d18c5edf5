#include "relay.hpp"

#include <deque>
#include <map>
#include <set>
#include <tuple>
#include <type_traits>
#include <thread>

#include "oss/core/logging.hpp"
#include "oss/core/time.hpp"
#include "oss/pg/errors.hpp"

namespace oss::relay {
namespace {

/// The broker could not take or confirm a batch; the loop backs off and retries. Never charged
/// to a row (failure_policy.hpp).
struct BrokerUnavailable : std::runtime_error {
  BrokerUnavailable(const std::string& what, std::string fault_kind)
      : std::runtime_error(what), kind(std::move(fault_kind)) {}
  std::string kind;  // connection | channel | confirm_timeout | nacked
};

/// Runs f and records how long it took in h (not when it throws: the error path is counted
/// elsewhere).
template <typename F>
auto timed(metrics::Histogram& h, F&& f) -> decltype(f()) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto observe = [&] { h.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()); };
  if constexpr (std::is_void_v<decltype(f())>) {
    f();
    observe();
  } else {
    auto r = f();
    observe();
    return r;
  }
}

}  // namespace

Relay::Relay(StoreFactory store_factory, Publisher& publisher, RelayMetrics& metrics, RelayOptions options)
    : store_factory_(std::move(store_factory)), publisher_(publisher), metrics_(metrics), options_(options) {}

OutboxStore& Relay::store() {
  if (!store_) {
    store_ = store_factory_();
    last_rebalance_ = {};
  }
  return *store_;
}

void Relay::wait_for_work(const std::atomic<bool>& stop) {
  // In slices of at most 100 ms, so that SIGTERM is seen at once whatever --poll-interval is
  // (with --poll-interval 60s a stopping relay waited for the rest of the minute).
  // The broker connection is kept alive meanwhile: a relay idle for longer than twice the
  // heartbeat used to be dropped by the broker ("missed heartbeats from client") and paid a
  // failed publish and a reconnect for the first event after a quiet spell.
  const auto until = std::chrono::steady_clock::now() + options_.poll_interval;
  while (!stop.load()) {
    const auto now = std::chrono::steady_clock::now();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - now);
    if (left.count() <= 0) return;
    if (now - kept_alive_at_ >= std::chrono::seconds(1)) {
      publisher_.keep_alive();
      kept_alive_at_ = now;
    }
    if (store().wait_for_commit(std::min<std::chrono::milliseconds>(left, std::chrono::milliseconds(100)))) return;
  }
}

void Relay::sleep_for(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (!stop.load() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(d, std::chrono::milliseconds(50)));
}

void Relay::run(const std::atomic<bool>& stop) {
  auto log = core::logger("relay");
  core::Backoff backoff(options_.backoff_initial, options_.backoff_max);
  log->info("msg=\"relay loop started\" batch_size={} max_attempts={}", options_.batch_size, options_.max_attempts);
  while (!stop.load()) {
    try {
      housekeeping(false);
      const std::size_t n = run_once();
      caught_up_ = n < options_.batch_size;
      if (!healthy_.load()) log->info("msg=\"database and broker reachable; publishing\"");
      healthy_ = true;
      backoff.reset();
      // Sleep (until a NOTIFY or the poll interval) only after a cycle that found nothing:
      // rows committed while the last cycle waited for its confirms are fetched at once instead
      // of a poll interval later. With `outbox.notify = off` this took a 10 ms wait out of
      // every cycle at 2,000 events/s (docs/performance.md). A cycle whose rows are all held
      // (not due, or waiting for a predecessor) handles nothing, so this never spins.
      if (n == 0 && !stop.load()) wait_for_work(stop);
    } catch (const BrokerUnavailable& e) {
      healthy_ = false;
      const auto delay = backoff.next();
      log->warn("msg=\"broker unavailable; retrying, no row charged\" kind={} error={} retry_in_ms={}", e.kind,
                core::q(e.what()), delay.count());
      sleep_for(delay, stop);
    } catch (const std::exception& e) {
      // Anything from the database side: drop the connection (and with it our partitions,
      // which other relays may take meanwhile) and come back with backoff.
      healthy_ = false;
      metrics_.error("database");
      store_.reset();
      const auto delay = backoff.next();
      log->warn("msg=\"database unavailable; retrying\" transient={} error={} retry_in_ms={}", pg::is_transient(e),
                core::q(e.what()), delay.count());
      sleep_for(delay, stop);
    }
  }
  log->info("msg=\"relay loop stopped\"");
}

std::size_t Relay::run_once() {
  auto& s = store();
  const auto now = std::chrono::steady_clock::now();
  if (now - last_rebalance_ >= options_.rebalance_interval) {
    const auto before = s.owned().size();
    const auto owned = timed(metrics_.rebalance_seconds, [&] { return s.rebalance(); });
    metrics_.partitions_owned.set(static_cast<double>(owned.size()));
    if (owned.size() != before)
      core::logger("relay")->info("msg=\"partitions rebalanced\" owned={} before={}", owned.size(), before);
    last_rebalance_ = now;
  }
  // Per-aggregate order: a row waiting for its retry holds back the later rows of its
  // aggregate for the whole cycle.
  std::set<std::pair<std::string, std::string>> held;
  std::set<std::tuple<std::string, std::string, std::int64_t>> sent_rows;  // (source, aggregate, sequence) this cycle
  struct Sent {
    std::vector<OutboxRow> rows;
    std::chrono::steady_clock::time_point at;
  };
  std::deque<Sent> in_flight;
  std::int64_t after = 0;
  bool more = true;
  std::size_t batches = 0, handled = 0;
  try {
    for (;;) {
      // Keep up to pipeline_depth batches published ahead of their confirms: the next batch is
      // fetched and sent while the broker confirms the previous ones.
      while (more && in_flight.size() < options_.pipeline_depth && batches < options_.max_batches_per_cycle) {
        const auto rows = timed(metrics_.fetch_seconds, [&] { return s.fetch(options_.batch_size, after); });
        more = rows.size() == options_.batch_size;
        if (rows.empty()) break;
        after = rows.back().position;
        std::vector<OutboxRow> ready;
        ready.reserve(rows.size());
        for (const auto& r : rows) {
          auto key = std::make_pair(r.source, r.aggregate_id);
          if (held.contains(key)) continue;
          // A fetch bounded by `after` cannot see a predecessor that committed late with a
          // smaller position: hold the aggregate unless its predecessor went out in this cycle.
          const bool predecessor_missing = r.predecessor_pending && !sent_rows.contains({r.source, r.aggregate_id, r.sequence - 1});
          if (!r.due || predecessor_missing) {
            held.insert(std::move(key));
            continue;
          }
          sent_rows.insert({r.source, r.aggregate_id, r.sequence});
          ready.push_back(r);
        }
        if (ready.empty()) continue;
        timed(metrics_.send_seconds, [&] { publisher_.send(ready); });
        in_flight.push_back({std::move(ready), std::chrono::steady_clock::now()});
        ++batches;
      }
      if (in_flight.empty()) break;
      auto out = publisher_.settle();
      auto sent = std::move(in_flight.front());
      in_flight.pop_front();
      if (out.isolate) {
        // The broker closed the channel over one of the batches in flight; the rest of them
        // were lost with it. Re-publish this batch row by row to find the refused row; the
        // other batches are fetched again next cycle.
        while (!in_flight.empty()) {
          publisher_.settle();
          metrics_.retried_after_fault.inc(static_cast<double>(in_flight.front().rows.size()));
          in_flight.pop_front();
        }
        core::logger("relay")->warn(
            "msg=\"broker closed the channel during a batch; isolating the refused row\" rows={} error={}",
            sent.rows.size(), core::q(out.error));
        metrics_.retried_after_fault.inc(static_cast<double>(sent.rows.size()));
        publish_alone(sent.rows);
        handled += sent.rows.size();
        break;
      }
      handle_outcome(sent.rows, std::move(out), sent.at);
      handled += sent.rows.size();
    }
  } catch (...) {
    // Database or broker trouble mid-cycle: nothing unconfirmed was marked; drop the batches
    // still in flight (they are fetched again) and let run() back off. Rethrown as is. Every
    // row's nack count starts again (failure_policy.hpp).
    nacks_.broker_fault();
    for (const auto& f : in_flight) metrics_.retried_after_fault.inc(static_cast<double>(f.rows.size()));
    publisher_.reset();
    publisher_.drop_pending();
    throw;
  }
  return handled;
}

std::size_t Relay::publish_alone(const std::vector<OutboxRow>& rows) {
  std::size_t done = 0;
  for (const auto& r : rows) {
    const std::vector<OutboxRow> one{r};
    const auto t0 = std::chrono::steady_clock::now();
    done += handle_outcome(one, publisher_.publish(one), t0);
  }
  return done;
}

std::size_t Relay::handle_outcome(const std::vector<OutboxRow>& rows, PublishOutcome out,
                                  std::chrono::steady_clock::time_point sent_at) {
  auto& s = store();
  const bool nacked_whole = nacks_.judge(out);
  if (!out.confirmed.empty()) {
    s.mark_published(out.confirmed);
    marked_since_vacuum_ += out.confirmed.size();
    const auto t1 = std::chrono::steady_clock::now();
    metrics_.confirm_latency.observe(std::chrono::duration<double>(t1 - sent_at).count());
    metrics_.batch_size.observe(static_cast<double>(out.confirmed.size()));
    const std::set<std::int64_t> ok(out.confirmed.begin(), out.confirmed.end());
    std::map<std::string, double> per_source;
    const auto wall = core::SystemClock().now();
    for (const auto& r : rows) {
      if (!ok.contains(r.position)) continue;
      per_source[r.source] += 1;
      metrics_.commit_to_confirm.observe(std::chrono::duration<double>(wall - r.occurred_at).count());
    }
    for (const auto& [source, n] : per_source) metrics_.published(source, n);
  }
  const auto now = std::chrono::steady_clock::now();
  if (last_broker_fault_ && !routed_again_at_ && !out.confirmed.empty()) routed_again_at_ = now;
  if (!out.failed.empty()) {
    // The settle window (failure_policy.hpp): after a broker fault a refusal says more about
    // the recovering broker than about the row; it is retried after retry_after without an
    // attempt. Encoding failures are the row's alone and always count.
    const bool settle = settling(now);
    std::size_t uncharged = 0;
    for (auto& f : out.failed) {
      metrics_.failure(f.kind);
      if (settle && f.kind != "encode") f.charged = false;
      if (!f.charged) {
        ++uncharged;
        continue;
      }
      core::logger("relay")->warn("msg=\"broker refused a row; will retry\" position={} kind={} error={}", f.position,
                                  f.kind, core::q(f.error));
    }
    if (uncharged > 0)
      core::logger("relay")->warn(
          "msg=\"broker refused rows; retrying them without charging an attempt\" rows={} settling={}", uncharged,
          settle);
    const auto parked = s.record_failures(out.failed, options_.max_attempts, options_.retry_after);
    if (parked > 0) {
      metrics_.parked.inc(static_cast<double>(parked));
      core::logger("relay")->error("msg=\"rows parked after {} attempts; an operator must act\" parked={}",
                                   options_.max_attempts, parked);
    }
  }
  if (out.connection_lost) {
    const auto kind = out.fault.empty() ? std::string("connection") : out.fault;
    note_broker_fault(kind);
    const auto unsettled = rows.size() - out.confirmed.size() - out.failed.size();
    metrics_.retried_after_fault.inc(static_cast<double>(unsettled));
    throw BrokerUnavailable(out.error, kind);
  }
  if (nacked_whole) {
    // The broker took none of the batch (typically while it recovers from a restart): back
    // off like any broker fault. The rows were recorded above without an attempt.
    note_broker_fault("nacked");
    throw BrokerUnavailable("the broker nacked every message of a batch of " + std::to_string(rows.size()), "nacked");
  }
  return out.confirmed.size();
}

bool Relay::settling(std::chrono::steady_clock::time_point now) const {
  if (!last_broker_fault_) return false;
  // Nothing routed since the fault: the broker is still recovering. A quorum queue's bindings
  // can take more than 20 s to come back after a SIGKILL on a loaded host, and the broker
  // returns every message as unroutable meanwhile (docs/reliability.md); a window counted
  // from the fault alone parked thousands of healthy rows.
  if (!routed_again_at_) return true;
  return now - *routed_again_at_ < options_.broker_settle;
}

void Relay::note_broker_fault(const std::string& kind) {
  last_broker_fault_ = std::chrono::steady_clock::now();
  routed_again_at_.reset();
  metrics_.error("broker");
  metrics_.broker_fault(kind);
}

void Relay::housekeeping(bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (force || now - last_stats_ >= options_.stats_interval) {
    timed(metrics_.housekeeping_seconds, [&] {
      store().prepare_archive();
      metrics_.backlog(store().backlog());
    });
    last_stats_ = now;
  }
  // The dead index entries of published rows cost every cycle's first fetch (it walks them from
  // the lowest position) until a vacuum removes them: 200,000 of them made that fetch 1.2 ms
  // instead of 0.06 ms, and at 2,000 events/s right after a backlog drain the relay fell
  // half a minute behind before autovacuum came (docs/performance.md). Only when caught up
  // (the last cycle found less than a batch): then the table holds few live rows and the vacuum
  // is short; during a drain it would scan the whole backlog's indexes again and again.
  if (options_.vacuum_after_rows > 0 && caught_up_ && marked_since_vacuum_ >= options_.vacuum_after_rows &&
      now - last_vacuum_ >= options_.vacuum_min_interval) {
    if (store().vacuum()) {  // started in the background; false while the last one still runs
      metrics_.vacuums.inc();
      marked_since_vacuum_ = 0;
      last_vacuum_ = now;
    }
  }
  if (force || now - last_purge_ >= options_.purge_interval) {
    last_purge_ = now;
    const auto n = timed(metrics_.housekeeping_seconds, [&] {
      return store().purge_published(options_.retention, 5000, std::chrono::milliseconds(2000));
    });
    if (n > 0) {
      metrics_.purged.inc(static_cast<double>(n));
      core::logger("relay")->info("msg=\"purged published rows past retention\" rows={}", n);
    }
  }
}

}  // namespace oss::relay
