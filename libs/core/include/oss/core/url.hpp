#pragma once
/// Secrets stay out of logs (userver's DsnCutPassword): URLs are masked before they are printed.
#include <string>
#include <string_view>
#include <vector>

namespace oss::core {

/// `postgresql://user:secret@host/db` → `postgresql://user:***@host/db`; also masks
/// `password=...` in key/value conninfo strings and query parameters, and amqp:// URLs.
std::string mask_url(std::string_view url);

/// Checks the scheme of a database URL (postgres:// or postgresql:// or key=value conninfo);
/// throws UsageError with `what` naming the flag otherwise.
void require_pg_url(std::string_view url, std::string_view what);
/// Checks an `amqp://` or `amqps://` URL, or a comma-separated list of them (the nodes of a
/// cluster, see parse_amqp_urls); throws UsageError otherwise.
void require_amqp_url(std::string_view url, std::string_view what);

/// Splits `amqp://h1:5672/v,amqp://h2:5672/v,...` (the nodes of one RabbitMQ cluster, tried in
/// turn by oss::amqp::Connection) into its entries, with blanks around each entry trimmed.
/// Each entry needs the amqp:// or amqps:// scheme, a host, and a port in 1..65535 when one is
/// given. Throws UsageError naming `what` and the offending entry (its 1-based position and its
/// masked text) for an empty list, an empty entry, a bad entry or an entry given twice.
std::vector<std::string> parse_amqp_urls(std::string_view list, std::string_view what);

}  // namespace oss::core
