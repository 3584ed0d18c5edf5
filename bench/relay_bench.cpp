// relay_bench: the outbox relay measured side by side with the raw limits of its two servers,
// in ONE run on the same machine (docs/performance.md, "## outbox-relay").
//
//   1. PostgreSQL single-row commits (plain INSERT, 1 and 8 clients) and outbox.emit commits
//      (8 clients) with NOTIFY on and off;
//   2. RabbitMQ persistent publish-with-confirm into a quorum queue (window 500, one at a time);
//   3. backlog drain: N rows emitted with no relay running, then `outbox-relay run` started and
//      timed until nothing is unpublished;
//   4. steady producer rates (500/s and 2,000/s, paced, single-row transactions) with the relay
//      running; commit-to-confirm latency = published_at - occurred_at read back from the table;
//      then 2,000/s again with NOTIFY off (`outbox.notify = off`) and the relay polling every
//      10 ms (--steady-quiet-rates, --fast-poll), and once more with `outbox.notify = idle`
//      (--steady-idle-rates; producers notify only while the relay waits).
//
// The relay is the real binary, run as a child process. The program prints a markdown table
// (and writes it to --markdown-out FILE when given).
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
  std::string relay;
  std::string relay_log = "/tmp/relay_bench.relay.log";
  std::string batch_size = "500";
  double raw_pg_seconds = 10, raw_amqp_seconds = 8, one_at_a_time_seconds = 5, emit_seconds = 10;
  std::int64_t backlog = 200'000;
  double steady_seconds = 30;
  std::vector<double> steady_rates{500, 2000};
  // Steady rates run a second time with the producers' `outbox.notify = off` and the relay
  // woken by polling every --fast-poll instead: NOTIFY serializes producer commits (measured in
  // step 1), so this is the setting for producers that need more commits/s than NOTIFY allows.
  std::vector<double> steady_quiet_rates{2000};
  // And a third time with `outbox.notify = idle` (schema version 4): producers notify only while
  // the relay waits; the relay keeps its default --poll-interval as the safety net.
  std::vector<double> steady_idle_rates{500, 2000};
  std::string fast_poll = "10ms";
  int steady_threads = 16;
  double drain_timeout = 600;
  // A/B mode (--compare B): raw confirm rate, then drains alternating relay A (--relay) and
  // relay B, then the raw confirm rate again; nothing else.
  std::string compare;
  int ab_rounds = 2;
  std::vector<std::string> extra_a, extra_b;  // extra `run` flags per relay (space-separated)
  std::vector<std::string> relay_args;         // --relay-arg: extra `run` flags for every relay
};

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

[[noreturn]] void usage(const std::string& problem) {
  usage_exit("relay_bench", problem,
             "relay_bench --pg-base postgresql://user:pw@host:port --amqp amqp://u:p@host:port/%2f "
             "--relay build/bin/outbox-relay [--quick] [--batch-size N] [--backlog N] "
             "[--steady-seconds S] [--steady-rates 500,2000] [--steady-quiet-rates 2000] [--steady-idle-rates 500,2000] [--fast-poll 10ms] "
             "[--markdown-out FILE] [--relay-arg FLAG]... "
             "[--servers-dir DIR] [--relay-log FILE] [--keep] "
             "[--compare RELAY_B [--ab-rounds N] [--extra-a 'FLAGS'] [--extra-b 'FLAGS']]");
}

