#pragma once
/// The subcommands of order-status-service, one file each (app/cmd_*.cpp); main.cpp dispatches.
/// Each returns the process exit code and throws core::UsageError (2) / core::DependencyError (3).
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "domain/workflow.hpp"
#include "oss/core/time.hpp"

namespace oss::app {

bool wants_help(const std::vector<std::string>& args);
/// Connects or throws core::DependencyError with the masked URL and libpq's reason.
std::unique_ptr<pqxx::connection> connect_or_exit3(const std::string& url, const std::string& application);

int cmd_migrate(const std::vector<std::string>& args);
int cmd_run(const std::vector<std::string>& args);
int cmd_escalate(const std::vector<std::string>& args);
int cmd_stuck(const std::vector<std::string>& args);

// Shared by `escalate`, `stuck` and `run` (defined in cmd_escalate.cpp).
/// The shipped workflow, or the file's (UsageError naming --workflow when it is invalid).
domain::Workflow load_workflow_or_exit2(const std::optional<std::string>& file);
/// UsageError unless `migrate` has installed the SLA tables (service schema version >= 2).
void require_sla_schema(pqxx::connection& conn);
/// --at: RFC 3339, or now when absent (UsageError naming the flag when malformed).
core::TimePoint parse_at(const std::optional<std::string>& text, const std::string& flag);
int cmd_dlq(const std::vector<std::string>& args);
int cmd_reconcile(const std::vector<std::string>& args);

}  // namespace oss::app
