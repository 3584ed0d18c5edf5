#pragma once
/// The subcommands of order-status-service, one file each (app/cmd_*.cpp); main.cpp dispatches.
/// Each returns the process exit code and throws core::UsageError (2) / core::DependencyError (3).
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace oss::app {

bool wants_help(const std::vector<std::string>& args);
/// Connects or throws core::DependencyError with the masked URL and libpq's reason.
std::unique_ptr<pqxx::connection> connect_or_exit3(const std::string& url, const std::string& application);

int cmd_migrate(const std::vector<std::string>& args);
int cmd_run(const std::vector<std::string>& args);
int cmd_dlq(const std::vector<std::string>& args);
int cmd_reconcile(const std::vector<std::string>& args);

}  // namespace oss::app
