#include "table_codec.hpp"

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <type_traits>

namespace oss::amqp::detail {

amqp_bytes_t to_bytes(const std::string& s) noexcept {
  amqp_bytes_t b;
  b.len = s.size();
  // rabbitmq-c's amqp_bytes_t has a non-const pointer but only reads input buffers.
  b.bytes = const_cast<char*>(s.data());
  return b;
}

std::string to_string(amqp_bytes_t bytes) {
  if (bytes.bytes == nullptr || bytes.len == 0) return {};
  return {static_cast<const char*>(bytes.bytes), bytes.len};
}

EncodedTable::EncodedTable(const Table& source) {
  if (source.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw std::invalid_argument("amqp: table too large");
  }
  entries_.reserve(source.size());
  for (const auto& [key, value] : source) {
    amqp_table_entry_t entry{};
    entry.key = to_bytes(key);
    std::visit(
        [&entry](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>) {
            entry.value.kind = AMQP_FIELD_KIND_UTF8;
            entry.value.value.bytes = to_bytes(v);
          } else if constexpr (std::is_same_v<T, bool>) {
            entry.value.kind = AMQP_FIELD_KIND_BOOLEAN;
            entry.value.value.boolean = v ? 1 : 0;
          } else {
            entry.value.kind = AMQP_FIELD_KIND_I64;
            entry.value.value.i64 = v;
          }
        },
        value);
    entries_.push_back(entry);
  }
}

amqp_table_t EncodedTable::table() noexcept {
  amqp_table_t t;
  t.num_entries = static_cast<int>(entries_.size());
  t.entries = entries_.empty() ? nullptr : entries_.data();
  return t;
}

Table decode_table(const amqp_table_t& table) {
  Table out;
  if (table.num_entries <= 0 || table.entries == nullptr) return out;
  out.reserve(static_cast<std::size_t>(table.num_entries));
  for (int i = 0; i < table.num_entries; ++i) {
    const amqp_table_entry_t& e = table.entries[i];
    std::string key = to_string(e.key);
    const auto& v = e.value.value;
    switch (e.value.kind) {
      case AMQP_FIELD_KIND_UTF8:
      case AMQP_FIELD_KIND_BYTES:
        out.emplace_back(std::move(key), to_string(v.bytes));
        break;
      case AMQP_FIELD_KIND_BOOLEAN:
        out.emplace_back(std::move(key), v.boolean != 0);
        break;
      case AMQP_FIELD_KIND_I8:
        out.emplace_back(std::move(key), std::int64_t{v.i8});
        break;
      case AMQP_FIELD_KIND_U8:
        out.emplace_back(std::move(key), std::int64_t{v.u8});
        break;
      case AMQP_FIELD_KIND_I16:
        out.emplace_back(std::move(key), std::int64_t{v.i16});
        break;
      case AMQP_FIELD_KIND_U16:
        out.emplace_back(std::move(key), std::int64_t{v.u16});
        break;
      case AMQP_FIELD_KIND_I32:
        out.emplace_back(std::move(key), std::int64_t{v.i32});
        break;
      case AMQP_FIELD_KIND_U32:
        out.emplace_back(std::move(key), std::int64_t{v.u32});
        break;
      case AMQP_FIELD_KIND_I64:
        out.emplace_back(std::move(key), std::int64_t{v.i64});
        break;
      case AMQP_FIELD_KIND_U64:
      case AMQP_FIELD_KIND_TIMESTAMP:
        if (v.u64 <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
          out.emplace_back(std::move(key), static_cast<std::int64_t>(v.u64));
        }
        break;
      default:
        break;  // floats, decimals, nested tables and arrays, void: not representable
    }
  }
  return out;
}

}  // namespace oss::amqp::detail
