#pragma once
#include <pqxx/pqxx>
#include <span>
#include <string>

#include "oss/schema/migrations.hpp"

namespace oss::pg {

struct MigrationReport {
  int from_version = 0;
  int to_version = 0;
  int applied = 0;
};

/// Applies the migrations not yet recorded in <schema>.schema_migrations, in one transaction,
/// under an advisory lock (safe to run concurrently; idempotent).
MigrationReport migrate(pqxx::connection& conn, const std::string& schema,
                        std::span<const oss::schema::Migration> migrations);

/// Highest applied version of <schema>, 0 if the schema is not installed.
int installed_version(pqxx::connection& conn, const std::string& schema);

}  // namespace oss::pg
