// orders.notifications as a subscriber sees it: a test queue bound to the notifications
// exchange receives exactly one message per applied change, with the right body, in each
// order's application order, and nothing for duplicate, stale or dead-lettered events.
#include <map>
#include <pqxx/pqxx>
#include <set>
#include <stdexcept>
#include <thread>

#include "oss/amqp/connection.hpp"
#include "pipeline_fixture.hpp"

namespace oss::e2e {
namespace {

using namespace std::chrono_literals;
using testing::sql_scalar;

long count(const std::string& url, const std::string& sql) { return std::stol(sql_scalar(url, sql)); }

std::string uuid(std::uint64_t n) {
  char buf[40];
  if (std::snprintf(buf, sizeof buf, "40715e57-0000-4000-8000-%012llu", static_cast<unsigned long long>(n)) != 36)
    throw std::invalid_argument("uuid: " + std::to_string(n) + " has more than 12 digits");
  return buf;
}

struct Event {
  std::string event_id, source, order, status;
  long sequence;
  std::string occurred_at;
};

constexpr const char* kNotificationRoutingKey = "order-status-service.order.status_changed";
// Quotes, backslashes, a parameter-like "$1", a newline and non-ASCII text: the service writes
// history and notifications with their values inlined as SQL literals (oss::pg::StatementBatch).
const std::string kActor = "O'Brien \\ $1 \"ops\"";
std::string reason_of(const std::string& event_id) { return "r-" + event_id + " it's $2\\n\nüñí"; }

class Notifications : public Pipeline {
 protected:
  void SetUp() override {
    Pipeline::SetUp();
    amqp::ConnectionOptions o;
    o.url = amqp_;
    broker_.emplace(o);
    broker_->enable_confirms();
    subscriber_queue_ = notifications_ + ".subscriber";
  }
  void TearDown() override {
    try {
      amqp::ConnectionOptions o;
      o.url = amqp_;
      amqp::Connection c(o);
      c.delete_queue(subscriber_queue_);
    } catch (const std::exception&) {
    }
    Pipeline::TearDown();
  }
  /// A subscriber's own queue bound to every notification (after the service declared the exchange).
  amqp::Connection& subscribe() {
    amqp::ConnectionOptions o;
    o.url = amqp_;
    subscriber_.emplace(o);
    subscriber_->declare_queue(subscriber_queue_, {true, {}});
    subscriber_->bind_queue(subscriber_queue_, notifications_, "#");
    subscriber_->consume(subscriber_queue_);
    return *subscriber_;
  }
  void publish(const Event& e) {
    const nlohmann::json body = {{"event_id", e.event_id},
                                 {"source", e.source},
                                 {"aggregate_type", "order"},
                                 {"aggregate_id", e.order},
                                 {"sequence", e.sequence},
                                 {"event_type", "order.status_changed"},
                                 {"occurred_at", e.occurred_at},
                                 {"payload", {{"status", e.status}, {"actor", kActor}, {"reason", reason_of(e.event_id)}}}};
    amqp::Message m;
    m.exchange = exchange_;
    m.routing_key = e.source + ".order.status_changed";
    m.body = body.dump();
    m.message_id = e.event_id;
    m.type = "order.status_changed";
    last_tag_ = broker_->publish(m, true);
    ++pending_;
  }
  void confirm() {
    std::size_t acked = 0;
    while (acked < pending_) {
      const auto c = broker_->wait_confirms(last_tag_, 30s);
      ASSERT_TRUE(c.nacked.empty());
      ASSERT_TRUE(c.returned.empty());
      ASSERT_FALSE(c.acked.empty()) << "confirms timed out";
      acked += c.acked.size();
    }
    pending_ = 0;
  }
  std::optional<amqp::Connection> broker_, subscriber_;
  std::string subscriber_queue_;
  std::uint64_t last_tag_ = 0;
  std::size_t pending_ = 0;
};

TEST_F(Notifications, OneMessagePerAppliedChangeAndNoneForDuplicateStaleOrDeadLetteredEvents) {
  // The SLA scanner is off: every notification in this test is a status change.
  auto service = start_service(http_port_, {"--scan-interval", "0s"});
  ASSERT_TRUE(wait_ready(http_port_)) << service->log();
  auto& sub = subscribe();

  // 30 orders, whole lifecycles, published step by step over all orders (180 applied changes).
  const std::vector<std::pair<std::string, std::string>> steps = {
      {"crm", "SUBMITTED"},             {"mes", "PRICE_CALCULATED"}, {"crm", "PRICE_CONFIRMED"},
      {"mes", "MANUFACTURING_STARTED"}, {"mes", "SHIPPED"},          {"crm", "DELIVERED"}};
  constexpr int kOrders = 30;
  std::uint64_t id = 1;
  std::map<std::string, std::vector<Event>> lifecycle;  // order → its events in lifecycle order
  const std::string day = yesterday_utc();
  for (int i = 0; i < kOrders; ++i) {
    const std::string order = "NT-" + std::to_string(i);
    std::map<std::string, long> seq;
    for (std::size_t s = 0; s < steps.size(); ++s) {
      const std::string at = day + "T10:0" + std::to_string(s) + ":" + (i < 10 ? "0" : "") + std::to_string(i) +
                             "." + std::to_string(100 + i) + "Z";
      lifecycle[order].push_back({uuid(id++), steps[s].first, order, steps[s].second, ++seq[steps[s].first], at});
    }
  }
  for (std::size_t s = 0; s < steps.size(); ++s)
    for (const auto& [order, events] : lifecycle) publish(events[s]);
  confirm();
  ASSERT_TRUE(testing::wait_until(
      [&] { return count(oss_, "SELECT count(*) FROM oss.orders WHERE status = 'DELIVERED'") == kOrders; }, 60s))
      << service->log();

  // Then: the same events again (duplicates), old sequences under new ids (stale by sequence),
  // a status the orders are past under a fresh sequence (stale by status), and a dead letter.
  std::set<std::string> not_applied;  // stale and dead-lettered event ids
  int n = 0;
  for (const auto& [order, events] : lifecycle) {
    const auto& e = events[static_cast<std::size_t>(n % 6)];
    publish(e);  // duplicate: its first delivery was notified once, this one adds nothing
    Event by_seq{uuid(id++), "crm", order, "SUBMITTED", 1, e.occurred_at};
    publish(by_seq);
    not_applied.insert(by_seq.event_id);
    Event by_status{uuid(id++), "mes", order, "PRICE_CALCULATED", 4, e.occurred_at};
    publish(by_status);
    not_applied.insert(by_status.event_id);
    ++n;
  }
  Event unknown{uuid(id++), "crm", "NT-0", "SUBMITED", 4, day + "T11:00:00.000Z"};
  publish(unknown);
  not_applied.insert(unknown.event_id);
  confirm();
  ASSERT_TRUE(testing::wait_until(
      [&] {
        const auto m = testing::http("GET", http_port_, "/metrics").body;
        return testing::metric(m, "oss_events_total{outcome=\"duplicate\"}") == kOrders &&
               testing::metric(m, "oss_events_total{outcome=\"stale\"}") == 2 * kOrders &&
               testing::metric(m, "oss_events_total{outcome=\"dead_lettered\"}") == 1;
      },
      60s))
      << testing::http("GET", http_port_, "/metrics").body;
  // Everything the service recorded in its outbox is published (so nothing more can come).
  ASSERT_TRUE(testing::wait_until(
      [&] { return count(oss_, "SELECT count(*) FROM outbox.events WHERE published_at IS NULL") == 0; }, 60s));

  // What the subscriber received.
  std::map<std::string, std::vector<nlohmann::json>> received;  // order → payloads in arrival order
  std::map<std::string, int> per_event;
  std::size_t total = 0;
  while (total < static_cast<std::size_t>(kOrders) * 6) {
    auto d = sub.next_delivery(20s);
    ASSERT_TRUE(d.has_value()) << "only " << total << " notifications arrived";
    sub.ack(d->delivery_tag);
    ++total;
    EXPECT_EQ(d->routing_key, kNotificationRoutingKey);
    EXPECT_EQ(d->type, "order.status_changed");
    const auto env = nlohmann::json::parse(d->body);
    EXPECT_EQ(env.at("source"), "order-status-service");
    EXPECT_EQ(env.at("aggregate_type"), "order");
    EXPECT_EQ(env.at("event_type"), "order.status_changed");
    EXPECT_EQ(d->message_id, env.at("event_id").get<std::string>());
    const auto& p = env.at("payload");
    EXPECT_EQ(p.at("order_id"), env.at("aggregate_id"));
    // The notification's own sequence counts the order's changes: 1, 2, 3... in arrival order.
    auto& got = received[env.at("aggregate_id").get<std::string>()];
    EXPECT_EQ(env.at("sequence").get<long>(), static_cast<long>(got.size()) + 1) << d->body;
    ++per_event[p.at("event_id").get<std::string>()];
    got.push_back(p);
  }
  // Nothing else arrives: no notification for the duplicate, stale and dead-lettered events.
  const auto extra = sub.next_delivery(2s);
  EXPECT_FALSE(extra.has_value()) << extra->body;

  ASSERT_EQ(received.size(), static_cast<std::size_t>(kOrders));
  for (const auto& [order, events] : lifecycle) {
    const auto& got = received[order];
    ASSERT_EQ(got.size(), events.size()) << order;
    for (std::size_t s = 0; s < events.size(); ++s) {
      const auto& e = events[s];
      const auto& p = got[s];
      EXPECT_EQ(p.at("event_id"), e.event_id) << order << " step " << s;
      EXPECT_EQ(p.at("status"), e.status) << order << " step " << s;
      if (s == 0) {
        EXPECT_TRUE(p.at("from").is_null());
      } else {
        EXPECT_EQ(p.at("from"), events[s - 1].status) << order << " step " << s;
      }
      EXPECT_EQ(p.at("source"), e.source);
      EXPECT_EQ(p.at("occurred_at"), e.occurred_at);
      EXPECT_EQ(p.at("actor"), kActor);
      EXPECT_EQ(p.at("reason"), reason_of(e.event_id));
      // SLA of the new stay: SUBMITTED 1h after occurred_at; none for DELIVERED (terminal).
      if (e.status == "SUBMITTED") {
        EXPECT_EQ(p.at("sla_due_at"), day + "T11:00:" + e.occurred_at.substr(17));
      }
      if (e.status == "DELIVERED") {
        EXPECT_TRUE(p.at("sla_due_at").is_null());
      }
    }
  }
  for (const auto& [event_id, times] : per_event) EXPECT_EQ(times, 1) << event_id;
  for (const auto& event_id : not_applied) EXPECT_EQ(per_event.count(event_id), 0u) << event_id;
  EXPECT_EQ(count(oss_, "SELECT count(*) FROM oss.status_history"), kOrders * 6);
  const auto& first = lifecycle.begin()->second.front();
  EXPECT_EQ(sql_scalar(oss_, "SELECT actor FROM oss.status_history WHERE event_id = '" + first.event_id + "'"), kActor);
  EXPECT_EQ(sql_scalar(oss_, "SELECT reason FROM oss.status_history WHERE event_id = '" + first.event_id + "'"),
            reason_of(first.event_id));
}

}  // namespace
}  // namespace oss::e2e
