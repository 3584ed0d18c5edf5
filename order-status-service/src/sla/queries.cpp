#include "sla/queries.hpp"

#include <algorithm>
#include <stdexcept>

#include "sla/sql_time.hpp"

namespace oss::sla {
namespace {

using sqltime::epoch_us;
using sqltime::from_micros;
using sqltime::ts_param;

// Cursors are opaque to clients: base64url of "<micros>|<id>" (micros empty for id order).
constexpr const char* kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64_encode(const std::string& in) {
  std::string out;
  unsigned val = 0;
  int bits = -6;
  for (char ch : in) {
    val = (val << 8) + static_cast<unsigned char>(ch);
    bits += 8;
    while (bits >= 0) {
      out.push_back(kB64[(val >> static_cast<unsigned>(bits)) & 0x3Fu]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(kB64[((val << 8) >> static_cast<unsigned>(bits + 8)) & 0x3Fu]);
  return out;
}

std::string b64_decode(const std::string& in) {
  std::string out;
  unsigned val = 0;
  int bits = -8;
  for (char c : in) {
    const char* p = std::char_traits<char>::find(kB64, 64, c);
    if (p == nullptr) throw std::invalid_argument("malformed cursor");
    val = (val << 6) + static_cast<unsigned>(p - kB64);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> static_cast<unsigned>(bits)) & 0xFFu));
      bits -= 8;
    }
  }
  return out;
}

struct Cursor {
  std::optional<std::int64_t> due_us;
  std::string id;
};

Cursor decode_cursor(const std::string& text, bool by_due) {
  const std::string raw = b64_decode(text);
  const auto bar = raw.find('|');
  if (bar == std::string::npos || bar + 1 >= raw.size()) throw std::invalid_argument("malformed cursor");
  Cursor c;
  c.id = raw.substr(bar + 1);
  const std::string due = raw.substr(0, bar);
  if (by_due != !due.empty()) throw std::invalid_argument("cursor does not belong to this query");
  if (by_due) {
    std::size_t used = 0;
    try {
      c.due_us = std::stoll(due, &used);
    } catch (const std::exception&) {
      throw std::invalid_argument("malformed cursor");
    }
    if (used != due.size()) throw std::invalid_argument("malformed cursor");
  }
  return c;
}

std::string encode_cursor(const std::optional<std::int64_t>& due_us, const std::string& id) {
  return b64_encode((due_us ? std::to_string(*due_us) : std::string()) + "|" + id);
}

class Params {
 public:
  std::string add(std::string v) {
    values_.push_back(std::move(v));
    return "$" + std::to_string(values_.size());
  }
  std::string add_time(core::TimePoint t) {
    values_.push_back(sqltime::us(t));
    return ts_param(static_cast<int>(values_.size()));
  }
  const std::vector<std::string>& values() const { return values_; }

 private:
  std::vector<std::string> values_;
};

}  // namespace

OrderPage list_orders(pqxx::connection& conn, const OrderFilter& filter) {
  const bool by_due = filter.stuck_only || filter.due_before.has_value();
  const std::size_t limit = std::clamp<std::size_t>(filter.limit, 1, 1000);
  Params p;
  std::string where = "TRUE";
  if (filter.status) where += " AND status = " + p.add(*filter.status);
  if (filter.stuck_only) where += " AND sla_due_at <= " + p.add_time(filter.at);
  if (filter.due_before) where += " AND sla_due_at < " + p.add_time(*filter.due_before);
  if (filter.older_than)
    where += " AND status_entered_at <= " +
             p.add_time(filter.at - std::chrono::duration_cast<std::chrono::microseconds>(*filter.older_than));
  if (filter.cursor) {
    const Cursor c = decode_cursor(*filter.cursor, by_due);
    if (by_due) {
      where += " AND (sla_due_at, order_id) > (" + p.add_time(from_micros(*c.due_us)) + ", " + p.add(c.id) + ")";
    } else {
      where += " AND order_id > " + p.add(c.id);
    }
  }
  const std::string order_by = by_due ? "sla_due_at, order_id" : "order_id";
  const std::string sql = "SELECT order_id, status, " + epoch_us("status_entered_at") + ", " + epoch_us("sla_due_at") +
                          ", version, " + epoch_us("updated_at") + " FROM oss.orders WHERE " + where +
                          " ORDER BY " + order_by + " LIMIT " + std::to_string(limit + 1);
  pqxx::read_transaction tx(conn);
  const auto rows = tx.exec_params(sql, pqxx::prepare::make_dynamic_params(p.values()));
  OrderPage page;
  for (const auto& row : rows) {
    if (page.orders.size() == limit) {
      const auto& last = page.orders.back();
      page.next_cursor = encode_cursor(
          by_due ? std::optional<std::int64_t>(sqltime::micros(*last.sla_due_at)) : std::nullopt, last.order_id);
      break;
    }
    store::OrderView v;
    v.order_id = row[0].as<std::string>();
    v.status = row[1].as<std::string>();
    v.status_entered_at = from_micros(row[2].as<std::int64_t>());
    if (!row[3].is_null()) v.sla_due_at = from_micros(row[3].as<std::int64_t>());
    v.version = row[4].as<std::int64_t>();
    v.updated_at = from_micros(row[5].as<std::int64_t>());
    v.breached = v.sla_due_at && *v.sla_due_at <= filter.at;
    page.orders.push_back(std::move(v));
  }
  return page;
}

