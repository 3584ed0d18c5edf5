#include "oss/testing/support.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <gtest/gtest.h>
#include <pqxx/pqxx>
#include <random>
#include <sys/prctl.h>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <system_error>
#include <thread>
#include <unistd.h>

#include "oss/core/ports.hpp"

namespace oss::testing {
namespace {

std::string required_env(const char* name) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): tests change the environment only before any thread
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    ADD_FAILURE() << name << " is not set: run the tests through scripts/test.sh (it starts PostgreSQL and "
                  << "RabbitMQ and exports the addresses), or `source .run/servers/env` after scripts/servers.sh start";
    throw std::runtime_error(std::string(name) + " not set");
  }
  return v;
}

}  // namespace

std::string pg_base_url() { return required_env("OSS_TEST_PG_URL_BASE"); }
std::string amqp_url() { return required_env("OSS_TEST_AMQP_URL"); }
std::string servers_script() { return required_env("OSS_TEST_SERVERS_SCRIPT"); }

bool servers(const std::string& action) {
  // A test that stops or kills the shared servers must run alone on them: ctest gives it both
  // of their slots when tests/CMakeLists.txt lists it as SERVER_FAULTS, and sets this variable
  // for it. A test that is not listed would run beside others and break them at random.
  const char* faults = std::getenv("OSS_TEST_SERVER_FAULTS");
  if (faults == nullptr || std::string(faults) != "1") {
    ADD_FAILURE() << "scripts/servers.sh " << action << " on the shared test servers: only a test listed as "
                  << "SERVER_FAULTS in tests/CMakeLists.txt may stop, kill or restart them (ctest then runs it "
                  << "alone on them and sets OSS_TEST_SERVER_FAULTS=1). Add it there, or set "
                  << "OSS_TEST_SERVER_FAULTS=1 to run it by hand with nothing else on these servers.";
    return false;
  }
  // Its output goes to a log file of the Process; 5 minutes is far more than any action takes.
  Process script(servers_script(), {action, required_env("OSS_SERVERS_DIR")});
  const auto status = script.wait(std::chrono::minutes(5));
  return status && *status == 0;
}

std::string unique_name(const std::string& prefix) {
  static std::mt19937_64 rng{std::random_device{}()};
  std::ostringstream s;
  s << prefix << "_" << std::hex << (rng() & 0xffffffffULL);
  return s.str();
}

std::string fresh_database(const std::string& prefix) {
  const std::string name = unique_name(prefix);
  pqxx::connection c(pg_base_url() + "/postgres");
  pqxx::nontransaction tx(c);
  tx.exec("CREATE DATABASE " + name);
  return pg_base_url() + "/" + name;
}

void drop_database(const std::string& url) {
  const auto slash = url.rfind('/');
  const std::string name = url.substr(slash + 1);
  if (slash == std::string::npos || name.empty() || url.substr(0, slash) != pg_base_url())
    throw std::invalid_argument("drop_database: not a database of the test server: " + url);
  pqxx::connection c(pg_base_url() + "/postgres");
  pqxx::nontransaction tx(c);
  tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name) + " WITH (FORCE)");
}

std::string sql_scalar(const std::string& url, const std::string& sql) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  const auto r = tx.exec(sql);
  if (r.empty() || r[0].empty() || r[0][0].is_null()) return "";
  return r[0][0].as<std::string>();
}

void sql_exec(const std::string& url, const std::string& sql) {
  pqxx::connection c(url);
  pqxx::work tx(c);
  tx.exec(sql);
  tx.commit();
}

std::string bin(const std::string& program) {
  // OSS_TEST_BIN_DIR runs these tests against the programs of another build tree:
  // scripts/sanitizers.sh runs the plain end-to-end test binaries against the sanitized programs
  // (the test code itself needs no second, instrumented compile).
  // NOLINTNEXTLINE(concurrency-mt-unsafe): tests change the environment only before any thread
  const char* dir = std::getenv("OSS_TEST_BIN_DIR");
  return std::string(dir != nullptr && *dir != '\0' ? dir : OSS_BIN_DIR) + "/" + program;
}

