#include "oss/amqp/url.hpp"

#include <amqp.h>

#include <stdexcept>
#include <vector>

namespace oss::amqp {

UrlParts parse_url(std::string_view amqp_url) {
  // amqp_parse_url decodes in place and points into the buffer, so parse a private copy.
  std::vector<char> buffer(amqp_url.begin(), amqp_url.end());
  buffer.push_back('\0');
  amqp_connection_info info{};
  if (amqp_parse_url(buffer.data(), &info) != AMQP_STATUS_OK) {
    throw std::invalid_argument("amqp: malformed URL: " + mask_url(amqp_url));
  }
  if (info.ssl != 0) {
    throw std::invalid_argument("amqp: amqps:// (TLS) is not supported: " + mask_url(amqp_url));
  }
  UrlParts parts;
  parts.user = info.user;
  parts.password = info.password;
  parts.host = info.host;
  parts.vhost = info.vhost;
  parts.port = info.port;
  if (parts.vhost.empty()) parts.vhost.assign(1, '/');  // not = "/": GCC 12 -O3 -Wrestrict false positive (PR105651)
  if (parts.host.empty()) {
    throw std::invalid_argument("amqp: URL has no host: " + mask_url(amqp_url));
  }
  if (parts.port <= 0 || parts.port > 65535) {
    throw std::invalid_argument("amqp: URL port out of range: " + mask_url(amqp_url));
  }
  return parts;
}

std::string mask_url(std::string_view amqp_url) {
  std::string out(amqp_url);
  // Authority = after "scheme://" up to the first '/', '?' or '#'. Without a scheme, treat the
  // start as the authority anyway: a malformed URL may still carry a password.
  std::size_t start = 0;
  if (const auto scheme = out.find("://"); scheme != std::string::npos) start = scheme + 3;
  std::size_t end = out.find_first_of("/?#", start);
  if (end == std::string::npos) end = out.size();
  const std::size_t at = out.rfind('@', end == 0 ? 0 : end - 1);
  if (at == std::string::npos || at < start) return out;
  const std::size_t colon = out.find(':', start);
  if (colon == std::string::npos || colon > at) return out;  // user only, no password
  out.replace(colon + 1, at - colon - 1, "***");
  return out;
}

}  // namespace oss::amqp
