// to_message()/envelope_body(): the CONTRACT "Event on the wire".
#include "outbox_row.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>

namespace oss::relay {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

OutboxRow sample_row() {
  OutboxRow r;
  r.position = 17;
  r.event_id = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
  r.source = "crm";
  r.aggregate_type = "order";
  r.aggregate_id = "ORD-1001";
  r.sequence = 3;
  r.event_type = "order.status_changed";
  r.payload_json = R"({"status": "PRICE_CALCULATED", "reason": "quoted", "actor": "anna", "lines": [1, 2]})";
  r.headers_json = R"({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})";
  r.occurred_at = core::parse_rfc3339("2026-11-22T18:00:00.123456Z");
  return r;
}

std::optional<amqp::FieldValue> header(const amqp::Message& m, const std::string& name) {
  for (const auto& [k, v] : m.headers)
    if (k == name) return v;
  return std::nullopt;
}

TEST(ToMessage, Properties) {
  const auto m = to_message(sample_row(), "orders.events");
  EXPECT_EQ(m.exchange, "orders.events");
  EXPECT_EQ(m.routing_key, "crm.order.status_changed");
  EXPECT_EQ(m.message_id, "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b");
  EXPECT_EQ(m.type, "order.status_changed");
  EXPECT_EQ(m.content_type, "application/json");
  EXPECT_TRUE(m.persistent);
  EXPECT_EQ(m.timestamp, 1'795'370'400);
}

TEST(ToMessage, BodyIsTheContractEnvelope) {
  const auto m = to_message(sample_row(), "orders.events");
  const auto body = nlohmann::json::parse(m.body);
  const nlohmann::json expected = {
      {"event_id", "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"},
      {"source", "crm"},
      {"aggregate_type", "order"},
      {"aggregate_id", "ORD-1001"},
      {"sequence", 3},
      {"event_type", "order.status_changed"},
      {"occurred_at", "2026-11-22T18:00:00.123Z"},
      {"payload", {{"status", "PRICE_CALCULATED"}, {"reason", "quoted"}, {"actor", "anna"}, {"lines", {1, 2}}}},
  };
  EXPECT_EQ(body, expected) << m.body;
  EXPECT_TRUE(body.at("payload").is_object());
  EXPECT_TRUE(body.at("sequence").is_number_integer());
  EXPECT_EQ(m.body, envelope_body(sample_row()));
}

TEST(ToMessage, BodyFieldsInContractOrder) {
  const auto body = nlohmann::ordered_json::parse(envelope_body(sample_row()));
  std::vector<std::string> keys;
  for (const auto& [k, _] : body.items()) keys.push_back(k);
  EXPECT_THAT(keys, ElementsAre("event_id", "source", "aggregate_type", "aggregate_id", "sequence", "event_type",
                                "occurred_at", "payload"));
}

TEST(ToMessage, OccurredAtWholeSecondHasZeroMilliseconds) {
  auto r = sample_row();
  r.occurred_at = core::parse_rfc3339("2026-01-02T03:04:05Z");
  EXPECT_EQ(nlohmann::json::parse(envelope_body(r)).at("occurred_at"), "2026-01-02T03:04:05.000Z");
}

TEST(ToMessage, ProducerHeadersCopiedPlusRoutingHeaders) {
  const auto m = to_message(sample_row(), "orders.events");
  EXPECT_THAT(m.headers,
              ElementsAre(Pair("traceparent", amqp::FieldValue(std::string(
                                                  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))),
                          Pair("x-aggregate-id", amqp::FieldValue(std::string("ORD-1001"))),
                          Pair("x-source", amqp::FieldValue(std::string("crm"))),
                          Pair("x-sequence", amqp::FieldValue(std::int64_t{3}))));
}

TEST(ToMessage, HeaderValueTypes) {
  auto r = sample_row();
  r.headers_json = R"({"s": "x", "b": true, "n": 42, "o": {"k": 1}, "f": 1.5})";
  const auto m = to_message(r, "ex");
  EXPECT_EQ(header(m, "s"), amqp::FieldValue(std::string("x")));
  EXPECT_EQ(header(m, "b"), amqp::FieldValue(true));
  EXPECT_EQ(header(m, "n"), amqp::FieldValue(std::int64_t{42}));
  EXPECT_EQ(header(m, "o"), amqp::FieldValue(std::string(R"({"k":1})")));
  EXPECT_EQ(header(m, "f"), amqp::FieldValue(std::string("1.5")));
  EXPECT_EQ(m.headers.size(), 8u);
}

TEST(ToMessage, NoProducerHeaders) {
  for (const char* h : {"{}", ""}) {
    auto r = sample_row();
    r.headers_json = h;
    const auto m = to_message(r, "ex");
    ASSERT_EQ(m.headers.size(), 3u) << h;
    EXPECT_EQ(m.headers[0].first, "x-aggregate-id");
    EXPECT_EQ(m.headers[1].first, "x-source");
    EXPECT_EQ(m.headers[2].first, "x-sequence");
  }
}

TEST(ToMessage, RoutingKeyFollowsSourceAndEventType) {
  auto r = sample_row();
  r.source = "mes";
  r.event_type = "order.note_added";
  const auto m = to_message(r, "ex");
  EXPECT_EQ(m.routing_key, "mes.order.note_added");
  EXPECT_EQ(m.type, "order.note_added");
}

}  // namespace
}  // namespace oss::relay