Options parse_args(int argc, char** argv) {
  Options o;
  bool backlog_set = false, steady_set = false;
  parse_flags(argc, argv, o, usage, [&](const std::string& f, const std::function<std::string()>& value) {
    if (f == "--relay") o.relay = value();
    else if (f == "--relay-log") o.relay_log = value();
    else if (f == "--batch-size") o.batch_size = value();
    else if (f == "--backlog") {
      o.backlog = std::stoll(value());
      backlog_set = true;
    } else if (f == "--steady-seconds") {
      o.steady_seconds = std::stod(value());
      steady_set = true;
    } else if (f == "--steady-rates") {
      o.steady_rates = parse_list(value());
    } else if (f == "--steady-quiet-rates") {
      o.steady_quiet_rates = parse_list(value());
    } else if (f == "--steady-idle-rates") {
      o.steady_idle_rates = parse_list(value());
    } else if (f == "--fast-poll") {
      o.fast_poll = value();
    } else if (f == "--compare") {
      o.compare = value();
    } else if (f == "--ab-rounds") {
      o.ab_rounds = std::stoi(value());
    } else if (f == "--extra-a") {
      o.extra_a = split_words(value());
    } else if (f == "--extra-b") {
      o.extra_b = split_words(value());
    } else if (f == "--relay-arg") {
      o.relay_args.push_back(value());
    } else {
      return false;
    }
    return true;
  });
  if (o.pg_base.empty() || o.amqp.empty() || o.relay.empty()) usage("--pg-base, --amqp and --relay are required");
  finish_common(o);
  if (o.quick) {
    o.raw_pg_seconds = 3;
    o.raw_amqp_seconds = 3;
    o.one_at_a_time_seconds = 2;
    o.emit_seconds = 3;
    if (!backlog_set) o.backlog = 20'000;
    if (!steady_set) o.steady_seconds = 10;
    o.drain_timeout = 120;
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Child processes, HTTP, /proc

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// A LISTEN connection draining outbox_events notifications, as a running relay would hold.
class Listener {
 public:
  explicit Listener(const std::string& url) {
    thread_ = std::thread([this, url] {
      try {
        pqxx::connection c(url);
        Receiver r(c, count_);
        started_ = true;
        while (!stop_.load()) c.await_notification(0, 100'000);
      } catch (const std::exception& e) {
        say(std::string("listener: ") + e.what());
        started_ = true;
      }
    });
    while (!started_.load()) std::this_thread::sleep_for(5ms);
  }
  ~Listener() {
    stop_ = true;
    thread_.join();
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  std::uint64_t received() const { return count_.load(); }

 private:
  class Receiver final : public pqxx::notification_receiver {
   public:
    Receiver(pqxx::connection_base& c, std::atomic<std::uint64_t>& n)
        : pqxx::notification_receiver(c, "outbox_events"), n_(n) {}
    void operator()(const std::string&, int) override { ++n_; }

   private:
    std::atomic<std::uint64_t>& n_;
  };
  std::atomic<std::uint64_t> count_{0};
  std::atomic<bool> stop_{false}, started_{false};
  std::thread thread_;
};

const char* kEmitSql = "SELECT outbox.emit($1, 'order', $2, 'created', $3::jsonb)";

// ---------------------------------------------------------------------------------------------
// RabbitMQ

const char* kRelayExchange = "relay_bench.events";
const char* kRelayQueue = "relay_bench.relay";
const char* kRawExchange = "relay_bench.raw";
const char* kRawQueue = "relay_bench.raw";

// ---------------------------------------------------------------------------------------------
// The relay

class RelayProcess {
 public:
  RelayProcess(const Options& o, const std::string& db, const std::string& binary = {},
               const std::vector<std::string>& extra = {})
      : port_(free_port()) {
    const std::string bin = binary.empty() ? o.relay : binary;
    {
      std::ofstream log(o.relay_log, std::ios::app);
      log << "\n==== relay_bench: starting relay " << bin << " for " << db << " ====\n";
    }
    std::vector<std::string> args{bin, "run", "--db", db_url(o, db), "--amqp", o.amqp, "--exchange", kRelayExchange,
                                  "--metrics", "127.0.0.1:" + std::to_string(port_), "--batch-size", o.batch_size};
    args.insert(args.end(), o.relay_args.begin(), o.relay_args.end());
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = spawn(args, o.relay_log);
  }
  ~RelayProcess() {
    if (pid_ > 0) stop_child(pid_, "relay");
  }
  RelayProcess(const RelayProcess&) = delete;
  RelayProcess& operator=(const RelayProcess&) = delete;

  pid_t pid() const { return pid_; }
  /// Waits until /readyz answers 200 (database and broker reached, loop running).
  void wait_ready(std::chrono::seconds timeout) { bench::wait_ready(pid_, port_, timeout, "the relay"); }
  std::string metrics() const {
    auto r = http_get(port_, "/metrics");
    return r ? r->second : std::string();
  }
  void stop() {
    if (pid_ > 0) stop_child(pid_, "relay");
    pid_ = -1;
  }

 private:
  int port_;
  pid_t pid_ = -1;
};

struct RelayHist {
  double count = 0, mean_ms = 0, p50_ms = 0, p99_ms = 0;
};

RelayHist relay_hist(const std::string& metrics) {
  const auto h = parse_histogram(metrics, "outbox_relay_emit_to_confirm_seconds");
  RelayHist r;
  r.count = h.count;
  r.mean_ms = h.count > 0 ? 1000.0 * h.sum / h.count : std::numeric_limits<double>::quiet_NaN();
  r.p50_ms = 1000.0 * histogram_quantile(h, 0.5);
  r.p99_ms = 1000.0 * histogram_quantile(h, 0.99);
  return r;
}

/// Samples what the relay's database connection is doing (pg_stat_activity) from a thread of
/// its own: a cheap profile of where the relay's time goes, seen from PostgreSQL.
class StateSampler {
 public:
  StateSampler(const std::string& url, std::chrono::milliseconds period) {
    thread_ = std::thread([this, url, period] {
      try {
        pqxx::connection c(url);
        c.prepare("q",
                  "SELECT state, left(query, 40), coalesce(wait_event_type || ':' || wait_event, '') "
                  "FROM pg_stat_activity WHERE application_name = 'outbox-relay' AND pid <> pg_backend_pid() LIMIT 1");
        while (!stop_.load()) {
          std::string st;
          {
            pqxx::nontransaction tx(c);
            const auto r = tx.exec_prepared("q");
            st = r.empty() ? "no connection" : classify(r[0][0].c_str(), r[0][1].c_str(), r[0][2].c_str());
          }
          {
            std::lock_guard l(mu_);
            ++counts_[st];
            ++samples_;
          }
          std::this_thread::sleep_for(period);
        }
      } catch (const std::exception& e) {
        say(std::string("sampler: ") + e.what());
      }
    });
  }
  ~StateSampler() { stop(); }
  StateSampler(const StateSampler&) = delete;
  StateSampler& operator=(const StateSampler&) = delete;
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  /// "idle in PostgreSQL ... 78.1 %; mark published (UPDATE) 9.4 %; ..."
  std::string summary() {
    std::lock_guard l(mu_);
    std::vector<std::pair<int, std::string>> v;
    for (const auto& [k, n] : counts_) v.emplace_back(n, k);
    std::sort(v.rbegin(), v.rend());
    std::string out = std::to_string(samples_) + " samples): ";
    bool first = true;
    for (const auto& [n, k] : v) {
      if (!first) out += "; ";
      out += k + " " + fmt_pct(static_cast<double>(n) / std::max(1, samples_));
      first = false;
    }
    return out;
  }

 private:
  static std::string classify(const std::string& state, const std::string& query, const std::string& wait) {
    std::string what;
    if (state == "idle") return "idle: outside PostgreSQL (broker publish/confirm, relay CPU, or waiting for NOTIFY)";
    if (state == "idle in transaction") return "idle in transaction (between UPDATE and COMMIT)";
    if (query.rfind("SELECT position", 0) == 0) what = "fetch SELECT";
    else if (query.rfind("UPDATE outbox.events SET published_at", 0) == 0) what = "mark UPDATE";
    else if (query.rfind("WITH moved AS", 0) == 0) what = "mark: move to the archive";
    else if (query.rfind("COMMIT", 0) == 0) what = "COMMIT of the mark";
    else what = "other (" + query.substr(0, 24) + ")";
    return what + (wait.empty() ? " [on CPU]" : " [" + wait + "]");
  }
  std::mutex mu_;
  std::map<std::string, int> counts_;
  int samples_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct DrainResult {
  std::int64_t rows = 0, left = 0, parked = 0;
  double fill_seconds = 0, fill_rate = 0;
  double wall_seconds = 0, wall_rate = 0;  // relay spawn -> nothing unpublished
  double db_seconds = 0, db_rate = 0;      // first -> last published_at
  double relay_published = 0;
  double batch_mean = 0, batch_cycle_ms = 0;
  std::string relay_state;  // sampled pg_stat_activity of the relay's connection
  std::string cpu;
};

/// Where every event of an outbox can be read: outbox.all_events from schema version 3 on
/// (published rows move to outbox.events_archive), outbox.events before.
std::string all_events(pqxx::connection& c) {
  pqxx::nontransaction tx(c);
  return tx.exec("SELECT to_regclass('outbox.all_events') IS NOT NULL")[0][0].as<bool>() ? "outbox.all_events"
                                                                                       : "outbox.events";
}

DrainResult backlog_drain(const Options& o, const std::string& db, const std::string& binary = {},
                          const std::vector<std::string>& extra = {}) {
  DrainResult r;
  const std::string url = db_url(o, db);
  pqxx::connection c(url);
  {
    oss::amqp::Connection a(amqp_options(o, "relay_bench-setup"));
    declare_quorum_queue(a, kRelayExchange, kRelayQueue);
    a.purge_queue(kRelayQueue);
  }
  say("filling a backlog of " + fmt_num(static_cast<double>(o.backlog)) + " rows through outbox.emit (no relay running)");
  const auto f0 = Clock::now();
  const std::int64_t chunk = 10'000;
  for (std::int64_t from = 1; from <= o.backlog; from += chunk) {
    const std::int64_t to = std::min(o.backlog, from + chunk - 1);
    pqxx::work tx(c);
    tx.exec_params(
        "SELECT count(outbox.emit('backlog', 'order', 'o-' || (g % 5000), 'created', "
        "  jsonb_build_object('order_id', 'o-' || (g % 5000), 'status', 'created', 'amount_cents', 12950, "
        "                     'note', repeat('x', 100)))) "
        "FROM generate_series($1::bigint, $2::bigint) g",
        from, to);
    tx.commit();
  }
  r.fill_seconds = Secs(Clock::now() - f0).count();
  r.fill_rate = static_cast<double>(o.backlog) / r.fill_seconds;
  {
    pqxx::nontransaction tx(c);
    tx.exec("ANALYZE outbox.events");
    tx.exec("CHECKPOINT");
  }
  r.rows = scalar(c, "SELECT count(*) FROM outbox.events WHERE published_at IS NULL");
  say("backlog ready (" + fmt_num(static_cast<double>(r.rows)) + " rows in " + fmt_num(r.fill_seconds, 1) +
      " s); starting the relay");

  const auto t0 = Clock::now();
  RelayProcess relay(o, db, binary, extra);
  CpuMeter cpu(o, {{"relay", relay.pid()}});
  StateSampler sampler(url, 20ms);
  std::int64_t left = r.rows;
  auto next_log = Clock::now() + 5s;
  const auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(Secs(o.drain_timeout));
  while (left > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
    pqxx::nontransaction tx(c);
    // The partial index events_pending_idx covers exactly this predicate, so the poll is cheap.
    left = tx.exec("SELECT count(*) FROM outbox.events WHERE published_at IS NULL AND parked_at IS NULL")[0][0]
               .as<std::int64_t>();
    if (Clock::now() >= next_log) {
      say("  drain: " + fmt_num(static_cast<double>(left)) + " rows left after " +
          fmt_num(Secs(Clock::now() - t0).count(), 1) + " s");
      next_log += 5s;
    }
  }
  r.wall_seconds = Secs(Clock::now() - t0).count();
  r.left = left;
  r.cpu = cpu.finish();
  sampler.stop();
  r.relay_state = sampler.summary();
  const std::string metrics = relay.metrics();
  relay.stop();
  r.relay_published = sum_metric(metrics, "outbox_relay_published_total");
  const auto batches = parse_histogram(metrics, "outbox_relay_batch_size");
  const auto cycle = parse_histogram(metrics, "outbox_relay_confirm_latency_seconds");
  r.batch_mean = batches.count > 0 ? batches.sum / batches.count : 0;
  r.batch_cycle_ms = cycle.count > 0 ? 1000.0 * cycle.sum / cycle.count : 0;
  r.wall_rate = static_cast<double>(r.rows - left) / r.wall_seconds;
  {
    const std::string from = all_events(c);
    pqxx::nontransaction tx(c);
    const auto row = tx.exec(
        "SELECT count(*), coalesce(extract(epoch from max(published_at) - min(published_at)), 0)::float8, "
        "       (SELECT count(*) FROM outbox.events WHERE parked_at IS NOT NULL) "
        "FROM " + from + " WHERE source = 'backlog' AND published_at IS NOT NULL")[0];
    const auto published = row[0].as<std::int64_t>();
    r.db_seconds = row[1].as<double>();
    r.db_rate = r.db_seconds > 0 ? static_cast<double>(published) / r.db_seconds : 0;
    r.parked = row[2].as<std::int64_t>();
  }
  return r;
}

struct SteadyResult {
  double target = 0, achieved = 0;
  // "on"; "off": producers SET outbox.notify = off, relay --poll-interval fast_poll; "idle":
  // producers SET outbox.notify = idle, relay with its default --poll-interval.
  std::string notify = "on";
  std::int64_t rows = 0, unpublished = 0;
  std::uint64_t late = 0;
  double p50_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0;
  double commit_p50_ms = 0, commit_p99_ms = 0, commit_p999_ms = 0, commit_max_ms = 0;  // producer-side emit+commit
  // From the moment the producer's commit returned (its wall clock, same machine) to the
  // confirm: what the relay can influence. published_at - occurred_at above also contains the
  // producer's own commit (occurred_at is taken inside the transaction, before COMMIT).
  double from_commit_p50_ms = 0, from_commit_p99_ms = 0, from_commit_p999_ms = 0, from_commit_max_ms = 0;
  RelayHist hist;
  double batches = 0, batch_mean = 0, batch_cycle_ms = 0;
  std::string cpu, relay_state;
};

/// How a steady step wakes the relay, for the report.
std::string wake_label(const Options& o, const std::string& notify) {
  if (notify == "off") return "NOTIFY off, relay --poll-interval " + o.fast_poll;
  if (notify == "idle") {
    // The relay's own default unless --relay-arg set one.
    std::string poll = "100ms";
    for (std::size_t i = 0; i + 1 < o.relay_args.size(); ++i)
      if (o.relay_args[i] == "--poll-interval") poll = o.relay_args[i + 1];
    return "`outbox.notify = idle`, relay --poll-interval " + poll;
  }
  return "NOTIFY on";
}

SteadyResult steady(const Options& o, const std::string& db, double rate, const std::string& notify) {
  SteadyResult r;
  r.target = rate;
  r.notify = notify;
  const std::string url = db_url(o, db);
  const std::string source = "steady" + std::to_string(static_cast<long>(rate)) +
                             (notify == "off" ? "q" : notify == "idle" ? "i" : "");
  pqxx::connection c(url);
  RelayProcess relay(o, db, {},
                     notify == "off" ? std::vector<std::string>{"--poll-interval", o.fast_poll} : std::vector<std::string>{});
  relay.wait_ready(30s);
  {
    // Warm-up: one event through the whole path, so the relay holds its partitions and LISTENs.
    pqxx::work tx(c);
    tx.exec("SELECT outbox.emit('warmup', 'order', 'w-1', 'created', '{}'::jsonb)");
    tx.commit();
    const auto until = Clock::now() + 15s;
    while (scalar(c, "SELECT count(*) FROM outbox.events WHERE source = 'warmup' AND published_at IS NULL") > 0 &&
           Clock::now() < until)
      std::this_thread::sleep_for(20ms);
  }
  say("steady " + fmt_num(rate) + " events/s for " + fmt_num(o.steady_seconds) + " s (" +
      std::to_string(o.steady_threads) + " producer threads, one event per transaction, " + wake_label(o, notify) + ")");
  const int threads_n = o.steady_threads;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  Clock::time_point start{};
  const auto duration = std::chrono::duration_cast<Clock::duration>(Secs(o.steady_seconds));
  std::mutex mu;
  std::vector<double> commit_lat;
  std::vector<std::string> committed_ids;   // event_id of each emit ...
  std::vector<double> committed_at;         // ... and the wall clock when its commit returned
  std::uint64_t late = 0;
  std::string error;
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(threads_n));
  for (int j = 0; j < threads_n; ++j) {
    threads.emplace_back([&, j] {
      std::vector<double> mine, my_at;
      std::vector<std::string> my_ids;
      std::uint64_t my_late = 0;
      try {
        pqxx::connection pc(url);
        pc.prepare("emit", kEmitSql);
        pqxx::nontransaction tx(pc);
        if (notify != "on") tx.exec("SET outbox.notify = " + notify);
        ++ready;
        while (!go.load()) std::this_thread::sleep_for(1ms);
        for (std::uint64_t k = 0;; ++k) {
          const double at = static_cast<double>(k * static_cast<std::uint64_t>(threads_n) + static_cast<std::uint64_t>(j)) / rate;
          const auto due = start + std::chrono::duration_cast<Clock::duration>(Secs(at));
          if (due - start >= duration) break;
          if (Clock::now() < due) std::this_thread::sleep_until(due);
          else if (Clock::now() - due > 10ms) ++my_late;
          const auto t = Clock::now();
          const std::string agg = "o-" + std::to_string(j) + "-" + std::to_string(k % 1000);
          const auto res = tx.exec_prepared("emit", source, agg, payload_json(agg));
          my_at.push_back(epoch_now());
          mine.push_back(ms_between(t, Clock::now()));
          my_ids.push_back(res[0][0].c_str());
        }
      } catch (const std::exception& e) {
        std::lock_guard l(mu);
        error = e.what();
        ++ready;
      }
      std::lock_guard l(mu);
      commit_lat.insert(commit_lat.end(), mine.begin(), mine.end());
      committed_ids.insert(committed_ids.end(), my_ids.begin(), my_ids.end());
      committed_at.insert(committed_at.end(), my_at.begin(), my_at.end());
      late += my_late;
    });
  }
  while (ready.load() < threads_n) std::this_thread::sleep_for(5ms);
  CpuMeter cpu(o, {{"relay", relay.pid()}});
  StateSampler sampler(url, 20ms);
  start = Clock::now() + 50ms;
  go = true;
  for (auto& t : threads) t.join();
  const double produce_seconds = Secs(Clock::now() - start).count();
  r.cpu = cpu.finish();
  sampler.stop();
  r.relay_state = sampler.summary();
  if (!error.empty()) throw std::runtime_error("producer: " + error);
  // Let the relay finish what was committed.
  const auto until = Clock::now() + 120s;
  for (;;) {
    pqxx::nontransaction tx(c);
    r.unpublished = tx.exec_params("SELECT count(*) FROM outbox.events WHERE source = $1 AND published_at IS NULL",
                                   source)[0][0]
                        .as<std::int64_t>();
    if (r.unpublished == 0 || Clock::now() >= until) break;
    std::this_thread::sleep_for(50ms);
  }
  const std::string metrics = relay.metrics();
  relay.stop();
  r.hist = relay_hist(metrics);
  const auto batches = parse_histogram(metrics, "outbox_relay_batch_size");
  const auto cycle = parse_histogram(metrics, "outbox_relay_confirm_latency_seconds");
  r.batches = batches.count;
  r.batch_mean = batches.count > 0 ? batches.sum / batches.count : 0;
  r.batch_cycle_ms = cycle.count > 0 ? 1000.0 * cycle.sum / cycle.count : 0;
  {
    const std::string from = all_events(c);
    pqxx::nontransaction tx(c);
    const auto row = tx.exec_params(
        "SELECT count(*), "
        "  percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.99) WITHIN GROUP (ORDER BY d), "
        "  percentile_cont(0.999) WITHIN GROUP (ORDER BY d), max(d) "
        "FROM (SELECT extract(epoch from published_at - occurred_at)::float8 * 1000 AS d "
        "      FROM " + from + " WHERE source = $1 AND published_at IS NOT NULL) s",
        source)[0];
    r.rows = row[0].as<std::int64_t>();
    r.p50_ms = row[1].is_null() ? std::numeric_limits<double>::quiet_NaN() : row[1].as<double>();
    r.p99_ms = row[2].is_null() ? std::numeric_limits<double>::quiet_NaN() : row[2].as<double>();
    r.p999_ms = row[3].is_null() ? std::numeric_limits<double>::quiet_NaN() : row[3].as<double>();
    r.max_ms = row[4].is_null() ? std::numeric_limits<double>::quiet_NaN() : row[4].as<double>();
  }
  {
    // Commit-return times into a temporary table, joined with the published rows.
    std::string ids = "{", ats = "{";
    for (std::size_t i = 0; i < committed_ids.size(); ++i) {
      if (i > 0) {
        ids += ',';
        ats += ',';
      }
      ids += committed_ids[i];
      ats += std::to_string(committed_at[i]);
    }
    ids += '}';
    ats += '}';
    const std::string from = all_events(c);
    pqxx::work tx(c);
    tx.exec("CREATE TEMP TABLE bench_commits (event_id uuid PRIMARY KEY, committed_at float8) ON COMMIT DROP");
    tx.exec_params("INSERT INTO bench_commits SELECT * FROM unnest($1::uuid[], $2::float8[])", ids, ats);
    const auto row = tx.exec(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.99) WITHIN GROUP (ORDER BY d), "
        "  percentile_cont(0.999) WITHIN GROUP (ORDER BY d), max(d) "
        "FROM (SELECT (extract(epoch from e.published_at) - b.committed_at) * 1000 AS d "
        "      FROM " + from + " e JOIN bench_commits b USING (event_id) WHERE e.published_at IS NOT NULL) s")[0];
    const auto get = [](const pqxx::field& f) {
      return f.is_null() ? std::numeric_limits<double>::quiet_NaN() : f.as<double>();
    };
    r.from_commit_p50_ms = get(row[0]);
    r.from_commit_p99_ms = get(row[1]);
    r.from_commit_p999_ms = get(row[2]);
    r.from_commit_max_ms = get(row[3]);
    tx.commit();
  }
  // Producers that fall behind their schedule keep sending until every event is out: the
  // achieved rate is events over the time they actually took.
  r.achieved = static_cast<double>(commit_lat.size()) / std::max(produce_seconds, o.steady_seconds);
  r.late = late;
  r.commit_p50_ms = quantile(commit_lat, 0.5);
  r.commit_p99_ms = quantile(commit_lat, 0.99);
  r.commit_p999_ms = quantile(commit_lat, 0.999);
  r.commit_max_ms = commit_lat.empty() ? 0 : *std::max_element(commit_lat.begin(), commit_lat.end());
  return r;
}

// ---------------------------------------------------------------------------------------------
// Report

struct Results {
  LoadResult pg1, pg8, emit_on, emit_off;
  std::uint64_t notifications = 0;
  ConfirmResult w500, w1;
  DrainResult drain;
  std::vector<SteadyResult> steady;
  std::string pg_version, machine, date, cpu_model;
};

std::string report(const Options& o, const Results& r) {
  std::ostringstream md;
  const double raw_confirm = r.w500.rate;
  md << "Run: " << r.date << "; " << r.machine << "; " << r.cpu_model << "; " << r.pg_version
     << "; RabbitMQ " << shell_out("dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null") << "; relay --batch-size "
     << o.batch_size;
  for (const auto& a : o.relay_args) md << " " << a;
  md << (o.quick ? "; **--quick sizes**" : "") << ".\n\n";
  md << "| measurement | result | ratio to the raw limit (same run) |\n|---|---|---|\n";
  md << "| raw PostgreSQL: single-row INSERT commits, 1 client | " << fmt_num(r.pg1.rate) << " commits/s (p50 "
     << fmt_num(r.pg1.p50_ms, 2) << " ms, p99 " << fmt_num(r.pg1.p99_ms, 2) << " ms) | limit |\n";
  md << "| raw PostgreSQL: single-row INSERT commits, 8 clients | " << fmt_num(r.pg8.rate) << " commits/s (p50 "
     << fmt_num(r.pg8.p50_ms, 2) << " ms, p99 " << fmt_num(r.pg8.p99_ms, 2) << " ms) | limit |\n";
  md << "| outbox.emit commits, 8 clients, NOTIFY on (one LISTENer) | " << fmt_num(r.emit_on.rate)
     << " commits/s (p50 " << fmt_num(r.emit_on.p50_ms, 2) << " ms, p99 " << fmt_num(r.emit_on.p99_ms, 2) << " ms) | "
     << fmt_pct(r.emit_on.rate / r.pg8.rate) << " of raw 8-client commits |\n";
  md << "| outbox.emit commits, 8 clients, NOTIFY off (`outbox.notify = off`) | " << fmt_num(r.emit_off.rate)
     << " commits/s (p50 " << fmt_num(r.emit_off.p50_ms, 2) << " ms, p99 " << fmt_num(r.emit_off.p99_ms, 2)
     << " ms) | " << fmt_pct(r.emit_off.rate / r.pg8.rate) << " of raw 8-client commits; NOTIFY costs "
     << fmt_pct(1.0 - r.emit_on.rate / r.emit_off.rate) << " |\n";
  md << "| raw RabbitMQ: quorum queue, persistent, confirms, window 500 | " << fmt_num(r.w500.rate)
     << " msg/s (confirm p50 " << fmt_num(r.w500.p50_ms, 1) << " ms, p99 " << fmt_num(r.w500.p99_ms, 1)
     << " ms) | limit |\n";
  md << "| raw RabbitMQ: same, one at a time | " << fmt_num(r.w1.rate) << " msg/s (confirm p50 "
     << fmt_num(r.w1.p50_ms, 2) << " ms, p99 " << fmt_num(r.w1.p99_ms, 2) << " ms) | limit |\n";
  const auto& d = r.drain;
  md << "| **relay: backlog drain** of " << fmt_num(static_cast<double>(d.rows)) << " rows | **" << fmt_num(d.wall_rate)
     << " events/s** (relay start to empty, " << fmt_num(d.wall_seconds, 1) << " s); " << fmt_num(d.db_rate)
     << " events/s first-to-last published_at | **" << fmt_pct(d.wall_rate / raw_confirm)
     << "** of raw confirm rate (window 500); " << fmt_pct(d.db_rate / raw_confirm) << " by published_at |\n";
  for (const auto& s : r.steady) {
    md << "| **relay: steady " << fmt_num(s.target) << " events/s** (" << o.steady_threads
       << " producers, 1 event per transaction, " << fmt_num(o.steady_seconds) << " s, "
       << wake_label(o, s.notify) << ") | achieved "
       << fmt_num(s.achieved) << " events/s; emit (occurred_at, inside the producer's transaction) to confirm: p50 "
       << fmt_num(s.p50_ms, 1) << " ms, p99 " << fmt_num(s.p99_ms, 1) << " ms, p99.9 " << fmt_num(s.p999_ms, 1) << " ms, max " << fmt_num(s.max_ms, 1)
       << " ms (" << fmt_num(static_cast<double>(s.rows)) << " rows); **commit-to-confirm** (producer's COMMIT returned → confirm): **p50 "
       << fmt_num(s.from_commit_p50_ms, 1) << " ms, p99 " << fmt_num(s.from_commit_p99_ms, 1) << " ms**, p99.9 "
       << fmt_num(s.from_commit_p999_ms, 1) << " ms, max " << fmt_num(s.from_commit_max_ms, 1)
       << " ms | rate " << fmt_pct(s.achieved / r.pg8.rate)
       << " of raw 8-client commits, " << fmt_pct(s.achieved / raw_confirm) << " of raw confirms; p50 = "
       << fmt_num(s.p50_ms / (r.pg1.p50_ms + r.w1.p50_ms), 1) << "x the floor (1 commit + 1 confirm = "
       << fmt_num(r.pg1.p50_ms + r.w1.p50_ms, 2) << " ms) |\n";
  }
  md << "\nTargets: backlog drain >= 60 % of the raw confirm rate: **"
     << (d.wall_rate >= 0.6 * raw_confirm ? "met" : "NOT met") << "** (" << fmt_pct(d.wall_rate / raw_confirm)
     << "). ";
  // "At 2,000 events/s" only if the producers kept (nearly) to that schedule: a p99 measured
  // while they fell behind is the latency at a lower rate.
  for (const auto& s : r.steady)
    if (s.target == 2000) {
      const bool on_schedule = s.achieved >= 0.95 * s.target;
      md << "p99 commit-to-confirm < 50 ms at 2,000 events/s ("
         << wake_label(o, s.notify) << "): **"
         << (s.from_commit_p99_ms < 50 && on_schedule ? "met" : "NOT met") << "** ("
         << fmt_num(s.from_commit_p99_ms, 1) << " ms; from emit " << fmt_num(s.p99_ms, 1) << " ms"
         << (on_schedule ? "" : ", producers reached only " + fmt_num(s.achieved) + " events/s") << "). ";
    }
  md << "\n\nDetails:\n\n";
  md << "- Raw broker message body " << r.w500.body_bytes << " bytes plus the relay's headers (same shape as a relay "
        "envelope); " << fmt_num(static_cast<double>(r.w500.msgs)) << " messages in " << fmt_num(r.w500.seconds, 1)
     << " s at window 500.\n";
  md << "- NOTIFY run: the LISTEN connection received " << fmt_num(static_cast<double>(r.notifications))
     << " notifications (PostgreSQL folds duplicates within a transaction, not across them).\n";
  md << "- Backlog fill through outbox.emit, 10,000 rows per transaction: " << fmt_num(d.fill_rate)
     << " rows/s. Drain: relay published_total " << fmt_num(d.relay_published) << ", mean batch "
     << fmt_num(d.batch_mean, 0) << " rows, mean publish+confirm+mark per batch " << fmt_num(d.batch_cycle_ms, 1)
     << " ms, parked " << d.parked << ", left " << d.left << ".\n";
  md << "- Where the relay's database connection was during the drain (pg_stat_activity every 20 ms, "
     << d.relay_state;
  md << ".\n";
  md << "- CPU in cores (CPU-seconds per second; 2 cores = 2.00): raw PG 8 clients: " << r.pg8.cpu
     << "; emit NOTIFY on: " << r.emit_on.cpu << "; emit NOTIFY off: " << r.emit_off.cpu
     << "; raw confirms window 500: " << r.w500.cpu << "; drain: " << d.cpu << ".\n";
  for (const auto& s : r.steady) {
    md << "- Steady " << fmt_num(s.target) << "/s (" << wake_label(o, s.notify) << "): CPU " << s.cpu << "; producer emit+commit p50 "
       << fmt_num(s.commit_p50_ms, 2) << " ms, p99 " << fmt_num(s.commit_p99_ms, 2) << " ms, p99.9 "
       << fmt_num(s.commit_p999_ms, 2) << " ms, max " << fmt_num(s.commit_max_ms, 2) << " ms; sends more than 10 ms "
       << "behind schedule " << s.late << "; relay histogram outbox_relay_emit_to_confirm_seconds: "
       << fmt_num(s.hist.count) << " observations, mean " << fmt_num(s.hist.mean_ms, 1) << " ms, p50 ~"
       << fmt_num(s.hist.p50_ms, 1) << " ms, p99 ~" << fmt_num(s.hist.p99_ms, 1)
       << " ms (bucket-interpolated); " << fmt_num(s.batches) << " batches, mean " << fmt_num(s.batch_mean, 1)
       << " rows, mean publish+confirm+mark " << fmt_num(s.batch_cycle_ms, 1)
       << " ms per batch; unpublished after the wait " << s.unpublished << ".\n";
    md << "  - relay's database connection (pg_stat_activity every 20 ms, " << s.relay_state << ".\n";
  }
  return md.str();
}

/// A/B: the same drain with two relay binaries, alternated, between two raw confirm-rate runs;
/// each drain is reported as a ratio to the mean of the raw rates measured around it.
int run_ab(const Options& o) {
  std::string machine, cpu_model, date, pg_version;
  describe_run(o, machine, cpu_model, date, pg_version);
  { std::ofstream log(o.relay_log, std::ios::trunc); }
  const std::string db = "relay_bench_ab";
  struct Drain {
    std::string which;
    DrainResult r;
    double raw_before = 0, raw_after = 0;
  };
  std::vector<Drain> drains;
  auto raw = [&] {
    const auto w = amqp_confirm_rate(o, "relay_bench-raw", kRawExchange, kRawQueue, 500, o.raw_amqp_seconds);
    say("  raw confirms window 500: " + fmt_num(w.rate) + " msg/s (" + w.cpu + ")");
    return w.rate;
  };
  double last_raw = raw();
  for (int round = 0; round < o.ab_rounds; ++round) {
    for (const auto& [which, bin, extra] :
         {std::tuple<std::string, std::string, std::vector<std::string>>{"A", o.relay, o.extra_a},
          std::tuple<std::string, std::string, std::vector<std::string>>{"B", o.compare, o.extra_b}}) {
      recreate_db(o, db);
      run_to_completion({bin, "install", "--db", db_url(o, db)}, o.relay_log);
      Drain d{which, backlog_drain(o, db, bin, extra), last_raw, 0};
      {
        oss::amqp::Connection a(amqp_options(o, "relay_bench-setup"));
        a.purge_queue(kRelayQueue);
      }
      last_raw = raw();
      d.raw_after = last_raw;
      const double ref = (d.raw_before + d.raw_after) / 2;
      say("  drain " + which + ": " + fmt_num(d.r.wall_rate) + " events/s = " + fmt_pct(d.r.wall_rate / ref) +
          " of raw (" + d.r.cpu + ")");
      drains.push_back(std::move(d));
    }
  }
  std::ostringstream md;
  md << "A/B run: " << date << "; " << machine << "; " << pg_version << "; backlog "
     << fmt_num(static_cast<double>(o.backlog)) << " rows; --batch-size " << o.batch_size << ".\n"
     << "A = " << o.relay;
  for (const auto& e : o.extra_a) md << " " << e;
  md << "; B = " << o.compare;
  for (const auto& e : o.extra_b) md << " " << e;
  md << "\n\n| drain | relay | events/s (start to empty) | raw confirms before / after | ratio to their mean | "
        "mean batch | publish+confirm+mark per batch | CPU |\n|---|---|---|---|---|---|---|---|\n";
  int i = 0;
  for (const auto& d : drains) {
    const double ref = (d.raw_before + d.raw_after) / 2;
    md << "| " << ++i << " | " << d.which << " | " << fmt_num(d.r.wall_rate) << " | " << fmt_num(d.raw_before) << " / "
       << fmt_num(d.raw_after) << " | **" << fmt_pct(d.r.wall_rate / ref) << "** | " << fmt_num(d.r.batch_mean, 0)
       << " | " << fmt_num(d.r.batch_cycle_ms, 1) << " ms | " << d.r.cpu << " |\n";
  }
  md << "\nRelay connection states per drain (pg_stat_activity every 20 ms):\n\n";
  i = 0;
  for (const auto& d : drains) md << "- drain " << ++i << " (" << d.which << ", " << d.r.relay_state << "\n";
  emit_report(md.str(), o.markdown_out);
  if (!o.keep) {
    drop_db(o, db);
    amqp_cleanup(o, "relay_bench-cleanup", [](oss::amqp::Connection& a) {
      a.delete_queue(kRelayQueue);
      a.delete_queue(kRawQueue);
      a.delete_exchange(kRelayExchange);
      a.delete_exchange(kRawExchange);
    });
  }
  return 0;
}

int run(const Options& o) {
  if (!o.compare.empty()) return run_ab(o);
  Results res;
  describe_run(o, res.machine, res.cpu_model, res.date, res.pg_version);
  {
    std::ofstream log(o.relay_log, std::ios::trunc);
  }
  const std::string raw_db = "relay_bench_raw", emit_db = "relay_bench_emit", relay_db = "relay_bench_relay";

  // 1. PostgreSQL
  say("1/4 raw PostgreSQL single-row commits");
  recreate_db(o, raw_db);
  exec_sql(db_url(o, raw_db),
           "CREATE TABLE raw_commit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, client int NOT NULL, "
           "n bigint NOT NULL, payload jsonb NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())");
  const Statement insert = [](pqxx::nontransaction& tx, int client, std::uint64_t n) {
    tx.exec_prepared("s", client, static_cast<std::int64_t>(n), payload_json("o-" + std::to_string(n % 1000)));
  };
  const std::string insert_sql = "INSERT INTO raw_commit (client, n, payload) VALUES ($1, $2, $3::jsonb)";
  exec_sql(db_url(o, raw_db), "CHECKPOINT");
  res.pg1 = pg_load(db_url(o, raw_db), 1, o.raw_pg_seconds, {}, insert_sql, insert, o);
  say("  1 client: " + fmt_num(res.pg1.rate) + " commits/s");
  exec_sql(db_url(o, raw_db), "CHECKPOINT");
  res.pg8 = pg_load(db_url(o, raw_db), 8, o.raw_pg_seconds, {}, insert_sql, insert, o);
  say("  8 clients: " + fmt_num(res.pg8.rate) + " commits/s");

  say("   outbox.emit commits, NOTIFY off / on");
  recreate_db(o, emit_db);
  run_to_completion({o.relay, "install", "--db", db_url(o, emit_db)}, o.relay_log);
  const Statement emit = [](pqxx::nontransaction& tx, int client, std::uint64_t n) {
    const std::string agg = "o-" + std::to_string(client) + "-" + std::to_string(n % 1000);
    tx.exec_prepared("s", std::string("emitbench"), agg, payload_json(agg));
  };
  exec_sql(db_url(o, emit_db), "CHECKPOINT");
  res.emit_off = pg_load(db_url(o, emit_db), 8, o.emit_seconds, {"SET outbox.notify = off"}, kEmitSql, emit, o);
  say("  NOTIFY off: " + fmt_num(res.emit_off.rate) + " commits/s");
  {
    pqxx::connection ec(db_url(o, emit_db));
    exec_sql(db_url(o, emit_db), all_events(ec) == "outbox.all_events"
                                     ? "TRUNCATE outbox.events, outbox.events_archive, outbox.aggregate_sequences"
                                     : "TRUNCATE outbox.events, outbox.aggregate_sequences");
  }
  exec_sql(db_url(o, emit_db), "CHECKPOINT");
  {
    Listener listener(db_url(o, emit_db));
    res.emit_on = pg_load(db_url(o, emit_db), 8, o.emit_seconds, {}, kEmitSql, emit, o);
    std::this_thread::sleep_for(300ms);
    res.notifications = listener.received();
  }
  say("  NOTIFY on: " + fmt_num(res.emit_on.rate) + " commits/s");

  // 2. RabbitMQ
  say("2/4 raw RabbitMQ publish-with-confirm into a quorum queue");
  res.w500 = amqp_confirm_rate(o, "relay_bench-raw", kRawExchange, kRawQueue, 500, o.raw_amqp_seconds);
  say("  window 500: " + fmt_num(res.w500.rate) + " msg/s, p50 " + fmt_num(res.w500.p50_ms, 1) + " ms");
  res.w1 = amqp_confirm_rate(o, "relay_bench-raw", kRawExchange, kRawQueue, 1, o.one_at_a_time_seconds);
  say("  one at a time: " + fmt_num(res.w1.rate) + " msg/s, p50 " + fmt_num(res.w1.p50_ms, 2) + " ms");

  // 3. Backlog drain
  say("3/4 backlog drain");
  recreate_db(o, relay_db);
  run_to_completion({o.relay, "install", "--db", db_url(o, relay_db)}, o.relay_log);
  res.drain = backlog_drain(o, relay_db);
  say("  drained " + fmt_num(static_cast<double>(res.drain.rows - res.drain.left)) + " rows in " +
      fmt_num(res.drain.wall_seconds, 1) + " s: " + fmt_num(res.drain.wall_rate) + " events/s");
  {
    oss::amqp::Connection a(amqp_options(o, "relay_bench-setup"));
    a.purge_queue(kRelayQueue);
  }

  // 4. Steady rates
  say("4/4 steady producer rates with the relay running");
  std::vector<std::pair<double, std::string>> steps;
  for (double rate : o.steady_rates) steps.emplace_back(rate, "on");
  for (double rate : o.steady_quiet_rates) steps.emplace_back(rate, "off");
  for (double rate : o.steady_idle_rates) steps.emplace_back(rate, "idle");
  for (const auto& [rate, notify] : steps) {
    res.steady.push_back(steady(o, relay_db, rate, notify));
    const auto& s = res.steady.back();
    say("  " + fmt_num(rate) + "/s (NOTIFY " + notify + "): achieved " + fmt_num(s.achieved) +
        "/s; emit-to-confirm p50 " + fmt_num(s.p50_ms, 1) + " ms, p99 " + fmt_num(s.p99_ms, 1) +
        " ms; commit-to-confirm p50 " + fmt_num(s.from_commit_p50_ms, 1) + " ms, p99 " +
        fmt_num(s.from_commit_p99_ms, 1) + " ms; producer commit max " + fmt_num(s.commit_max_ms, 1) + " ms");
    oss::amqp::Connection a(amqp_options(o, "relay_bench-setup"));
    a.purge_queue(kRelayQueue);
  }

  const std::string md = report(o, res);
  emit_report(md, o.markdown_out);

  if (!o.keep) {
    for (const auto& db : {raw_db, emit_db, relay_db}) drop_db(o, db);
    amqp_cleanup(o, "relay_bench-cleanup", [](oss::amqp::Connection& a) {
      a.delete_queue(kRelayQueue);
      a.delete_queue(kRawQueue);
      a.delete_exchange(kRelayExchange);
      a.delete_exchange(kRawExchange);
    });
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bench::set_program("relay_bench");
  const Options o = parse_args(argc, argv);
  return bench::guarded_main("relay_bench", [&] { return run(o); });
}
