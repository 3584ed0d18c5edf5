// relay_bench: the outbox relay measured side by side with the raw limits of its two servers,
// in ONE run on the same machine (docs/performance.md, "## outbox-relay").
//
//   1. PostgreSQL single-row commits (plain INSERT, 1 and 8 clients) and outbox.emit commits
//      (8 clients) with NOTIFY on and off;
//   2. RabbitMQ persistent publish-with-confirm into a quorum queue (window 500, one at a time);
//   3. backlog drain: N rows emitted with no relay running, then `outbox-relay run` started and
//      timed until nothing is unpublished;
//   4. steady producer rates (500/s and 2,000/s, paced, single-row transactions) with the relay
//      running; commit-to-confirm latency = published_at - occurred_at read back from the table.
//
// The relay is the real binary, run as a child process. The program prints a markdown table
// (and writes it to --markdown-out FILE when given).
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

using Clock = std::chrono::steady_clock;
using Secs = std::chrono::duration<double>;
using namespace std::chrono_literals;

const Clock::time_point g_t0 = Clock::now();

void say(const std::string& msg) {
  std::cerr << "[relay_bench +" << std::fixed << std::setprecision(1) << Secs(Clock::now() - g_t0).count() << "s] "
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
  std::string pg_base, amqp, relay;
  bool quick = false;
  bool keep = false;
  std::string markdown_out;
  std::string servers_dir;  // for CPU attribution (postmaster.pid, rabbit.pid); optional
  std::string relay_log = "/tmp/relay_bench.relay.log";
  std::string batch_size = "500";
  double raw_pg_seconds = 10, raw_amqp_seconds = 8, one_at_a_time_seconds = 5, emit_seconds = 10;
  std::int64_t backlog = 200'000;
  double steady_seconds = 30;
  std::vector<double> steady_rates{500, 2000};
  int steady_threads = 16;
  double drain_timeout = 600;
};