namespace {
// Columns: id, kind, subject, status, level, due_at, raised_at, resolved_at (epoch µs), resolution.
EscalationView escalation_of(const pqxx::row& row) {
  EscalationView e;
  e.id = row[0].as<std::int64_t>();
  e.kind = row[1].as<std::string>();
  e.subject = row[2].as<std::string>();
  e.status = row[3].is_null() ? std::string() : row[3].as<std::string>();
  e.level = row[4].as<std::string>();
  e.due_at = from_micros(row[5].as<std::int64_t>());
  e.raised_at = from_micros(row[6].as<std::int64_t>());
  if (!row[7].is_null()) e.resolved_at = from_micros(row[7].as<std::int64_t>());
  e.resolution = row[8].is_null() ? std::string() : row[8].as<std::string>();
  return e;
}
}  // namespace

EscalationChanges escalation_changes(pqxx::connection& conn, std::int64_t after_id, core::TimePoint resolved_after) {
  const std::string columns = "id, kind, subject, status, level, " + epoch_us("due_at") + ", " + epoch_us("raised_at") +
                              ", " + epoch_us("resolved_at") + ", resolution";
  pqxx::read_transaction tx(conn);
  EscalationChanges out;
  for (const auto& row : tx.exec_params("SELECT " + columns + " FROM oss.escalations WHERE id > $1 ORDER BY id LIMIT 1000",
                                        after_id))
    out.raised.push_back(escalation_of(row));
  for (const auto& row : tx.exec_params(
           "SELECT " + columns + " FROM oss.escalations WHERE resolved_at >= to_timestamp($1::double precision / 1000000) "
           "ORDER BY resolved_at LIMIT 1000",
           resolved_after.time_since_epoch().count()))
    out.resolved.push_back(escalation_of(row));
  return out;
}

EscalationPage list_escalations(pqxx::connection& conn, const EscalationFilter& filter) {
  const std::size_t limit = std::clamp<std::size_t>(filter.limit, 1, 1000);
  Params p;
  std::string where = "TRUE";
  if (filter.open_only) where += " AND resolved_at IS NULL";
  if (filter.level) where += " AND level = " + p.add(*filter.level);
  if (filter.cursor) {
    const std::string raw = b64_decode(*filter.cursor);
    std::size_t used = 0;
    std::int64_t id = 0;
    try {
      id = std::stoll(raw, &used);
    } catch (const std::exception&) {
      throw std::invalid_argument("malformed cursor");
    }
    if (used != raw.size() || raw.empty()) throw std::invalid_argument("malformed cursor");
    where += " AND id < " + p.add(std::to_string(id)) + "::bigint";
  }
  const std::string sql = "SELECT id, kind, subject, status, level, " + epoch_us("due_at") + ", " +
                          epoch_us("raised_at") + ", " + epoch_us("resolved_at") +
                          ", resolution FROM oss.escalations WHERE " + where + " ORDER BY id DESC LIMIT " +
                          std::to_string(limit + 1);
  pqxx::read_transaction tx(conn);
  const auto rows = tx.exec_params(sql, pqxx::prepare::make_dynamic_params(p.values()));
  EscalationPage page;
  for (const auto& row : rows) {
    if (page.escalations.size() == limit) {
      page.next_cursor = b64_encode(std::to_string(page.escalations.back().id));
      break;
    }
    page.escalations.push_back(escalation_of(row));
  }
  return page;
}

nlohmann::json to_json(const EscalationView& e) {
  return {{"id", e.id},
          {"kind", e.kind},
          {"subject", e.subject},
          {"status", e.status},
          {"level", e.level},
          {"due_at", core::format_rfc3339(e.due_at)},
          {"raised_at", core::format_rfc3339(e.raised_at)},
          {"resolved_at", e.resolved_at ? nlohmann::json(core::format_rfc3339(*e.resolved_at)) : nlohmann::json(nullptr)},
          {"resolution", e.resolution}};
}

}  // namespace oss::sla
