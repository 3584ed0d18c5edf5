// oss-verify: the invariant checker as a program (see include/oss/verify/verify.hpp).
//   oss-verify --db SERVICE_DB_URL --source-db URL [--source-db URL ...] [--workflow FILE]
//              [--grace 0s] [--wait 0s] [--limit 50] [--json]
// Exit: 0 every invariant holds, 1 a violation (listed), 2 bad usage, 3 a database unreachable.
#include <iostream>
#include <pqxx/pqxx>
#include <thread>

#include "domain/workflow.hpp"
#include "oss/core/cli.hpp"
#include "oss/core/url.hpp"
#include "oss/verify/verify.hpp"

namespace {

using namespace oss;

std::vector<core::FlagSpec> flags() {
  return {{"db", "OSS_DB_URL", "service database (libpq URI)", std::nullopt, true, false, true},
          {"source-db", "OSS_VERIFY_SOURCE_DB_URLS",
           "producer database with an outbox (libpq URI); repeat for each producer (the variable: "
           "space-separated URLs)",
           std::nullopt, true, false, true},
          {"workflow", "OSS_WORKFLOW_FILE", "workflow file the service runs (default: the shipped workflow)"},
          {"grace", "OSS_VERIFY_GRACE", "undecided events younger than this are in flight, not lost", "0s"},
          {"wait", "OSS_VERIFY_WAIT", "re-check until every invariant holds and nothing waits parked as early, or this much time passed", "0s"},
          {"limit", "", "violations to list", "50"},
          {"json", "", "one JSON document instead of text", std::nullopt, false, true}};
}

constexpr const char* kUsage =
    "oss-verify --db SERVICE_DB_URL --source-db URL [--source-db URL ...] [--workflow FILE] [--grace 0s] "
    "[--wait 0s] [--json]\n\n"
    "Proves a run kept the guarantee: every event emitted in the producers' outboxes was decided by the\n"
    "service (applied, stale, ignored or dead-lettered with a reason), none was applied twice, and every\n"
    "order's history follows the workflow.\n"
    "exit codes: 0 all invariants hold, 1 violations (listed), 2 bad usage, 3 a database unreachable\n";

int run(std::vector<std::string> args) {
  // --source-db may repeat: take every occurrence out before the one-value-per-flag parser.
  std::vector<std::string> sources;
  for (std::size_t i = 0; i < args.size();) {
    if (args[i] == "--source-db") {
      if (i + 1 >= args.size()) throw core::UsageError("--source-db needs a value");
      sources.push_back(args[i + 1]);
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i), args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
    } else if (args[i].rfind("--source-db=", 0) == 0) {
      sources.push_back(args[i].substr(12));
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      std::cout << core::format_help(kUsage, flags());
      return core::kExitOk;
    }
  auto specs = flags();
  if (!sources.empty()) specs[1].required = false;
  const auto f = core::parse_flags(specs, args);
  if (sources.empty()) {
    // From the environment variable: space-separated.
    std::string all = f.get("source-db");
    std::size_t pos = 0;
    while (pos < all.size()) {
      const auto end = all.find(' ', pos);
      const auto part = all.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
      if (!part.empty()) sources.push_back(part);
      if (end == std::string::npos) break;
      pos = end + 1;
    }
  }
  if (sources.empty()) throw core::UsageError("--source-db is required (at least one producer database)");
  core::require_pg_url(f.get("db"), "--db");
  for (const auto& s : sources) core::require_pg_url(s, "--source-db");
  verify::Options options;
  options.grace = f.get_duration("grace");
  const auto wait = f.get_duration("wait");
  const auto limit = static_cast<std::size_t>(f.get_int("limit", 1, 10'000'000));
  const domain::Workflow workflow = [&] {
    try {
      if (auto path = f.get_optional("workflow")) return domain::load_workflow_file(*path);
      return domain::shipped_workflow();
    } catch (const domain::WorkflowError& e) {
      throw core::UsageError(e.what());
    }
  }();

  const auto deadline = std::chrono::steady_clock::now() + wait;
  verify::Verdict verdict;
  for (;;) {
    const auto snapshot = verify::read_snapshot(f.get("db"), sources);
    verdict = verify::check(snapshot, workflow, options);
    // With --wait, events still parked as early (verdict.waiting) are still on their way: keep
    // re-checking until they are decided too, then report whatever the deadline finds.
    if ((verdict.ok() && verdict.waiting == 0) || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  std::cout << (f.on("json") ? verify::format_json(verdict, limit) + "\n" : verify::format_text(verdict, limit));
  return verdict.ok() ? core::kExitOk : core::kExitProblem;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run({argv + 1, argv + argc});
  } catch (const core::UsageError& e) {
    std::cerr << "oss-verify: error: " << e.what() << "\n";
    return core::kExitUsage;
  } catch (const verify::Unreachable& e) {
    std::cerr << "oss-verify: error: " << e.what() << "\n";
    return core::kExitDependency;
  } catch (const pqxx::broken_connection& e) {
    std::cerr << "oss-verify: error: database unreachable: " << e.what() << "\n";
    return core::kExitDependency;
  } catch (const pqxx::undefined_table& e) {
    std::cerr << "oss-verify: error: a database lacks the expected tables (outbox-relay install / "
                 "order-status-service migrate not run?): "
              << e.what() << "\n";
    return core::kExitUsage;
  } catch (const pqxx::failure& e) {
    std::cerr << "oss-verify: error: reading a database failed: " << e.what() << "\n";
    return core::kExitDependency;
  } catch (const std::exception& e) {
    std::cerr << "oss-verify: error: " << e.what() << "\n";
    return core::kExitProblem;
  }
}
