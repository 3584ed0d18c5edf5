// order-status-service: dispatch only; each command lives in app/cmd_*.cpp.
#include <iostream>
#include <pqxx/pqxx>

#include "app/commands.hpp"
#include "oss/core/cli.hpp"

namespace {

constexpr const char* kUsage =
    "order-status-service <command> [flags]\n\n"
    "commands:\n"
    "  migrate   create or upgrade the service's tables (idempotent)\n"
    "  run       consume events, apply them, serve the HTTP API, until SIGTERM/SIGINT\n"
    "  escalate  one SLA/escalation pass (--once, for cron; --at for back-fills and forecasts)\n"
    "  stuck     orders past their status SLA, oldest breach first\n"
    "  dlq       list|replay dead letters\n"
    "  reconcile event ids emitted in a producer's outbox but neither applied nor dead-lettered\n\n"
    "`order-status-service <command> --help` lists a command's flags.\n"
    "exit codes: 0 done, 1 problem found, 2 bad usage/configuration, 3 dependency unreachable\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? oss::core::kExitUsage : oss::core::kExitOk;
  }
  const std::string cmd = args[0];
  args.erase(args.begin());
  try {
    if (cmd == "migrate") return oss::app::cmd_migrate(args);
    if (cmd == "run") return oss::app::cmd_run(args);
    if (cmd == "escalate") return oss::app::cmd_escalate(args);
    if (cmd == "stuck") return oss::app::cmd_stuck(args);
    if (cmd == "dlq") return oss::app::cmd_dlq(args);
    if (cmd == "reconcile") return oss::app::cmd_reconcile(args);
    std::cerr << "order-status-service: unknown command '" << cmd << "'\n\n" << kUsage;
    return oss::core::kExitUsage;
  } catch (const oss::core::UsageError& e) {
    std::cerr << "order-status-service: error: " << e.what() << "\n";
    return oss::core::kExitUsage;
  } catch (const oss::core::DependencyError& e) {
    std::cerr << "order-status-service: error: " << e.what() << "\n";
    return oss::core::kExitDependency;
  } catch (const pqxx::broken_connection& e) {
    std::cerr << "order-status-service: error: database unreachable: " << e.what() << "\n";
    return oss::core::kExitDependency;
  } catch (const std::exception& e) {
    std::cerr << "order-status-service: error: " << e.what() << "\n";
    return oss::core::kExitProblem;
  }
}
