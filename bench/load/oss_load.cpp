// oss-load: the load generator of the reliability scenarios (docs/reliability.md).
//
// Plays the two producers (CRM and MES databases, each with an outbox): N connections per
// producer call outbox.emit at a target rate, open loop (every event has a scheduled instant;
// a slow pipeline does not slow the producers down). Orders walk the shipped workflow with the
// right source per transition:
//   crm SUBMITTED, mes PRICE_CALCULATED, crm PRICE_CONFIRMED, mes MANUFACTURING_STARTED,
//   mes SHIPPED, crm DELIVERED
// `--active-orders A` orders walk at once: event k belongs to step (k / A) % 6 of order
// (k / 6A) * A + k % A, so one order's consecutive steps are A/rate seconds apart.
// Phases (`--phase RATE:DURATION`, repeatable) set the rate over time; `--burst N@OFFSET`
// commits N order creations at once (an import) at that offset, in transactions of
// `--burst-tx` events. A failed emit (database down) is retried until it commits: a producer
// redoes its business transaction, and the order's next step waits for it (OrderProgress), as
// a real producer's next business step would.
//
// After the load it waits for the service to decide every event in the outboxes (drain) and
// reports, as one JSON line on stdout: events emitted, achieved rate, end-to-end latency
// (outbox occurred_at -> oss.status_history applied_at) p50/p99/max, time to drain after the
// load stopped, decided throughput. Progress lines go to stderr.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cmath>
#include <iostream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "oss/core/cli.hpp"
#include "oss/core/duration.hpp"
#include "oss/core/url.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using oss::core::UsageError;

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

struct Phase {
  double rate = 0;  // events per second
  std::chrono::milliseconds duration{};
};

struct Config {
  std::string crm, mes, service, prefix;
  std::vector<Phase> phases;
  long connections = 4;
  long active_orders = 0;
  long burst = 0;
  std::chrono::milliseconds burst_at{0};
  long burst_tx = 10'000;
  std::chrono::milliseconds drain_timeout{600'000};
};

struct StepDef {
  int source;  // 0 crm, 1 mes
  const char* status;
};
constexpr StepDef kSteps[] = {{0, "SUBMITTED"},           {1, "PRICE_CALCULATED"}, {0, "PRICE_CONFIRMED"},
                              {1, "MANUFACTURING_STARTED"}, {1, "SHIPPED"},          {0, "DELIVERED"}};
constexpr long kStepCount = 6;
constexpr const char* kSourceName[] = {"crm", "mes"};

void say(const std::string& msg) {
  const auto now = std::chrono::system_clock::now();
  std::cerr << fmt::format("oss-load: t={:.3f} {}\n",
                           std::chrono::duration<double>(now.time_since_epoch()).count(), msg);
}

/// One emit slot k → (order number, step number).
struct Slot {
  long order;
  int step;
};
Slot slot(const Config& c, long k) {
  const long a = c.active_orders;
  const long window = k / (a * kStepCount);
  const long j = k % (a * kStepCount);
  return {window * a + j % a, static_cast<int>(j / a)};
}
std::string order_id(const Config& c, long order) { return fmt::format("{}-{}", c.prefix, order); }

struct Schedule {
  std::vector<double> phase_start_s;  // seconds from start
  std::vector<long> phase_first_slot;
  long total_slots = 0;
  double total_s = 0;
};

Schedule plan(const Config& c) {
  Schedule s;
  double t = 0;
  long k = 0;
  for (const auto& p : c.phases) {
    s.phase_start_s.push_back(t);
    s.phase_first_slot.push_back(k);
    const double secs = std::chrono::duration<double>(p.duration).count();
    k += static_cast<long>(std::llround(p.rate * secs));
    t += secs;
  }
  s.total_slots = k;
  s.total_s = t;
  return s;
}

/// Seconds after start at which slot k is due.
double due_s(const Config& c, const Schedule& s, long k) {
  std::size_t i = 0;
  while (i + 1 < c.phases.size() && k >= s.phase_first_slot[i + 1]) ++i;
  return s.phase_start_s[i] + static_cast<double>(k - s.phase_first_slot[i]) / c.phases[i].rate;
}

std::unique_ptr<pqxx::connection> connect_retrying(const std::string& url, Clock::time_point give_up) {
  for (;;) {
    try {
      auto conn = std::make_unique<pqxx::connection>(url);
      conn->prepare("emit",
                    "SELECT outbox.emit(source => $1, aggregate_type => 'order', aggregate_id => $2, "
                    "event_type => 'order.status_changed', payload => $3::jsonb)");
      return conn;
    } catch (const pqxx::broken_connection&) {
      if (Clock::now() > give_up || g_stop) throw;
      std::this_thread::sleep_for(500ms);
    }
  }
}

struct Counters {
  std::atomic<long> emitted{0}, retries{0}, burst_emitted{0}, gave_up{0}, waited_for_predecessor{0};
  std::mutex lag_mu;
  std::vector<double> lag_ms;  // commit - scheduled instant
};

/// Per order: how many of its steps have committed (kAbandoned once a step gave up).
///
/// A real producer emits an order's changes in business order: the MES does not report
/// MANUFACTURING_STARTED before its PRICE_CALCULATED transaction committed. With several
/// producer connections, a step whose transaction is being retried (database restarting)
/// could otherwise be overtaken by the order's next step on another connection, which would
/// then take the earlier per-source sequence number: the order's history would be emitted out
/// of order and the service would rightly hold it forever as "early" (found in the kill-pg
/// scenario, docs/reliability.md). So a step waits until its predecessor has committed.
/// Slots are taken in increasing order and a step only waits for a lower slot, so no cycle.
class OrderProgress {
 public:
  static constexpr int kAbandoned = -1;
  explicit OrderProgress(long orders) : steps_(static_cast<std::size_t>(orders)) {}
  /// Waits until `step`'s predecessor committed; false if it was abandoned or we are stopping.
  bool wait_for_predecessor(long order, int step, Counters& n) const {
    const auto& done = steps_.at(static_cast<std::size_t>(order));
    bool waited = false;
    for (;;) {
      const int d = done.load();
      if (d == kAbandoned || g_stop) return false;
      if (d >= step) break;
      waited = true;
      std::this_thread::sleep_for(1ms);
    }
    if (waited) n.waited_for_predecessor.fetch_add(1);
    return true;
  }
  void committed(long order, int step) { steps_.at(static_cast<std::size_t>(order)).store(step + 1); }
  void abandon(long order) { steps_.at(static_cast<std::size_t>(order)).store(kAbandoned); }

