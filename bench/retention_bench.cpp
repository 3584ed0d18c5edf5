// retention_bench: the relay's retention purge at 1M events (docs/performance.md, "## Outbox
// retention at 1M events"). One producer database, one relay (the real binary, a child process):
//
//   1. sizes of outbox.events (table, indexes, dead tuples) and, from outbox schema version 3 on,
//      of outbox.events_archive (its partitions) when empty;
//   2. 1,000,000 events emitted in bulk transactions (generate_series through outbox.emit);
//   3. a paced producer starts (500 events/s, one event per transaction) and runs to the end,
//      recording each commit's latency;
//   4. `outbox-relay run --retention 1s` publishes everything (its purge runs at start and every
//      60 s: from schema version 3 on it drops whole archive partitions (10 s wide at this
//      retention), before that it DELETEd at most 5,000 rows per statement for at most 2 s); once
//      all is published the relay is restarted until the purge has removed everything published
//      before then (each start purges at once) — the rows purged per cycle are reported;
//   5. sizes after the purge, then after a plain VACUUM.
// While the relay runs, pg_stat_activity is sampled every 50 ms to tell when a purge DELETE is
// running, and producer commits are split into "during a purge" and "not".
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
  std::string log = "/tmp/retention_bench.log";
  std::int64_t events = 1'000'000, chunk = 50'000;
  double producer_rate = 500, baseline_seconds = 15;
  int max_restarts = 40;
  std::string id, db, exchange, queue;
};

[[noreturn]] void usage(const std::string& problem) {
  usage_exit("retention_bench", problem,
             "retention_bench --pg-base postgresql://user:pw@host:port --amqp amqp://u:p@host:port/%2f "
             "--relay build/bin/outbox-relay [--quick] [--events N] [--producer-rate R] [--markdown-out FILE] "
             "[--servers-dir DIR] [--log FILE] [--keep]");
}

Options parse_args(int argc, char** argv) {
  Options o;
  bool events_set = false;
  parse_flags(argc, argv, o, usage, [&](const std::string& f, const std::function<std::string()>& value) {
    if (f == "--relay") o.relay = value();
    else if (f == "--log") o.log = value();
    else if (f == "--producer-rate") o.producer_rate = std::stod(value());
    else if (f == "--events") {
      o.events = std::stoll(value());
      events_set = true;
    } else {
      return false;
    }
    return true;
  });
  if (o.pg_base.empty() || o.amqp.empty() || o.relay.empty()) usage("--pg-base, --amqp and --relay are required");
  finish_common(o);
  if (o.quick) {
    if (!events_set) o.events = 100'000;
    o.baseline_seconds = 5;
  }
  o.id = std::to_string(getpid()) + std::to_string(std::time(nullptr) % 100000);
  o.db = "retention_bench_" + o.id;
  o.exchange = "retention_bench.events." + o.id;
  o.queue = "retention_bench.sink." + o.id;
  return o;
}

// ---------------------------------------------------------------------------------------------
// Child processes, HTTP, /proc

// ---------------------------------------------------------------------------------------------
// PostgreSQL

// ---------------------------------------------------------------------------------------------
// Measurements

std::string mb(double bytes) { return fmt_num(bytes / (1024.0 * 1024.0), 1) + " MB"; }

struct Sizes {
  std::string label;
  double total = 0, heap = 0, indexes = 0;
  std::int64_t rows = 0, live = 0, dead = 0, autovacuums = 0, vacuums = 0;
  bool archive = false;  // outbox schema >= 3
  double archive_total = 0;
  std::int64_t archive_rows = 0, archive_partitions = 0;
  std::string last_autovacuum, per_index;
};

