#include "oss/pg/errors.hpp"

#include <pqxx/pqxx>
#include <string>

namespace oss::pg {

bool is_transient(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) return true;
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) return true;
  if (dynamic_cast<const pqxx::transaction_rollback*>(&e) != nullptr) return true;  // 40xxx
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const std::string state = sql->sqlstate();
    if (state.size() != 5) return false;
    const std::string cls = state.substr(0, 2);
    // 08 connection exception, 40 transaction rollback, 53 insufficient resources,
    // 57P01-57P03 admin/crash shutdown and cannot connect now, 55P03 lock not available,
    // 57014 query canceled (statement_timeout).
    if (cls == "08" || cls == "40" || cls == "53") return true;
    if (state == "57P01" || state == "57P02" || state == "57P03" || state == "55P03" ||
        state == "57014")
      return true;
  }
  return false;
}

}  // namespace oss::pg