 private:
  std::vector<std::atomic<int>> steps_;
};

void producer(const Config& c, const Schedule& s, Clock::time_point start, std::atomic<long>& next, Counters& n,
              OrderProgress& orders) {
  const auto give_up = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s.total_s)) + 120s;
  std::unique_ptr<pqxx::connection> conn[2];
  std::vector<double> lags;
  for (;;) {
    const long k = next.fetch_add(1);
    if (k >= s.total_slots || g_stop) break;
    const auto due = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(due_s(c, s, k)));
    std::this_thread::sleep_until(due);
    const auto [order_no, step_no] = slot(c, k);
    const StepDef* step = &kSteps[step_no];
    const std::string order = order_id(c, order_no);
    if (!orders.wait_for_predecessor(order_no, step_no, n)) {
      orders.abandon(order_no);
      if (!g_stop) n.gave_up.fetch_add(1);
      continue;
    }
    const std::string payload = fmt::format(R"({{"status": "{}", "actor": "oss-load"}})", step->status);
    for (;;) {
      try {
        auto& cn = conn[step->source];
        if (!cn || !cn->is_open()) cn = connect_retrying(step->source == 0 ? c.crm : c.mes, give_up);
        pqxx::work tx(*cn);
        tx.exec_prepared("emit", kSourceName[step->source], order, payload);
        tx.commit();
        orders.committed(order_no, step_no);
        break;
      } catch (const pqxx::failure&) {
        // The producer's database went away, is restarting, or the commit is in doubt: redo
        // the business transaction, as a producer would. An in-doubt commit that did commit
        // emits the step twice; the service calls the second one stale.
        conn[step->source].reset();
      }
      n.retries.fetch_add(1);
      if (Clock::now() > give_up || g_stop) {
        n.gave_up.fetch_add(1);
        orders.abandon(order_no);
        return;
      }
      std::this_thread::sleep_for(200ms);
    }
    n.emitted.fetch_add(1);
    lags.push_back(std::chrono::duration<double, std::milli>(Clock::now() - due).count());
  }
  std::lock_guard lock(n.lag_mu);
  n.lag_ms.insert(n.lag_ms.end(), lags.begin(), lags.end());
}

