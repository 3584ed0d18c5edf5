#pragma once
/// Secrets stay out of logs (userver's DsnCutPassword): URLs are masked before they are printed.
#include <string>
#include <string_view>

namespace oss::core {

/// `postgresql://user:secret@host/db` → `postgresql://user:***@host/db`; also masks
/// `password=...` in key/value conninfo strings and query parameters, and amqp:// URLs.
std::string mask_url(std::string_view url);

/// Checks the scheme of a database URL (postgres:// or postgresql:// or key=value conninfo);
/// throws UsageError with `what` naming the flag otherwise.
void require_pg_url(std::string_view url, std::string_view what);
/// Checks an `amqp://` or `amqps://` URL; throws UsageError otherwise.
void require_amqp_url(std::string_view url, std::string_view what);

}  // namespace oss::core
