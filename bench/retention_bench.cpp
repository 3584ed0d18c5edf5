// retention_bench: the relay's retention purge at 1M events (docs/performance.md, "## Outbox
// retention at 1M events"). One producer database, one relay (the real binary, a child process):
//
//   1. sizes of outbox.events (table, indexes, dead tuples) when empty;
//   2. 1,000,000 events emitted in bulk transactions (generate_series through outbox.emit);
//   3. a paced producer starts (500 events/s, one event per transaction) and runs to the end,
//      recording each commit's latency;
//   4. `outbox-relay run --retention 1s` publishes everything (its purge runs at start and every
//      60 s, at most 2 s and 5,000 rows per DELETE each time); once all is published the relay is
//      restarted until the purge has removed everything older than the retention (each start
//      purges at once) — the rows purged per cycle are reported, so the default schedule's
//      purge rate can be read off;
//   5. sizes after the purge, then after a plain VACUUM.
// While the relay runs, pg_stat_activity is sampled every 50 ms to tell when a purge DELETE is
// running, and producer commits are split into "during a purge" and "not".
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
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

#include "oss/amqp/connection.hpp"

extern char** environ;

namespace {

const char* kProg = "retention_bench";

using Clock = std::chrono::steady_clock;
using Secs = std::chrono::duration<double>;
using namespace std::chrono_literals;

const Clock::time_point g_t0 = Clock::now();

void say(const std::string& msg) {
  std::cerr << "[" << kProg << " +" << std::fixed << std::setprecision(1) << Secs(Clock::now() - g_t0).count() << "s] "
            << msg << std::endl;
}

std::string fmt_num(double v, int prec = 0) {
  if (!std::isfinite(v)) return "n/a";
  std::ostringstream o;
  o << std::fixed << std::setprecision(prec) << v;
  std::string s = o.str();
  // Thousands separators for the integer part.
  const auto dot = s.find('.');
  std::string ip = s.substr(0, dot == std::string::npos ? s.size() : dot);
  const std::string rest = dot == std::string::npos ? "" : s.substr(dot);
  std::string sign;
  if (!ip.empty() && ip[0] == '-') {
    sign = "-";
    ip.erase(0, 1);
  }
  std::string out;
  for (std::size_t i = 0; i < ip.size(); ++i) {
    if (i > 0 && (ip.size() - i) % 3 == 0) out += ',';
    out += ip[i];
  }
  return sign + out + rest;
}

[[maybe_unused]] std::string fmt_pct(double ratio) { return std::isfinite(ratio) ? fmt_num(ratio * 100.0, 1) + " %" : "n/a"; }

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

/// Linear-interpolated quantile of a sample (q in [0,1]); NaN when empty.
double quantile(std::vector<double> v, double q) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, v.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return v[lo] + (v[hi] - v[lo]) * frac;
}

// ---------------------------------------------------------------------------------------------
// Options

struct Options {
  std::string pg_base, amqp, relay;
  bool quick = false, keep = false;
  std::string markdown_out, servers_dir, log = "/tmp/retention_bench.log";
  std::int64_t events = 1'000'000, chunk = 50'000;
  double producer_rate = 500, baseline_seconds = 15;
  int max_restarts = 40;
  std::string id, db, exchange, queue;
};

[[noreturn]] void usage(const std::string& problem) {
  if (!problem.empty()) std::cerr << "retention_bench: " << problem << "\n\n";
  std::cerr << "retention_bench --pg-base postgresql://user:pw@host:port --amqp amqp://u:p@host:port/%2f "
               "--relay build/bin/outbox-relay [--quick] [--events N] [--producer-rate R] [--markdown-out FILE] "
               "[--servers-dir DIR] [--log FILE] [--keep]\n";
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  bool events_set = false;
  std::vector<std::string> a(argv + 1, argv + argc);
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto value = [&]() -> std::string {
      if (i + 1 >= a.size()) usage(a[i] + " needs a value");
      return a[++i];
    };
    const std::string& f = a[i];
    if (f == "--pg-base") o.pg_base = value();
    else if (f == "--amqp") o.amqp = value();
    else if (f == "--relay") o.relay = value();
    else if (f == "--quick") o.quick = true;
    else if (f == "--keep") o.keep = true;
    else if (f == "--markdown-out") o.markdown_out = value();
    else if (f == "--servers-dir") o.servers_dir = value();
    else if (f == "--log") o.log = value();
    else if (f == "--producer-rate") o.producer_rate = std::stod(value());
    else if (f == "--events") {
      o.events = std::stoll(value());
      events_set = true;
    } else if (f == "--help" || f == "-h") usage("");
    else usage("unknown flag " + f);
  }
  if (o.pg_base.empty() || o.amqp.empty() || o.relay.empty()) usage("--pg-base, --amqp and --relay are required");
  while (!o.pg_base.empty() && o.pg_base.back() == '/') o.pg_base.pop_back();
  if (o.servers_dir.empty()) {
    if (const char* d = std::getenv("OSS_SERVERS_DIR")) o.servers_dir = d;
  }
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

