#pragma once
#include <gtest/gtest.h>
#include <memory>
#include <nlohmann/json.hpp>

#include "oss/core/time.hpp"
#include "oss/testing/support.hpp"

namespace oss::e2e {

/// Yesterday's UTC date ("YYYY-MM-DD"), for events that must look recent to the running
/// service's SLA scanner: a fixed date in a test turns into an auto-transition (e.g.
/// PRICE_CALCULATED → FROZEN after 7 days) once the calendar passes it.
inline std::string yesterday_utc() {
  return core::format_rfc3339(core::SystemClock().now() - std::chrono::hours(24)).substr(0, 10);
}

/// A whole pipeline on the test servers, isolated by name: fresh crm/mes/service databases
/// and its own exchange and queue names, so tests can run one after another on one broker.
class Pipeline : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  std::unique_ptr<testing::Process> start_service(std::uint16_t port, const std::vector<std::string>& extra = {});
  std::unique_ptr<testing::Process> start_relay(const std::string& db_url, const std::vector<std::string>& extra = {});
  /// Waits for /readyz 200.
  bool wait_ready(std::uint16_t port);
  /// GET /v1/orders/{id}; nullopt on 404.
  std::optional<nlohmann::json> order(const std::string& id) const;
  std::string emit_sql(const std::string& source, const std::string& order_id, const std::string& status);

  std::string crm_, mes_, oss_, amqp_;
  std::string exchange_, queue_, dlq_, notifications_, notifications_tail_;
  std::uint16_t http_port_ = 0;
};

}  // namespace oss::e2e
