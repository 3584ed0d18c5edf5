#pragma once
/// Helpers for tests that talk to real servers and real programs from the outside.
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace oss::testing {

/// OSS_TEST_PG_URL_BASE (postgresql://user:pw@127.0.0.1:port); fails the test when unset.
std::string pg_base_url();
/// OSS_TEST_AMQP_URL; fails the test when unset.
std::string amqp_url();
/// scripts/servers.sh path and its directory (for fault injection: restart-pg, kill-rabbit ...).
std::string servers_script();
/// Runs `scripts/servers.sh <action>` on the test servers; true on success.
bool servers(const std::string& action);

/// A short unique suffix for names (databases, queues) within this test run.
std::string unique_name(const std::string& prefix);
/// Creates an empty database and returns its URL.
std::string fresh_database(const std::string& prefix);
/// Drops a database made by fresh_database (its URL), closing any connection left to it.
void drop_database(const std::string& url);
/// Runs SQL on a database and returns the first column of the first row (or "" if none).
std::string sql_scalar(const std::string& url, const std::string& sql);
void sql_exec(const std::string& url, const std::string& sql);

std::string bin(const std::string& program);  // build/bin/<program>, or $OSS_TEST_BIN_DIR/<program>
std::uint16_t free_port();

/// A child process with its output in a log file; killed (SIGKILL) if still running at the end,
/// and by the kernel if the test process dies first (PR_SET_PDEATHSIG; start it from the main
/// thread: the signal follows the thread that started it).
class Process {
 public:
  Process(const std::string& program, const std::vector<std::string>& args,
          const std::map<std::string, std::string>& env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  void signal(int sig);
  /// Waits for exit; returns the exit code (128+signal if killed) or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running();
  std::string log() const;
  const std::string& log_path() const { return log_path_; }
  int pid() const { return pid_; }

 private:
  int pid_ = -1;
  std::optional<int> status_;
  std::string log_path_;
};

struct HttpResult {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};
/// A blocking HTTP/1.1 request to 127.0.0.1:port (tests only). status 0 when unreachable.
HttpResult http(const std::string& method, std::uint16_t port, const std::string& target,
                const std::string& body = "", const std::map<std::string, std::string>& headers = {});

/// Polls `condition` every 50 ms until true or `timeout`; returns the final value.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

/// Value of one Prometheus sample line (`name{labels}`) in a /metrics text, 0 when absent.
double metric(const std::string& metrics_text, const std::string& sample);

}  // namespace oss::testing
