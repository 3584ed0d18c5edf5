#pragma once
/// Transient vs permanent database failures, decided by libpqxx exception type and SQLSTATE
/// class (never by message text).
#include <exception>

namespace oss::pg {

/// True for failures worth retrying on a fresh connection/transaction: lost connections,
/// serialization failures, deadlocks, server shutting down or out of resources.
bool is_transient(const std::exception& e);

}  // namespace oss::pg
