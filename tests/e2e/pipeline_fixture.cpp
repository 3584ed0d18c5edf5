#include "pipeline_fixture.hpp"

#include <iostream>

#include "oss/amqp/connection.hpp"

namespace oss::e2e {

using namespace std::chrono_literals;

void Pipeline::SetUp() {
  crm_ = testing::fresh_database("crm");
  mes_ = testing::fresh_database("mes");
  oss_ = testing::fresh_database("oss");
  amqp_ = testing::amqp_url();
  const std::string id = testing::unique_name("t");
  exchange_ = "orders.events." + id;
  queue_ = "order-status-service.events." + id;
  dlq_ = "order-status-service.dlq." + id;
  notifications_ = "orders.notifications." + id;
  notifications_tail_ = "order-status-service.notifications." + id;
  for (const auto& db : {crm_, mes_}) {
    testing::Process install(testing::bin("outbox-relay"), {"install", "--db", db});
    ASSERT_EQ(install.wait(30s), 0) << install.log();
  }
  testing::Process migrate(testing::bin("order-status-service"), {"migrate", "--db", oss_});
  ASSERT_EQ(migrate.wait(30s), 0) << migrate.log();
  http_port_ = testing::free_port();
}

void Pipeline::TearDown() {
  // Servers may outlive the test (a developer's long-lived ones; CI discards its own): remove
  // the broker topology the service declared and the three databases. Kept after a failure,
  // for a look at what the test left.
  if (HasFailure()) return;
  try {
    amqp::ConnectionOptions o;
    o.url = amqp_;
    amqp::Connection c(o);
    // The delay queues the service declares (consumer::Topology's tiers).
    for (const char* tier : {"1s", "5s", "30s", "120s"}) c.delete_queue(queue_ + ".retry." + tier);
    for (const auto& q : {queue_, dlq_, notifications_tail_}) c.delete_queue(q);
    for (const auto& x : {exchange_, notifications_}) c.delete_exchange(x);
  } catch (const std::exception& e) {
    // Best effort: the names are unique to this test.
    std::cerr << "[pipeline] broker cleanup: " << e.what() << "\n";
  }
  for (const auto& db : {crm_, mes_, oss_}) {
    try {
      testing::drop_database(db);
    } catch (const std::exception& e) {
      std::cerr << "[pipeline] dropping " << db << ": " << e.what() << "\n";  // best effort, as above
    }
  }
}

std::unique_ptr<testing::Process> Pipeline::start_service(std::uint16_t port, const std::vector<std::string>& extra) {
  std::vector<std::string> args{"run",     "--db",          oss_,   "--amqp", amqp_, "--http",
                                "127.0.0.1:" + std::to_string(port), "--exchange", exchange_, "--queue", queue_,
                                "--dlq",   dlq_,            "--notifications-exchange", notifications_,
                                "--notifications-tail", notifications_tail_};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<testing::Process>(testing::bin("order-status-service"), args);
}

std::unique_ptr<testing::Process> Pipeline::start_relay(const std::string& db_url, const std::vector<std::string>& extra) {
  std::vector<std::string> args{"run", "--db", db_url, "--amqp", amqp_, "--exchange", exchange_,
                                "--metrics", "127.0.0.1:" + std::to_string(testing::free_port())};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<testing::Process>(testing::bin("outbox-relay"), args);
}

bool Pipeline::wait_ready(std::uint16_t port) {
  return testing::wait_until([&] { return testing::http("GET", port, "/readyz").status == 200; }, 30s);
}

std::optional<nlohmann::json> Pipeline::order(const std::string& id) const {
  const auto r = testing::http("GET", http_port_, "/v1/orders/" + id);
  if (r.status != 200) return std::nullopt;
  return nlohmann::json::parse(r.body);
}

std::string Pipeline::emit_sql(const std::string& source, const std::string& order_id, const std::string& status) {
  return "SELECT outbox.emit(source => '" + source + "', aggregate_type => 'order', aggregate_id => '" + order_id +
         "', event_type => 'order.status_changed', payload => '{\"status\": \"" + status + "\"}'::jsonb)";
}

}  // namespace oss::e2e
