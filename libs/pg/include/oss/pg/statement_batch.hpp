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
#include <cstdint>
#include <optional>
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

  /// Adds a statement; its parameters are strings (quoted), optional strings (NULL when empty)
  /// or integers, like exec_params' (casts such as `$1::text[]` stay in the statement).
  template <typename... Params>
  void add(std::string_view sql, const Params&... params) {
    if (!sql_.empty()) sql_ += ";\n";
    sql_ += substitute_parameters(sql, {literal(params)...});
    ++count_;
  }
  /// Sends the statements added since the last run (nothing if none); returns the last one's
  /// result.
  pqxx::result run();
  std::size_t size() const { return count_; }

 private:
  std::string literal(const std::string& v) const { return tx_.quote(v); }
  std::string literal(const char* v) const { return tx_.quote(std::string(v)); }
  std::string literal(const std::optional<std::string>& v) const { return v ? tx_.quote(*v) : std::string("NULL"); }
  std::string literal(std::int64_t v) const { return std::to_string(v); }
  std::string literal(int v) const { return std::to_string(v); }

  pqxx::transaction_base& tx_;
  std::string sql_;
  std::size_t count_ = 0;
};

}  // namespace oss::pg
