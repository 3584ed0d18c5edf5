#include "app/commands.hpp"

#include <algorithm>

#include "oss/core/cli.hpp"
#include "oss/core/url.hpp"
#include "oss/pg/connection.hpp"

namespace oss::app {

bool wants_help(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(), [](const std::string& a) { return a == "--help" || a == "-h"; });
}

std::unique_ptr<pqxx::connection> connect_or_exit3(const std::string& url, const std::string& application) {
  try {
    return pg::connect({url, application});
  } catch (const pqxx::broken_connection& e) {
    throw core::DependencyError("cannot connect to the database " + core::mask_url(url) + ": " + e.what());
  }
}

}  // namespace oss::app
