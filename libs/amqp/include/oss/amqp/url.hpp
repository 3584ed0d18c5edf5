#pragma once

#include <string>
#include <string_view>

namespace oss::amqp {

/// The parts of amqp://user:pass@host:port/vhost, percent-decoded ("%2f" -> "/").
/// Missing parts take rabbitmq-c's defaults (guest, guest, localhost, 5672, "/"); an empty
/// vhost ("amqp://host/") also means "/".
struct UrlParts {
  std::string user, password, host, vhost;
  int port = 5672;
};

/// Throws std::invalid_argument for a malformed URL or an amqps:// URL (TLS is not supported).
UrlParts parse_url(std::string_view amqp_url);

/// The URL with its password replaced by "***", for logs. Never throws on malformed input.
std::string mask_url(std::string_view amqp_url);

}  // namespace oss::amqp
