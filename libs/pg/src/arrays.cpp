#include "oss/pg/arrays.hpp"

namespace oss::pg {
namespace {

void append_quoted(std::string& out, const std::string& v) {
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

template <typename Int>
std::string ints(const std::vector<Int>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(values[i]);
  }
  return out + "}";
}

}  // namespace

std::string array_literal(const std::vector<std::string>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    append_quoted(out, values[i]);
  }
  return out + "}";
}

std::string array_literal(const std::vector<std::optional<std::string>>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    if (values[i]) append_quoted(out, *values[i]);
    else out += "NULL";
  }
  return out + "}";
}

std::string array_literal(const std::vector<std::int64_t>& values) { return ints(values); }
std::string array_literal(const std::vector<int>& values) { return ints(values); }

}  // namespace oss::pg
