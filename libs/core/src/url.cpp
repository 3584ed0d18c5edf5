#include "oss/core/url.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "oss/core/cli.hpp"

namespace oss::core {

std::string mask_url(std::string_view url) {
  std::string out(url);
  // Every URL of a comma-separated list (a cluster's nodes) is masked, not only the first.
  for (auto scheme = out.find("://"); scheme != std::string::npos;
       scheme = out.find("://", scheme + 3)) {
    const std::size_t start = scheme + 3;
    const std::size_t end = std::min(out.find(',', start), out.size());
    const std::size_t at = out.find('@', start);
    const std::size_t slash = out.find('/', start);
    if (at != std::string::npos && at < end && (slash == std::string::npos || at < slash)) {
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

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Empty when `url` looks like amqp[s]://[user[:pass]@]host[:port][/vhost]; else what is wrong.
std::string amqp_url_problem(std::string_view url) {
  std::size_t start = 0;
  if (url.rfind("amqp://", 0) == 0) {
    start = 7;
  } else if (url.rfind("amqps://", 0) == 0) {
    start = 8;
  } else {
    return "not an AMQP URL";
  }
  std::string_view authority = url.substr(start, url.find_first_of("/?#", start) - start);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos)
    authority.remove_prefix(at + 1);
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {  // [ipv6]:port
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return "unterminated [IPv6] host";
    host = authority.substr(0, close + 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return "garbage after the [IPv6] host";
      port = authority.substr(close + 2);
      if (port.empty()) return "empty port";
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return "empty port";
  }
  if (host.empty()) return "no host";
  if (!port.empty()) {
    long value = 0;
    for (const char c : port) {
      if (c < '0' || c > '9' || value > 65535) return "port is not a number in 1..65535";
      value = value * 10 + (c - '0');
    }
    if (value < 1 || value > 65535) return "port is not a number in 1..65535";
  }
  return {};
}

constexpr const char* kAmqpExpected = "expected amqp://user:pass@host:port/vhost";

}  // namespace

std::vector<std::string> parse_amqp_urls(std::string_view list, std::string_view what) {
  std::vector<std::string_view> entries;
  for (std::size_t pos = 0;;) {
    const std::size_t comma = list.find(',', pos);
    entries.push_back(trim(
        list.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos)));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  const std::string w(what);
  if (entries.size() == 1) {
    if (const auto problem = amqp_url_problem(entries[0]); !problem.empty()) {
      throw UsageError(w + ": " + problem + ": '" + mask_url(list) + "' (" + kAmqpExpected +
                       ", or a comma-separated list of them for a cluster)");
    }
    return {std::string(entries[0])};
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string where =
        w + ": entry " + std::to_string(i + 1) + " of " + std::to_string(entries.size());
    if (entries[i].empty()) {
      throw UsageError(
          where +
          " is empty (expected a comma-separated list of amqp:// URLs, one per cluster node)");
    }
    if (const auto problem = amqp_url_problem(entries[i]); !problem.empty()) {
      throw UsageError(fmt::format("{}: {}: '{}' ({})", where, problem, mask_url(entries[i]),
                                   kAmqpExpected));
    }
    for (std::size_t j = 0; j < out.size(); ++j) {
      if (out[j] == entries[i]) {
        throw UsageError(where + " repeats entry " + std::to_string(j + 1) + ": '" +
                         mask_url(entries[i]) + "'");
      }
    }
    out.emplace_back(entries[i]);
  }
  return out;
}

void require_amqp_url(std::string_view url, std::string_view what) {
  (void)parse_amqp_urls(url, what);
}

}  // namespace oss::core
