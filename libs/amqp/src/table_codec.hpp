#pragma once

// Internal: conversion between oss::amqp::Table and rabbitmq-c's amqp_table_t.

#include <amqp.h>

#include <vector>

#include "oss/amqp/message.hpp"

namespace oss::amqp::detail {

/// An amqp_table_t view of a Table. It points into `source`, which must outlive it and stay
/// unchanged; rabbitmq-c only reads it while encoding a frame.
class EncodedTable {
 public:
  explicit EncodedTable(const Table& source);
  ~EncodedTable() = default;
  EncodedTable(const EncodedTable&) = delete;
  EncodedTable& operator=(const EncodedTable&) = delete;
  amqp_table_t table() noexcept;

 private:
  std::vector<amqp_table_entry_t> entries_;
};

/// Copies a received table. Integer kinds become int64; kinds a Table cannot hold (floats,
/// decimals, nested tables, arrays, void, u64 above INT64_MAX) are skipped.
Table decode_table(const amqp_table_t& table);

/// Copies amqp_bytes_t into a std::string (empty for a null pointer).
std::string to_string(amqp_bytes_t bytes);

/// A non-owning amqp_bytes_t over a string; rabbitmq-c treats it as read-only input.
amqp_bytes_t to_bytes(const std::string& s) noexcept;

}  // namespace oss::amqp::detail