Sizes sizes(pqxx::connection& c, const std::string& label) {
  Sizes s;
  s.label = label;
  std::this_thread::sleep_for(1s);  // let the cumulative statistics catch up (flushed at most every second)
  pqxx::nontransaction tx(c);
  const auto r = tx.exec(
      "SELECT pg_total_relation_size('outbox.events'), pg_relation_size('outbox.events'), "
      "       pg_indexes_size('outbox.events'), (SELECT count(*) FROM outbox.events), "
      "       n_live_tup, n_dead_tup, autovacuum_count, vacuum_count, coalesce(last_autovacuum::text, 'never') "
      "FROM pg_stat_user_tables WHERE schemaname = 'outbox' AND relname = 'events'")[0];
  s.total = r[0].as<double>();
  s.heap = r[1].as<double>();
  s.indexes = r[2].as<double>();
  s.rows = r[3].as<std::int64_t>();
  s.live = r[4].as<std::int64_t>();
  s.dead = r[5].as<std::int64_t>();
  s.autovacuums = r[6].as<std::int64_t>();
  s.vacuums = r[7].as<std::int64_t>();
  s.last_autovacuum = r[8].as<std::string>();
  s.archive = tx.exec("SELECT to_regclass('outbox.events_archive') IS NOT NULL")[0][0].as<bool>();
  if (s.archive) {
    const auto a = tx.exec(
        "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0), count(*), "
        "       (SELECT count(*) FROM outbox.events_archive) "
        "FROM pg_inherits WHERE inhparent = 'outbox.events_archive'::regclass")[0];
    s.archive_total = a[0].as<double>();
    s.archive_partitions = a[1].as<std::int64_t>();
    s.archive_rows = a[2].as<std::int64_t>();
  }
  for (const auto& row : tx.exec(
           "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes "
           "WHERE schemaname = 'outbox' AND relname = 'events' ORDER BY indexrelname")) {
    if (!s.per_index.empty()) s.per_index += ", ";
    s.per_index += row[0].as<std::string>() + " " + mb(row[1].as<double>());
  }
  say("sizes " + label + ": total " + mb(s.total) + ", heap " + mb(s.heap) + ", indexes " + mb(s.indexes) + ", rows " +
      fmt_num(static_cast<double>(s.rows)) + ", dead " + fmt_num(static_cast<double>(s.dead)));
  return s;
}

/// A paced producer: `rate` events/s from 4 threads, one outbox.emit per transaction, until
/// stopped; every commit's (epoch time, latency ms).
class Producer {
 public:
  Producer(const std::string& url, double rate) {
    const int n = 4;
    start_ = Clock::now() + 50ms;
    for (int j = 0; j < n; ++j) {
      threads_.emplace_back([this, url, rate, j, n] {
        try {
          pqxx::connection c(url);
          c.prepare("emit",
                    "SELECT outbox.emit('live', 'order', $1, 'order.status_changed', "
                    "jsonb_build_object('status', 'SUBMITTED', 'note', repeat('x', 100)))");
          pqxx::nontransaction tx(c);
          std::vector<std::pair<double, double>> mine;
          for (std::uint64_t k = 0; !stop_.load(); ++k) {
            const double at = static_cast<double>(k * static_cast<std::uint64_t>(n) + static_cast<std::uint64_t>(j)) / rate;
            const auto due = start_ + std::chrono::duration_cast<Clock::duration>(Secs(at));
            if (Clock::now() < due) std::this_thread::sleep_until(due);
            const double e = epoch_now();
            const auto t = Clock::now();
            tx.exec_prepared("emit", "live-" + std::to_string(j) + "-" + std::to_string(k % 2000));
            mine.emplace_back(e, ms_between(t, Clock::now()));
          }
          std::lock_guard l(mu_);
          samples_.insert(samples_.end(), mine.begin(), mine.end());
        } catch (const std::exception& e) {
          say(std::string("producer: ") + e.what());
        }
      });
    }
  }
  ~Producer() { stop(); }
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  std::vector<std::pair<double, double>> samples() {
    std::lock_guard l(mu_);
    return samples_;
  }

