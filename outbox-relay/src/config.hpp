#pragma once
#include <string>
#include <vector>

#include "oss/core/cli.hpp"
#include "relay.hpp"

namespace oss::relay {

/// `outbox-relay run` configuration, validated once at start.
struct RelayConfig {
  std::string db_url;
  std::string amqp_url;
  std::string exchange = "orders.events";
  /// AMQP heartbeat proposed to the broker (0: none).
  std::chrono::seconds amqp_heartbeat{30};
  std::string metrics_listen = "127.0.0.1:9101";
  std::string log_level = "info";
  RelayOptions options;
};

std::vector<core::FlagSpec> install_flags();
std::vector<core::FlagSpec> run_flags();
/// Throws core::UsageError naming the flag and the problem.
RelayConfig parse_run_config(const core::FlagValues& flags);

}  // namespace oss::relay
