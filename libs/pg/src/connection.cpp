#include "oss/pg/connection.hpp"

namespace oss::pg {

std::unique_ptr<pqxx::connection> connect(const ConnectOptions& options) {
  std::string conninfo = options.url;
  // libpq accepts extra key=value settings after a URI only as query parameters.
  const bool is_uri = conninfo.find("://") != std::string::npos;
  const std::string sep_first = is_uri ? (conninfo.find('?') == std::string::npos ? "?" : "&") : " ";
  const std::string sep = is_uri ? "&" : " ";
  conninfo += sep_first + "connect_timeout=" + std::to_string(options.connect_timeout.count());
  if (!options.application_name.empty()) conninfo += sep + "application_name=" + options.application_name;
  auto conn = std::make_unique<pqxx::connection>(conninfo);
  pqxx::nontransaction tx(*conn);
  tx.exec("SET statement_timeout = " + std::to_string(options.statement_timeout.count()));
  tx.exec("SET lock_timeout = " + std::to_string(options.statement_timeout.count()));
  return conn;
}

}  // namespace oss::pg