 private:
  Clock::time_point start_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::pair<double, double>> samples_;
  std::vector<std::thread> threads_;
};

/// Samples pg_stat_activity every 50 ms: intervals (epoch) during which a purge DELETE ran.
class PurgeWatcher {
 public:
  explicit PurgeWatcher(const std::string& url) {
    thread_ = std::thread([this, url] {
      try {
        pqxx::connection c(url);
        c.prepare("q",
                  "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND application_name = 'outbox-relay' "
                  "AND (query LIKE 'DELETE FROM outbox.events%' OR query LIKE '%outbox.archive_drop_oldest%')");
        while (!stop_.load()) {
          bool active = false;
          {
            pqxx::nontransaction tx(c);
            active = tx.exec_prepared("q")[0][0].as<int>() > 0;
          }
          const double now = epoch_now();
          {
            std::lock_guard l(mu_);
            if (active) {
              if (!open_) intervals_.emplace_back(now - 0.05, now);
              intervals_.back().second = now + 0.05;
              ++active_samples_;
            }
            open_ = active;
          }
          std::this_thread::sleep_for(50ms);
        }
      } catch (const std::exception& e) {
        say(std::string("purge watcher: ") + e.what());
      }
    });
  }
  ~PurgeWatcher() { stop(); }
  PurgeWatcher(const PurgeWatcher&) = delete;
  PurgeWatcher& operator=(const PurgeWatcher&) = delete;
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::pair<double, double>> intervals() {
    std::lock_guard l(mu_);
    return intervals_;
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<double, double>> intervals_;
  bool open_ = false;
  int active_samples_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class RelayProcess {
 public:
  RelayProcess(const Options& o) : port_(free_port()) {
    {
      std::ofstream log(o.log, std::ios::app);
      log << "\n==== retention_bench: starting relay ====\n";
    }
    pid_ = spawn({o.relay, "run", "--db", db_url(o, o.db), "--amqp", o.amqp, "--exchange", o.exchange, "--metrics",
                  "127.0.0.1:" + std::to_string(port_), "--retention", "1s"},
                 o.log);
  }
  ~RelayProcess() { stop(); }
  RelayProcess(const RelayProcess&) = delete;
  RelayProcess& operator=(const RelayProcess&) = delete;
  void wait_ready(std::chrono::seconds timeout) { bench::wait_ready(pid_, port_, timeout, "the relay"); }
  double purged() const {
    auto r = http_get(port_, "/metrics");
    return r ? sum_metric(r->second, "outbox_relay_purged_rows_total") : 0;
  }
  void stop() {
    if (pid_ > 0) stop_child(pid_, "child " + std::to_string(pid_));
    pid_ = -1;
  }

 private:
  int port_;
  pid_t pid_ = -1;
};

struct Window {
  std::string label;
  std::size_t n = 0;
  double p50 = 0, p99 = 0, max = 0;
};

Window window(const std::string& label, const std::vector<std::pair<double, double>>& s, double from, double to,
              const std::vector<std::pair<double, double>>& purges, int purge_filter /* -1 any, 0 not, 1 only */) {
  std::vector<double> v;
  for (const auto& [t, ms] : s) {
    if (t < from || t >= to) continue;
    bool in_purge = false;
    for (const auto& [a, b] : purges)
      if (t + ms / 1000.0 >= a && t <= b) in_purge = true;  // commit overlapped a purge interval
    if (purge_filter == 0 && in_purge) continue;
    if (purge_filter == 1 && !in_purge) continue;
    v.push_back(ms);
  }
  Window w;
  w.label = label;
  w.n = v.size();
  w.p50 = quantile(v, 0.5);
  w.p99 = quantile(v, 0.99);
  w.max = v.empty() ? std::numeric_limits<double>::quiet_NaN() : *std::max_element(v.begin(), v.end());
  return w;
}

int run(const Options& o) {
  const std::string date = shell_out("date -u '+%Y-%m-%d %H:%M UTC'");
  std::string pg_version;
  {
    pqxx::connection c(db_url(o, "postgres"));
    pqxx::nontransaction tx(c);
    pg_version = "PostgreSQL " + tx.exec("SHOW server_version")[0][0].as<std::string>() + " (fsync " +
                 tx.exec("SHOW fsync")[0][0].as<std::string>() + ", autovacuum " +
                 tx.exec("SHOW autovacuum")[0][0].as<std::string>() + ", autovacuum_vacuum_scale_factor " +
                 tx.exec("SHOW autovacuum_vacuum_scale_factor")[0][0].as<std::string>() + ", autovacuum_naptime " +
                 tx.exec("SHOW autovacuum_naptime")[0][0].as<std::string>() + ")";
  }
  { std::ofstream log(o.log, std::ios::trunc); }
  const std::string url = db_url(o, o.db);
  recreate_db(o, o.db);
  run_to_completion({o.relay, "install", "--db", url}, o.log);
  {
    oss::amqp::Connection a(amqp_options(o, "retention_bench-setup"));
    a.declare_exchange(o.exchange, "topic", true);
    oss::amqp::QueueOptions q;
    q.durable = true;
    // A sink: keeps the last 10,000 messages (routed and confirmed, then dropped from the head).
    q.arguments = {{"x-max-length", std::int64_t{10'000}}};
    a.declare_queue(o.queue, q);
    a.bind_queue(o.queue, o.exchange, "#");
  }
  pqxx::connection c(url);
  std::vector<Sizes> sz;
  sz.push_back(sizes(c, "empty (after install)"));

  say("emitting " + fmt_num(static_cast<double>(o.events)) + " events in bulk transactions of " +
      fmt_num(static_cast<double>(o.chunk)));
  const auto f0 = Clock::now();
  for (std::int64_t from = 1; from <= o.events; from += o.chunk) {
    pqxx::work tx(c);
    tx.exec_params(
        "SELECT count(outbox.emit('bulk', 'order', 'o-' || (g % 20000), 'order.status_changed', "
        "  jsonb_build_object('status', 'SUBMITTED', 'note', repeat('x', 100)))) "
        "FROM generate_series($1::bigint, $2::bigint) g",
        from, std::min(o.events, from + o.chunk - 1));
    tx.commit();
  }
  const double fill_seconds = Secs(Clock::now() - f0).count();
  sz.push_back(sizes(c, "after " + fmt_num(static_cast<double>(o.events)) + " emitted (unpublished)"));

  say("producer at " + fmt_num(o.producer_rate) + " events/s; baseline " + fmt_num(o.baseline_seconds) + " s");
  Producer producer(url, o.producer_rate);
  const double t_base0 = epoch_now();
  std::this_thread::sleep_for(std::chrono::duration_cast<Clock::duration>(Secs(o.baseline_seconds)));
  PurgeWatcher watcher(url);
  const double t_relay = epoch_now();
  say("starting the relay (--retention 1s)");
  double purged_total = 0;
  double drain_seconds = 0;
  std::vector<std::pair<std::string, double>> cycles;  // what each purge cycle removed
  {
    RelayProcess relay(o);
    relay.wait_ready(60s);
    const auto t0 = Clock::now();
    auto next_log = Clock::now() + 10s;
    double last_purged = 0;
    for (;;) {
      std::this_thread::sleep_for(250ms);
      const auto left = scalar(c, "SELECT count(*) FROM outbox.events WHERE published_at IS NULL AND source = 'bulk'");
      const double p = relay.purged();
      if (p > last_purged) {
        cycles.emplace_back("scheduled, during the drain (t+" + fmt_num(Secs(Clock::now() - t0).count(), 0) + " s)", p - last_purged);
        last_purged = p;
      }
      if (Clock::now() >= next_log) {
        say("  drain: " + fmt_num(static_cast<double>(left)) + " unpublished, " + fmt_num(p) + " purged so far");
        next_log += 10s;
      }
      if (left == 0) break;
      if (Clock::now() - t0 > 2400s) throw std::runtime_error("the relay did not publish everything in 2400 s");
    }
    drain_seconds = Secs(Clock::now() - t0).count();
    purged_total = last_purged;
    say("all published after " + fmt_num(drain_seconds, 1) + " s; " + fmt_num(purged_total) + " purged by then");
  }
  const double t_published = epoch_now();
  sz.push_back(sizes(c, "all published (" + fmt_num(purged_total) + " already purged)"));
  // Each relay start purges at once (up to 2 s, 5,000 rows per DELETE); restart until nothing
  // older than the retention is left.
  const double t_purge0 = epoch_now();
  int restarts = 0;
  const bool archive = sz.back().archive;
  const std::string old_sql =
      "SELECT count(*) FROM outbox.events WHERE published_at IS NOT NULL AND published_at < clock_timestamp() - interval '2 seconds'";
  // Archive partitions holding rows published before the drain ended (the live producer keeps
  // adding newer ones); each can be dropped once its upper bound is past the 1 s retention.
  const std::string old_partitions =
      "SELECT count(*) FROM outbox.archive_partitions WHERE lower_bound < to_timestamp(" + std::to_string(t_published) + ")";
  const std::string wait_partitions =
      "SELECT coalesce(extract(epoch from max(upper_bound) + interval '1.5 seconds' - clock_timestamp()), 0)::float8 "
      "FROM outbox.archive_partitions WHERE lower_bound < to_timestamp(" + std::to_string(t_published) + ")";
  while (restarts < o.max_restarts && (scalar(c, old_sql) > 0 || (archive && scalar(c, old_partitions) > 0))) {
    if (archive) {
      pqxx::nontransaction tx(c);
      const double wait = tx.exec(wait_partitions)[0][0].as<double>();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::duration_cast<Clock::duration>(Secs(std::min(wait, 30.0))));
    }
    RelayProcess relay(o);
    relay.wait_ready(60s);
    ++restarts;
    const double p = relay.purged();
    cycles.emplace_back("relay start #" + std::to_string(restarts), p);
    purged_total += p;
    say("  restart " + std::to_string(restarts) + ": purged " + fmt_num(p));
  }
  const double t_purge1 = epoch_now();
  sz.push_back(sizes(c, "after the purge"));
  std::this_thread::sleep_for(5s);
  const double t_vac0 = epoch_now();
  {
    pqxx::nontransaction tx(c);
    tx.exec("VACUUM outbox.events");
  }
  const double vacuum_seconds = epoch_now() - t_vac0;
  sz.push_back(sizes(c, "after VACUUM outbox.events"));
  std::this_thread::sleep_for(5s);
  const double t_end = epoch_now();
  producer.stop();
  watcher.stop();
  const auto samples = producer.samples();
  const auto purges = watcher.intervals();
  double purge_busy = 0;
  for (const auto& [a, b] : purges) purge_busy += b - a;

  std::vector<Window> w;
  w.push_back(window("baseline (no relay)", samples, t_base0, t_relay, purges, -1));
  w.push_back(window("relay publishing 1M, outside purges", samples, t_relay, t_published, purges, 0));
  w.push_back(window("relay purging (commits overlapping a purge DELETE)", samples, t_relay, t_purge1, purges, 1));
  w.push_back(window("purge phase, outside purge DELETEs (relay restarts)", samples, t_published, t_purge1, purges, 0));
  w.push_back(window("during VACUUM and after", samples, t_vac0, t_end, purges, -1));

  std::ostringstream md;
  md << "Run: " << date << "; " << shell_out("nproc") << " CPUs; " << pg_version << "; relay " << o.relay
     << " --retention 1s" << (o.quick ? "; **--quick sizes**" : "") << ".\n\n";
  md << "| stage | outbox.events rows | heap | indexes | total | n_live_tup | n_dead_tup | autovacuums so far | "
        "outbox.events_archive rows | archive partitions | archive total |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& s : sz)
    md << "| " << s.label << " | " << fmt_num(static_cast<double>(s.rows)) << " | " << mb(s.heap) << " | " << mb(s.indexes)
       << " | " << mb(s.total) << " | " << fmt_num(static_cast<double>(s.live)) << " | " << fmt_num(static_cast<double>(s.dead))
       << " | " << s.autovacuums << " (last " << s.last_autovacuum << ") | "
       << (s.archive ? fmt_num(static_cast<double>(s.archive_rows)) : "-") << " | "
       << (s.archive ? std::to_string(s.archive_partitions) : "-") << " | " << (s.archive ? mb(s.archive_total) : "-")
       << " |\n";
  md << "\n| producer commits (" << fmt_num(o.producer_rate) << " events/s, 1 event per transaction, NOTIFY on) | commits | p50 | p99 | max |\n|---|---|---|---|---|\n";
  for (const auto& x : w)
    md << "| " << x.label << " | " << fmt_num(static_cast<double>(x.n)) << " | " << fmt_num(x.p50, 2) << " ms | "
       << fmt_num(x.p99, 2) << " ms | " << fmt_num(x.max, 1) << " ms |\n";
  md << "\nDetails:\n\n";
  md << "- Fill: " << fmt_num(static_cast<double>(o.events)) << " events through outbox.emit in " << fmt_num(fill_seconds, 1)
     << " s (" << fmt_num(static_cast<double>(o.events) / fill_seconds) << " rows/s, " << fmt_num(static_cast<double>(o.chunk))
     << " per transaction). Relay drain of the 1M (plus the live producer): " << fmt_num(drain_seconds, 1) << " s ("
     << fmt_num(static_cast<double>(o.events) / drain_seconds) << " events/s).\n";
  md << (archive ? "- Purge cycles (archive partitions dropped whole, estimated rows; plus `DELETE … LIMIT 5000` batches "
                   "of rows marked in place, if any): "
                 : "- Purge cycles (each at most 2 s of `DELETE … LIMIT 5000` batches by `published_at`): ");
  for (std::size_t i = 0; i < cycles.size(); ++i)
    md << (i ? "; " : "") << cycles[i].first << ": " << fmt_num(cycles[i].second) << " rows";
  md << ". Total purged " << fmt_num(purged_total) << " rows; " << restarts << " relay restarts took "
     << fmt_num(t_purge1 - t_purge0, 1) << " s. A purge DELETE was running in " << purges.size()
     << " sampled intervals, " << fmt_num(purge_busy, 1) << " s in all (pg_stat_activity every 50 ms).\n";
  if (archive) {
    md << "- Archive partition sizes at each stage: ";
    for (std::size_t i = 0; i < sz.size(); ++i)
      md << (i ? "; " : "") << sz[i].label << ": " << sz[i].archive_partitions << " partitions, "
         << mb(sz[i].archive_total);
    md << ".\n";
  }
  md << "- Plain `VACUUM outbox.events` took " << fmt_num(vacuum_seconds, 1) << " s.\n";
  md << "- Per index:\n";
  for (const auto& s : sz) md << "  - " << s.label << ": " << s.per_index << "\n";
  emit_report(md.str(), o.markdown_out);
  if (!o.keep) {
    drop_db(o, o.db);
    amqp_cleanup(o, "retention_bench-cleanup", [&o](oss::amqp::Connection& a) {
      a.delete_queue(o.queue);
      a.delete_exchange(o.exchange);
    });
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bench::set_program("retention_bench");
  const Options o = parse_args(argc, argv);
  return bench::guarded_main("retention_bench", [&] { return run(o); });
}