std::string db_url(const Options& o, const std::string& db) { return o.pg_base + "/" + db; }
// ---------------------------------------------------------------------------------------------
// Child processes, HTTP, /proc

pid_t spawn(const std::vector<std::string>& args, const std::string& log_path) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> argv;
  for (const auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, args.at(0).c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("posix_spawn " + args.at(0) + ": " + std::strerror(rc));
  return pid;
}

/// Waits up to `timeout` for the child; returns its wait status, or nullopt if still running.
std::optional<int> wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return -1;
    if (Clock::now() >= until) return std::nullopt;
    std::this_thread::sleep_for(20ms);
  }
}

void stop_child(pid_t pid) {
  kill(pid, SIGTERM);
  if (!wait_child(pid, 20s)) {
    say("child " + std::to_string(pid) + " did not stop on SIGTERM within 20 s; SIGKILL");
    kill(pid, SIGKILL);
    wait_child(pid, 5s);
  }
}

void run_to_completion(const std::vector<std::string>& args, const std::string& log_path) {
  const pid_t pid = spawn(args, log_path);
  const auto st = wait_child(pid, 120s);
  if (!st) {
    kill(pid, SIGKILL);
    wait_child(pid, 5s);
    throw std::runtime_error(args.at(0) + " did not finish in 120 s");
  }
  if (!WIFEXITED(*st) || WEXITSTATUS(*st) != 0)
    throw std::runtime_error(args.at(0) + " " + args.at(1) + " failed (see " + log_path + ")");
}

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    throw std::runtime_error("cannot bind a free port");
  }
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

/// GET http://127.0.0.1:port/path; returns (status, body) or nullopt when not reachable.
std::optional<std::pair<int, std::string>> http_get(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::nullopt;
  timeval tv{};
  tv.tv_sec = 3;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return std::nullopt;
  }
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return std::nullopt;
  }
  std::string resp;
  char buf[8192];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  if (resp.rfind("HTTP/1.", 0) != 0 || resp.size() < 12) return std::nullopt;
  const int status = std::atoi(resp.substr(9, 3).c_str());
  const auto body_at = resp.find("\r\n\r\n");
  return std::make_pair(status, body_at == std::string::npos ? std::string() : resp.substr(body_at + 4));
}

struct Histogram {
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative count)
  double count = 0, sum = 0;
};

double metric_value(const std::string& line) {
  const auto sp = line.rfind(' ');
  return sp == std::string::npos ? 0.0 : std::atof(line.c_str() + sp + 1);
}

[[maybe_unused]] Histogram parse_histogram(const std::string& text, const std::string& name) {
  Histogram h;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + "_bucket{", 0) == 0) {
      const auto le_at = line.find("le=\"");
      if (le_at == std::string::npos) continue;
      const auto le_end = line.find('"', le_at + 4);
      const std::string le = line.substr(le_at + 4, le_end - le_at - 4);
      const double bound = le == "+Inf" ? std::numeric_limits<double>::infinity() : std::atof(le.c_str());
      h.buckets.emplace_back(bound, metric_value(line));
    } else if (line.rfind(name + "_count", 0) == 0) {
      h.count = metric_value(line);
    } else if (line.rfind(name + "_sum", 0) == 0) {
      h.sum = metric_value(line);
    }
  }
  std::sort(h.buckets.begin(), h.buckets.end());
  return h;
}

