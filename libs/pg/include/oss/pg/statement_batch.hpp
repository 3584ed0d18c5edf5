#pragma once
/// Several statements of one transaction sent in ONE round trip.
///
/// Each statement sent alone costs a round trip, and on a loaded machine every round trip also
/// waits for the client and the server to be scheduled again: the service's batch transaction
/// was 12 of them, most of its 17-26 ms per batch at 2,000 events/s end to end
/// (docs/performance.md). libpqxx 6 (Debian 12) has no libpq pipeline mode, so the statements
/// go as one simple-query message (several statements separated by semicolons, run in order in
/// the current transaction; the first error aborts it, as it would have statement by
/// statement). Simple queries take no out-of-line parameters: each `$N` of a statement is
/// replaced by its value as a quoted SQL literal (the connection's own escaping), in one pass
/// over the statement's text only, never over a value already put in.
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <vector>

namespace oss::pg {

/// `sql` with every `$N` (N from 1) replaced by literals[N-1]. Throws std::invalid_argument for
/// a `$N` without a literal. Text between single quotes is copied as is.
std::string substitute_parameters(std::string_view sql, const std::vector<std::string>& literals);

class StatementBatch {
 public:
  explicit StatementBatch(pqxx::transaction_base& tx) : tx_(tx) {}

  /// Adds a statement. Its parameters are strings (array literals included), each quoted as a
  /// text literal; casts such as `$1::text[]` stay in the statement, as with exec_params.
  template <typename... Params>
  void add(std::string_view sql, const Params&... params) {
    if (!sql_.empty()) sql_ += ";\n";
    sql_ += substitute_parameters(sql, {tx_.quote(std::string(params))...});
  }
  /// Sends the statements added since the last run (nothing if none); returns the last one's
  /// result.
  pqxx::result run();

 private:
  pqxx::transaction_base& tx_;
  std::string sql_;
};

}  // namespace oss::pg
