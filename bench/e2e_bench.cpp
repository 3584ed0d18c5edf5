// e2e_bench: the whole pipeline measured end to end, next to the raw limits of its two servers,
// in ONE run on the same machine (docs/performance.md, "## End to end (emit → applied)").
//
//   producers (paced threads, one event per transaction, outbox.emit in crm and mes databases)
//     -> outbox-relay run (one per producer database) -> RabbitMQ (topic exchange, quorum queue)
//     -> order-status-service run (applies the shipped workflow, writes oss.status_history)
//
// Phases (each starts the two relays and the service afresh as child processes):
//   0. raw limits: PostgreSQL single-row commits with 8 clients; RabbitMQ persistent publishes
//      with confirms, window 500, into a quorum queue (same code as bench/relay_bench.cpp);
//   1. steady 500/s and 2,000/s for 30 s (NOTIFY on, the default), 2,000/s with
//      outbox.notify = off and the relays polling every 20 ms, and 2,000/s with
//      outbox.notify = idle (producers notify only while a relay waits);
//   2. a ramp 4,000 -> 6,000 -> 8,000 events/s, 20 s each (NOTIFY off, poll 20 ms; or
//      outbox.notify = idle with --ramp-notify idle): achieved applied/s per step and whether
//      the in-flight backlog stayed bounded;
//   3. backlog drain: 100,000 events emitted in bulk transactions with the relays and the
//      service stopped, then all started and timed until every event is applied.
// Every event belongs to an order lifecycle: crm SUBMITTED, mes PRICE_CALCULATED, crm
// PRICE_CONFIRMED, mes MANUFACTURING_STARTED, mes SHIPPED, crm DELIVERED; a thread emits an
// order's next step only after its previous step committed, with many orders interleaved.
// Latency per event = oss.status_history.applied_at - occurred_at (occurred_at is set by
// outbox.emit and carried in the envelope), percentiles by percentile_cont in SQL.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "oss/amqp/connection.hpp"