/// Prometheus-style histogram_quantile (linear inside the bucket).
[[maybe_unused]] double histogram_quantile(const Histogram& h, double q) {
  if (h.count <= 0 || h.buckets.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double rank = q * h.count;
  double prev_le = 0, prev_cum = 0;
  for (const auto& [le, cum] : h.buckets) {
    if (cum >= rank) {
      if (std::isinf(le)) return prev_le;
      if (cum <= prev_cum) return le;
      return prev_le + (le - prev_le) * (rank - prev_cum) / (cum - prev_cum);
    }
    prev_le = le;
    prev_cum = cum;
  }
  return prev_le;
}

double sum_metric(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  double total = 0;
  while (std::getline(in, line))
    if (line.rfind(name + "{", 0) == 0 || line.rfind(name + " ", 0) == 0) total += metric_value(line);
  return total;
}

/// CPU time (seconds) of one process, from /proc/PID/stat; ppid through `ppid_out`.
[[maybe_unused]] std::optional<double> proc_cpu(pid_t pid, pid_t* ppid_out = nullptr) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(f, s)) return std::nullopt;
  const auto rp = s.rfind(')');
  if (rp == std::string::npos) return std::nullopt;
  std::istringstream in(s.substr(rp + 2));
  std::vector<std::string> fields;
  std::string x;
  while (in >> x) fields.push_back(x);
  // fields[0] = state (field 3); utime = field 14, stime = field 15 -> fields[11], fields[12].
  if (fields.size() < 13) return std::nullopt;
  if (ppid_out) *ppid_out = static_cast<pid_t>(std::stol(fields[1]));
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
}

[[maybe_unused]] std::optional<pid_t> read_pid_file(const std::string& path) {
  std::ifstream f(path);
  long pid = 0;
  if (!(f >> pid) || pid <= 0) return std::nullopt;
  return static_cast<pid_t>(pid);
}

/// Machine-wide busy/total jiffies from /proc/stat.
[[maybe_unused]] std::pair<double, double> machine_cpu() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  f >> cpu;
  std::vector<double> v;
  double x = 0;
  for (int i = 0; i < 8 && (f >> x); ++i) v.push_back(x);
  if (v.size() < 5) return {0, 0};
  double total = 0;
  for (double d : v) total += d;
  const double idle = v[3] + v[4];
  return {total - idle, total};
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

void recreate_db(const Options& o, const std::string& name) {
  pqxx::connection c(db_url(o, "postgres"));
  pqxx::nontransaction tx(c);
  tx.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  tx.exec("CREATE DATABASE " + name);
}

void drop_db(const Options& o, const std::string& name) {
  try {
    pqxx::connection c(db_url(o, "postgres"));
    pqxx::nontransaction tx(c);
    tx.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  } catch (const std::exception& e) {
    say(std::string("could not drop database ") + name + ": " + e.what());
  }
}

[[maybe_unused]] void exec_sql(const std::string& url, const std::string& sql) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  tx.exec(sql);
}

[[maybe_unused]] std::string payload_json(const std::string& aggregate_id) {
  return "{\"order_id\":\"" + aggregate_id + "\",\"status\":\"created\",\"amount_cents\":12950,\"note\":\"" +
         std::string(100, 'x') + "\"}";
}

oss::amqp::ConnectionOptions amqp_options(const Options& o, const std::string& name) {
  oss::amqp::ConnectionOptions c;
  c.url = o.amqp;
  c.connection_name = name;
  return c;
}

