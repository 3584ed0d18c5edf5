#pragma once
/// PostgreSQL connections for one thread each (libpqxx forbids sharing a connection).
/// This library is the database boundary: pqxx types appear here and in the stores built on
/// it, never in domain code.
#include <chrono>
#include <memory>
#include <pqxx/pqxx>
#include <string>

namespace oss::pg {

struct ConnectOptions {
  std::string url;
  std::string application_name;
  std::chrono::seconds connect_timeout{5};
  /// Server-side statement_timeout: every statement has a deadline.
  std::chrono::milliseconds statement_timeout{30'000};
};

/// Opens a connection; throws pqxx::broken_connection when the server cannot be reached or
/// refuses the login (libpq's message says which).
std::unique_ptr<pqxx::connection> connect(const ConnectOptions& options);

}  // namespace oss::pg
