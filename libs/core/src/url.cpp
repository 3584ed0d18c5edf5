#include "oss/core/url.hpp"

#include "oss/core/cli.hpp"

namespace oss::core {

std::string mask_url(std::string_view url) {
  std::string out(url);
  if (auto scheme = out.find("://"); scheme != std::string::npos) {
    const std::size_t start = scheme + 3;
    const std::size_t at = out.find('@', start);
    const std::size_t slash = out.find('/', start);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      const std::size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // key=value conninfo or ?password= query parameter.
  for (std::size_t pos = out.find("password="); pos != std::string::npos;
       pos = out.find("password=", pos + 1)) {
    const std::size_t vstart = pos + 9;
    std::size_t vend = out.find_first_of(" &", vstart);
    if (vend == std::string::npos) vend = out.size();
    out.replace(vstart, vend - vstart, "***");
  }
  return out;
}

void require_pg_url(std::string_view url, std::string_view what) {
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) return;
  if (url.find('=') != std::string_view::npos && url.find("://") == std::string_view::npos) return;
  throw UsageError(std::string(what) + ": not a PostgreSQL URL: '" + mask_url(url) +
                   "' (expected postgresql://user:pass@host:port/db)");
}

void require_amqp_url(std::string_view url, std::string_view what) {
  if (url.rfind("amqp://", 0) == 0 || url.rfind("amqps://", 0) == 0) {
    if (url.size() > 7) return;
  }
  throw UsageError(std::string(what) + ": not an AMQP URL: '" + mask_url(url) +
                   "' (expected amqp://user:pass@host:port/vhost)");
}

}  // namespace oss::core