namespace {

using namespace bench;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Options

struct Options : CommonOptions {
  std::string bin_dir;
  std::string log = "/tmp/e2e_bench.log";
  double raw_pg_seconds = 10, raw_amqp_seconds = 8;
  double steady_seconds = 30, ramp_seconds = 20;
  std::vector<double> steady_rates{500, 2000};
  std::vector<double> ramp_rates{4000, 6000, 8000};
  std::int64_t backlog = 100'000;
  int threads = 16, ramp_threads = 24;
  double step_gap = 1.0;             // seconds between two steps of one order (at the highest rate)
  std::string fast_poll = "20ms";    // relay --poll-interval when outbox.notify = off
  std::string ramp_notify = "off";   // outbox.notify during the ramp: off (poll fast_poll) or idle
  double drain_timeout = 420;
  std::int64_t capacity_events = 60'000;
  /// Capacity phase: each MES event arrives this many events before its predecessor (a MES
  /// relay ahead of the CRM's); 0: every event after its predecessor.
  std::int64_t capacity_mes_lead = 0;
  int emits_per_tx = 1;  // producer events per transaction (1: one emit per commit)  // consumer-only phase: events pre-loaded into the queue
  std::vector<std::string> service_args;  // extra flags for `order-status-service run`
  std::string phases = "capacity,steady,ramp,drain";
  bool phase(const std::string& name) const { return ("," + phases + ",").find("," + name + ",") != std::string::npos; }
  // Unique per run: databases, exchanges and queues.
  std::string id, crm_db, mes_db, oss_db, raw_db, exchange, queue, dlq, notifications, notifications_tail, raw_exchange,
      raw_queue;
};

[[noreturn]] void usage(const std::string& problem) {
  usage_exit("e2e_bench", problem,
             "e2e_bench --pg-base postgresql://user:pw@host:port --amqp amqp://u:p@host:port/%2f "
             "--bin-dir build/bin [--quick] [--steady-rates 500,2000] [--steady-seconds S] "
             "[--ramp-rates 4000,6000,8000] [--ramp-seconds S] [--backlog N] [--threads N] [--ramp-threads N] "
             "[--step-gap SECONDS] [--fast-poll 20ms] [--capacity-events N] [--capacity-mes-lead N] [--emits-per-tx N] [--ramp-notify off|idle] [--service-arg FLAG]... "
             "[--phases capacity,steady,ramp,drain] [--markdown-out FILE] [--servers-dir DIR] [--log FILE] [--keep]");
}

Options parse_args(int argc, char** argv) {
  Options o;
  bool backlog_set = false, steady_set = false, ramp_set = false;
  parse_flags(argc, argv, o, usage, [&](const std::string& f, const std::function<std::string()>& value) {
    if (f == "--bin-dir") o.bin_dir = value();
    else if (f == "--log") o.log = value();
    else if (f == "--steady-rates") o.steady_rates = parse_list(value());
    else if (f == "--ramp-rates") o.ramp_rates = parse_list(value());
    else if (f == "--threads") o.threads = std::stoi(value());
    else if (f == "--ramp-threads") o.ramp_threads = std::stoi(value());
    else if (f == "--step-gap") o.step_gap = std::stod(value());
    else if (f == "--fast-poll") o.fast_poll = value();
    else if (f == "--capacity-events") o.capacity_events = std::stoll(value());
    else if (f == "--capacity-mes-lead") {
      o.capacity_mes_lead = std::stoll(value());
      if (o.capacity_mes_lead < 0) usage("--capacity-mes-lead: must be 0 or more");
    }
    else if (f == "--emits-per-tx") o.emits_per_tx = std::stoi(value());
    else if (f == "--ramp-notify") {
      o.ramp_notify = value();
      if (o.ramp_notify != "off" && o.ramp_notify != "idle") usage("--ramp-notify: off or idle");
    }
    else if (f == "--service-arg") o.service_args.push_back(value());
    else if (f == "--phases") o.phases = value();
    else if (f == "--backlog") {
      o.backlog = std::stoll(value());
      backlog_set = true;
    } else if (f == "--steady-seconds") {
      o.steady_seconds = std::stod(value());
      steady_set = true;
    } else if (f == "--ramp-seconds") {
      o.ramp_seconds = std::stod(value());
      ramp_set = true;
    } else {
      return false;
    }
    return true;
  });
  if (o.pg_base.empty() || o.amqp.empty() || o.bin_dir.empty()) usage("--pg-base, --amqp and --bin-dir are required");
  finish_common(o);
  if (o.quick) {
    o.raw_pg_seconds = 3;
    o.raw_amqp_seconds = 3;
    if (!steady_set) o.steady_seconds = 8;
    if (!ramp_set) o.ramp_seconds = 6;
    if (!backlog_set) o.backlog = 12'000;
    o.capacity_events = std::min<std::int64_t>(o.capacity_events, 24'000);
    o.drain_timeout = 180;
  }
  o.id = std::to_string(getpid()) + std::to_string(std::time(nullptr) % 100000);
  o.crm_db = "e2e_bench_crm_" + o.id;
  o.mes_db = "e2e_bench_mes_" + o.id;
  o.oss_db = "e2e_bench_oss_" + o.id;
  o.raw_db = "e2e_bench_raw_" + o.id;
  o.exchange = "orders.events.e2e_bench." + o.id;
  o.queue = "order-status-service.events.e2e_bench." + o.id;
  o.dlq = "order-status-service.dlq.e2e_bench." + o.id;
  o.notifications = "orders.notifications.e2e_bench." + o.id;
  o.notifications_tail = "order-status-service.notifications.e2e_bench." + o.id;
  o.raw_exchange = "e2e_bench.raw." + o.id;
  o.raw_queue = "e2e_bench.raw." + o.id;
  return o;
}

// ---------------------------------------------------------------------------------------------
// Child processes, HTTP, /proc

// ---------------------------------------------------------------------------------------------
// PostgreSQL

// ---------------------------------------------------------------------------------------------
// RabbitMQ

// ---------------------------------------------------------------------------------------------
// The pipeline's processes

double labeled_metric(const std::string& text, const std::string& name, const std::string& label) {
  std::istringstream in(text);
  std::string line;
  double total = 0;
  while (std::getline(in, line))
    if (line.rfind(name + "{", 0) == 0 && line.find(label) != std::string::npos) total += metric_value(line);
  return total;
}

/// An unlabeled sample's value (`name value`), or NaN when absent.
double plain_metric(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(name + " ", 0) == 0) return metric_value(line);
  return std::numeric_limits<double>::quiet_NaN();
}

double hist_mean_ms(const std::string& metrics, const std::string& name) {
  const auto h = parse_histogram(metrics, name);
  return h.count > 0 ? 1000.0 * h.sum / h.count : std::numeric_limits<double>::quiet_NaN();
}

/// One child program with an HTTP port (/readyz, /metrics).
class Child {
 public:
  Child(std::string name, const std::vector<std::string>& args, const std::string& log, int port)
      : name_(std::move(name)), port_(port) {
    {
      std::ofstream f(log, std::ios::app);
      f << "\n==== e2e_bench: starting " << name_ << " ====\n";
    }
    pid_ = spawn(args, log);
  }
  ~Child() { stop(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  void wait_ready(std::chrono::seconds timeout) { bench::wait_ready(pid_, port_, timeout, name_); }
  std::string metrics() const {
    auto r = http_get(port_, "/metrics");
    return r ? r->second : std::string();
  }
  void stop() {
    if (pid_ > 0) stop_child(pid_, "child " + std::to_string(pid_));
    pid_ = -1;
  }

 private:
  std::string name_;
  int port_;
  pid_t pid_ = -1;
};

/// `order-status-service run` on the run's databases and names (plus --service-arg flags), ready.
std::unique_ptr<Child> start_service(const Options& o) {
  const int sp = free_port();
  std::vector<std::string> args{o.bin_dir + "/order-status-service", "run", "--db", db_url(o, o.oss_db), "--amqp", o.amqp,
                                "--http", "127.0.0.1:" + std::to_string(sp), "--exchange", o.exchange, "--queue",
                                o.queue, "--dlq", o.dlq, "--notifications-exchange", o.notifications,
                                "--notifications-tail", o.notifications_tail};
  args.insert(args.end(), o.service_args.begin(), o.service_args.end());
  auto svc = std::make_unique<Child>("order-status-service", args, o.log, sp);
  svc->wait_ready(60s);
  return svc;
}

/// The two relays (crm, mes) and one service, started in that order: the service first, so the
/// exchange and its queue binding exist before the relays publish.
struct Pipeline {
  std::unique_ptr<Child> svc, crm, mes;
  Pipeline(const Options& o, const std::string& poll, bool with_relays = true) {
    svc = start_service(o);
    if (!with_relays) return;
    auto relay = [&](const std::string& name, const std::string& db) {
      const int p = free_port();
      return std::make_unique<Child>(
          name,
          std::vector<std::string>{o.bin_dir + "/outbox-relay", "run", "--db", db_url(o, db), "--amqp", o.amqp,
                                   "--exchange", o.exchange, "--metrics", "127.0.0.1:" + std::to_string(p),
                                   "--poll-interval", poll},
          o.log, p);
    };
    crm = relay("relay-crm", o.crm_db);
    mes = relay("relay-mes", o.mes_db);
    crm->wait_ready(60s);
    mes->wait_ready(60s);
  }
  std::vector<std::pair<std::string, pid_t>> pids() const {
    if (!crm) return {{"service", svc->pid()}};
    return {{"relay-crm", crm->pid()}, {"relay-mes", mes->pid()}, {"service", svc->pid()}};
  }
  void stop() const {
    // Relays first (nothing new enters the broker), then the service.
    if (crm) crm->stop();
    if (mes) mes->stop();
    svc->stop();
  }
};

// ---------------------------------------------------------------------------------------------
// Producers

struct LifecycleStep {
  const char* source;
  const char* status;
};
constexpr LifecycleStep kLifecycle[6] = {{"crm", "SUBMITTED"},       {"mes", "PRICE_CALCULATED"},
                                         {"crm", "PRICE_CONFIRMED"}, {"mes", "MANUFACTURING_STARTED"},
                                         {"mes", "SHIPPED"},         {"crm", "DELIVERED"}};
const char* kEmitSql =
    "SELECT outbox.emit($1, 'order', $2, 'order.status_changed', "
    "jsonb_build_object('status', $3::text, 'actor', 'e2e_bench'))";

/// outbox.notify of both producer databases: on | idle | off.
void set_notify(const Options& o, const std::string& mode) {
  for (const auto& db : {o.crm_db, o.mes_db})
    exec_sql(db_url(o, "postgres"), "ALTER DATABASE " + db + " SET outbox.notify = " + mode);
}

struct Sample {
  double t = 0;  // seconds since the producers started
  std::int64_t in_flight = 0, unpublished = 0, queued = 0;
};

struct StepResult {
  double target = 0, seconds = 0, from_epoch = 0, to_epoch = 0;
  std::uint64_t emitted = 0, late = 0;
  double commit_p50 = 0, commit_p99 = 0;
  std::int64_t rows = 0, applied_in_window = 0;
  double p50 = 0, p99 = 0, p999 = 0, max = 0;        // emit -> applied (ms)
  double relay_p50 = 0, relay_p99 = 0;                // emit -> published_at (ms), both producer databases
  std::int64_t end_in_flight = 0, max_in_flight = 0, end_unpublished = 0, end_queued = 0;
  double growth = 0;  // in-flight events per second over the step (after its first 2 s)
  bool bounded = false;
  double achieved() const { return static_cast<double>(emitted) / seconds; }
  double applied_rate() const { return static_cast<double>(applied_in_window) / seconds; }
};

struct PhaseResult {
  std::string name, setting;
  int threads = 0;
  std::vector<StepResult> steps;
  std::string cpu;
  double catch_up_seconds = 0;
  std::int64_t emitted = 0, applied = 0;
  /// Early events parked by the service when the bench stopped waiting (its oss_early_parked
  /// gauge, docs/adr/0004): not lost, waiting for a predecessor or their next retry.
  std::int64_t delayed_at_end = 0;
  double early = 0, stale = 0, duplicate = 0, dead_lettered = 0;
  /// Retries of parked early events: trips back through the queue, and retries counted in place
  /// (NaN from a service without that metric).
  double retries_queue = 0, retries_in_place = 0;
  double svc_batch_mean = 0, svc_batch_ms = 0, svc_e2e_mean_ms = 0, relay_confirm_mean_ms = 0;
};

std::vector<double> fetch_doubles(const std::string& url, const std::string& sql, double a, double b) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  std::vector<double> v;
  for (const auto& row : tx.exec_params(sql, a, b)) v.push_back(row[0].as<double>());
  return v;
}

void collect_service_metrics(PhaseResult& r, Pipeline& p) {
  const std::string m = p.svc->metrics();
  r.early = labeled_metric(m, "oss_events_total", "outcome=\"early\"");
  r.stale = labeled_metric(m, "oss_events_total", "outcome=\"stale\"");
  r.duplicate = labeled_metric(m, "oss_events_total", "outcome=\"duplicate\"");
  r.dead_lettered = labeled_metric(m, "oss_events_total", "outcome=\"dead_lettered\"");
  r.retries_queue = plain_metric(m, "oss_early_retries_total");
  r.retries_in_place = plain_metric(m, "oss_early_retries_in_place_total");
  const auto bs = parse_histogram(m, "oss_batch_size");
  r.svc_batch_mean = bs.count > 0 ? bs.sum / bs.count : 0;
  r.svc_batch_ms = hist_mean_ms(m, "oss_batch_processing_seconds");
  r.svc_e2e_mean_ms = hist_mean_ms(m, "oss_event_end_to_end_seconds");
  if (!p.crm) return;
  const auto a = parse_histogram(p.crm->metrics(), "outbox_relay_emit_to_confirm_seconds");
  const auto b = parse_histogram(p.mes->metrics(), "outbox_relay_emit_to_confirm_seconds");
  r.relay_confirm_mean_ms = a.count + b.count > 0 ? 1000.0 * (a.sum + b.sum) / (a.count + b.count) : 0;
}

/// Paced producers at `rates` (one step of `step_seconds` per rate), the pipeline running.
PhaseResult run_load(const Options& o, int phase_no, const std::string& name, const std::string& notify, const std::string& poll,
                     const std::vector<double>& rates, double step_seconds, int threads_n) {
  PhaseResult r;
  r.name = name;
  r.setting = (notify == "idle" ? std::string("`outbox.notify = idle`") : "NOTIFY " + notify) + ", relay --poll-interval " + poll +
              (o.emits_per_tx > 1 ? ", " + std::to_string(o.emits_per_tx) + " emits per producer transaction" : "");
  r.threads = threads_n;
  set_notify(o, notify);
  const std::string crm_url = db_url(o, o.crm_db), mes_url = db_url(o, o.mes_db), oss_url = db_url(o, o.oss_db);
  Pipeline pipe(o, poll);
  pqxx::connection oc(oss_url);
  {
    // Warm-up: one event through the whole path.
    const std::string warm = "warm-" + std::to_string(phase_no);
    pqxx::connection cc(crm_url);
    pqxx::work tx(cc);
    tx.exec_params(kEmitSql, std::string("crm"), warm, std::string("SUBMITTED"));
    tx.commit();
    const auto until = Clock::now() + 30s;
    while (scalar(oc, "SELECT count(*) FROM oss.status_history WHERE order_id = '" + warm + "'") == 0 &&
           Clock::now() < until)
      std::this_thread::sleep_for(20ms);
  }
  const std::int64_t base_id = scalar(oc, "SELECT coalesce(max(id), 0) FROM oss.status_history");
  const std::string applied_sql = "SELECT count(*) FROM oss.status_history WHERE id > " + std::to_string(base_id);
  const double max_rate = *std::max_element(rates.begin(), rates.end());
  const std::size_t ring = static_cast<std::size_t>(std::max(1.0, std::ceil(max_rate * o.step_gap / threads_n)));
  say(name + ": " + r.setting + ", " + std::to_string(threads_n) + " producer threads, " + std::to_string(ring) +
      " orders in flight per thread");

  const std::size_t steps = rates.size();
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<std::int64_t> emitted_total{0};
  Clock::time_point start{};
  std::mutex mu;
  std::vector<std::vector<double>> commit_lat(steps);
  std::vector<std::uint64_t> emitted(steps, 0), late(steps, 0);
  // Actual first send / last commit of each step over all threads (system clock, epoch seconds).
  std::vector<double> first_send(steps, std::numeric_limits<double>::infinity()), last_done(steps, 0);
  std::string error;
  std::vector<std::thread> threads;
  const auto step_dur = std::chrono::duration_cast<Clock::duration>(Secs(step_seconds));
  threads.reserve(static_cast<std::size_t>(threads_n));
  for (int j = 0; j < threads_n; ++j) {
    threads.emplace_back([&, j] {
      std::vector<std::vector<double>> mine(steps);
      std::vector<std::uint64_t> my_late(steps, 0);
      std::vector<double> my_first(steps, std::numeric_limits<double>::infinity()), my_last(steps, 0);
      try {
        pqxx::connection cc(crm_url), mc(mes_url);
        cc.prepare("emit", kEmitSql);
        mc.prepare("emit", kEmitSql);
        pqxx::nontransaction ctx(cc), mtx(mc);
        const std::uint64_t per_tx = static_cast<std::uint64_t>(std::max(1, std::min<int>(o.emits_per_tx, static_cast<int>(ring))));
        bool crm_open = false, mes_open = false;
        struct Order {
          std::string id;
          int step = 0;
        };
        std::uint64_t next_order = 0;
        auto new_id = [&] {
          return "p" + std::to_string(phase_no) + "-" + std::to_string(j) + "-" + std::to_string(next_order++);
        };
        std::vector<Order> orders(ring);
        for (auto& ord : orders) ord.id = new_id();
        std::size_t cursor = 0;
        ++ready;
        while (!go.load()) std::this_thread::sleep_for(1ms);
        for (std::size_t i = 0; i < steps; ++i) {
          const double rate = rates[i];
          const auto n = static_cast<std::uint64_t>(rate * step_seconds);
          const auto step_start = start + step_dur * static_cast<long>(i);
          for (std::uint64_t k = 0;; ++k) {
            const std::uint64_t idx = k * static_cast<std::uint64_t>(threads_n) + static_cast<std::uint64_t>(j);
            if (idx >= n) break;
            const auto due = step_start + std::chrono::duration_cast<Clock::duration>(Secs(static_cast<double>(idx) / rate));
            // With --emits-per-tx N a group of N sends is paced by its first one and committed
            // together (one transaction per producer database it touches).
            const bool group_start = k % per_tx == 0;
            const bool group_end = k % per_tx == per_tx - 1 || idx + static_cast<std::uint64_t>(threads_n) >= n;
            if (group_start) {
              if (Clock::now() < due) std::this_thread::sleep_until(due);
              else if (Clock::now() - due > 10ms) ++my_late[i];
            }
            Order& ord = orders[cursor];
            cursor = (cursor + 1) % ring;
            const auto& st = kLifecycle[ord.step];
            const bool crm = st.source[0] == 'c';
            const auto t = Clock::now();
            if (k == 0) my_first[i] = epoch_now();
            if (per_tx > 1 && !(crm ? crm_open : mes_open)) {
              (crm ? ctx : mtx).exec("BEGIN");
              (crm ? crm_open : mes_open) = true;
            }
            (crm ? ctx : mtx).exec_prepared("emit", std::string(st.source), ord.id, std::string(st.status));
            if (group_end) {
              if (crm_open) ctx.exec("COMMIT");
              if (mes_open) mtx.exec("COMMIT");
              crm_open = mes_open = false;
            }
            mine[i].push_back(ms_between(t, Clock::now()));
            ++emitted_total;
            my_last[i] = epoch_now();
            if (++ord.step == 6) {
              ord.id = new_id();
              ord.step = 0;
            }
          }
        }
      } catch (const std::exception& e) {
        std::lock_guard l(mu);
        error = e.what();
        ++ready;
      }
      std::lock_guard l(mu);
      for (std::size_t i = 0; i < steps; ++i) {
        commit_lat[i].insert(commit_lat[i].end(), mine[i].begin(), mine[i].end());
        emitted[i] += mine[i].size();
        late[i] += my_late[i];
        first_send[i] = std::min(first_send[i], my_first[i]);
        last_done[i] = std::max(last_done[i], my_last[i]);
      }
    });
  }
  while (ready.load() < threads_n) std::this_thread::sleep_for(5ms);

  // Backlog sampler: in flight = emitted - applied; outbox unpublished; events queue depth.
  std::vector<Sample> samples;
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    try {
      pqxx::connection sc(oss_url), cc(crm_url), mc(mes_url);
      oss::amqp::Connection a(amqp_options(o, "e2e_bench-sampler"));
      const std::string unpub = "SELECT count(*) FROM outbox.events WHERE published_at IS NULL AND parked_at IS NULL";
      auto next = start + 1s;
      while (sampling.load()) {
        std::this_thread::sleep_until(next);
        next += 1s;
        Sample s;
        s.t = Secs(Clock::now() - start).count();
        const auto e = emitted_total.load();
        s.in_flight = e - scalar(sc, applied_sql);
        s.unpublished = scalar(cc, unpub) + scalar(mc, unpub);
        s.queued = a.queue_message_count(o.queue);
        std::lock_guard l(mu);
        samples.push_back(s);
      }
    } catch (const std::exception& e) {
      say(std::string("sampler: ") + e.what());
    }
  });

