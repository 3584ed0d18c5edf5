// Internal conversion between oss::amqp::Table and rabbitmq-c tables.
#include "table_codec.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace oss::amqp::detail {
namespace {

TEST(TableCodec, RoundTripKeepsOrderKindsAndValues) {
  const Table in = {{"x-queue-type", std::string("quorum")},
                    {"x-message-ttl", std::int64_t{5000}},
                    {"x-single-active-consumer", true},
                    {"x-dead-letter-exchange", std::string("")},
                    {"negative", std::int64_t{-7}},
                    {"max", std::numeric_limits<std::int64_t>::max()},
                    {"off", false}};
  EncodedTable encoded(in);
  const amqp_table_t t = encoded.table();
  ASSERT_EQ(t.num_entries, 7);
  EXPECT_EQ(t.entries[0].value.kind, AMQP_FIELD_KIND_UTF8);
  EXPECT_EQ(t.entries[1].value.kind, AMQP_FIELD_KIND_I64);
  EXPECT_EQ(t.entries[2].value.kind, AMQP_FIELD_KIND_BOOLEAN);
  EXPECT_EQ(decode_table(t), in);
}

TEST(TableCodec, EmptyTable) {
  EncodedTable encoded(Table{});
  const amqp_table_t t = encoded.table();
  EXPECT_EQ(t.num_entries, 0);
  EXPECT_TRUE(decode_table(t).empty());
  EXPECT_TRUE(decode_table(amqp_empty_table).empty());
}

TEST(TableCodec, DecodeWidensIntegersAndSkipsUnrepresentableKinds) {
  const std::string k[] = {"i8", "u16", "u32", "ts", "f64", "big"};
  amqp_table_entry_t e[6]{};
  for (int i = 0; i < 6; ++i) e[i].key = to_bytes(k[i]);
  e[0].value.kind = AMQP_FIELD_KIND_I8;
  e[0].value.value.i8 = -3;
  e[1].value.kind = AMQP_FIELD_KIND_U16;
  e[1].value.value.u16 = 65535;
  e[2].value.kind = AMQP_FIELD_KIND_U32;
  e[2].value.value.u32 = 4000000000U;
  e[3].value.kind = AMQP_FIELD_KIND_TIMESTAMP;
  e[3].value.value.u64 = 1700000000U;
  e[4].value.kind = AMQP_FIELD_KIND_F64;
  e[4].value.value.f64 = 1.5;
  e[5].value.kind = AMQP_FIELD_KIND_U64;
  e[5].value.value.u64 = std::numeric_limits<std::uint64_t>::max();
  amqp_table_t t;
  t.num_entries = 6;
  t.entries = e;
  const Table expected = {{"i8", std::int64_t{-3}},
                          {"u16", std::int64_t{65535}},
                          {"u32", std::int64_t{4000000000}},
                          {"ts", std::int64_t{1700000000}}};
  EXPECT_EQ(decode_table(t), expected);
}

TEST(TableCodec, BytesHelpers) {
  const std::string s("a\0b", 3);
  const amqp_bytes_t b = to_bytes(s);
  EXPECT_EQ(b.len, 3U);
  EXPECT_EQ(to_string(b), s);
  EXPECT_EQ(to_string(amqp_empty_bytes), "");
}

}  // namespace
}  // namespace oss::amqp::detail
