// bench_support: helpers shared by the benchmark programs (relay_bench, e2e_bench,
// retention_bench): formatting and percentiles, child processes, HTTP, Prometheus text, CPU
// sampling from /proc, raw PostgreSQL commit and RabbitMQ publish-with-confirm measurements.
#include "bench_support.hpp"

#include <arpa/inet.h>
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
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <tuple>

#include "oss/core/ports.hpp"

namespace bench {

using namespace std::chrono_literals;

namespace {
const Clock::time_point g_t0 = Clock::now();
std::string& program_name() {
  static std::string name = "bench";
  return name;
}

// strtod with the "nothing parsed" case as 0 (what atof gave); accepts Prometheus' +Inf/NaN.
double parse_double(const char* s) {
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  return end == s ? 0.0 : v;
}
}  // namespace

void set_program(std::string name) { program_name() = std::move(name); }

void say(const std::string& msg) {
  std::cerr << "[" << program_name() << " +" << std::fixed << std::setprecision(1) << Secs(Clock::now() - g_t0).count() << "s] "
            << msg << std::endl;
}

std::string fmt_num(double v, int prec) {
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

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, v.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return v[lo] + (v[hi] - v[lo]) * frac;
}

std::vector<double> parse_list(const std::string& v) {
  std::vector<double> out;
  std::stringstream ss(v);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stod(item));
  return out;
}

double epoch_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void usage_exit(const std::string& prog, const std::string& problem, const std::string& synopsis) {
  if (!problem.empty()) std::cerr << prog << ": " << problem << "\n\n";
  std::cerr << synopsis << "\n";
  std::exit(2);  // NOLINT(concurrency-mt-unsafe): flag parsing, before any thread starts
}

void parse_flags(int argc, char** argv, CommonOptions& o, const std::function<void(const std::string&)>& usage,
                 const std::function<bool(const std::string&, const std::function<std::string()>&)>& flag) {
  std::vector<std::string> a(argv + 1, argv + argc);
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::string f = a[i];
    const std::function<std::string()> value = [&]() -> std::string {
      if (i + 1 >= a.size()) {
        usage(f + " needs a value");
        std::exit(2);  // NOLINT(concurrency-mt-unsafe): flag parsing, before any thread starts
      }
      return a[++i];
    };
    if (parse_common_flag(o, f, value)) continue;
    if (f == "--help" || f == "-h") usage("");
    else if (!flag(f, value)) usage("unknown flag " + f);
  }
}

bool parse_common_flag(CommonOptions& o, const std::string& f, const std::function<std::string()>& value) {
  if (f == "--pg-base") o.pg_base = value();
  else if (f == "--amqp") o.amqp = value();
  else if (f == "--quick") o.quick = true;
  else if (f == "--keep") o.keep = true;
  else if (f == "--markdown-out") o.markdown_out = value();
  else if (f == "--servers-dir") o.servers_dir = value();
  else return false;
  return true;
}

void finish_common(CommonOptions& o) {
  while (!o.pg_base.empty() && o.pg_base.back() == '/') o.pg_base.pop_back();
  if (o.servers_dir.empty()) {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): read once at startup, before any thread starts
    if (const char* d = std::getenv("OSS_SERVERS_DIR")) o.servers_dir = d;
  }
}

void describe_run(const CommonOptions& o, std::string& machine, std::string& cpu_model, std::string& date,
                  std::string& pg_version) {
  utsname u{};
  uname(&u);
  machine = std::to_string(std::thread::hardware_concurrency()) + " CPUs (nproc " + shell_out("nproc") + "), " +
            u.sysname + " " + u.release;
  cpu_model = shell_out("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'");
  date = shell_out("date -u '+%Y-%m-%d %H:%M UTC'");
  pqxx::connection c(db_url(o, "postgres"));
  pqxx::nontransaction tx(c);
  pg_version = "PostgreSQL " + tx.exec("SHOW server_version")[0][0].as<std::string>() + " (fsync " +
               tx.exec("SHOW fsync")[0][0].as<std::string>() + ", synchronous_commit " +
               tx.exec("SHOW synchronous_commit")[0][0].as<std::string>() + ")";
}

std::string db_url(const CommonOptions& o, const std::string& db) { return o.pg_base + "/" + db; }

pid_t spawn(const std::vector<std::string>& args, const std::string& log_path) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, args.at(0).c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("posix_spawn " + args.at(0) + ": " + std::generic_category().message(rc));
  return pid;
}

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

