#include "oss/pg/statement_batch.hpp"

#include <stdexcept>

namespace oss::pg {

std::string substitute_parameters(std::string_view sql, const std::vector<std::string>& literals) {
  std::string out;
  out.reserve(sql.size() + 64);
  bool in_literal = false;
  for (std::size_t i = 0; i < sql.size();) {
    const char c = sql[i];
    if (c == '\'') in_literal = !in_literal;  // '' inside a literal toggles twice: still inside
    if (c != '$' || in_literal || i + 1 >= sql.size() || sql[i + 1] < '0' || sql[i + 1] > '9') {
      out += c;
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    std::size_t n = 0;
    while (j < sql.size() && sql[j] >= '0' && sql[j] <= '9') n = n * 10 + static_cast<std::size_t>(sql[j++] - '0');
    if (n == 0 || n > literals.size())
      throw std::invalid_argument("statement refers to $" + std::to_string(n) + " but has " +
                                  std::to_string(literals.size()) + " parameters");
    out += literals[n - 1];
    i = j;
  }
  return out;
}

pqxx::result StatementBatch::run() {
  if (sql_.empty()) return {};
  // One message, so PostgreSQL runs the statements in order inside the open transaction and
  // returns the last one's result (earlier results are discarded by libpq).
  auto r = tx_.exec(sql_);
  sql_.clear();
  return r;
}

}  // namespace oss::pg