std::uint16_t free_port() { return core::unique_free_port(); }

Process::Process(const std::string& program, const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): tests change the environment only before any thread
  const char* tmp = std::getenv("OSS_TEST_LOG_DIR");
  log_path_ = std::string(tmp ? tmp : "/tmp") + "/" + unique_name(program.substr(program.rfind('/') + 1)) + ".log";
  std::vector<std::string> argv_s{program};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(argv_s.size() + 1);
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const auto key = kv.substr(0, kv.find('='));
    if (!env.contains(key)) env_s.push_back(kv);
  }
  for (const auto& [k, v] : env) {
    std::string kv = k;
    kv += '=';
    kv += v;
    env_s.push_back(std::move(kv));
  }
  std::vector<char*> envp;
  envp.reserve(env_s.size() + 1);
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  // fork + exec by hand rather than posix_spawn, for one thing posix_spawn cannot do: the child
  // asks the kernel for SIGKILL when the test process dies (PR_SET_PDEATHSIG). Without it, a
  // test binary killed by ctest's timeout (or a crash) left its relays and services running,
  // holding ports and CPU for the rest of the suite. The signal follows the forking *thread*;
  // tests start their processes from the main thread. Between fork and exec the child makes
  // only async-signal-safe calls (the test process has other threads). An exec failure is
  // reported through a close-on-exec pipe, as posix_spawn would report it.
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0)
    throw std::runtime_error("cannot start " + program + ": pipe: " + std::generic_category().message(errno));
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(report[0]);
    ::close(report[1]);
    throw std::runtime_error("cannot start " + program + ": fork: " + std::generic_category().message(err));
  }
  if (pid == 0) {
    ::close(report[0]);
    int err = 0;
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) err = errno;
    if (err == 0 && ::getppid() != parent) ::_exit(127);  // the test process died before prctl
    if (err == 0) {
      const int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0 || ::dup2(fd, 1) < 0 || ::dup2(fd, 2) < 0) err = errno;  // dup2 clears CLOEXEC
    }
    if (err == 0) {
      ::execve(program.c_str(), argv.data(), envp.data());
      err = errno;
    }
    (void)!::write(report[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(report[1]);
  int err = 0;
  ssize_t n;
  do {
    n = ::read(report[0], &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n == static_cast<ssize_t>(sizeof err)) {
    int ignored = 0;
    ::waitpid(pid, &ignored, 0);
    throw std::runtime_error("cannot start " + program + ": " + std::generic_category().message(err));
  }
  pid_ = pid;
}

Process::~Process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(10));
  }
}

void Process::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

bool Process::running() {
  if (status_) return false;
  int st = 0;
  const pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return r == 0;
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (!running()) return status_;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return running() ? std::nullopt : status_;
}

std::string Process::log() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

HttpResult http(const std::string& method, std::uint16_t port, const std::string& target, const std::string& body,
                const std::map<std::string, std::string>& headers) {
  namespace beast = boost::beast;
  namespace bhttp = beast::http;
  HttpResult out;
  try {
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(10));
    stream.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty()) {
      req.set(bhttp::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    bhttp::write(stream, req);
    beast::flat_buffer buf;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(std::uint64_t{64} * 1024 * 1024);
    bhttp::read(stream, buf, parser);
    auto res = parser.release();
    out.status = static_cast<int>(res.result_int());
    out.body = res.body();
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(f.value());
    }
  } catch (const std::exception&) {
    out.status = 0;  // unreachable or broken; the caller asserts on status
  }
  return out;
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

double metric(const std::string& text, const std::string& sample) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(sample + " ", 0) == 0) return std::stod(line.substr(sample.size() + 1));
  }
  return 0;
}

}  // namespace oss::testing
