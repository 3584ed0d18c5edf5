#include "oss/pg/migrate.hpp"

namespace oss::pg {

int installed_version(pqxx::connection& conn, const std::string& schema) {
  pqxx::read_transaction tx(conn);
  const auto exists = tx.exec_params(
      "SELECT to_regclass($1) IS NOT NULL", schema + ".schema_migrations")[0][0].as<bool>();
  if (!exists) return 0;
  const auto r = tx.exec("SELECT coalesce(max(version), 0) FROM " + tx.quote_name(schema) +
                         ".schema_migrations");
  return r[0][0].as<int>();
}

MigrationReport migrate(pqxx::connection& conn, const std::string& schema,
                        std::span<const oss::schema::Migration> migrations) {
  MigrationReport report;
  pqxx::work tx(conn);
  // Serialise concurrent installers of the same schema in this database.
  tx.exec_params("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "oss-migrate:" + schema);
  const std::string s = tx.quote_name(schema);
  tx.exec("CREATE SCHEMA IF NOT EXISTS " + s);
  tx.exec("CREATE TABLE IF NOT EXISTS " + s +
          ".schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
          "applied_at timestamptz NOT NULL DEFAULT now())");
  report.from_version =
      tx.exec("SELECT coalesce(max(version), 0) FROM " + s + ".schema_migrations")[0][0].as<int>();
  report.to_version = report.from_version;
  for (const auto& m : migrations) {
    if (m.version <= report.from_version) continue;
    tx.exec(std::string(m.sql));
    tx.exec_params("INSERT INTO " + s + ".schema_migrations (version, name) VALUES ($1, $2)",
                   m.version, std::string(m.name));
    report.to_version = m.version;
    ++report.applied;
  }
  tx.commit();
  return report;
}

}  // namespace oss::pg
