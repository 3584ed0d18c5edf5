#include "app/commands.hpp"

#include "oss/core/cli.hpp"
#include "oss/core/url.hpp"
#include "oss/pg/connection.hpp"

namespace oss::app {

bool wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args)
    if (a == "--help" || a == "-h") return true;
  return false;
}

std::unique_ptr<pqxx::connection> connect_or_exit3(const std::string& url, const std::string& application) {
  try {
    return pg::connect({url, application});
  } catch (const pqxx::broken_connection& e) {
    throw core::DependencyError("cannot connect to the database " + core::mask_url(url) + ": " + e.what());
  }
}

}  // namespace oss::app
