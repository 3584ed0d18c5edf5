#include "outbox_row.hpp"

#include <nlohmann/json.hpp>

namespace oss::relay {

std::string envelope_body(const OutboxRow& row) {
  nlohmann::ordered_json j;
  j["event_id"] = row.event_id;
  j["source"] = row.source;
  j["aggregate_type"] = row.aggregate_type;
  j["aggregate_id"] = row.aggregate_id;
  j["sequence"] = row.sequence;
  j["event_type"] = row.event_type;
  j["occurred_at"] = core::format_rfc3339(row.occurred_at);
  // The payload is jsonb from PostgreSQL, hence valid JSON; parsed to embed it as an object.
  j["payload"] = nlohmann::ordered_json::parse(row.payload_json);
  return j.dump();
}

amqp::Message to_message(const OutboxRow& row, const std::string& exchange) {
  amqp::Message m;
  m.exchange = exchange;
  m.routing_key = row.source + "." + row.event_type;
  m.body = envelope_body(row);
  m.message_id = row.event_id;
  m.type = row.event_type;
  m.content_type = "application/json";
  m.persistent = true;
  m.timestamp = std::chrono::duration_cast<std::chrono::seconds>(row.occurred_at.time_since_epoch()).count();
  if (!row.headers_json.empty() && row.headers_json != "{}") {
    const auto h = nlohmann::json::parse(row.headers_json);
    for (const auto& [k, v] : h.items()) {
      if (v.is_string()) m.headers.emplace_back(k, v.get<std::string>());
      else if (v.is_boolean()) m.headers.emplace_back(k, v.get<bool>());
      else if (v.is_number_integer()) m.headers.emplace_back(k, v.get<std::int64_t>());
      else m.headers.emplace_back(k, v.dump());
    }
  }
  m.headers.emplace_back("x-aggregate-id", row.aggregate_id);
  m.headers.emplace_back("x-source", row.source);
  m.headers.emplace_back("x-sequence", row.sequence);
  return m;
}

}  // namespace oss::relay
