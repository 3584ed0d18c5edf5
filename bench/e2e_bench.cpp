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
//   1. steady 500/s and 2,000/s for 30 s (NOTIFY on, the default) and 2,000/s with
//      outbox.notify = off and the relays polling every 20 ms;
//   2. a ramp 4,000 -> 6,000 -> 8,000 events/s, 20 s each (NOTIFY off, poll 20 ms): achieved
//      applied/s per step and whether the in-flight backlog stayed bounded;
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

const char* kProg = "e2e_bench";

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

std::string fmt_pct(double ratio) { return std::isfinite(ratio) ? fmt_num(ratio * 100.0, 1) + " %" : "n/a"; }

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
  std::string pg_base, amqp, bin_dir;
  bool quick = false;
  bool keep = false;
  std::string markdown_out;
  std::string servers_dir;  // for CPU attribution (postmaster.pid, rabbit.pid); optional
  std::string log = "/tmp/e2e_bench.log";
  double raw_pg_seconds = 10, raw_amqp_seconds = 8;
  double steady_seconds = 30, ramp_seconds = 20;
  std::vector<double> steady_rates{500, 2000};
  std::vector<double> ramp_rates{4000, 6000, 8000};
  std::int64_t backlog = 100'000;
  int threads = 16, ramp_threads = 24;
  double step_gap = 1.0;             // seconds between two steps of one order (at the highest rate)
  std::string fast_poll = "20ms";    // relay --poll-interval when outbox.notify = off
  double drain_timeout = 420;
  // Unique per run: databases, exchanges and queues.
  std::string id, crm_db, mes_db, oss_db, raw_db, exchange, queue, dlq, notifications, raw_exchange, raw_queue;
};

[[noreturn]] void usage(const std::string& problem) {
  if (!problem.empty()) std::cerr << "e2e_bench: " << problem << "\n\n";
  std::cerr << "e2e_bench --pg-base postgresql://user:pw@host:port --amqp amqp://u:p@host:port/%2f "
               "--bin-dir build/bin [--quick] [--steady-rates 500,2000] [--steady-seconds S] "
               "[--ramp-rates 4000,6000,8000] [--ramp-seconds S] [--backlog N] [--threads N] [--ramp-threads N] "
               "[--step-gap SECONDS] [--fast-poll 20ms] [--markdown-out FILE] [--servers-dir DIR] [--log FILE] [--keep]\n";
  std::exit(2);
}

std::vector<double> parse_list(const std::string& v) {
  std::vector<double> out;
  std::stringstream ss(v);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stod(item));
  return out;
}