void importer(const Config& c, Clock::time_point start, Counters& n) {
  std::this_thread::sleep_until(start + c.burst_at);
  say(fmt::format("msg=\"burst: importing {} order creations\"", c.burst));
  const auto give_up = Clock::now() + 600s;
  std::unique_ptr<pqxx::connection> conn;
  for (long from = 0; from < c.burst && !g_stop;) {
    const long to = std::min(c.burst, from + c.burst_tx);
    try {
      if (!conn || !conn->is_open()) conn = connect_retrying(c.crm, give_up);
      pqxx::work tx(*conn);
      tx.exec_params("SELECT count(outbox.emit(source => 'crm', aggregate_type => 'order', "
                     "aggregate_id => $1 || '-I' || g, event_type => 'order.status_changed', "
                     "payload => '{\"status\": \"SUBMITTED\", \"actor\": \"oss-load import\"}'::jsonb)) "
                     "FROM generate_series($2::bigint, $3::bigint - 1) g",
                     c.prefix, from, to);
      tx.commit();
      n.burst_emitted.fetch_add(to - from);
      from = to;
    } catch (const pqxx::failure&) {
      conn.reset();
      n.retries.fetch_add(1);
      if (Clock::now() > give_up) {
        n.gave_up.fetch_add(1);
        return;
      }
      std::this_thread::sleep_for(500ms);
    }
  }
  say(fmt::format("msg=\"burst committed\" events={}", n.burst_emitted.load()));
}

/// Events in both outboxes and events the service decided; nullopt while a database is down.
std::optional<std::pair<long, long>> progress(const Config& c) {
  try {
    long emitted = 0;
    for (const auto& url : {c.crm, c.mes}) {
      pqxx::connection conn(url);
      pqxx::read_transaction tx(conn);
      // Every event of the outbox, published or not (outbox.all_events since outbox schema 3,
      // where the relay moves published rows into an archive).
      const bool all = tx.exec("SELECT to_regclass('outbox.all_events') IS NOT NULL")[0][0].as<bool>();
      emitted += tx.exec(all ? "SELECT count(*) FROM outbox.all_events" : "SELECT count(*) FROM outbox.events")[0][0]
                     .as<long>();
    }
    pqxx::connection conn(c.service);
    pqxx::read_transaction tx(conn);
    const long decided = tx.exec("SELECT count(*) FROM oss.processed_events")[0][0].as<long>();
    return std::make_pair(emitted, decided);
  } catch (const pqxx::failure&) {
    return std::nullopt;
  }
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  const auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

Phase parse_phase(const std::string& text) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) throw UsageError("--phase wants RATE:DURATION (e.g. 200:60s), got '" + text + "'");
  Phase p;
  try {
    p.rate = std::stod(text.substr(0, colon));
    p.duration = oss::core::parse_duration(text.substr(colon + 1));
  } catch (const std::exception& e) {
    throw UsageError("--phase '" + text + "': " + e.what());
  }
  if (!(p.rate > 0) || p.rate > 100'000) throw UsageError("--phase '" + text + "': rate must be in (0, 100000] events/s");
  return p;
}

std::vector<oss::core::FlagSpec> flags() {
  return {{"crm-db", "OSS_LOAD_CRM_DB_URL", "CRM producer database (outbox installed)", std::nullopt, true, false, true},
          {"mes-db", "OSS_LOAD_MES_DB_URL", "MES producer database (outbox installed)", std::nullopt, true, false, true},
          {"service-db", "OSS_DB_URL", "service database (to measure drain and latency)", std::nullopt, true, false, true},
          {"connections", "", "producer connections (threads), each to both producers", "4"},
          {"active-orders", "", "orders walking at once (default: 2 s of the first phase's rate, at least 8 per connection)"},
          {"prefix", "", "order id prefix (unique per run)", "LOAD"},
          {"burst", "", "N@OFFSET: N order creations committed at once at OFFSET (an import), e.g. 100000@10s"},
          {"burst-tx", "", "events per import transaction", "10000"},
          {"drain-timeout", "", "give up waiting for the service after the load this long", "600s"}};
}

