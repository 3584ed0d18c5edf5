#pragma once
/// Parked early events as operators see them (oss.early_events; docs/adr/0004): an order that
/// looks stuck may have events that arrived and wait for a predecessor ("waiting for mes
/// sequence 3 since 10:42").
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "oss/core/time.hpp"

namespace oss::store {

struct ParkedEvent {
  std::string event_id, order_id, source, event_type, waiting_for;
  std::int64_t sequence = 0;
  int attempt = 0;
  bool replay = false;
  core::TimePoint parked_at{}, next_retry_at{};
};

struct ParkedFilter {
  std::optional<std::string> order_id;
  std::size_t limit = 100;
};

/// Oldest first.
std::vector<ParkedEvent> list_parked(pqxx::connection& conn, const ParkedFilter& filter);
std::int64_t parked_count(pqxx::connection& conn);
nlohmann::json to_json(const ParkedEvent& e);

}  // namespace oss::store