[[noreturn]] void usage(const std::string& problem) {
  if (!problem.empty()) std::cerr << "relay_bench: " << problem << "\n\n";
  std::cerr << "relay_bench --pg-base postgresql://user:pw@host:port --amqp amqp://u:p@host:port/%2f "
               "--relay build/bin/outbox-relay [--quick] [--batch-size N] [--backlog N] "
               "[--steady-seconds S] [--steady-rates 500,2000] [--markdown-out FILE] "
               "[--servers-dir DIR] [--relay-log FILE] [--keep]\n";
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  bool backlog_set = false, steady_set = false;
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
    else if (f == "--relay-log") o.relay_log = value();
    else if (f == "--batch-size") o.batch_size = value();
    else if (f == "--backlog") {
      o.backlog = std::stoll(value());
      backlog_set = true;
    } else if (f == "--steady-seconds") {
      o.steady_seconds = std::stod(value());
      steady_set = true;
    } else if (f == "--steady-rates") {
      o.steady_rates.clear();
      std::stringstream ss(value());
      std::string item;
      while (std::getline(ss, item, ',')) o.steady_rates.push_back(std::stod(item));
    } else if (f == "--help" || f == "-h") usage("");
    else usage("unknown flag " + f);
  }
  if (o.pg_base.empty() || o.amqp.empty() || o.relay.empty()) usage("--pg-base, --amqp and --relay are required");
  while (!o.pg_base.empty() && o.pg_base.back() == '/') o.pg_base.pop_back();
  if (o.servers_dir.empty()) {
    if (const char* d = std::getenv("OSS_SERVERS_DIR")) o.servers_dir = d;
  }
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
    say("relay did not stop on SIGTERM within 20 s; SIGKILL");
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
double histogram_quantile(const Histogram& h, double q) {
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

/// CPU used per component over an interval, in cores (CPU seconds per wall second).
class CpuMeter {
 public:
  CpuMeter(const Options& o, std::optional<pid_t> relay_pid) : relay_pid_(relay_pid) {
    if (!o.servers_dir.empty()) {
      postmaster_ = read_pid_file(o.servers_dir + "/pg/data/postmaster.pid");
      beam_ = read_pid_file(o.servers_dir + "/rabbit/rabbit.pid");
    }
    start_ = Clock::now();
    snap(begin_);
  }
  /// e.g. "relay 0.41, postgres 0.95, rabbitmq 0.40, bench 0.10; machine 93 % busy"
  std::string finish() {
    Snap end;
    snap(end);
    const double wall = Secs(Clock::now() - start_).count();
    std::ostringstream o;
    o << std::fixed << std::setprecision(2);
    auto part = [&](const char* name, double a, double b) {
      if (a >= 0 && b >= 0) o << name << ' ' << (b - a) / wall << ", ";
    };
    part("relay", begin_.relay, end.relay);
    part("postgres", begin_.pg, end.pg);
    part("rabbitmq", begin_.beam, end.beam);
    part("bench", begin_.self, end.self);
    const double busy = end.busy - begin_.busy, total = end.total - begin_.total;
    o << std::setprecision(0) << "machine " << (total > 0 ? 100.0 * busy / total : 0.0) << " % busy";
    return o.str();
  }

 private:
  struct Snap {
    double relay = -1, pg = -1, beam = -1, self = -1, busy = 0, total = 0;
  };
  void snap(Snap& s) {
    if (relay_pid_) s.relay = proc_cpu(*relay_pid_).value_or(-1);
    if (beam_) s.beam = proc_cpu(*beam_).value_or(-1);
    s.self = proc_cpu(getpid()).value_or(-1);
    if (postmaster_) {
      // The postmaster and its children (backends, walwriter, checkpointer...). Backends that
      // exited during the interval are not counted; the benchmark keeps its connections open.
      double total = proc_cpu(*postmaster_).value_or(0);
      if (DIR* d = opendir("/proc")) {
        while (dirent* e = readdir(d)) {
          if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
          pid_t ppid = 0;
          const auto pid = static_cast<pid_t>(std::atol(e->d_name));
          if (auto c = proc_cpu(pid, &ppid); c && ppid == *postmaster_) total += *c;
        }
        closedir(d);
      }
      s.pg = total;
    }
    std::tie(s.busy, s.total) = machine_cpu();
  }
  std::optional<pid_t> relay_pid_, postmaster_, beam_;
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
  CpuMeter cpu(o, std::nullopt);
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

std::string payload_json(const std::string& aggregate_id) {
  return "{\"order_id\":\"" + aggregate_id + "\",\"status\":\"created\",\"amount_cents\":12950,\"note\":\"" +
         std::string(100, 'x') + "\"}";
}

// ---------------------------------------------------------------------------------------------
// RabbitMQ

oss::amqp::ConnectionOptions amqp_options(const Options& o, const std::string& name) {
  oss::amqp::ConnectionOptions c;
  c.url = o.amqp;
  c.connection_name = name;
  return c;
}

const char* kRelayExchange = "relay_bench.events";
const char* kRelayQueue = "relay_bench.relay";
const char* kRawExchange = "relay_bench.raw";
const char* kRawQueue = "relay_bench.raw";

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
  oss::amqp::Connection c(amqp_options(o, "relay_bench-raw"));
  declare_quorum_queue(c, kRawExchange, kRawQueue);
  c.purge_queue(kRawQueue);
  c.enable_confirms();
  oss::amqp::Message m;
  m.exchange = kRawExchange;
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
  CpuMeter cpu(o, std::nullopt);
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
  c.purge_queue(kRawQueue);
  return r;
}

// ---------------------------------------------------------------------------------------------
// The relay

class RelayProcess {
 public:
  RelayProcess(const Options& o, const std::string& db) : port_(free_port()) {
    {
      std::ofstream log(o.relay_log, std::ios::app);
      log << "\n==== relay_bench: starting relay for " << db << " ====\n";
    }
    pid_ = spawn({o.relay, "run", "--db", db_url(o, db), "--amqp", o.amqp, "--exchange", kRelayExchange,
                  "--metrics", "127.0.0.1:" + std::to_string(port_), "--batch-size", o.batch_size},
                 o.relay_log);
  }
  ~RelayProcess() {
    if (pid_ > 0) stop_child(pid_);
  }
  RelayProcess(const RelayProcess&) = delete;
  RelayProcess& operator=(const RelayProcess&) = delete;

  pid_t pid() const { return pid_; }
  /// Waits until /readyz answers 200 (database and broker reached, loop running).
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
  std::string metrics() {
    auto r = http_get(port_, "/metrics");
    return r ? r->second : std::string();
  }
  void stop() {
    if (pid_ > 0) stop_child(pid_);
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

std::int64_t scalar(pqxx::connection& c, const std::string& sql) {
  pqxx::nontransaction tx(c);
  return tx.exec(sql)[0][0].as<std::int64_t>();
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

DrainResult backlog_drain(const Options& o, const std::string& db) {
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
  RelayProcess relay(o, db);
  CpuMeter cpu(o, relay.pid());
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
    pqxx::nontransaction tx(c);
    const auto row = tx.exec(
        "SELECT count(*), coalesce(extract(epoch from max(published_at) - min(published_at)), 0)::float8, "
        "       (SELECT count(*) FROM outbox.events WHERE parked_at IS NOT NULL) "
        "FROM outbox.events WHERE source = 'backlog' AND published_at IS NOT NULL")[0];
    const auto published = row[0].as<std::int64_t>();
    r.db_seconds = row[1].as<double>();
    r.db_rate = r.db_seconds > 0 ? static_cast<double>(published) / r.db_seconds : 0;
    r.parked = row[2].as<std::int64_t>();
  }
  return r;
}

struct SteadyResult {
  double target = 0, achieved = 0;
  std::int64_t rows = 0, unpublished = 0;
  std::uint64_t late = 0;
  double p50_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0;
  double commit_p50_ms = 0, commit_p99_ms = 0;  // producer-side emit+commit latency
  RelayHist hist;
  double batches = 0, batch_mean = 0, batch_cycle_ms = 0;
  std::string cpu, relay_state;
};

SteadyResult steady(const Options& o, const std::string& db, double rate) {
  SteadyResult r;
  r.target = rate;
  const std::string url = db_url(o, db);
  const std::string source = "steady" + std::to_string(static_cast<long>(rate));
  pqxx::connection c(url);
  RelayProcess relay(o, db);
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
      std::to_string(o.steady_threads) + " producer threads, one event per transaction)");
  const int threads_n = o.steady_threads;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  Clock::time_point start{};
  const auto duration = std::chrono::duration_cast<Clock::duration>(Secs(o.steady_seconds));
  std::mutex mu;
  std::vector<double> commit_lat;
  std::uint64_t late = 0;
  std::string error;
  std::vector<std::thread> threads;
  for (int j = 0; j < threads_n; ++j) {
    threads.emplace_back([&, j] {
      std::vector<double> mine;
      std::uint64_t my_late = 0;
      try {
        pqxx::connection pc(url);
        pc.prepare("emit", kEmitSql);
        pqxx::nontransaction tx(pc);
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
          tx.exec_prepared("emit", source, agg, payload_json(agg));
          mine.push_back(ms_between(t, Clock::now()));
        }
      } catch (const std::exception& e) {
        std::lock_guard l(mu);
        error = e.what();
        ++ready;
      }
      std::lock_guard l(mu);
      commit_lat.insert(commit_lat.end(), mine.begin(), mine.end());
      late += my_late;
    });
  }
  while (ready.load() < threads_n) std::this_thread::sleep_for(5ms);
  CpuMeter cpu(o, relay.pid());
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
    pqxx::nontransaction tx(c);
    const auto row = tx.exec_params(
        "SELECT count(*), "
        "  percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.99) WITHIN GROUP (ORDER BY d), "
        "  percentile_cont(0.999) WITHIN GROUP (ORDER BY d), max(d) "
        "FROM (SELECT extract(epoch from published_at - occurred_at)::float8 * 1000 AS d "
        "      FROM outbox.events WHERE source = $1 AND published_at IS NOT NULL) s",
        source)[0];
    r.rows = row[0].as<std::int64_t>();
    r.p50_ms = row[1].is_null() ? std::numeric_limits<double>::quiet_NaN() : row[1].as<double>();
    r.p99_ms = row[2].is_null() ? std::numeric_limits<double>::quiet_NaN() : row[2].as<double>();
    r.p999_ms = row[3].is_null() ? std::numeric_limits<double>::quiet_NaN() : row[3].as<double>();
    r.max_ms = row[4].is_null() ? std::numeric_limits<double>::quiet_NaN() : row[4].as<double>();
  }
  // Producers that fall behind their schedule keep sending until every event is out: the
  // achieved rate is events over the time they actually took.
  r.achieved = static_cast<double>(commit_lat.size()) / std::max(produce_seconds, o.steady_seconds);
  r.late = late;
  r.commit_p50_ms = quantile(commit_lat, 0.5);
  r.commit_p99_ms = quantile(commit_lat, 0.99);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Report

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
     << o.batch_size << (o.quick ? "; **--quick sizes**" : "") << ".\n\n";
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
       << " producers, 1 event per transaction, " << fmt_num(o.steady_seconds) << " s) | achieved "
       << fmt_num(s.achieved) << " events/s; commit-to-confirm **p50 " << fmt_num(s.p50_ms, 1) << " ms, p99 "
       << fmt_num(s.p99_ms, 1) << " ms**, p99.9 " << fmt_num(s.p999_ms, 1) << " ms, max " << fmt_num(s.max_ms, 1)
       << " ms (" << fmt_num(static_cast<double>(s.rows)) << " rows) | rate " << fmt_pct(s.achieved / r.pg8.rate)
       << " of raw 8-client commits, " << fmt_pct(s.achieved / raw_confirm) << " of raw confirms; p50 = "
       << fmt_num(s.p50_ms / (r.pg1.p50_ms + r.w1.p50_ms), 1) << "x the floor (1 commit + 1 confirm = "
       << fmt_num(r.pg1.p50_ms + r.w1.p50_ms, 2) << " ms) |\n";
  }
  md << "\nTargets: backlog drain >= 60 % of the raw confirm rate: **"
     << (d.wall_rate >= 0.6 * raw_confirm ? "met" : "NOT met") << "** (" << fmt_pct(d.wall_rate / raw_confirm)
     << "). ";
  for (const auto& s : r.steady)
    if (s.target == 2000)
      md << "p99 commit-to-confirm < 50 ms at 2,000 events/s: **" << (s.p99_ms < 50 ? "met" : "NOT met") << "** ("
         << fmt_num(s.p99_ms, 1) << " ms).";
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
    md << "- Steady " << fmt_num(s.target) << "/s: CPU " << s.cpu << "; producer emit+commit p50 "
       << fmt_num(s.commit_p50_ms, 2) << " ms, p99 " << fmt_num(s.commit_p99_ms, 2) << " ms; sends more than 10 ms "
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
  exec_sql(db_url(o, emit_db), "TRUNCATE outbox.events, outbox.aggregate_sequences");
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
  res.w500 = amqp_confirm_rate(o, 500, o.raw_amqp_seconds);
  say("  window 500: " + fmt_num(res.w500.rate) + " msg/s, p50 " + fmt_num(res.w500.p50_ms, 1) + " ms");
  res.w1 = amqp_confirm_rate(o, 1, o.one_at_a_time_seconds);
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
  for (double rate : o.steady_rates) {
    res.steady.push_back(steady(o, relay_db, rate));
    const auto& s = res.steady.back();
    say("  " + fmt_num(rate) + "/s: achieved " + fmt_num(s.achieved) + "/s, p50 " + fmt_num(s.p50_ms, 1) +
        " ms, p99 " + fmt_num(s.p99_ms, 1) + " ms, max " + fmt_num(s.max_ms, 1) + " ms");
    oss::amqp::Connection a(amqp_options(o, "relay_bench-setup"));
    a.purge_queue(kRelayQueue);
  }

  const std::string md = report(o, res);
  std::cout << md << std::flush;
  if (!o.markdown_out.empty()) {
    std::ofstream f(o.markdown_out, std::ios::trunc);
    f << md;
  }

  if (!o.keep) {
    for (const auto& db : {raw_db, emit_db, relay_db}) drop_db(o, db);
    try {
      oss::amqp::Connection a(amqp_options(o, "relay_bench-cleanup"));
      a.delete_queue(kRelayQueue);
      a.delete_queue(kRawQueue);
      a.delete_exchange(kRelayExchange);
      a.delete_exchange(kRawExchange);
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
    std::cerr << "relay_bench: error: " << e.what() << "\n";
    return 1;
  }
}