  CpuMeter cpu(o, pipe.pids());
  start = Clock::now() + 100ms;
  const double start_epoch = epoch_now() + 0.1;
  go = true;
  for (auto& t : threads) t.join();
  r.cpu = cpu.finish();
  const double produce_seconds = Secs(Clock::now() - start).count();
  if (!error.empty()) {
    sampling = false;
    sampler.join();
    throw std::runtime_error("producer: " + error);
  }
  // Let the pipeline finish what was committed.
  r.emitted = emitted_total.load();
  const auto t_end = Clock::now();
  std::int64_t applied = 0, last = -1;
  auto last_progress = Clock::now();
  // The service's count of parked early events (refreshed by its stats collector, every few
  // seconds): while some wait, no progress for a while is possible (the longest retry delay is
  // 120 s), so the bench keeps waiting, up to 300 s in all.
  const auto delayed = [&] {
    const double v = plain_metric(pipe.svc->metrics(), "oss_early_parked");
    return std::isfinite(v) ? static_cast<std::int64_t>(v) : 0;
  };
  for (;;) {
    applied = scalar(oc, applied_sql);
    if (applied != last) last_progress = Clock::now();
    last = applied;
    if (applied >= r.emitted || Clock::now() - t_end > 300s) break;
    if (Clock::now() - last_progress > 40s && delayed() == 0) break;
    std::this_thread::sleep_for(100ms);
  }
  r.catch_up_seconds = Secs(Clock::now() - t_end).count();
  r.applied = applied;
  if (applied < r.emitted) r.delayed_at_end = delayed();
  sampling = false;
  sampler.join();
  collect_service_metrics(r, pipe);
  pipe.stop();
  say(name + ": produced for " + fmt_num(produce_seconds, 1) + " s; " + fmt_num(static_cast<double>(r.applied)) + " of " +
      fmt_num(static_cast<double>(r.emitted)) + " applied " + fmt_num(r.catch_up_seconds, 1) + " s after the producers stopped" +
      (r.delayed_at_end > 0 ? "; " + fmt_num(static_cast<double>(r.delayed_at_end)) + " early events still parked" : ""));

