#include <iostream>

#include "app/commands.hpp"
#include "app/config.hpp"
#include "oss/core/logging.hpp"
#include "oss/core/url.hpp"
#include "oss/pg/migrate.hpp"
#include "oss/schema/migrations.hpp"

namespace oss::app {

int cmd_migrate(const std::vector<std::string>& args) {
  const auto specs = app::migrate_flags();
  if (wants_help(args)) {
    std::cout << core::format_help("order-status-service migrate --db URL", specs);
    return 0;
  }
  const auto flags = core::parse_flags(specs, args);
  core::init_logging("order-status-service", flags.get("log-level"));
  const std::string url = flags.get("db");
  core::require_pg_url(url, "--db");
  auto conn = connect_or_exit3(url, "order-status-service-migrate");
  // The service's own outbox (notifications) lives in its database too.
  const auto outbox = pg::migrate(*conn, "outbox", schema::outbox_migrations());
  const auto service = pg::migrate(*conn, "oss", schema::service_migrations());
  spdlog::info("msg=\"schema migrated\" db={} oss_version={} oss_applied={} outbox_version={} outbox_applied={}",
               core::q(core::mask_url(url)), service.to_version, service.applied, outbox.to_version, outbox.applied);
  return 0;
}

}  // namespace oss::app
