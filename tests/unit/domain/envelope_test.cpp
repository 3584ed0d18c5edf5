#include "domain/envelope.hpp"

#include <gtest/gtest.h>

#include <string>

#include "oss/core/time.hpp"

namespace oss::domain {
namespace {

using nlohmann::json;

json good() {
  return json::parse(R"({
    "event_id": "6F1C2D3E-4A5B-4C6D-8E9F-0A1B2C3D4E5F",
    "source": "crm", "aggregate_type": "order", "aggregate_id": "ORD-1001", "sequence": 3,
    "event_type": "order.status_changed", "occurred_at": "2026-11-22T18:00:00.123Z",
    "payload": {"status": "PRICE_CALCULATED", "reason": "price ready", "actor": "anna"}})");
}

// Parses, asserting it never throws, and returns the error detail ("" if it parsed).
std::string detail_of(std::string_view body, std::size_t max = kDefaultMaxEnvelopeBytes) {
  std::variant<Envelope, EnvelopeError> r;
  EXPECT_NO_THROW(r = parse_envelope(body, max));
  if (const auto* e = std::get_if<EnvelopeError>(&r)) {
    EXPECT_EQ(e->reason, "malformed");
    return e->detail;
  }
  return "";
}

std::string detail_of_doc(const json& doc) { return detail_of(doc.dump()); }

TEST(EnvelopeTest, ParsesAGoodBody) {
  const auto r = parse_envelope(good().dump());
  ASSERT_TRUE(std::holds_alternative<Envelope>(r)) << std::get<EnvelopeError>(r).detail;
  const Envelope& e = std::get<Envelope>(r);
  EXPECT_EQ(e.event_id, "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f");  // normalised to lowercase
  EXPECT_EQ(e.source, "crm");
  EXPECT_EQ(e.aggregate_type, "order");
  EXPECT_EQ(e.aggregate_id, "ORD-1001");
  EXPECT_EQ(e.sequence, 3);
  EXPECT_EQ(e.event_type, kStatusChangedEventType);
  EXPECT_EQ(e.occurred_at, core::parse_rfc3339("2026-11-22T18:00:00.123Z"));
  EXPECT_EQ(e.payload["status"], "PRICE_CALCULATED");
}

TEST(EnvelopeTest, ToJsonIsTheWireFormatAndRoundTrips) {
  const Envelope e = std::get<Envelope>(parse_envelope(good().dump()));
  const json j = to_json(e);
  json expected = good();
  expected["event_id"] = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f";
  EXPECT_EQ(j, expected);
  EXPECT_EQ(std::get<Envelope>(parse_envelope(j.dump())), e);
}

TEST(EnvelopeTest, OccurredAtIsWrittenInUtcWithMilliseconds) {
  json doc = good();
  doc["occurred_at"] = "2026-11-22T19:00:00+01:00";
  const Envelope e = std::get<Envelope>(parse_envelope(doc.dump()));
  EXPECT_EQ(to_json(e)["occurred_at"], "2026-11-22T18:00:00.000Z");
}

TEST(EnvelopeTest, IgnoresUnknownTopLevelFields) {
  json doc = good();
  doc["headers"] = {{"traceparent", "00-abc"}};
  EXPECT_EQ(detail_of_doc(doc), "");
}

TEST(EnvelopeTest, NotJson) {
  const std::string d = detail_of("{\"event_id\": ");
  EXPECT_EQ(d.rfind("body is not valid JSON: [json.exception.parse_error.101] parse error at "
                    "line 1, column 14",
                    0),
            0U)
      << d;
  EXPECT_EQ(detail_of("").rfind("body is not valid JSON: ", 0), 0U);
  EXPECT_EQ(detail_of("garbage").rfind("body is not valid JSON: ", 0), 0U);
  EXPECT_EQ(detail_of("{} trailing").rfind("body is not valid JSON: ", 0), 0U);
  EXPECT_EQ(detail_of("\xff\xfe{}").rfind("body is not valid JSON: ", 0), 0U);
  EXPECT_EQ(detail_of("{\"a\": \"\xc3\x28\"}").rfind("body is not valid JSON: ", 0), 0U);
  EXPECT_EQ(detail_of("{\"a\": 1e999}").rfind("body is not valid JSON: ", 0), 0U);
}

TEST(EnvelopeTest, NotAnObject) {
  EXPECT_EQ(detail_of("[]"), "body must be a JSON object, got array");
  EXPECT_EQ(detail_of("\"x\""), "body must be a JSON object, got string");
  EXPECT_EQ(detail_of("null"), "body must be a JSON object, got null");
  EXPECT_EQ(detail_of("42"), "body must be a JSON object, got number");
}

TEST(EnvelopeTest, EachMissingFieldIsNamed) {
  for (const char* field : {"event_id", "source", "aggregate_type", "aggregate_id", "sequence",
                            "event_type", "occurred_at", "payload"}) {
    json doc = good();
    doc.erase(field);
    EXPECT_EQ(detail_of_doc(doc), std::string(field) + ": missing");
  }
}

TEST(EnvelopeTest, WrongTypesAreNamed) {
  const auto with = [](const char* field, json value) {
    json doc = good();
    doc[field] = std::move(value);
    return detail_of_doc(doc);
  };
  EXPECT_EQ(with("event_id", 7), "event_id: expected a UUID string, got number");
  EXPECT_EQ(with("source", json::array()), "source: expected a string, got array");
  EXPECT_EQ(with("aggregate_type", nullptr), "aggregate_type: expected a string, got null");
  EXPECT_EQ(with("aggregate_id", 1001), "aggregate_id: expected a string, got number");
  EXPECT_EQ(with("event_type", true), "event_type: expected a string, got boolean");
  EXPECT_EQ(with("occurred_at", 1700000000),
            "occurred_at: expected an RFC 3339 string, got number");
  EXPECT_EQ(with("payload", "{}"), "payload: expected a JSON object, got string");
  EXPECT_EQ(with("payload", json::array()), "payload: expected a JSON object, got array");
  EXPECT_EQ(with("payload", nullptr), "payload: expected a JSON object, got null");
}

TEST(EnvelopeTest, EmptyAndOversizedIdentifiers) {
  for (const char* field : {"source", "aggregate_type", "aggregate_id", "event_type"}) {
    json doc = good();
    doc[field] = "";
    EXPECT_EQ(detail_of_doc(doc), std::string(field) + ": must not be empty");
    doc[field] = std::string(257, 'x');
    EXPECT_EQ(detail_of_doc(doc),
              std::string(field) + ": 257 bytes is longer than the limit of 256");
    doc[field] = std::string(256, 'x');
    EXPECT_EQ(detail_of_doc(doc), "");
  }
}

TEST(EnvelopeTest, ControlCharactersInIdentifiers) {
  json doc = good();
  doc["aggregate_id"] = std::string("ORD\0-1", 6);
  EXPECT_EQ(detail_of_doc(doc),
            "aggregate_id: must not contain control characters, got \"ORD\\u0000-1\"");
  doc["aggregate_id"] = "ORD\n1";
  EXPECT_EQ(detail_of_doc(doc),
            "aggregate_id: must not contain control characters, got \"ORD\\n1\"");
}

TEST(EnvelopeTest, BadUuids) {
  for (const char* id :
       {"", "not-a-uuid", "6f1c2d3e4a5b4c6d8e9f0a1b2c3d4e5f", "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5",
        "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5fa", "6f1c2d3e-4a5b-4c6d-8e9f_0a1b2c3d4e5f",
        "gf1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f", "{6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e}"}) {
    json doc = good();
    doc["event_id"] = id;
    EXPECT_EQ(detail_of_doc(doc),
              "event_id: expected a UUID (8-4-4-4-12 hex digits), got \"" + std::string(id) + "\"")
        << id;
  }
  json doc = good();
  doc["event_id"] = std::string(500, 'a');
  EXPECT_EQ(detail_of_doc(doc), "event_id: expected a UUID (8-4-4-4-12 hex digits), got \"" +
                                    std::string(80, 'a') + "\"...");
}

TEST(EnvelopeTest, Sequences) {
  const auto with = [](std::string_view raw) {
    std::string body = good().dump();
    const auto at = body.find("\"sequence\":3");
    body.replace(at, 12, "\"sequence\":" + std::string(raw));
    return detail_of(body);
  };
  EXPECT_EQ(with("1"), "");
  EXPECT_EQ(with("9223372036854775807"), "");
  EXPECT_EQ(with("0"), "sequence: expected an integer >= 1, got 0");
  EXPECT_EQ(with("-1"), "sequence: expected an integer >= 1, got -1");
  EXPECT_EQ(with("-9223372036854775808"),
            "sequence: expected an integer >= 1, got -9223372036854775808");
  EXPECT_EQ(with("\"3\""), "sequence: expected an integer >= 1, got string");
  EXPECT_EQ(with("1.5"), "sequence: expected an integer >= 1, got 1.5");
  EXPECT_EQ(with("3.0"), "sequence: expected an integer >= 1, got 3.0");
  EXPECT_EQ(with("1e3"), "sequence: expected an integer >= 1, got 1000.0");
  EXPECT_EQ(with("null"), "sequence: expected an integer >= 1, got null");
  EXPECT_EQ(with("9223372036854775808"), "sequence: 9223372036854775808 is out of range");
  EXPECT_EQ(with("18446744073709551615"), "sequence: 18446744073709551615 is out of range");
  // Beyond uint64: nlohmann reads it as a floating-point number.
  EXPECT_EQ(with("18446744073709551616").rfind("sequence: expected an integer >= 1, got ", 0), 0U);
}

TEST(EnvelopeTest, BadTimestamps) {
  for (const char* ts :
       {"", "yesterday", "2026-11-22", "2026-11-22T18:00:00", "2026-13-01T00:00:00Z",
        "2026-11-22T18:00:00.Z", "2026-11-22T18:00:00Zjunk"}) {
    json doc = good();
    doc["occurred_at"] = ts;
    const std::string d = detail_of_doc(doc);
    EXPECT_EQ(d.rfind("occurred_at: invalid timestamp '" + std::string(ts) + "'", 0), 0U) << d;
  }
}

TEST(EnvelopeTest, Oversized) {
  const std::string body = good().dump();
  EXPECT_EQ(detail_of(body, body.size()), "");
  EXPECT_EQ(detail_of(body, body.size() - 1), "body of " + std::to_string(body.size()) +
                                                  " bytes exceeds the limit of " +
                                                  std::to_string(body.size() - 1));
  const std::string huge(kDefaultMaxEnvelopeBytes + 1, ' ');
  EXPECT_EQ(detail_of(huge), "body of 262145 bytes exceeds the limit of 262144");
}

TEST(EnvelopeTest, EmbeddedNuls) {
  std::string body = good().dump();
  EXPECT_EQ(detail_of(std::string(body).insert(1, 1, '\0')).rfind("body is not valid JSON: ", 0),
            0U);
  // A raw NUL inside a string literal is not JSON either.
  const auto at = body.find("ORD-1001");
  EXPECT_EQ(
      detail_of(std::string(body).insert(at + 3, 1, '\0')).rfind("body is not valid JSON: ", 0),
      0U);
  // An escaped NUL is JSON, but PostgreSQL cannot store it.
  json doc = good();
  doc["payload"]["reason"] = std::string("a\0b", 3);
  EXPECT_EQ(detail_of_doc(doc),
            "payload: contains a NUL character (\\u0000), which cannot be stored");
  doc = good();
  doc["payload"]["nested"] = {{"list", {1, std::string("\0", 1)}}};
  EXPECT_EQ(detail_of_doc(doc),
            "payload: contains a NUL character (\\u0000), which cannot be stored");
  doc = good();
  doc["payload"][std::string("k\0", 2)] = 1;
  EXPECT_EQ(detail_of_doc(doc),
            "payload: contains a NUL character (\\u0000), which cannot be stored");
}

TEST(EnvelopeTest, DeepNesting) {
  json doc = good();
  json deep = json::object();
  for (int i = 0; i < 40; ++i) deep = json{{"x", deep}};
  doc["payload"]["deep"] = deep;
  EXPECT_EQ(detail_of_doc(doc), "");  // 43 levels

  const std::string hostile = std::string(100'000, '[') + std::string(100'000, ']');
  EXPECT_EQ(detail_of(hostile), "body nests arrays/objects deeper than the limit of 64 levels");
  const std::string unbalanced = "{\"payload\":" + std::string(100'000, '{');
  EXPECT_EQ(detail_of(unbalanced), "body nests arrays/objects deeper than the limit of 64 levels");
  // Brackets inside strings do not count.
  doc = good();
  doc["payload"]["text"] = std::string(1000, '[') + "\"\\" + std::string(1000, '{');
  EXPECT_EQ(detail_of_doc(doc), "");
}

TEST(EnvelopeTest, ArbitraryBytesNeverThrow) {
  // A poor man's fuzz pass; the real fuzzer comes later.
  std::uint32_t state = 12345;
  const auto next = [&state] {
    state = state * 1664525U + 1013904223U;
    return state >> 24;
  };
  const std::string seed = good().dump();
  for (int i = 0; i < 5000; ++i) {
    std::string body = seed;
    const int edits = 1 + static_cast<int>(next() % 8);
    for (int k = 0; k < edits; ++k) {
      const std::size_t pos = next() % body.size();
      switch (next() % 3) {
        case 0:
          body[pos] = static_cast<char>(next());
          break;
        case 1:
          body.erase(pos, 1 + next() % 5);
          break;
        default:
          body.insert(pos, 1, "{}[]\",:0\\"[next() % 9]);
          break;
      }
      if (body.empty()) body = "x";
    }
    std::variant<Envelope, EnvelopeError> r;
    ASSERT_NO_THROW(r = parse_envelope(body)) << body;
    if (const auto* e = std::get_if<Envelope>(&r)) {
      EXPECT_NO_THROW((void)to_json(*e).dump());
      EXPECT_NO_THROW((void)status_change_of(*e));
    }
  }
}

TEST(StatusChangeTest, ReadsStatusReasonAndActor) {
  const Envelope e = std::get<Envelope>(parse_envelope(good().dump()));
  const auto r = status_change_of(e);
  ASSERT_TRUE(std::holds_alternative<StatusChange>(r));
  EXPECT_EQ(std::get<StatusChange>(r), (StatusChange{"PRICE_CALCULATED", "price ready", "anna"}));
}

TEST(StatusChangeTest, ReasonAndActorAreOptional) {
  Envelope e = std::get<Envelope>(parse_envelope(good().dump()));
  e.payload = {{"status", "SHIPPED"}, {"actor", nullptr}};
  EXPECT_EQ(std::get<StatusChange>(status_change_of(e)), (StatusChange{"SHIPPED", "", ""}));
}

TEST(StatusChangeTest, Errors) {
  Envelope e = std::get<Envelope>(parse_envelope(good().dump()));
  const auto detail = [&](json payload) {
    e.payload = std::move(payload);
    std::variant<StatusChange, EnvelopeError> r;
    EXPECT_NO_THROW(r = status_change_of(e));
    const auto* err = std::get_if<EnvelopeError>(&r);
    if (err == nullptr) return std::string("(ok)");
    EXPECT_EQ(err->reason, "malformed");
    return err->detail;
  };
  EXPECT_EQ(detail(json::object()), "payload.status: missing");
  EXPECT_EQ(detail({{"status", ""}}), "payload.status: must not be empty");
  EXPECT_EQ(detail({{"status", 5}}), "payload.status: expected a string, got number");
  EXPECT_EQ(detail({{"status", nullptr}}), "payload.status: expected a string, got null");
  EXPECT_EQ(detail({{"status", "X"}, {"reason", 1}}),
            "payload.reason: expected a string, got number");
  EXPECT_EQ(detail({{"status", "X"}, {"actor", json::array()}}),
            "payload.actor: expected a string, got array");
  EXPECT_EQ(detail(json::array()), "payload: expected a JSON object, got array");
}

}  // namespace
}  // namespace oss::domain