  for (std::size_t i = 0; i < steps; ++i) {
    StepResult s;
    s.target = rates[i];
    // The step's window: from its first send to the next step's first send (the last step: to its
    // last commit). Producers that fall behind stretch it, so rates are over the real duration.
    s.from_epoch = std::isfinite(first_send[i]) ? first_send[i] : start_epoch + static_cast<double>(i) * step_seconds;
    s.to_epoch = i + 1 < steps && std::isfinite(first_send[i + 1]) ? first_send[i + 1] : std::max(last_done[i], s.from_epoch + 0.001);
    s.seconds = s.to_epoch - s.from_epoch;
    (void)start_epoch;
    s.emitted = emitted[i];
    s.late = late[i];
    s.commit_p50 = quantile(commit_lat[i], 0.5);
    s.commit_p99 = quantile(commit_lat[i], 0.99);
    {
      pqxx::nontransaction tx(oc);
      const auto row = tx.exec_params(
          "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.99) WITHIN GROUP (ORDER BY d), "
          "  percentile_cont(0.999) WITHIN GROUP (ORDER BY d), coalesce(max(d), 'NaN') "
          "FROM (SELECT extract(epoch from applied_at - occurred_at)::float8 * 1000 AS d FROM oss.status_history "
          "      WHERE id > $1 AND occurred_at >= to_timestamp($2) AND occurred_at < to_timestamp($3)) s",
          base_id, s.from_epoch, s.to_epoch)[0];
      s.rows = row[0].as<std::int64_t>();
      const double nan = std::numeric_limits<double>::quiet_NaN();
      s.p50 = row[1].is_null() ? nan : row[1].as<double>();
      s.p99 = row[2].is_null() ? nan : row[2].as<double>();
      s.p999 = row[3].is_null() ? nan : row[3].as<double>();
      s.max = row[4].as<double>();
      s.applied_in_window = tx.exec_params("SELECT count(*) FROM oss.status_history WHERE id > $1 AND applied_at >= "
                                           "to_timestamp($2) AND applied_at < to_timestamp($3)",
                                           base_id, s.from_epoch, s.to_epoch)[0][0]
                                .as<std::int64_t>();
    }
    std::vector<double> relay_d;
    const std::string rsql =
        "SELECT extract(epoch from published_at - occurred_at)::float8 * 1000 FROM outbox.all_events "
        "WHERE published_at IS NOT NULL AND occurred_at >= to_timestamp($1) AND occurred_at < to_timestamp($2)";
    for (const auto& url : {crm_url, mes_url}) {
      auto v = fetch_doubles(url, rsql, s.from_epoch, s.to_epoch);
      relay_d.insert(relay_d.end(), v.begin(), v.end());
    }
    s.relay_p50 = quantile(relay_d, 0.5);
    s.relay_p99 = quantile(relay_d, 0.99);
    const double a = s.from_epoch - start_epoch, b = s.to_epoch - start_epoch;
    const Sample* first = nullptr;
    const Sample* lastS = nullptr;
    for (const auto& sm : samples) {
      if (sm.t < a || sm.t > b + 0.05) continue;
      s.max_in_flight = std::max(s.max_in_flight, sm.in_flight);
      if (!first && sm.t >= a + 2) first = &sm;
      lastS = &sm;
    }
    if (lastS) {
      s.end_in_flight = lastS->in_flight;
      s.end_unpublished = lastS->unpublished;
      s.end_queued = lastS->queued;
    }
    if (first && lastS && lastS->t > first->t)
      s.growth = static_cast<double>(lastS->in_flight - first->in_flight) / (lastS->t - first->t);
    // Bounded: at the end of the step less than one second of production is in flight, and it
    // is not growing by more than 2 % of the rate.
    s.bounded = s.end_in_flight <= static_cast<std::int64_t>(s.target) && s.growth < 0.02 * s.target;
    say("  " + fmt_num(s.target) + "/s: produced " + fmt_num(s.achieved()) + "/s, applied " + fmt_num(s.applied_rate()) +
        "/s, p50 " + fmt_num(s.p50, 1) + " ms, p99 " + fmt_num(s.p99, 1) + " ms, p99.9 " + fmt_num(s.p999, 1) +
        " ms; in flight at end " + fmt_num(static_cast<double>(s.end_in_flight)) + (s.bounded ? " (bounded)" : " (growing)"));
    r.steps.push_back(s);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Consumer capacity: the service alone, from a queue filled in advance

struct CapacityResult {
  std::int64_t events = 0, applied = 0;
  double fill_seconds = 0, seconds = 0, rate = 0;
  std::string cpu;
  PhaseResult metrics;
};

/// Publishes `events` valid envelopes (whole lifecycles, step by step over all orders, so no
/// event of a batch waits for another) straight to the events exchange with the service
/// stopped, then starts the service and times it until every event is applied: what one
/// service instance can apply when nothing else competes for the machine.
CapacityResult consumer_capacity(const Options& o) {
  CapacityResult r;
  const std::string oss_url = db_url(o, o.oss_db);
  pqxx::connection oc(oss_url);
  start_service(o)->stop();  // declares the topology, then stops
  const std::int64_t orders = (o.capacity_events + 5) / 6;
  r.events = orders * 6;
  say("capacity: publishing " + fmt_num(static_cast<double>(r.events)) + " events (" +
      fmt_num(static_cast<double>(orders)) + " lifecycles) to the events exchange, service stopped");
  const auto f0 = Clock::now();
  {
    oss::amqp::Connection c(amqp_options(o, "e2e_bench-capacity"));
    c.enable_confirms();
    const std::string now = shell_out("date -u +%Y-%m-%dT%H:%M:%S.000Z");
    std::uint64_t published = 0;
    // Step by step over all orders; with --capacity-mes-lead L the MES stream is moved ahead so
    // that each MES event comes L events before its CRM predecessor (early events).
    std::vector<std::pair<std::int64_t, std::pair<int, std::int64_t>>> plan;  // (key, (step, order))
    plan.reserve(static_cast<std::size_t>(r.events));
    for (int step = 0; step < 6; ++step)
      for (std::int64_t i = 0; i < orders; ++i) {
        const bool mes = std::string(kLifecycle[step].source) == "mes";
        const std::int64_t lead = o.capacity_mes_lead > 0 && mes ? orders + o.capacity_mes_lead : 0;
        plan.push_back({static_cast<std::int64_t>(step) * orders + i - lead, {step, i}});
      }
    std::stable_sort(plan.begin(), plan.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [key, item] : plan) {
      const auto [step, i] = item;
      const auto& st = kLifecycle[step];
      // crm's sequences 1, 2, 3 are steps 0, 2, 5; mes's are steps 1, 3, 4.
      const int sequence = std::string(st.source) == "crm" ? (step == 0 ? 1 : step == 2 ? 2 : 3) : (step == 1 ? 1 : step == 3 ? 2 : 3);
      {
        oss::amqp::Message m;
        m.exchange = o.exchange;
        m.routing_key = std::string(st.source) + ".order.status_changed";
        m.type = "order.status_changed";
        m.content_type = "application/json";
        m.persistent = true;
        char id[64];
        if (std::snprintf(id, sizeof id, "00000000-0000-4000-8%03x-%012llx", static_cast<unsigned>(step) & 0xfffu,
                          static_cast<unsigned long long>(i) & 0xffffffffffffull) != 36)
          throw std::logic_error("capacity: message id is not 36 characters");
        m.message_id = id;
        m.body = std::string("{\"event_id\":\"") + id + "\",\"source\":\"" + st.source +
                 "\",\"aggregate_type\":\"order\",\"aggregate_id\":\"cap-" + std::to_string(i) +
                 "\",\"sequence\":" + std::to_string(sequence) +
                 ",\"event_type\":\"order.status_changed\",\"occurred_at\":\"" + now +
                 "\",\"payload\":{\"status\":\"" + st.status + "\",\"actor\":\"e2e_bench\"}}";
        const auto tag = c.publish(m, true);
        ++published;
        if (published % 500 == 0) {
          const auto b = c.wait_confirms(tag, 30s);
          if (!b.nacked.empty() || !b.returned.empty()) throw std::runtime_error("capacity: publish not confirmed");
        }
      }
    }
    const auto b = c.wait_confirms(published, 30s);
    if (!b.nacked.empty() || !b.returned.empty()) throw std::runtime_error("capacity: publish not confirmed");
  }
  r.fill_seconds = Secs(Clock::now() - f0).count();
  const std::int64_t base_id = scalar(oc, "SELECT coalesce(max(id), 0) FROM oss.status_history");
  const std::string applied_sql = "SELECT count(*) FROM oss.status_history WHERE id > " + std::to_string(base_id);
  {
    pqxx::nontransaction tx(oc);
    tx.exec("CHECKPOINT");
  }
  say("capacity: queue filled in " + fmt_num(r.fill_seconds, 1) + " s; starting the service");
  Pipeline pipe(o, "", false);
  const auto t0 = Clock::now();
  CpuMeter cpu(o, pipe.pids());
  auto last_progress = Clock::now();
  std::int64_t last = -1;
  for (;;) {
    std::this_thread::sleep_for(100ms);
    const std::int64_t applied = scalar(oc, applied_sql);
    if (applied != last) last_progress = Clock::now();
    last = applied;
    r.applied = applied;
    if (applied >= r.events || Clock::now() - last_progress > 60s) break;
  }
  // The rate from the service's own clock: first to last applied_at of these events (the
  // service may start consuming before /readyz answers).
  {
    pqxx::nontransaction tx(oc);
    const auto row = tx.exec("SELECT extract(epoch from max(applied_at) - min(applied_at))::float8 FROM oss.status_history "
                             "WHERE id > " + std::to_string(base_id))[0];
    r.seconds = row[0].is_null() ? Secs(Clock::now() - t0).count() : row[0].as<double>();
  }
  r.rate = static_cast<double>(r.applied) / r.seconds;
  r.cpu = cpu.finish();
  collect_service_metrics(r.metrics, pipe);
  pipe.stop();
  say("capacity: " + fmt_num(static_cast<double>(r.applied)) + " of " + fmt_num(static_cast<double>(r.events)) +
      " applied in " + fmt_num(r.seconds, 1) + " s: " + fmt_num(r.rate) + " events/s; mean batch " +
      fmt_num(r.metrics.svc_batch_mean, 1) + " messages, " + fmt_num(r.metrics.svc_batch_ms, 1) + " ms; CPU " + r.cpu);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Backlog drain

struct DrainResult {
  std::int64_t events = 0, applied = 0;
  double fill_seconds = 0;
  double t50 = NAN, t90 = NAN, t99 = NAN, t100 = NAN, relays_empty = NAN, wall = 0;
  std::string cpu;
  PhaseResult metrics;
};

DrainResult backlog_drain(const Options& o, const std::string& poll) {
  DrainResult r;
  set_notify(o, "off");
  const std::string crm_url = db_url(o, o.crm_db), mes_url = db_url(o, o.mes_db), oss_url = db_url(o, o.oss_db);
  pqxx::connection oc(oss_url), cc(crm_url), mc(mes_url);
  const std::int64_t base_id = scalar(oc, "SELECT coalesce(max(id), 0) FROM oss.status_history");
  const std::int64_t orders = (o.backlog + 5) / 6;
  r.events = orders * 6;
  say("drain: emitting " + fmt_num(static_cast<double>(r.events)) + " events (" + fmt_num(static_cast<double>(orders)) +
      " order lifecycles) in bulk transactions, relays and service stopped");
  const auto f0 = Clock::now();
  const std::int64_t chunk = 5000;
  for (const auto& st : kLifecycle) {
    pqxx::connection& c = st.source[0] == 'c' ? cc : mc;
    for (std::int64_t from = 1; from <= orders; from += chunk) {
      pqxx::work tx(c);
      tx.exec_params(
          "SELECT count(outbox.emit($1, 'order', 'd-' || g, 'order.status_changed', "
          "  jsonb_build_object('status', $2::text, 'actor', 'e2e_bench'))) "
          "FROM generate_series($3::bigint, $4::bigint) g",
          std::string(st.source), std::string(st.status), from, std::min(orders, from + chunk - 1));
      tx.commit();
    }
  }
  r.fill_seconds = Secs(Clock::now() - f0).count();
  for (auto* c : {&cc, &mc}) {
    pqxx::nontransaction tx(*c);
    tx.exec("ANALYZE outbox.events");
    tx.exec("CHECKPOINT");
  }
  say("drain: backlog ready in " + fmt_num(r.fill_seconds, 1) + " s; starting service and relays");
  const std::string applied_sql = "SELECT count(*) FROM oss.status_history WHERE id > " + std::to_string(base_id);
  const std::string unpub = "SELECT count(*) FROM outbox.events WHERE published_at IS NULL AND parked_at IS NULL";
  const auto t0 = Clock::now();
  Pipeline pipe(o, poll);
  CpuMeter cpu(o, pipe.pids());
  auto last_progress = Clock::now();
  std::int64_t last = -1;
  auto next_log = Clock::now() + 10s;
  for (;;) {
    std::this_thread::sleep_for(200ms);
    const std::int64_t applied = scalar(oc, applied_sql);
    const double t = Secs(Clock::now() - t0).count();
    if (applied != last) last_progress = Clock::now();
    last = applied;
    const double frac = static_cast<double>(applied) / static_cast<double>(r.events);
    if (std::isnan(r.t50) && frac >= 0.5) r.t50 = t;
    if (std::isnan(r.t90) && frac >= 0.9) r.t90 = t;
    if (std::isnan(r.t99) && frac >= 0.99) r.t99 = t;
    if (std::isnan(r.relays_empty) && scalar(cc, unpub) + scalar(mc, unpub) == 0) r.relays_empty = t;
    if (Clock::now() >= next_log) {
      say("  drain: " + fmt_num(static_cast<double>(applied)) + " applied after " + fmt_num(t, 1) + " s");
      next_log += 10s;
    }
    r.applied = applied;
    if (applied >= r.events) {
      r.t100 = t;
      break;
    }
    if (Clock::now() - last_progress > 150s || t > o.drain_timeout) break;
  }
  r.wall = Secs(Clock::now() - t0).count();
  r.cpu = cpu.finish();
  collect_service_metrics(r.metrics, pipe);
  pipe.stop();
  say("drain: " + fmt_num(static_cast<double>(r.applied)) + " of " + fmt_num(static_cast<double>(r.events)) +
      " applied; 99 % at " + fmt_num(r.t99, 1) + " s, all at " + fmt_num(r.t100, 1) + " s");
  return r;
}

// ---------------------------------------------------------------------------------------------
// Report

struct Results {
  LoadResult pg8;
  ConfirmResult w500;
  std::optional<CapacityResult> capacity;
  std::vector<PhaseResult> phases;
  std::optional<DrainResult> drain;
  std::string pg_version, machine, date, cpu_model;
};

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : " ") + x;
  return out;
}

std::string report(const Options& o, const Results& r) {
  std::ostringstream md;
  const double pg = r.pg8.rate, mq = r.w500.rate;
  md << "Run: " << r.date << "; " << r.machine << "; " << r.cpu_model << "; " << r.pg_version << "; RabbitMQ "
     << shell_out("dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null") << "; programs from " << o.bin_dir
     << (o.quick ? "; **--quick sizes**" : "") << ".\n\n";
  md << "| run | setting | producers achieved | applied | emit → applied p50 / p99 / p99.9 / max | of which emit → "
        "broker confirm p50 / p99 | in flight at end (bounded?) | ratio: applied ÷ raw PG commits (8 clients) / ÷ raw "
        "confirms |\n|---|---|---|---|---|---|---|---|\n";
  md << "| raw PostgreSQL: single-row INSERT commits, 8 clients | fsync on | " << fmt_num(pg) << " commits/s (p50 "
     << fmt_num(r.pg8.p50_ms, 2) << " ms, p99 " << fmt_num(r.pg8.p99_ms, 2) << " ms) | | | | | limit |\n";
  md << "| raw RabbitMQ: quorum queue, persistent, confirms, window 500 | | " << fmt_num(mq) << " msg/s (confirm p50 "
     << fmt_num(r.w500.p50_ms, 1) << " ms, p99 " << fmt_num(r.w500.p99_ms, 1) << " ms) | | | | | limit |\n";
  if (r.capacity) {
    const auto& c = *r.capacity;
    md << "| **consumer capacity**: the service alone, " << fmt_num(static_cast<double>(c.events))
       << " events pre-loaded in its queue"
       << (o.capacity_mes_lead > 0 ? ", each MES event " + fmt_num(static_cast<double>(o.capacity_mes_lead)) +
                                         " events ahead of its CRM predecessor"
                                   : std::string())
       << " | " << (o.service_args.empty() ? std::string("defaults") : join(o.service_args))
       << " | | **" << fmt_num(c.rate) << " events/s** (" << fmt_num(static_cast<double>(c.applied)) << " in "
       << fmt_num(c.seconds, 1) << " s) | | | | " << fmt_pct(c.rate / pg) << " / " << fmt_pct(c.rate / mq) << " |\n";
  }
  for (const auto& p : r.phases)
    for (const auto& s : p.steps) {
      md << "| **" << p.name << (p.steps.size() > 1 ? ", step " + fmt_num(s.target) + "/s" : "") << "** | "
         << p.setting << " | " << fmt_num(s.achieved()) << " events/s of " << fmt_num(s.target) << " | **"
         << fmt_num(s.applied_rate()) << " events/s** | **" << fmt_num(s.p50, 1) << " / " << fmt_num(s.p99, 1)
         << "** / " << fmt_num(s.p999, 1) << " / " << fmt_num(s.max, 1) << " ms (" << fmt_num(static_cast<double>(s.rows))
         << " events) | " << fmt_num(s.relay_p50, 1) << " / " << fmt_num(s.relay_p99, 1) << " ms | "
         << fmt_num(static_cast<double>(s.end_in_flight)) << " (" << (s.bounded ? "yes" : "**no**") << ", "
         << fmt_num(s.growth) << "/s) | " << fmt_pct(s.applied_rate() / pg) << " / " << fmt_pct(s.applied_rate() / mq)
         << " |\n";
    }
  if (r.drain) {
  const auto& d = *r.drain;
  const double d99 = 0.99 * static_cast<double>(d.events) / d.t99;
  const auto lifecycles = d.events / 6;
  const double dall = std::isnan(d.t100) ? static_cast<double>(d.applied) / d.wall : static_cast<double>(d.events) / d.t100;
  md << "| **backlog drain** of " << fmt_num(static_cast<double>(d.events)) << " events (" << fmt_num(static_cast<double>(lifecycles))
     << " lifecycles) | emitted with everything stopped; relays --poll-interval " << o.fast_poll << " | | **"
     << fmt_num(dall) << " events/s** to the last (" << fmt_num(d.t100, 1) << " s), " << fmt_num(d99)
     << " events/s to 99 % (" << fmt_num(d.t99, 1) << " s) | 50 % at " << fmt_num(d.t50, 1) << " s, 90 % at "
     << fmt_num(d.t90, 1) << " s | relays' outboxes empty at " << fmt_num(d.relays_empty, 1) << " s ("
     << fmt_num(static_cast<double>(d.events) / d.relays_empty) << " events/s) | " << fmt_num(static_cast<double>(d.events - d.applied))
     << " left | " << fmt_pct(d99 / pg) << " / " << fmt_pct(d99 / mq) << " (to 99 %) |\n";
  }

  // Targets.
  double best_sustained = 0;
  for (const auto& p : r.phases)
    for (const auto& s : p.steps)
      if (s.bounded && s.achieved() >= 0.97 * s.target) best_sustained = std::max(best_sustained, s.applied_rate());
  md << "\nTargets: ≥ 5,000 events/s sustained end to end: **" << (best_sustained >= 5000 ? "met" : "NOT met")
     << "** (highest step with producers on schedule and a bounded backlog: " << fmt_num(best_sustained)
     << " events/s applied). ";
  for (const auto& p : r.phases)
    for (const auto& s : p.steps)
      if (s.target == 2000)
        md << "p99 < 100 ms at 2,000 events/s (" << p.setting << "): **" << (s.p99 < 100 ? "met" : "NOT met") << "** ("
           << fmt_num(s.p99, 1) << " ms, producers at " << fmt_num(s.achieved()) << "/s). ";
  md << "\n\nDetails:\n\n";
  md << "- Raw limits measured in this run, before the pipeline: PostgreSQL 8 clients for " << fmt_num(o.raw_pg_seconds)
     << " s (CPU " << r.pg8.cpu << "); RabbitMQ window 500 for " << fmt_num(o.raw_amqp_seconds) << " s, "
     << fmt_num(static_cast<double>(r.w500.msgs)) << " messages of " << r.w500.body_bytes << " bytes (CPU " << r.w500.cpu
     << ").\n";
  for (const auto& p : r.phases) {
    md << "- " << p.name << " (" << p.threads << " producer threads): CPU in cores while producing: " << p.cpu << ".\n";
    for (const auto& s : p.steps)
      md << "  - " << fmt_num(s.target) << "/s: producer emit+commit p50 " << fmt_num(s.commit_p50, 2) << " ms, p99 "
         << fmt_num(s.commit_p99, 2) << " ms; sends >10 ms behind schedule " << fmt_num(static_cast<double>(s.late))
         << " of " << fmt_num(static_cast<double>(s.emitted)) << "; in flight max " << fmt_num(static_cast<double>(s.max_in_flight))
         << ", at the end " << fmt_num(static_cast<double>(s.end_in_flight)) << " (outbox unpublished "
         << fmt_num(static_cast<double>(s.end_unpublished)) << ", events queue " << fmt_num(static_cast<double>(s.end_queued))
         << ").\n";
    md << "  - service: events early (parked until their predecessor) " << fmt_num(p.early)
       << (!std::isnan(p.retries_queue)
               ? " (retries of parked events: " + fmt_num(p.retries_queue) + " through the queue" +
                     (!std::isnan(p.retries_in_place) ? ", " + fmt_num(p.retries_in_place) + " in place" : "") +
                     ")"
               : "")
       << ", stale " << fmt_num(p.stale)
       << ", duplicate " << fmt_num(p.duplicate) << ", dead-lettered " << fmt_num(p.dead_lettered) << "; mean batch "
       << fmt_num(p.svc_batch_mean, 1) << " messages, " << fmt_num(p.svc_batch_ms, 1)
       << " ms to decide+commit; oss_event_end_to_end_seconds mean " << fmt_num(p.svc_e2e_mean_ms, 1)
       << " ms; relays' emit→confirm mean " << fmt_num(p.relay_confirm_mean_ms, 1) << " ms; "
       << fmt_num(static_cast<double>(p.applied)) << " of " << fmt_num(static_cast<double>(p.emitted)) << " applied "
       << fmt_num(p.catch_up_seconds, 1) << " s after the producers stopped"
       << (p.delayed_at_end > 0 ? "; " + fmt_num(static_cast<double>(p.delayed_at_end)) +
                                      " early events were still parked then (not lost: applied with their predecessor, "
                                      "or retried through the queue when due)"
                                : std::string())
       << ".\n";
  }
  if (r.capacity)
    md << "- Consumer capacity: queue filled in " << fmt_num(r.capacity->fill_seconds, 1) << " s; CPU in cores: "
       << r.capacity->cpu << "; mean batch " << fmt_num(r.capacity->metrics.svc_batch_mean, 1) << " messages, "
       << fmt_num(r.capacity->metrics.svc_batch_ms, 1) << " ms per batch; early " << fmt_num(r.capacity->metrics.early)
       << ".\n";
  if (r.drain) {
  const auto& d = *r.drain;
  md << "- Drain: fill " << fmt_num(d.fill_seconds, 1) << " s; CPU in cores during the drain: " << d.cpu
     << "; service: early " << fmt_num(d.metrics.early) << ", stale " << fmt_num(d.metrics.stale) << ", dead-lettered "
     << fmt_num(d.metrics.dead_lettered) << ", mean batch " << fmt_num(d.metrics.svc_batch_mean, 1) << " messages, "
     << fmt_num(d.metrics.svc_batch_ms, 1) << " ms per batch.\n";
  }
  return md.str();
}

int run(const Options& o) {
  Results res;
  describe_run(o, res.machine, res.cpu_model, res.date, res.pg_version);
  { std::ofstream log(o.log, std::ios::trunc); }
  say("run id " + o.id + "; child logs in " + o.log);

  say("0 raw limits: PostgreSQL single-row commits (8 clients), RabbitMQ confirms (window 500)");
  recreate_db(o, o.raw_db);
  exec_sql(db_url(o, o.raw_db),
           "CREATE TABLE raw_commit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, client int NOT NULL, "
           "n bigint NOT NULL, payload jsonb NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())");
  const Statement insert = [](pqxx::nontransaction& tx, int client, std::uint64_t n) {
    tx.exec_prepared("s", client, static_cast<std::int64_t>(n), payload_json("o-" + std::to_string(n % 1000)));
  };
  exec_sql(db_url(o, o.raw_db), "CHECKPOINT");
  res.pg8 = pg_load(db_url(o, o.raw_db), 8, o.raw_pg_seconds, {},
                    "INSERT INTO raw_commit (client, n, payload) VALUES ($1, $2, $3::jsonb)", insert, o);
  say("  PostgreSQL 8 clients: " + fmt_num(res.pg8.rate) + " commits/s");
  drop_db(o, o.raw_db);
  res.w500 = amqp_confirm_rate(o, "bench-raw", o.raw_exchange, o.raw_queue, 500, o.raw_amqp_seconds);
  say("  RabbitMQ window 500: " + fmt_num(res.w500.rate) + " msg/s");

  say("setting up databases " + o.crm_db + ", " + o.mes_db + ", " + o.oss_db);
  for (const auto& db : {o.crm_db, o.mes_db, o.oss_db}) recreate_db(o, db);
  for (const auto& db : {o.crm_db, o.mes_db})
    run_to_completion({o.bin_dir + "/outbox-relay", "install", "--db", db_url(o, db)}, o.log);
  run_to_completion({o.bin_dir + "/order-status-service", "migrate", "--db", db_url(o, o.oss_db)}, o.log);

  int phase_no = 0;
  if (o.phase("capacity")) res.capacity = consumer_capacity(o);
  if (o.phase("steady")) {
    for (double rate : o.steady_rates)
      res.phases.push_back(run_load(o, ++phase_no, "steady " + fmt_num(rate) + "/s", "on", "100ms", {rate},
                                    o.steady_seconds, o.threads));
    res.phases.push_back(
        run_load(o, ++phase_no, "steady 2,000/s", "off", o.fast_poll, {2000}, o.steady_seconds, o.threads));
    // Producers notify only while a relay waits (outbox schema 4); relays at their default poll.
    res.phases.push_back(
        run_load(o, ++phase_no, "steady 2,000/s", "idle", "100ms", {2000}, o.steady_seconds, o.threads));
  }
  if (o.phase("ramp"))
    res.phases.push_back(run_load(o, ++phase_no, "ramp", o.ramp_notify, o.ramp_notify == "off" ? o.fast_poll : "100ms",
                                  o.ramp_rates, o.ramp_seconds, o.ramp_threads));
  if (o.phase("drain")) res.drain = backlog_drain(o, o.fast_poll);

  const std::string md = report(o, res);
  emit_report(md, o.markdown_out);
  if (!o.keep) {
    for (const auto& db : {o.crm_db, o.mes_db, o.oss_db}) drop_db(o, db);
    amqp_cleanup(o, "e2e_bench-cleanup", [&o](oss::amqp::Connection& a) {
      a.delete_queue(o.raw_queue);
      a.delete_exchange(o.raw_exchange);
      a.delete_queue(o.queue);
      a.delete_queue(o.dlq);
      for (const char* tier : {"1s", "5s", "30s", "120s"}) a.delete_queue(o.queue + ".retry." + tier);
      a.delete_exchange(o.exchange);
      a.delete_exchange(o.notifications);
      a.delete_queue(o.notifications_tail);
    });
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bench::set_program("e2e_bench");
  const Options o = parse_args(argc, argv);
  return bench::guarded_main("e2e_bench", [&] { return run(o); });
}