void stop_child(pid_t pid, const std::string& what) {
  kill(pid, SIGTERM);
  if (!wait_child(pid, 20s)) {
    say(what + " did not stop on SIGTERM within 20 s; SIGKILL");
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

int free_port() { return oss::core::unique_free_port(); }

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
  int status = 0;
  const char* code = resp.data() + 9;
  if (const auto [end, ec] = std::from_chars(code, code + 3, status); ec != std::errc() || end != code + 3)
    return std::nullopt;
  const auto body_at = resp.find("\r\n\r\n");
  return std::make_pair(status, body_at == std::string::npos ? std::string() : resp.substr(body_at + 4));
}


void wait_ready(pid_t& pid, int port, std::chrono::seconds timeout, const std::string& what) {
  const auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    if (auto st = wait_child(pid, 0ms)) {
      pid = -1;
      throw std::runtime_error(what + " exited during startup (status " + std::to_string(*st) + ")");
    }
    if (auto r = http_get(port, "/readyz"); r && r->first == 200) return;
    std::this_thread::sleep_for(50ms);
  }
  throw std::runtime_error(what + " did not become ready");
}

double metric_value(const std::string& line) {
  const auto sp = line.rfind(' ');
  return sp == std::string::npos ? 0.0 : parse_double(line.c_str() + sp + 1);
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
      const double bound = le == "+Inf" ? std::numeric_limits<double>::infinity() : parse_double(le.c_str());
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

std::optional<double> proc_cpu(pid_t pid, pid_t* ppid_out, bool with_reaped) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(f, s)) return std::nullopt;
  const auto rp = s.rfind(')');
  if (rp == std::string::npos) return std::nullopt;
  std::istringstream in(s.substr(rp + 2));
  std::vector<std::string> fields;
  std::string x;
  while (in >> x) fields.push_back(x);
  // fields[0] = state (field 3); utime = field 14, stime = field 15 -> fields[11], fields[12];
  // cutime, cstime = fields 16, 17 -> fields[13], fields[14].
  if (fields.size() < 15) return std::nullopt;
  if (ppid_out) *ppid_out = static_cast<pid_t>(std::stol(fields[1]));
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  double t = std::stod(fields[11]) + std::stod(fields[12]);
  if (with_reaped) t += std::stod(fields[13]) + std::stod(fields[14]);
  return t / ticks;
}

std::optional<pid_t> read_pid_file(const std::string& path) {
  std::ifstream f(path);
  long pid = 0;
  if (!(f >> pid) || pid <= 0) return std::nullopt;
  return static_cast<pid_t>(pid);
}

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


CpuMeter::CpuMeter(const CommonOptions& o, std::vector<std::pair<std::string, pid_t>> procs)
    : procs_(std::move(procs)) {
  if (!o.servers_dir.empty()) {
    postmaster_ = read_pid_file(o.servers_dir + "/pg/data/postmaster.pid");
    beam_ = read_pid_file(o.servers_dir + "/rabbit/rabbit.pid");
  }
  start_ = Clock::now();
  snap(begin_);
}

std::string CpuMeter::finish() {
  Snap end;
  snap(end);
  const double wall = Secs(Clock::now() - start_).count();
  std::ostringstream o;
  o << std::fixed << std::setprecision(2);
  for (std::size_t i = 0; i < begin_.cpu.size(); ++i) {
    if (begin_.cpu[i].first == "postgres") {
      if (begin_.pg_parent >= 0 && end.pg_parent >= 0) o << "postgres " << postgres_between(begin_, end) / wall << ", ";
      continue;
    }
    const double a = begin_.cpu[i].second, b = end.cpu[i].second;
    if (a >= 0 && b >= 0) o << begin_.cpu[i].first << ' ' << (b - a) / wall << ", ";
  }
  const double busy = end.busy - begin_.busy, total = end.total - begin_.total;
  o << std::setprecision(0) << "machine " << (total > 0 ? 100.0 * busy / total : 0.0) << " % busy";
  return o.str();
}

double CpuMeter::postgres_between(const Snap& a, const Snap& b) {
  // Live children: what they used in between (all of it for one started in between). Exited
  // children: the postmaster's reaped time grew by all the CPU they ever used, so what they had
  // used before `a` comes off. (Until 2026-12-08 this summed the live children at each end, so
  // a backend that exited in between, e.g. the previous step's producers, took all its CPU off
  // the figure: steady-state PostgreSQL CPU read 0.6-0.8 cores where it was about 1.2.)
  double t = b.pg_parent - a.pg_parent;
  for (const auto& [pid, cpu] : b.pg_children) {
    const auto it = a.pg_children.find(pid);
    t += cpu - (it != a.pg_children.end() ? it->second : 0.0);
  }
  for (const auto& [pid, cpu] : a.pg_children)
    if (b.pg_children.count(pid) == 0) t -= cpu;
  return t;
}

