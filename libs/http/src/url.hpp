#pragma once
// Internal: percent-decoding of targets.

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace oss::http::detail {

/// nullopt on a malformed escape ("%G1", "%4") or a decoded NUL.
std::optional<std::string> percent_decode(std::string_view in, bool plus_is_space);

/// "a=1&b=x%20y&flag" → {a:1, b:"x y", flag:""}; last wins; nullopt on a bad escape.
std::optional<std::map<std::string, std::string>> parse_query(std::string_view query);

}  // namespace oss::http::detail
