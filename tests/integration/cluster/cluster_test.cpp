// A 3-node RabbitMQ cluster on this machine (scripts/servers.sh start-cluster: distinct node names,
// AMQP and distribution ports, one cookie) with its own PostgreSQL. Two relays (crm, mes) and two
// service instances get all three node URLs (--amqp a,b,c). Under a steady producer load the node
// they are connected to (which also leads the events quorum queue) is SIGKILLed and brought back;
// the load goes on, everything drains, and nothing is lost, applied twice or out of workflow.
//
// One test (one ctest entry), because starting the cluster is the slow part.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>
#include <sstream>
#include <thread>

#include "oss/amqp/connection.hpp"
#include "oss/amqp/nodes.hpp"
#include "oss/testing/support.hpp"

namespace {

using namespace std::chrono_literals;
namespace testing = oss::testing;

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a command; returns its exit code and stdout.
std::pair<int, std::string> run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");  // NOLINT(cert-env33-c): runs scripts/servers.sh; callers shell_quote() every argument
  if (p == nullptr) return {-1, ""};
  char buf[4096];
  while (const auto n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

long count(const std::string& db, const std::string& sql) {
  const auto v = testing::sql_scalar(db, sql);
  return v.empty() ? 0 : std::stol(v);
}

class RabbitCluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    script_ = testing::servers_script();
    const auto root = std::filesystem::path(script_).parent_path().parent_path();
    dir_ = (root / ".run" / ("cluster-test-" + std::to_string(::getpid()))).string();
    std::filesystem::create_directories(root / ".run");
    const auto started = std::chrono::steady_clock::now();
    const auto [rc, out] =
        run(shell_quote(script_) + " start-cluster " + shell_quote(dir_) + " 2>&1");
    started_ = rc == 0;
    std::cerr << "[cluster] start-cluster took "
              << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                  started)
                     .count()
              << " s\n"
              << out;
    if (!started_) return;
    // DIR/env: lines of `export K=V [K=V ...]`, values possibly in single quotes.
    std::ifstream in(dir_ + "/env");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("export ", 0) != 0) continue;
      std::istringstream words(line.substr(7));
      std::string kv;
      while (words >> kv) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos) continue;
        std::string v = kv.substr(eq + 1);
        if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') v = v.substr(1, v.size() - 2);
        env_[kv.substr(0, eq)] = v;
      }
    }
    // fresh_database() and friends use the cluster's PostgreSQL.
    ::setenv(  // NOLINT(concurrency-mt-unsafe): SetUpTestSuite, before any thread
        "OSS_TEST_PG_URL_BASE", env_["OSS_TEST_PG_URL_BASE"].c_str(), 1);
  }

  static void TearDownTestSuite() {
    if (dir_.empty()) return;
    const auto [rc, out] =
        run(shell_quote(script_) + " stop-cluster " + shell_quote(dir_) + " 2>&1");
    if (rc == 0) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
    } else {
      std::cerr << "[cluster] stop-cluster failed; left " << dir_ << "\n" << out;
    }
  }

  static bool servers(const std::string& action, int node) {
    return run(shell_quote(script_) + " " + action + " " + shell_quote(dir_) + " " +
               std::to_string(node) + " >/dev/null 2>&1")
               .first == 0;
  }

  // `rabbitmqctl list_queues` on `node` for one queue: {"leader": "...", "members": [...],
  // "online": [...]}.
  static nlohmann::json queue_info(int node, const std::string& queue) {
    const auto [rc, out] =
        run(shell_quote(script_) + " ctl " + shell_quote(dir_) + " " + std::to_string(node) +
            " list_queues name type leader members online --formatter json 2>/dev/null");
    if (rc != 0) return nullptr;
    try {
      for (const auto& q : nlohmann::json::parse(out))
        if (q.value("name", "") == queue) return q;
    } catch (const nlohmann::json::exception&) {
    }
    return nullptr;
  }

  // The node (1..3) a process is connected to, from its oss_amqp_node_connections gauge; 0 when
  // none.
  static int connected_node(std::uint16_t metrics_port) {
    const auto body = testing::http("GET", metrics_port, "/metrics").body;
    int node = 0;
    for (int n = 1; n <= 3; ++n) {
      const auto sample =
          "oss_amqp_node_connections{node=\"127.0.0.1:" + env_["AMQP_PORT_" + std::to_string(n)] +
          "\"}";
      if (testing::metric(body, sample) > 0) node = node == 0 ? n : -1;  // -1: on two nodes at once
    }
    return node;
  }

  static int node_of(const std::string& erlang_node) {
    for (int n = 1; n <= 3; ++n)
      if (env_["RABBIT_NODE_" + std::to_string(n)] == erlang_node) return n;
    return 0;
  }

  static inline std::string script_, dir_;
  static inline bool started_ = false;
  static inline std::map<std::string, std::string> env_;
};

