#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "consumer/event_consumer.hpp"
#include "oss/core/cli.hpp"

namespace oss::app {

/// `order-status-service run` configuration, validated once at start.
struct ServiceConfig {
  std::string db_url;
  std::string amqp_url;
  std::string http_listen = "127.0.0.1:8080";
  std::optional<std::string> workflow_file;
  std::optional<std::string> tokens_file;
  std::chrono::seconds http_read_timeout{10};  // a request must arrive completely within this (408)
  std::string log_level = "info";
  consumer::ConsumerOptions consumer;
  bool relay_notifications = true;
  bool early_hold_deprecated = false;  // --early-hold given: it no longer does anything (logged)
  std::chrono::milliseconds scan_interval{30'000};  // SLA scanner period; 0 = no in-service scanner
};

std::vector<core::FlagSpec> migrate_flags();
std::vector<core::FlagSpec> run_flags();
ServiceConfig parse_run_config(const core::FlagValues& flags);

}  // namespace oss::app