constexpr const char* kUsage =
    "oss-load --crm-db URL --mes-db URL --service-db URL --phase RATE:DURATION [--phase ...] "
    "[--burst N@OFFSET] [--connections 4] [--prefix LOAD]\n"
    "Open-loop producer load through outbox.emit; waits for the service to decide everything and prints one JSON "
    "line (rate, e2e p50/p99, drain time).\nexit: 0 drained, 1 not drained within --drain-timeout, 2 bad usage, "
    "3 a database unreachable at start\n";

Config parse(std::vector<std::string> args) {
  Config c;
  for (std::size_t i = 0; i < args.size();) {
    if (args[i] == "--phase" && i + 1 < args.size()) {
      c.phases.push_back(parse_phase(args[i + 1]));
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i), args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
    } else {
      ++i;
    }
  }
  const auto f = oss::core::parse_flags(flags(), args);
  if (c.phases.empty()) throw UsageError("at least one --phase RATE:DURATION is required");
  c.crm = f.get("crm-db");
  c.mes = f.get("mes-db");
  c.service = f.get("service-db");
  for (const auto* u : {&c.crm, &c.mes, &c.service}) oss::core::require_pg_url(*u, "database URL");
  c.prefix = f.get("prefix");
  c.connections = f.get_int("connections", 1, 256);
  c.burst_tx = f.get_int("burst-tx", 1, 1'000'000);
  c.drain_timeout = f.get_duration("drain-timeout");
  if (auto b = f.get_optional("burst")) {
    const auto at = b->find('@');
    try {
      c.burst = std::stol(b->substr(0, at));
      if (at != std::string::npos) c.burst_at = oss::core::parse_duration(b->substr(at + 1));
    } catch (const std::exception& e) {
      throw UsageError("--burst '" + *b + "': want N@OFFSET, e.g. 100000@10s (" + e.what() + ")");
    }
    if (c.burst < 1) throw UsageError("--burst: N must be positive");
  }
  const long min_active = 8 * c.connections;
  if (auto a = f.get_optional("active-orders")) {
    c.active_orders = f.get_int("active-orders", min_active, 10'000'000);
  } else {
    c.active_orders = std::max(min_active, static_cast<long>(c.phases.front().rate * 2));
  }
  return c;
}