TEST_F(RabbitCluster, NodeKilledUnderLoadAndBroughtBackNothingLostNothingTwice) {
  ASSERT_TRUE(started_) << "scripts/servers.sh start-cluster failed (see above)";
  const std::string urls = env_["OSS_TEST_AMQP_URLS"];
  ASSERT_EQ(std::count(urls.begin(), urls.end(), ','), 2) << urls;

  // Databases and names of this run.
  const auto crm = testing::fresh_database("crm"), mes = testing::fresh_database("mes"),
             oss = testing::fresh_database("oss");
  for (const auto& db : {crm, mes}) {
    testing::Process install(testing::bin("outbox-relay"), {"install", "--db", db});
    ASSERT_EQ(install.wait(60s), 0) << install.log();
  }
  testing::Process migrate(testing::bin("order-status-service"), {"migrate", "--db", oss});
  ASSERT_EQ(migrate.wait(60s), 0) << migrate.log();
  const std::string id = testing::unique_name("c");
  const std::string exchange = "orders.events." + id, queue = "order-status-service.events." + id;

  // Every client gets the three nodes.
  std::vector<std::uint16_t> relay_ports{testing::free_port(), testing::free_port()};
  std::vector<std::unique_ptr<testing::Process>> relays;
  for (std::size_t i = 0; i < 2; ++i)
    relays.push_back(std::make_unique<testing::Process>(
        testing::bin("outbox-relay"),
        std::vector<std::string>{"run", "--db", i == 0 ? crm : mes, "--amqp", urls, "--exchange",
                                 exchange, "--metrics",
                                 "127.0.0.1:" + std::to_string(relay_ports[i])}));
  std::vector<std::uint16_t> service_ports{testing::free_port(), testing::free_port()};
  std::vector<std::unique_ptr<testing::Process>> services;
  services.reserve(service_ports.size());
  for (auto port : service_ports)
    services.push_back(std::make_unique<testing::Process>(
        testing::bin("order-status-service"),
        std::vector<std::string>{"run", "--db", oss, "--amqp", urls, "--http",
                                 "127.0.0.1:" + std::to_string(port), "--exchange", exchange,
                                 "--queue", queue, "--dlq", "order-status-service.dlq." + id,
                                 "--notifications-exchange", "orders.notifications." + id,
                                 "--notifications-tail", "order-status-service.notifications." + id}));
  for (auto port : service_ports)
    ASSERT_TRUE(testing::wait_until(
        [&] { return testing::http("GET", port, "/readyz").status == 200; }, 60s))
        << services[0]->log() << services[1]->log();
  for (auto port : relay_ports)
    ASSERT_TRUE(testing::wait_until([&] { return connected_node(port) > 0; }, 60s))
        << relays[0]->log();

  // The events queue is a quorum queue with a member on each node.
  const auto before = queue_info(1, queue);
  ASSERT_FALSE(before.is_null()) << "queue " << queue << " not listed";
  EXPECT_EQ(before.value("type", ""), "quorum");
  EXPECT_EQ(before["members"].size(), 3U) << before.dump();
  EXPECT_EQ(before["online"].size(), 3U) << before.dump();
  const int leader = node_of(before.value("leader", ""));

  // Steady load: 2,000 orders × 5 steps = 10,000 events in transactions of 100, paced over
  // ~25 s; step k of every order before step k+1 of any (so few events arrive early).
  constexpr int kOrders = 2000, kSteps = 5, kEvents = kOrders * kSteps, kChunk = 100;
  const std::pair<const char*, const char*> steps[kSteps] = {{"crm", "SUBMITTED"},
                                                             {"mes", "PRICE_CALCULATED"},
                                                             {"crm", "PRICE_CONFIRMED"},
                                                             {"mes", "MANUFACTURING_STARTED"},
                                                             {"mes", "SHIPPED"}};
  std::atomic<int> emitted{0};
  std::atomic<bool> stop_load{false};
  std::string load_error;
  std::thread load([&] {
    try {
      pqxx::connection c_crm(crm), c_mes(mes);
      for (int step = 0; step < kSteps && !stop_load; ++step) {
        const bool is_crm = std::string(steps[step].first) == "crm";
        for (int first = 0; first < kOrders && !stop_load; first += kChunk) {
          pqxx::work tx(is_crm ? c_crm : c_mes);
          std::string sql;
          for (int o = first; o < first + kChunk; ++o)
            sql += "SELECT outbox.emit(source => '" + std::string(steps[step].first) +
                   "', aggregate_type => 'order', aggregate_id => 'CL-" + std::to_string(o) +
                   "', event_type => 'order.status_changed', payload => '{\"status\": \"" +
                   steps[step].second + "\"}'::jsonb);";
          tx.exec(sql);
          tx.commit();
          emitted += kChunk;
          std::this_thread::sleep_for(250ms);
        }
      }
    } catch (const std::exception& e) {
      load_error = e.what();
    }
  });
  struct Joiner {
    Joiner(std::thread& thread, std::atomic<bool>& flag) : t(thread), stop(flag) {}
    Joiner(const Joiner&) = delete;
    Joiner& operator=(const Joiner&) = delete;
    std::thread& t;
    std::atomic<bool>& stop;
    ~Joiner() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } joiner{load, stop_load};

  // Under load: SIGKILL the node the clients are on.
  ASSERT_TRUE(testing::wait_until(
      [&] { return count(oss, "SELECT count(*) FROM oss.status_history") >= 1500; }, 60s))
      << "no progress before the fault: " << count(oss, "SELECT count(*) FROM oss.status_history");
  const int victim = connected_node(relay_ports[0]);
  ASSERT_GE(victim, 1);
  std::cerr << "[cluster] clients on node " << victim << ", events queue leader on node " << leader
            << "; killing node " << victim << " at " << emitted << " events emitted\n";
  ASSERT_TRUE(servers("kill-node", victim));
  const auto killed_at = std::chrono::steady_clock::now();

  // Every client moves to another node; processing goes on while the node is down.
  for (auto port : relay_ports)
    EXPECT_TRUE(testing::wait_until(
        [&] {
          const int n = connected_node(port);
          return n > 0 && n != victim;
        },
        60s))
        << "a relay did not move off node " << victim << ": " << relays[0]->log()
        << relays[1]->log();
  for (auto port : service_ports)
    EXPECT_TRUE(testing::wait_until(
        [&] {
          const int n = connected_node(port);
          return n > 0 && n != victim;
        },
        60s))
        << "a service did not move off node " << victim;
  std::cerr << "[cluster] clients moved to nodes " << connected_node(relay_ports[0]) << "/"
            << connected_node(relay_ports[1]) << "/" << connected_node(service_ports[0]) << "/"
            << connected_node(service_ports[1]) << " after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - killed_at)
                   .count()
            << " ms\n";
  const int survivor = victim == 1 ? 2 : 1;
  const long applied_at_kill = count(oss, "SELECT count(*) FROM oss.status_history");
  EXPECT_TRUE(testing::wait_until(
      [&] {
        return count(oss, "SELECT count(*) FROM oss.status_history") >= applied_at_kill + 500;
      },
      60s))
      << "no progress with node " << victim << " down";
  const auto during = queue_info(survivor, queue);
  ASSERT_FALSE(during.is_null());
  EXPECT_EQ(during["online"].size(), 2U) << during.dump();
  EXPECT_NE(node_of(during.value("leader", "")), victim) << during.dump();

  // The node comes back and its quorum member rejoins.
  const auto restart = std::chrono::steady_clock::now();
  ASSERT_TRUE(servers("start-node", victim)) << "start-node " << victim;
  std::cerr << "[cluster] node " << victim << " back after "
            << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                restart)
                   .count()
            << " s of start-node\n";
  EXPECT_TRUE(testing::wait_until(
      [&] {
        const auto q = queue_info(victim, queue);
        return !q.is_null() && q["members"].size() == 3 && q["online"].size() == 3;
      },
      60s))
      << queue_info(victim, queue).dump();

  // The load finishes and everything drains.
  load.join();
  ASSERT_EQ(load_error, "");
  ASSERT_EQ(emitted.load(), kEvents);
  EXPECT_TRUE(testing::wait_until(
      [&] { return count(oss, "SELECT count(*) FROM oss.processed_events") >= kEvents; }, 120s))
      << "decided " << count(oss, "SELECT count(*) FROM oss.processed_events") << " of " << kEvents;
  std::cerr << "[cluster] drained " << count(oss, "SELECT count(*) FROM oss.processed_events")
            << " events "
            << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                killed_at)
                   .count()
            << " s after the kill\n";
  for (const auto& r : relays) EXPECT_TRUE(r->running()) << r->log();
  for (const auto& s : services) EXPECT_TRUE(s->running()) << s->log();

  // The invariant checker (tools/oss-verify): zero lost, zero applied twice, every history one the
  // workflow allows.
  testing::Process verify(
      testing::bin("oss-verify"),
      {"--db", oss, "--source-db", crm, "--source-db", mes, "--wait", "30s", "--json"});
  EXPECT_EQ(verify.wait(90s), 0) << verify.log();
  {
    std::istringstream lines(verify.log());
    std::string line;
    nlohmann::json verdict;
    while (std::getline(lines, line))
      if (!line.empty() && line.front() == '{')
        verdict = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(verdict.is_object()) << verify.log();
    EXPECT_EQ(verdict.value("ok", false), true) << verdict.dump();
    EXPECT_EQ(verdict.value("emitted", 0), kEvents) << verdict.dump();
    EXPECT_EQ(verdict.value("in_flight", -1), 0) << verdict.dump();
  }

  // The same, spelled out: every emitted event decided exactly once and applied; histories are
  // chains in the workflow's order; nothing dead-lettered.
  std::set<std::string> emitted_ids;
  for (const auto& db : {crm, mes}) {
    pqxx::connection c(db);
    pqxx::nontransaction tx(c);
    // Every event of the outbox, published (archived) or not.
    for (const auto& row : tx.exec("SELECT event_id::text FROM outbox.all_events"))
      emitted_ids.insert(row[0].as<std::string>());
  }
  EXPECT_EQ(emitted_ids.size(), static_cast<std::size_t>(kEvents));
  std::set<std::string> decided;
  std::map<std::string, int> outcomes;
  {
    pqxx::connection c(oss);
    pqxx::nontransaction tx(c);
    for (const auto& row : tx.exec("SELECT event_id::text, outcome FROM oss.processed_events")) {
      decided.insert(row[0].as<std::string>());
      ++outcomes[row[1].as<std::string>()];
    }
  }
  std::size_t lost = 0;
  for (const auto& e : emitted_ids) lost += !decided.contains(e) ? 1U : 0U;
  EXPECT_EQ(lost, 0U) << "events emitted but never decided";
  EXPECT_EQ(outcomes["applied"], kEvents);
  EXPECT_EQ(count(oss, "SELECT count(*) FROM oss.dead_letters"), 0);
  EXPECT_EQ(count(oss, "SELECT count(*) FROM oss.status_history"), kEvents);
  EXPECT_EQ(count(oss,
                  "SELECT count(*) FROM (SELECT event_id FROM oss.status_history GROUP BY event_id "
                  "HAVING count(*) > 1) d"),
            0)
      << "events applied twice";
  EXPECT_EQ(count(oss,
                  "SELECT count(*) FROM (SELECT from_status, lag(to_status) OVER (PARTITION BY "
                  "order_id ORDER BY id) AS prev "
                  "FROM oss.status_history) h WHERE from_status IS DISTINCT FROM prev"),
            0)
      << "histories that are not chains";
  EXPECT_EQ(count(oss, "SELECT count(*) FROM oss.orders WHERE status = 'SHIPPED' AND version = 5"),
            kOrders);

  // The clients stop cleanly.
  for (auto& s : services) s->signal(SIGTERM);
  for (auto& r : relays) r->signal(SIGTERM);
  for (auto& s : services) EXPECT_EQ(s->wait(30s), 0) << s->log();
  for (auto& r : relays) EXPECT_EQ(r->wait(30s), 0) << r->log();
}

}  // namespace