Options parse_args(int argc, char** argv) {
  Options o;
  bool backlog_set = false, steady_set = false, ramp_set = false;
  std::vector<std::string> a(argv + 1, argv + argc);
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto value = [&]() -> std::string {
      if (i + 1 >= a.size()) usage(a[i] + " needs a value");
      return a[++i];
    };
    const std::string& f = a[i];
    if (f == "--pg-base") o.pg_base = value();
    else if (f == "--amqp") o.amqp = value();
    else if (f == "--bin-dir") o.bin_dir = value();
    else if (f == "--quick") o.quick = true;
    else if (f == "--keep") o.keep = true;
    else if (f == "--markdown-out") o.markdown_out = value();
    else if (f == "--servers-dir") o.servers_dir = value();
    else if (f == "--log") o.log = value();
    else if (f == "--steady-rates") o.steady_rates = parse_list(value());
    else if (f == "--ramp-rates") o.ramp_rates = parse_list(value());
    else if (f == "--threads") o.threads = std::stoi(value());
    else if (f == "--ramp-threads") o.ramp_threads = std::stoi(value());
    else if (f == "--step-gap") o.step_gap = std::stod(value());
    else if (f == "--fast-poll") o.fast_poll = value();
    else if (f == "--backlog") {
      o.backlog = std::stoll(value());
      backlog_set = true;
    } else if (f == "--steady-seconds") {
      o.steady_seconds = std::stod(value());
      steady_set = true;
    } else if (f == "--ramp-seconds") {
      o.ramp_seconds = std::stod(value());
      ramp_set = true;
    } else if (f == "--help" || f == "-h") usage("");
    else usage("unknown flag " + f);
  }
  if (o.pg_base.empty() || o.amqp.empty() || o.bin_dir.empty()) usage("--pg-base, --amqp and --bin-dir are required");
  while (!o.pg_base.empty() && o.pg_base.back() == '/') o.pg_base.pop_back();
  if (o.servers_dir.empty()) {
    if (const char* d = std::getenv("OSS_SERVERS_DIR")) o.servers_dir = d;
  }
  if (o.quick) {
    o.raw_pg_seconds = 3;
    o.raw_amqp_seconds = 3;
    if (!steady_set) o.steady_seconds = 8;
    if (!ramp_set) o.ramp_seconds = 6;
    if (!backlog_set) o.backlog = 12'000;
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
  o.raw_exchange = "e2e_bench.raw." + o.id;
  o.raw_queue = "e2e_bench.raw." + o.id;
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

Histogram parse_histogram(const std::string& text, const std::string& name) {
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

[[maybe_unused]] double sum_metric(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  double total = 0;
  while (std::getline(in, line))
    if (line.rfind(name + "{", 0) == 0 || line.rfind(name + " ", 0) == 0) total += metric_value(line);
  return total;
}

/// CPU time (seconds) of one process, from /proc/PID/stat; ppid through `ppid_out`.
std::optional<double> proc_cpu(pid_t pid, pid_t* ppid_out = nullptr) {
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

std::optional<pid_t> read_pid_file(const std::string& path) {
  std::ifstream f(path);
  long pid = 0;
  if (!(f >> pid) || pid <= 0) return std::nullopt;
  return static_cast<pid_t>(pid);
}

/// Machine-wide busy/total jiffies from /proc/stat.
std::pair<double, double> machine_cpu() {
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

/// CPU used per process over an interval, in cores (CPU seconds per wall second): the named
/// child processes, the postmaster with its children, RabbitMQ's beam.smp, and this program.
class CpuMeter {
 public:
  CpuMeter(const Options& o, std::vector<std::pair<std::string, pid_t>> procs) : procs_(std::move(procs)) {
    if (!o.servers_dir.empty()) {
      postmaster_ = read_pid_file(o.servers_dir + "/pg/data/postmaster.pid");
      beam_ = read_pid_file(o.servers_dir + "/rabbit/rabbit.pid");
    }
    start_ = Clock::now();
    snap(begin_);
  }
  /// e.g. "relay-crm 0.08, relay-mes 0.08, service 0.30, postgres 0.95, rabbitmq 0.40, bench 0.10; machine 93 % busy"
  std::string finish() {
    Snap end;
    snap(end);
    const double wall = Secs(Clock::now() - start_).count();
    std::ostringstream o;
    o << std::fixed << std::setprecision(2);
    for (std::size_t i = 0; i < begin_.cpu.size(); ++i) {
      const double a = begin_.cpu[i].second, b = end.cpu[i].second;
      if (a >= 0 && b >= 0) o << begin_.cpu[i].first << ' ' << (b - a) / wall << ", ";
    }
    const double busy = end.busy - begin_.busy, total = end.total - begin_.total;
    o << std::setprecision(0) << "machine " << (total > 0 ? 100.0 * busy / total : 0.0) << " % busy";
    return o.str();
  }

 private:
  struct Snap {
    std::vector<std::pair<std::string, double>> cpu;
    double busy = 0, total = 0;
  };
  void snap(Snap& s) {
    for (const auto& [name, pid] : procs_) s.cpu.emplace_back(name, proc_cpu(pid).value_or(-1));
    double pg = -1;
    if (postmaster_) {
      // The postmaster and its children (backends, walwriter, checkpointer...). Backends that
      // exited during the interval are not counted; the benchmark keeps its connections open.
      pg = proc_cpu(*postmaster_).value_or(0);
      if (DIR* d = opendir("/proc")) {
        while (dirent* e = readdir(d)) {
          if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
          pid_t ppid = 0;
          const auto pid = static_cast<pid_t>(std::atol(e->d_name));
          if (auto c = proc_cpu(pid, &ppid); c && ppid == *postmaster_) pg += *c;
        }
        closedir(d);
      }
    }
    s.cpu.emplace_back("postgres", pg);
    s.cpu.emplace_back("rabbitmq", beam_ ? proc_cpu(*beam_).value_or(-1) : -1);
    s.cpu.emplace_back("bench", proc_cpu(getpid()).value_or(-1));
    std::tie(s.busy, s.total) = machine_cpu();
  }
  std::vector<std::pair<std::string, pid_t>> procs_;
  std::optional<pid_t> postmaster_, beam_;
  Clock::time_point start_;
  Snap begin_;
};

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

void exec_sql(const std::string& url, const std::string& sql) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  tx.exec(sql);
}

struct LoadResult {
  std::uint64_t ops = 0;
  double seconds = 0, rate = 0, p50_ms = 0, p99_ms = 0;
  std::string cpu;
};

using Statement = std::function<void(pqxx::nontransaction&, int client, std::uint64_t n)>;

/// `clients` connections, each running `stmt` in autocommit (one statement = one transaction)
/// as fast as it can for `seconds`.
LoadResult pg_load(const std::string& url, int clients, double seconds, const std::vector<std::string>& setup,
                   const std::string& prepared_sql, const Statement& stmt, const Options& o) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  Clock::time_point end{};
  std::mutex mu;
  std::vector<double> lat;
  std::uint64_t ops = 0;
  std::string error;
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      std::vector<double> mine;
      mine.reserve(200'000);
      std::uint64_t n = 0;
      try {
        pqxx::connection c(url);
        {
          pqxx::nontransaction s(c);
          for (const auto& sql : setup) s.exec(sql);
        }
        c.prepare("s", prepared_sql);
        pqxx::nontransaction tx(c);
        ++ready;
        while (!go.load()) std::this_thread::sleep_for(1ms);
        for (;;) {
          const auto t = Clock::now();
          if (t >= end) break;
          stmt(tx, i, n++);
          mine.push_back(ms_between(t, Clock::now()));
        }
      } catch (const std::exception& e) {
        std::lock_guard l(mu);
        error = e.what();
        ++ready;
      }
      std::lock_guard l(mu);
      lat.insert(lat.end(), mine.begin(), mine.end());
      ops += mine.size();
    });
  }
  while (ready.load() < clients) std::this_thread::sleep_for(5ms);
  CpuMeter cpu(o, {});
  const auto start = Clock::now();
  end = start + std::chrono::duration_cast<Clock::duration>(Secs(seconds));
  go = true;
  for (auto& t : threads) t.join();
  const double wall = Secs(Clock::now() - start).count();
  if (!error.empty()) throw std::runtime_error("PostgreSQL load: " + error);
  LoadResult r;
  r.cpu = cpu.finish();
  r.ops = ops;
  r.seconds = wall;
  r.rate = static_cast<double>(ops) / wall;
  r.p50_ms = quantile(lat, 0.5);
  r.p99_ms = quantile(lat, 0.99);
  return r;
}

