#pragma once
/// PostgreSQL array literals for bulk statements (`unnest($1::text[], ...)`): one round trip
/// per batch instead of one per row. libpqxx 6 has no array parameter binding, hence this.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace oss::pg {

std::string array_literal(const std::vector<std::string>& values);
std::string array_literal(const std::vector<std::optional<std::string>>& values);
std::string array_literal(const std::vector<std::int64_t>& values);
std::string array_literal(const std::vector<int>& values);

}  // namespace oss::pg