int run(const std::vector<std::string>& args) {
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      std::cout << oss::core::format_help(kUsage, flags());
      return 0;
    }
  const Config c = parse(args);
  if (!progress(c)) throw oss::core::DependencyError("a database is unreachable (or lacks outbox/oss tables)");
  if (std::signal(SIGTERM, on_signal) == SIG_ERR || std::signal(SIGINT, on_signal) == SIG_ERR)
    throw std::runtime_error("cannot install the SIGTERM/SIGINT handlers");
  const Schedule s = plan(c);
  const auto [emitted_before, decided_before] = *progress(c);
  say(fmt::format("msg=\"load starts\" slots={} seconds={:.0f} connections={} active_orders={} burst={}",
                  s.total_slots, s.total_s, c.connections, c.active_orders, c.burst));

  pqxx::connection svc(c.service);
  const auto start_epoch = pqxx::nontransaction(svc).exec("SELECT clock_timestamp()::text")[0][0].as<std::string>();
  Counters n;
  std::atomic<long> next{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  // Orders touched by the schedule: the last slot's window holds active_orders of them.
  OrderProgress orders((s.total_slots / (c.active_orders * kStepCount) + 1) * c.active_orders);
  for (long i = 0; i < c.connections; ++i) threads.emplace_back([&] { producer(c, s, start, next, n, orders); });
  std::thread import_thread;
  if (c.burst > 0) import_thread = std::thread([&] { importer(c, start, n); });
  std::thread reporter([&] {
    auto t = start;
    while (!g_stop && next.load() < s.total_slots) {
      t += 10s;
      while (Clock::now() < t && !g_stop && next.load() < s.total_slots) std::this_thread::sleep_for(100ms);
      if (const auto p = progress(c))
        say(fmt::format("msg=progress emitted={} decided={} backlog={} retries={}", p->first, p->second,
                        p->first - p->second, n.retries.load()));
      else
        say("msg=progress note=\"a database is down\"");
    }
  });
  for (auto& th : threads) th.join();
  if (import_thread.joinable()) import_thread.join();
  reporter.join();
  const auto load_end = Clock::now();
  const double load_s = std::chrono::duration<double>(load_end - start).count();
  const long emitted = n.emitted.load() + n.burst_emitted.load();
  say(fmt::format("msg=\"load done\" emitted={} seconds={:.1f} retries={}", emitted, load_s, n.retries.load()));

  // Drain: until the service has decided as many events as the outboxes hold.
  bool drained = false;
  long last_emitted = 0, last_decided = 0;
  auto last_report = Clock::now();
  while (Clock::now() - load_end < c.drain_timeout && !g_stop) {
    if (const auto p = progress(c)) {
      last_emitted = p->first;
      last_decided = p->second;
      if (p->second >= p->first) {
        drained = true;
        break;
      }
      if (Clock::now() - last_report > 10s) {
        say(fmt::format("msg=draining backlog={}", p->first - p->second));
        last_report = Clock::now();
      }
    }
    std::this_thread::sleep_for(100ms);
  }
  const double drain_s = std::chrono::duration<double>(Clock::now() - load_end).count();

  nlohmann::json out;
  out["emitted"] = emitted;
  out["emitted_scheduled"] = n.emitted.load();
  out["emitted_import"] = n.burst_emitted.load();
  out["emit_retries"] = n.retries.load();
  out["emit_gave_up"] = n.gave_up.load();
  out["emit_waited_for_predecessor"] = n.waited_for_predecessor.load();
  out["load_seconds"] = load_s;
  // Scheduled events over the time they actually took (longer than the schedule when the
  // producers could not keep up: then the generator, not the pipeline, set the pace).
  out["achieved_rate"] = static_cast<double>(n.emitted.load()) / std::max(load_s, 1e-9);
  out["schedule_seconds"] = s.total_s;
  out["target_rate"] = static_cast<double>(s.total_slots) / std::max(s.total_s, 1e-9);
  out["emit_lag_p99_ms"] = quantile(n.lag_ms, 0.99);
  out["drained"] = drained;
  out["drain_seconds"] = drain_s;
  out["outbox_events"] = last_emitted - emitted_before;
  out["decided"] = last_decided - decided_before;
  out["throughput_decided_per_s"] = static_cast<double>(last_decided - decided_before) / (load_s + drain_s);
  try {
    pqxx::connection conn(c.service);
    pqxx::read_transaction tx(conn);
    const auto r = tx.exec_params(
        "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), "
        "       max(ms) "
        "FROM (SELECT extract(epoch from applied_at - occurred_at) * 1000 AS ms FROM oss.status_history "
        "      WHERE event_id IS NOT NULL AND occurred_at >= $1::timestamptz) x",
        start_epoch)[0];
    out["applied"] = r[0].as<long>();
    out["e2e_p50_ms"] = r[1].is_null() ? std::numeric_limits<double>::quiet_NaN() : r[1].as<double>();
    out["e2e_p99_ms"] = r[2].is_null() ? std::numeric_limits<double>::quiet_NaN() : r[2].as<double>();
    out["e2e_max_ms"] = r[3].is_null() ? std::numeric_limits<double>::quiet_NaN() : r[3].as<double>();
  } catch (const pqxx::failure& e) {
    say(fmt::format("msg=\"latency query failed\" error=\"{}\"", e.what()));
  }
  std::cout << out.dump() << std::endl;
  say(fmt::format("msg=\"{}\" drain_seconds={:.1f}", drained ? "drained" : "NOT drained", drain_s));
  if (n.gave_up.load() > 0) say("msg=\"some producer transactions never committed (database down for minutes)\"");
  return drained && n.gave_up.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run({argv + 1, argv + argc});
  } catch (const UsageError& e) {
    std::cerr << "oss-load: error: " << e.what() << "\n";
    return 2;
  } catch (const oss::core::DependencyError& e) {
    std::cerr << "oss-load: error: " << e.what() << "\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << "oss-load: error: " << e.what() << "\n";
    return 1;
  }
}
