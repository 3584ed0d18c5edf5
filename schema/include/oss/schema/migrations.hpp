#pragma once
/// The versioned SQL files of schema/, embedded at build time.
#include <span>
#include <string_view>

namespace oss::schema {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

/// schema `outbox` (producer databases; also the service's own notification outbox).
std::span<const Migration> outbox_migrations();
/// schema `oss` (the service's database).
std::span<const Migration> service_migrations();

}  // namespace oss::schema