void CpuMeter::snap(Snap& s) {
  for (const auto& [name, pid] : procs_) s.cpu.emplace_back(name, proc_cpu(pid).value_or(-1));
  if (postmaster_) {
    // The postmaster and its children (backends, walwriter, checkpointer...); see
    // postgres_between for the children that start or exit in between.
    s.pg_parent = proc_cpu(*postmaster_, nullptr, /*with_reaped=*/true).value_or(-1);
    namespace fs = std::filesystem;
    std::error_code ec;
    for (fs::directory_iterator it("/proc", ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      pid_t pid = 0;
      if (const auto [end, err] = std::from_chars(name.data(), name.data() + name.size(), pid);
          err != std::errc() || end != name.data() + name.size())
        continue;  // not a process directory
      pid_t ppid = 0;
      if (auto c = proc_cpu(pid, &ppid); c && ppid == *postmaster_) s.pg_children[pid] = *c;
    }
  }
  s.cpu.emplace_back("postgres", s.pg_parent);  // placeholder: finish() uses postgres_between
  s.cpu.emplace_back("rabbitmq", beam_ ? proc_cpu(*beam_).value_or(-1) : -1);
  s.cpu.emplace_back("bench", proc_cpu(getpid()).value_or(-1));
  std::tie(s.busy, s.total) = machine_cpu();
}

void recreate_db(const CommonOptions& o, const std::string& name) {
  pqxx::connection c(db_url(o, "postgres"));
  pqxx::nontransaction tx(c);
  tx.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  tx.exec("CREATE DATABASE " + name);
}

void drop_db(const CommonOptions& o, const std::string& name) {
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



LoadResult pg_load(const std::string& url, int clients, double seconds, const std::vector<std::string>& setup,
                   const std::string& prepared_sql, const Statement& stmt, const CommonOptions& o) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  Clock::time_point end{};
  std::mutex mu;
  std::vector<double> lat;
  std::uint64_t ops = 0;
  std::string error;
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(clients));
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

std::string payload_json(const std::string& aggregate_id) {
  return "{\"order_id\":\"" + aggregate_id + "\",\"status\":\"created\",\"amount_cents\":12950,\"note\":\"" +
         std::string(100, 'x') + "\"}";
}

oss::amqp::ConnectionOptions amqp_options(const CommonOptions& o, const std::string& name) {
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


ConfirmResult amqp_confirm_rate(const CommonOptions& o, const std::string& connection_name, const std::string& exchange,
                                const std::string& queue, std::size_t window, double seconds) {
  oss::amqp::Connection c(amqp_options(o, connection_name));
  declare_quorum_queue(c, exchange, queue);
  c.purge_queue(queue);
  c.enable_confirms();
  oss::amqp::Message m;
  m.exchange = exchange;
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
  c.purge_queue(queue);
  return r;
}

std::int64_t scalar(pqxx::connection& c, const std::string& sql) {
  pqxx::nontransaction tx(c);
  return tx.exec(sql)[0][0].as<std::int64_t>();
}

std::string shell_out(const std::string& cmd) {
  std::string out;
  // NOLINTNEXTLINE(cert-env33-c): the benchmarks' own fixed command lines, no outside input
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

void emit_report(const std::string& md, const std::string& markdown_out) {
  std::cout << md << std::flush;
  if (!markdown_out.empty()) {
    std::ofstream f(markdown_out, std::ios::trunc);
    f << md;
  }
}

void amqp_cleanup(const CommonOptions& o, const std::string& connection_name,
                  const std::function<void(oss::amqp::Connection&)>& del) {
  try {
    oss::amqp::Connection a(amqp_options(o, connection_name));
    del(a);
  } catch (const std::exception& e) {
    say(std::string("cleanup: ") + e.what());
  }
}

int guarded_main(const std::string& prog, const std::function<int()>& body) {
  if (std::signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
    std::cerr << prog << ": error: cannot ignore SIGPIPE\n";
    return 1;
  }
  try {
    return body();
  } catch (const std::exception& e) {
    std::cerr << prog << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace bench