// ---------------------------------------------------------------------------------------------
// RabbitMQ

std::string payload_json(const std::string& aggregate_id) {
  return "{\"order_id\":\"" + aggregate_id + "\",\"status\":\"created\",\"amount_cents\":12950,\"note\":\"" +
         std::string(100, 'x') + "\"}";
}

oss::amqp::ConnectionOptions amqp_options(const Options& o, const std::string& name) {
  oss::amqp::ConnectionOptions c;
  c.url = o.amqp;
  c.connection_name = name;
  return c;
}

void declare_quorum_queue(oss::amqp::Connection& c, const std::string& exchange, const std::string& queue) {
  c.declare_exchange(exchange, "topic", true);
  oss::amqp::QueueOptions q;
  q.durable = true;
  q.arguments = {{"x-queue-type", std::string("quorum")}};
  c.declare_queue(queue, q);
  c.bind_queue(queue, exchange, "#");
}

struct ConfirmResult {
  std::uint64_t msgs = 0, nacked = 0;
  double seconds = 0, rate = 0, p50_ms = 0, p99_ms = 0;
  std::size_t body_bytes = 0;
  std::string cpu;
};

/// Persistent, mandatory publishes through a topic exchange into a quorum queue, at most
/// `window` unconfirmed at any time, for `seconds`. Messages look like the relay's (same body
/// size, same headers).
ConfirmResult amqp_confirm_rate(const Options& o, std::size_t window, double seconds) {
  oss::amqp::Connection c(amqp_options(o, "bench-raw"));
  declare_quorum_queue(c, o.raw_exchange, o.raw_queue);
  c.purge_queue(o.raw_queue);
  c.enable_confirms();
  oss::amqp::Message m;
  m.exchange = o.raw_exchange;
  m.routing_key = "raw.created";
  m.type = "created";
  m.persistent = true;
  const std::string agg = "o-1-123";
  m.body = "{\"event_id\":\"8a1f4c62-8e0b-4d3e-9b7a-2f4c1e9d0a11\",\"source\":\"steady2000\",\"aggregate_type\":\"order\","
           "\"aggregate_id\":\"" + agg + "\",\"sequence\":17,\"event_type\":\"created\","
           "\"occurred_at\":\"2025-01-01T12:00:00.123456Z\",\"payload\":" + payload_json(agg) + "}";
  m.headers = {{"x-aggregate-id", agg}, {"x-source", std::string("raw")}, {"x-sequence", std::int64_t{17}}};
  std::vector<Clock::time_point> sent;
  sent.reserve(1u << 20);
  std::vector<double> lat;
  lat.reserve(1u << 20);
  std::uint64_t published = 0, settled = 0, nacked = 0;
  auto absorb = [&](const oss::amqp::ConfirmBatch& b) {
    const auto now = Clock::now();
    for (auto tag : b.acked)
      if (tag >= 1 && tag <= sent.size()) lat.push_back(ms_between(sent[tag - 1], now));
    settled += b.acked.size() + b.nacked.size();
    nacked += b.nacked.size();
  };
  CpuMeter cpu(o, {});
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(Secs(seconds));
  while (Clock::now() < end) {
    while (published - settled < window) {
      m.message_id = "raw-" + std::to_string(published + 1);
      sent.push_back(Clock::now());
      const auto tag = c.publish(m, true);
      ++published;
      if (tag != published) throw std::runtime_error("unexpected publish sequence number");
    }
    absorb(c.wait_confirms(published - window + 1, 10s));
  }
  absorb(c.wait_confirms(published, 30s));
  const double wall = Secs(Clock::now() - start).count();
  ConfirmResult r;
  r.cpu = cpu.finish();
  r.msgs = settled - nacked;
  r.nacked = nacked;
  r.seconds = wall;
  r.rate = static_cast<double>(r.msgs) / wall;
  r.p50_ms = quantile(lat, 0.5);
  r.p99_ms = quantile(lat, 0.99);
  r.body_bytes = m.body.size();
  if (published != settled) say("warning: " + std::to_string(published - settled) + " confirms missing");
  c.purge_queue(o.raw_queue);
  return r;
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
// The pipeline's processes

double labeled_metric(const std::string& text, const std::string& name, const std::string& label) {
  std::istringstream in(text);
  std::string line;
  double total = 0;
  while (std::getline(in, line))
    if (line.rfind(name + "{", 0) == 0 && line.find(label) != std::string::npos) total += metric_value(line);
  return total;
}

double hist_mean_ms(const std::string& metrics, const std::string& name) {
  const auto h = parse_histogram(metrics, name);
  return h.count > 0 ? 1000.0 * h.sum / h.count : std::numeric_limits<double>::quiet_NaN();
}

/// One child program with an HTTP port (/readyz, /metrics).
class Child {
 public:
  Child(std::string name, std::vector<std::string> args, const std::string& log, int port)
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
  void wait_ready(std::chrono::seconds timeout) {
    const auto until = Clock::now() + timeout;
    while (Clock::now() < until) {
      if (auto st = wait_child(pid_, 0ms)) {
        pid_ = -1;
        throw std::runtime_error(name_ + " exited during startup (status " + std::to_string(*st) + ")");
      }
      if (auto r = http_get(port_, "/readyz"); r && r->first == 200) return;
      std::this_thread::sleep_for(50ms);
    }
    throw std::runtime_error(name_ + " did not become ready");
  }
  std::string metrics() {
    auto r = http_get(port_, "/metrics");
    return r ? r->second : std::string();
  }
  void stop() {
    if (pid_ > 0) stop_child(pid_);
    pid_ = -1;
  }

 private:
  std::string name_;
  int port_;
  pid_t pid_ = -1;
};

/// The two relays (crm, mes) and one service, started in that order: the service first, so the
/// exchange and its queue binding exist before the relays publish.
struct Pipeline {
  std::unique_ptr<Child> svc, crm, mes;
  Pipeline(const Options& o, const std::string& poll) {
    const int sp = free_port();
    svc = std::make_unique<Child>(
        "order-status-service",
        std::vector<std::string>{o.bin_dir + "/order-status-service", "run", "--db", db_url(o, o.oss_db), "--amqp", o.amqp,
                                 "--http", "127.0.0.1:" + std::to_string(sp), "--exchange", o.exchange, "--queue",
                                 o.queue, "--dlq", o.dlq, "--notifications-exchange", o.notifications},
        o.log, sp);
    svc->wait_ready(60s);
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
    return {{"relay-crm", crm->pid()}, {"relay-mes", mes->pid()}, {"service", svc->pid()}};
  }
  void stop() {
    // Relays first (nothing new enters the broker), then the service.
    crm->stop();
    mes->stop();
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

std::int64_t scalar(pqxx::connection& c, const std::string& sql) {
  pqxx::nontransaction tx(c);
  return tx.exec(sql)[0][0].as<std::int64_t>();
}

double epoch_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void set_notify(const Options& o, bool on) {
  for (const auto& db : {o.crm_db, o.mes_db})
    exec_sql(db_url(o, "postgres"), "ALTER DATABASE " + db + " SET outbox.notify = " + (on ? "on" : "off"));
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
  double early = 0, stale = 0, duplicate = 0, dead_lettered = 0;
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
  const auto bs = parse_histogram(m, "oss_batch_size");
  r.svc_batch_mean = bs.count > 0 ? bs.sum / bs.count : 0;
  r.svc_batch_ms = hist_mean_ms(m, "oss_batch_processing_seconds");
  r.svc_e2e_mean_ms = hist_mean_ms(m, "oss_event_end_to_end_seconds");
  const auto a = parse_histogram(p.crm->metrics(), "outbox_relay_emit_to_confirm_seconds");
  const auto b = parse_histogram(p.mes->metrics(), "outbox_relay_emit_to_confirm_seconds");
  r.relay_confirm_mean_ms = a.count + b.count > 0 ? 1000.0 * (a.sum + b.sum) / (a.count + b.count) : 0;
}

/// Paced producers at `rates` (one step of `step_seconds` per rate), the pipeline running.
PhaseResult run_load(const Options& o, int phase_no, const std::string& name, bool notify, const std::string& poll,
                     const std::vector<double>& rates, double step_seconds, int threads_n) {
  PhaseResult r;
  r.name = name;
  r.setting = std::string("NOTIFY ") + (notify ? "on" : "off") + ", relay --poll-interval " + poll;
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
            if (Clock::now() < due) std::this_thread::sleep_until(due);
            else if (Clock::now() - due > 10ms) ++my_late[i];
            Order& ord = orders[cursor];
            cursor = (cursor + 1) % ring;
            const auto& st = kLifecycle[ord.step];
            const bool crm = st.source[0] == 'c';
            const auto t = Clock::now();
            if (k == 0) my_first[i] = epoch_now();
            (crm ? ctx : mtx).exec_prepared("emit", std::string(st.source), ord.id, std::string(st.status));
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
  for (;;) {
    applied = scalar(oc, applied_sql);
    if (applied != last) last_progress = Clock::now();
    last = applied;
    if (applied >= r.emitted || Clock::now() - last_progress > 40s || Clock::now() - t_end > 300s) break;
    std::this_thread::sleep_for(100ms);
  }
  r.catch_up_seconds = Secs(Clock::now() - t_end).count();
  r.applied = applied;
  sampling = false;
  sampler.join();
  collect_service_metrics(r, pipe);
  pipe.stop();
  say(name + ": produced for " + fmt_num(produce_seconds, 1) + " s; " + fmt_num(static_cast<double>(r.applied)) + " of " +
      fmt_num(static_cast<double>(r.emitted)) + " applied " + fmt_num(r.catch_up_seconds, 1) + " s after the producers stopped");

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
        "SELECT extract(epoch from published_at - occurred_at)::float8 * 1000 FROM outbox.events "
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
  set_notify(o, false);
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
  std::vector<PhaseResult> phases;
  DrainResult drain;
  std::string pg_version, machine, date, cpu_model;
};

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
  const auto& d = r.drain;
  const double d99 = 0.99 * static_cast<double>(d.events) / d.t99;
  const double dall = std::isnan(d.t100) ? static_cast<double>(d.applied) / d.wall : static_cast<double>(d.events) / d.t100;
  md << "| **backlog drain** of " << fmt_num(static_cast<double>(d.events)) << " events (" << fmt_num(static_cast<double>(d.events / 6))
     << " lifecycles) | emitted with everything stopped; relays --poll-interval " << o.fast_poll << " | | **"
     << fmt_num(dall) << " events/s** to the last (" << fmt_num(d.t100, 1) << " s), " << fmt_num(d99)
     << " events/s to 99 % (" << fmt_num(d.t99, 1) << " s) | 50 % at " << fmt_num(d.t50, 1) << " s, 90 % at "
     << fmt_num(d.t90, 1) << " s | relays' outboxes empty at " << fmt_num(d.relays_empty, 1) << " s ("
     << fmt_num(static_cast<double>(d.events) / d.relays_empty) << " events/s) | " << fmt_num(static_cast<double>(d.events - d.applied))
     << " left | " << fmt_pct(d99 / pg) << " / " << fmt_pct(d99 / mq) << " (to 99 %) |\n";

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
    md << "  - service: events early (sent to a retry delay) " << fmt_num(p.early) << ", stale " << fmt_num(p.stale)
       << ", duplicate " << fmt_num(p.duplicate) << ", dead-lettered " << fmt_num(p.dead_lettered) << "; mean batch "
       << fmt_num(p.svc_batch_mean, 1) << " messages, " << fmt_num(p.svc_batch_ms, 1)
       << " ms to decide+commit; oss_event_end_to_end_seconds mean " << fmt_num(p.svc_e2e_mean_ms, 1)
       << " ms; relays' emit→confirm mean " << fmt_num(p.relay_confirm_mean_ms, 1) << " ms; all "
       << fmt_num(static_cast<double>(p.applied)) << " of " << fmt_num(static_cast<double>(p.emitted)) << " applied "
       << fmt_num(p.catch_up_seconds, 1) << " s after the producers stopped.\n";
  }
  md << "- Drain: fill " << fmt_num(d.fill_seconds, 1) << " s; CPU in cores during the drain: " << d.cpu
     << "; service: early " << fmt_num(d.metrics.early) << ", stale " << fmt_num(d.metrics.stale) << ", dead-lettered "
     << fmt_num(d.metrics.dead_lettered) << ", mean batch " << fmt_num(d.metrics.svc_batch_mean, 1) << " messages, "
     << fmt_num(d.metrics.svc_batch_ms, 1) << " ms per batch.\n";
  return md.str();
}

int run(const Options& o) {
  Results res;
  {
    utsname u{};
    uname(&u);
    res.machine = std::to_string(std::thread::hardware_concurrency()) + " CPUs (nproc " + shell_out("nproc") + "), " +
                  u.sysname + " " + u.release;
    res.cpu_model = shell_out("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'");
    res.date = shell_out("date -u '+%Y-%m-%d %H:%M UTC'");
    pqxx::connection c(db_url(o, "postgres"));
    pqxx::nontransaction tx(c);
    res.pg_version = "PostgreSQL " + tx.exec("SHOW server_version")[0][0].as<std::string>() + " (fsync " +
                     tx.exec("SHOW fsync")[0][0].as<std::string>() + ", synchronous_commit " +
                     tx.exec("SHOW synchronous_commit")[0][0].as<std::string>() + ")";
  }
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
  res.w500 = amqp_confirm_rate(o, 500, o.raw_amqp_seconds);
  say("  RabbitMQ window 500: " + fmt_num(res.w500.rate) + " msg/s");

  say("setting up databases " + o.crm_db + ", " + o.mes_db + ", " + o.oss_db);
  for (const auto& db : {o.crm_db, o.mes_db, o.oss_db}) recreate_db(o, db);
  for (const auto& db : {o.crm_db, o.mes_db})
    run_to_completion({o.bin_dir + "/outbox-relay", "install", "--db", db_url(o, db)}, o.log);
  run_to_completion({o.bin_dir + "/order-status-service", "migrate", "--db", db_url(o, o.oss_db)}, o.log);

  int phase_no = 0;
  for (double rate : o.steady_rates)
    res.phases.push_back(run_load(o, ++phase_no, "steady " + fmt_num(rate) + "/s", true, "100ms", {rate},
                                  o.steady_seconds, o.threads));
  res.phases.push_back(run_load(o, ++phase_no, "steady 2,000/s", false, o.fast_poll, {2000}, o.steady_seconds, o.threads));
  res.phases.push_back(run_load(o, ++phase_no, "ramp", false, o.fast_poll, o.ramp_rates, o.ramp_seconds, o.ramp_threads));
  res.drain = backlog_drain(o, o.fast_poll);

  const std::string md = report(o, res);
  std::cout << md << std::flush;
  if (!o.markdown_out.empty()) {
    std::ofstream f(o.markdown_out, std::ios::trunc);
    f << md;
  }
  if (!o.keep) {
    for (const auto& db : {o.crm_db, o.mes_db, o.oss_db}) drop_db(o, db);
    try {
      oss::amqp::Connection a(amqp_options(o, "e2e_bench-cleanup"));
      a.delete_queue(o.raw_queue);
      a.delete_exchange(o.raw_exchange);
      a.delete_queue(o.queue);
      a.delete_queue(o.dlq);
      for (const char* tier : {"1s", "5s", "30s", "120s"}) a.delete_queue(o.queue + ".retry." + tier);
      a.delete_exchange(o.exchange);
      a.delete_exchange(o.notifications);
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
    std::cerr << "e2e_bench: error: " << e.what() << "\n";
    return 1;
  }
}
