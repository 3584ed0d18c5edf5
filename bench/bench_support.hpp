// bench_support: helpers shared by the benchmark programs; see bench_support.cpp.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "oss/amqp/connection.hpp"

namespace bench {

using Clock = std::chrono::steady_clock;
using Secs = std::chrono::duration<double>;

/// The name `say` prints in its prefix ("[NAME +1.2s] ...").
void set_program(std::string name);
/// One progress line on stderr, with the seconds since start.
void say(const std::string& msg);
std::string fmt_num(double v, int prec = 0);
std::string fmt_pct(double ratio);
double ms_between(Clock::time_point a, Clock::time_point b);
/// Linear-interpolated quantile of a sample (q in [0,1]); NaN when empty.
double quantile(std::vector<double> v, double q);
/// "500,2000" -> {500, 2000}.
std::vector<double> parse_list(const std::string& v);
/// Seconds since the epoch (system clock).
double epoch_now();
/// The command's standard output, trailing newlines and spaces removed.
std::string shell_out(const std::string& cmd);

/// The options every benchmark has (the servers, --quick, --keep, --markdown-out); each
/// program's Options derives from it.
struct CommonOptions {
  std::string pg_base, amqp;
  bool quick = false;
  bool keep = false;
  std::string markdown_out;
  std::string servers_dir;  // for CPU attribution (postmaster.pid, rabbit.pid); optional
};

/// Takes flag `f` when it is one of the common ones (`value` gives its argument); false if not.
/// Prints "PROG: PROBLEM" (when any) and the synopsis on stderr; exits 2.
[[noreturn]] void usage_exit(const std::string& prog, const std::string& problem, const std::string& synopsis);
/// Walks the command line: the common flags, --help/-h (usage("")), then `flag` for the
/// program's own (false: usage("unknown flag F")); `usage` must not return.
void parse_flags(int argc, char** argv, CommonOptions& o, const std::function<void(const std::string&)>& usage,
                 const std::function<bool(const std::string&, const std::function<std::string()>&)>& flag);
bool parse_common_flag(CommonOptions& o, const std::string& f, const std::function<std::string()>& value);
/// After parsing: trailing '/' off --pg-base; --servers-dir from $OSS_SERVERS_DIR when not given.
void finish_common(CommonOptions& o);
/// "N CPUs (nproc N), Linux 6.x", the CPU model, the UTC date and the PostgreSQL version line.
void describe_run(const CommonOptions& o, std::string& machine, std::string& cpu_model, std::string& date,
                  std::string& pg_version);

std::string db_url(const CommonOptions& o, const std::string& db);

// Child processes, HTTP, /proc
pid_t spawn(const std::vector<std::string>& args, const std::string& log_path);
/// Waits up to `timeout` for the child; returns its wait status, or nullopt if still running.
std::optional<int> wait_child(pid_t pid, std::chrono::milliseconds timeout);
/// SIGTERM, then SIGKILL after 20 s (saying "WHAT did not stop ...").
void stop_child(pid_t pid, const std::string& what);
void run_to_completion(const std::vector<std::string>& args, const std::string& log_path);
int free_port();
/// GET http://127.0.0.1:port/path; returns (status, body) or nullopt when not reachable.
std::optional<std::pair<int, std::string>> http_get(int port, const std::string& path);
/// Waits until the child's /readyz on `port` answers 200; throws "WHAT exited during startup"
/// (and sets `pid` to -1) or "WHAT did not become ready".
void wait_ready(pid_t& pid, int port, std::chrono::seconds timeout, const std::string& what);

struct Histogram {
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative count)
  double count = 0, sum = 0;
};

double metric_value(const std::string& line);
Histogram parse_histogram(const std::string& text, const std::string& name);
/// Prometheus-style histogram_quantile (linear inside the bucket).
double histogram_quantile(const Histogram& h, double q);
double sum_metric(const std::string& text, const std::string& name);

