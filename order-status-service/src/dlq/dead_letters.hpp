#pragma once
/// Dead letters as operators see them (the oss.dead_letters table is the record; the DLQ
/// queue carries the same messages for tools that consume it) and their replay.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "oss/amqp/connection.hpp"
#include "oss/core/time.hpp"

namespace oss::dlq {

struct DeadLetter {
  std::int64_t id = 0;
  std::optional<std::string> event_id, order_id, source;
  std::string reason, error, routing_key;
  core::TimePoint dead_lettered_at{};
  std::optional<core::TimePoint> replayed_at;
  std::size_t body_bytes = 0;
};

struct ListFilter {
  std::optional<std::string> reason;
  bool include_replayed = false;
  std::size_t limit = 100;
  std::optional<std::int64_t> after_id;  // keyset cursor
};

std::vector<DeadLetter> list(pqxx::connection& conn, const ListFilter& filter);
std::int64_t open_count(pqxx::connection& conn);
nlohmann::json to_json(const DeadLetter& d);

struct ReplaySelection {
  std::vector<std::string> event_ids;  // replay these (open dead letters with these event ids)
  std::optional<std::string> reason;   // or every open dead letter with this reason
};

struct ReplayResult {
  std::vector<std::string> replayed;   // event ids (or dead-letter ids as "dl:<id>" without one)
  std::vector<std::string> not_found;  // requested event ids with no open dead letter
};

/// Republishes the selected dead letters to the service's events queue (default exchange,
/// publisher confirms) and, only after the broker confirmed, marks them replayed and forgets
/// their "dead_lettered" inbox record so the service decides them afresh (deduplication of
/// applied events is untouched: an event that was applied stays applied).
ReplayResult replay(pqxx::connection& conn, amqp::Connection& broker, const std::string& events_queue,
                    const ReplaySelection& selection);

}  // namespace oss::dlq