std::string shell_out(const std::string& cmd) {
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Measurements

double epoch_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::int64_t scalar(pqxx::connection& c, const std::string& sql) {
  pqxx::nontransaction tx(c);
  return tx.exec(sql)[0][0].as<std::int64_t>();
}

std::string mb(double bytes) { return fmt_num(bytes / (1024.0 * 1024.0), 1) + " MB"; }

struct Sizes {
  std::string label;
  double total = 0, heap = 0, indexes = 0;
  std::int64_t rows = 0, live = 0, dead = 0, autovacuums = 0, vacuums = 0;
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
                  "AND query LIKE 'DELETE FROM outbox.events%'");
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
  void wait_ready(std::chrono::seconds timeout) {
    const auto until = Clock::now() + timeout;
    while (Clock::now() < until) {
      if (auto st = wait_child(pid_, 0ms)) {
        pid_ = -1;
        throw std::runtime_error("the relay exited during startup (status " + std::to_string(*st) + ")");
      }
      if (auto r = http_get(port_, "/readyz"); r && r->first == 200) return;
      std::this_thread::sleep_for(50ms);
    }
    throw std::runtime_error("the relay did not become ready");
  }
  double purged() {
    auto r = http_get(port_, "/metrics");
    return r ? sum_metric(r->second, "outbox_relay_purged_rows_total") : 0;
  }
  void stop() {
    if (pid_ > 0) stop_child(pid_);
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
      if (Clock::now() - t0 > 900s) throw std::runtime_error("the relay did not publish everything in 900 s");
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
  const std::string old_sql =
      "SELECT count(*) FROM outbox.events WHERE published_at IS NOT NULL AND published_at < clock_timestamp() - interval '2 seconds'";
  while (restarts < o.max_restarts && scalar(c, old_sql) > 0) {
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
  md << "| outbox.events | rows | heap | indexes | total | n_live_tup | n_dead_tup | autovacuums so far |\n|---|---|---|---|---|---|---|---|\n";
  for (const auto& s : sz)
    md << "| " << s.label << " | " << fmt_num(static_cast<double>(s.rows)) << " | " << mb(s.heap) << " | " << mb(s.indexes)
       << " | " << mb(s.total) << " | " << fmt_num(static_cast<double>(s.live)) << " | " << fmt_num(static_cast<double>(s.dead))
       << " | " << s.autovacuums << " (last " << s.last_autovacuum << ") |\n";
  md << "\n| producer commits (" << fmt_num(o.producer_rate) << " events/s, 1 event per transaction, NOTIFY on) | commits | p50 | p99 | max |\n|---|---|---|---|---|\n";
  for (const auto& x : w)
    md << "| " << x.label << " | " << fmt_num(static_cast<double>(x.n)) << " | " << fmt_num(x.p50, 2) << " ms | "
       << fmt_num(x.p99, 2) << " ms | " << fmt_num(x.max, 1) << " ms |\n";
  md << "\nDetails:\n\n";
  md << "- Fill: " << fmt_num(static_cast<double>(o.events)) << " events through outbox.emit in " << fmt_num(fill_seconds, 1)
     << " s (" << fmt_num(static_cast<double>(o.events) / fill_seconds) << " rows/s, " << fmt_num(static_cast<double>(o.chunk))
     << " per transaction). Relay drain of the 1M (plus the live producer): " << fmt_num(drain_seconds, 1) << " s ("
     << fmt_num(static_cast<double>(o.events) / drain_seconds) << " events/s).\n";
  md << "- Purge cycles (each at most 2 s of `DELETE … LIMIT 5000` batches by `published_at`): ";
  for (std::size_t i = 0; i < cycles.size(); ++i)
    md << (i ? "; " : "") << cycles[i].first << ": " << fmt_num(cycles[i].second) << " rows";
  md << ". Total purged " << fmt_num(purged_total) << " rows; " << restarts << " relay restarts took "
     << fmt_num(t_purge1 - t_purge0, 1) << " s. A purge DELETE was running in " << purges.size()
     << " sampled intervals, " << fmt_num(purge_busy, 1) << " s in all (pg_stat_activity every 50 ms).\n";
  md << "- Plain `VACUUM outbox.events` took " << fmt_num(vacuum_seconds, 1) << " s.\n";
  md << "- Per index:\n";
  for (const auto& s : sz) md << "  - " << s.label << ": " << s.per_index << "\n";
  std::cout << md.str() << std::flush;
  if (!o.markdown_out.empty()) {
    std::ofstream f(o.markdown_out, std::ios::trunc);
    f << md.str();
  }
  if (!o.keep) {
    drop_db(o, o.db);
    try {
      oss::amqp::Connection a(amqp_options(o, "retention_bench-cleanup"));
      a.delete_queue(o.queue);
      a.delete_exchange(o.exchange);
    } catch (const std::exception& e) {
      say(std::string("cleanup: ") + e.what());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::cerr << "retention_bench: error: " << e.what() << "\n";
    return 1;
  }
}