/// CPU time (seconds) of one process, from /proc/PID/stat; ppid through `ppid_out`.
/// CPU seconds of `pid` (utime + stime); with `with_reaped`, also those of its children it has
/// waited for (cutime + cstime: where an exited PostgreSQL backend's CPU goes).
std::optional<double> proc_cpu(pid_t pid, pid_t* ppid_out = nullptr, bool with_reaped = false);
std::optional<pid_t> read_pid_file(const std::string& path);
/// Machine-wide busy/total jiffies from /proc/stat.
std::pair<double, double> machine_cpu();

/// CPU used per process over an interval, in cores (CPU seconds per wall second): the named
/// child processes, the postmaster with its children, RabbitMQ's beam.smp, and this program.
class CpuMeter {
 public:
  CpuMeter(const CommonOptions& o, std::vector<std::pair<std::string, pid_t>> procs);
  /// e.g. "relay-crm 0.08, relay-mes 0.08, service 0.30, postgres 0.95, rabbitmq 0.40, bench 0.10; machine 93 % busy"
  std::string finish();

 private:
  struct Snap {
    std::vector<std::pair<std::string, double>> cpu;
    double busy = 0, total = 0;
    /// PostgreSQL: the postmaster with its reaped children, and each live child (backends,
    /// walwriter, ...), so that backends starting or exiting between two snapshots count only
    /// with the CPU they used in between.
    double pg_parent = -1;
    std::map<pid_t, double> pg_children;
  };
  static double postgres_between(const Snap& a, const Snap& b);
  void snap(Snap& s);
  std::vector<std::pair<std::string, pid_t>> procs_;
  std::optional<pid_t> postmaster_, beam_;
  Clock::time_point start_;
  Snap begin_;
};

// PostgreSQL
void recreate_db(const CommonOptions& o, const std::string& name);
void drop_db(const CommonOptions& o, const std::string& name);
void exec_sql(const std::string& url, const std::string& sql);
std::int64_t scalar(pqxx::connection& c, const std::string& sql);

struct LoadResult {
  std::uint64_t ops = 0;
  double seconds = 0, rate = 0, p50_ms = 0, p99_ms = 0;
  std::string cpu;
};

using Statement = std::function<void(pqxx::nontransaction&, int client, std::uint64_t n)>;

/// `clients` connections, each running `stmt` in autocommit (one statement = one transaction)
/// as fast as it can for `seconds`.
LoadResult pg_load(const std::string& url, int clients, double seconds, const std::vector<std::string>& setup,
                   const std::string& prepared_sql, const Statement& stmt, const CommonOptions& o);

std::string payload_json(const std::string& aggregate_id);

// RabbitMQ
oss::amqp::ConnectionOptions amqp_options(const CommonOptions& o, const std::string& name);
void declare_quorum_queue(oss::amqp::Connection& c, const std::string& exchange, const std::string& queue);

struct ConfirmResult {
  std::uint64_t msgs = 0, nacked = 0;
  double seconds = 0, rate = 0, p50_ms = 0, p99_ms = 0;
  std::size_t body_bytes = 0;
  std::string cpu;
};

/// Persistent, mandatory publishes through a topic exchange into a quorum queue, at most
/// `window` unconfirmed at any time, for `seconds`. Messages look like the relay's (same body
/// size, same headers).
ConfirmResult amqp_confirm_rate(const CommonOptions& o, const std::string& connection_name, const std::string& exchange,
                                const std::string& queue, std::size_t window, double seconds);

// Program scaffolding
/// Prints the report on stdout and, when `markdown_out` is not empty, writes it there too.
void emit_report(const std::string& md, const std::string& markdown_out);
/// Deletes the run's RabbitMQ objects through `del`; a failure is only said ("cleanup: ...").
void amqp_cleanup(const CommonOptions& o, const std::string& connection_name,
                  const std::function<void(oss::amqp::Connection&)>& del);
/// Ignores SIGPIPE and runs `body`; an exception is printed as "PROG: error: ..." and gives 1.
int guarded_main(const std::string& prog, const std::function<int()>& body);

}  // namespace bench
