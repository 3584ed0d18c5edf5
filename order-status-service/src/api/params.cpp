#include "api/params.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

#include "domain/state_machine.hpp"
#include "oss/core/duration.hpp"

namespace oss::api {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxCursor = 1024;
constexpr std::size_t kMaxReason = 2000;

const std::string* find(const Query& q, const char* name) {
  const auto it = q.find(name);
  return it == q.end() ? nullptr : &it->second;
}

std::string shown(const std::string& v) {
  // Parameters come back in details; cap them so a huge value does not echo back whole.
  return "'" + (v.size() > 100 ? v.substr(0, 100) + "…" : v) + "'";
}

bool parse_bool(const Query& q, const char* name, bool fallback) {
  const std::string* v = find(q, name);
  if (v == nullptr) return fallback;
  if (*v == "true") return true;
  if (*v == "false") return false;
  throw BadRequest(std::string(name) + ": expected true or false, got " + shown(*v));
}

std::size_t parse_limit(const Query& q) {
  const std::string* v = find(q, "limit");
  if (v == nullptr) return kDefaultLimit;
  std::size_t n = 0;
  const auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (v->empty() || ec != std::errc() || ptr != v->data() + v->size() || n < 1 || n > kMaxLimit)
    throw BadRequest("limit: expected an integer from 1 to " + std::to_string(kMaxLimit) + ", got " + shown(*v));
  return n;
}

std::optional<std::string> parse_cursor(const Query& q) {
  const std::string* v = find(q, "cursor");
  if (v == nullptr) return std::nullopt;
  if (v->empty() || v->size() > kMaxCursor)
    throw BadRequest("cursor: not a cursor from a previous page's next_cursor");
  return *v;
}

std::string known_statuses(const domain::Workflow& w) {
  std::string out;
  for (const auto& s : w.statuses()) out += (out.empty() ? "" : ", ") + s.name;
  return out;
}

std::string known_reasons() {
  using domain::DeadLetterReason;
  std::string out;
  for (auto r : {DeadLetterReason::malformed, DeadLetterReason::unknown_status, DeadLetterReason::source_not_allowed,
                 DeadLetterReason::invalid_transition, DeadLetterReason::retries_exhausted})
    out += (out.empty() ? "" : ", ") + std::string(domain::to_string(r));
  return out;
}

std::string checked_reason(const std::string& v, const std::string& where) {
  if (!domain::dead_letter_reason_from_string(v))
    throw BadRequest(where + ": unknown dead-letter reason " + shown(v) + " (one of: " + known_reasons() + ")");
  return v;
}

json parse_object(const std::string& body) {
  if (body.empty()) throw BadRequest("the request body must be a JSON object");
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) throw BadRequest("the request body is not valid JSON");
  if (!doc.is_object()) throw BadRequest(std::string("the request body must be a JSON object, got ") + doc.type_name());
  return doc;
}

void only_keys(const json& doc, std::initializer_list<const char*> allowed) {
  for (const auto& [key, value] : doc.items()) {
    (void)value;
    bool ok = false;
    for (const char* a : allowed) ok = ok || key == a;
    if (!ok) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      throw BadRequest("unknown field " + shown(key) + " (expected: " + list + ")");
    }
  }
}

std::string trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace

void only_parameters(const Query& q, std::initializer_list<const char*> allowed) {
  for (const auto& [name, value] : q) {
    (void)value;
    bool ok = false;
    for (const char* a : allowed) ok = ok || name == a;
    if (!ok) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      throw BadRequest("unknown parameter " + shown(name) + (list.empty() ? " (none accepted)" : " (accepted: " + list + ")"));
    }
  }
}

sla::OrderFilter order_filter(const Query& q, const domain::Workflow& workflow, core::TimePoint now) {
  only_parameters(q, {"status", "stuck", "older_than", "due_before", "limit", "cursor"});
  sla::OrderFilter f;
  f.at = now;
  if (const std::string* v = find(q, "status")) {
    if (!workflow.is_known(*v))
      throw BadRequest("status: unknown status " + shown(*v) + " in workflow '" + workflow.name() +
                       "' (known: " + known_statuses(workflow) + ")");
    f.status = *v;
  }
  f.stuck_only = parse_bool(q, "stuck", false);
  if (const std::string* v = find(q, "older_than")) {
    try {
      f.older_than = core::parse_duration(*v);
    } catch (const core::DurationError&) {
      throw BadRequest("older_than: expected a duration like 90s, 15m, 24h, 7d or PT1H, got " + shown(*v));
    }
  }
  if (const std::string* v = find(q, "due_before")) {
    try {
      f.due_before = core::parse_rfc3339(*v);
    } catch (const core::TimeFormatError&) {
      throw BadRequest("due_before: expected an RFC 3339 instant like 2026-11-22T18:00:00Z, got " + shown(*v));
    }
  }
  f.limit = parse_limit(q);
  f.cursor = parse_cursor(q);
  return f;
}

sla::EscalationFilter escalation_filter(const Query& q) {
  only_parameters(q, {"open", "level", "limit", "cursor"});
  sla::EscalationFilter f;
  f.open_only = parse_bool(q, "open", true);
  if (const std::string* v = find(q, "level")) {
    const bool ok = !v->empty() && v->size() <= 64 &&
                    v->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") ==
                        std::string::npos;
    if (!ok) throw BadRequest("level: expected a level name like warning or critical, got " + shown(*v));
    f.level = *v;
  }
  f.limit = parse_limit(q);
  f.cursor = parse_cursor(q);
  return f;
}

dlq::ListFilter dead_letter_filter(const Query& q) {
  only_parameters(q, {"reason", "include_replayed", "limit", "cursor"});
  dlq::ListFilter f;
  if (const std::string* v = find(q, "reason")) f.reason = checked_reason(*v, "reason");
  f.include_replayed = parse_bool(q, "include_replayed", false);
  f.limit = parse_limit(q);
  if (const std::string* v = find(q, "cursor")) {
    std::int64_t id = 0;
    const auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), id);
    if (v->empty() || ec != std::errc() || ptr != v->data() + v->size() || id < 0)
      throw BadRequest("cursor: not a cursor from a previous page's next_cursor, got " + shown(*v));
    f.after_id = id;
  }
  return f;
}

store::ParkedFilter parked_filter(const Query& q) {
  only_parameters(q, {"order_id", "limit"});
  store::ParkedFilter f;
  if (const std::string* v = find(q, "order_id")) {
    if (v->empty()) throw BadRequest("order_id: must not be empty");
    f.order_id = *v;
  }
  f.limit = parse_limit(q);
  return f;
}

Correction parse_correction(const std::string& body, const domain::Workflow& workflow) {
  const json doc = parse_object(body);
  only_keys(doc, {"status", "reason"});
  Correction c;
  const auto st = doc.find("status");
  if (st == doc.end() || !st->is_string() || st->get_ref<const std::string&>().empty())
    throw BadRequest("status: required, the target status as a string");
  c.status = st->get<std::string>();
  if (!workflow.is_known(c.status))
    throw BadRequest("status: unknown status " + shown(c.status) + " in workflow '" + workflow.name() +
                     "' (known: " + known_statuses(workflow) + ")");
  const auto re = doc.find("reason");
  if (re == doc.end() || !re->is_string() || trimmed(re->get_ref<const std::string&>()).empty())
    throw BadRequest("reason: required, a non-empty string saying why (it is kept in the order's history)");
  c.reason = trimmed(re->get<std::string>());
  if (c.reason.size() > kMaxReason)
    throw BadRequest("reason: at most " + std::to_string(kMaxReason) + " bytes");
  return c;
}

dlq::ReplaySelection parse_replay(const std::string& body) {
  const json doc = parse_object(body);
  only_keys(doc, {"event_ids", "reason"});
  const auto ids = doc.find("event_ids");
  const auto reason = doc.find("reason");
  if ((ids == doc.end()) == (reason == doc.end()))
    throw BadRequest("give exactly one of event_ids (a list of event ids) or reason (a dead-letter reason)");
  dlq::ReplaySelection s;
  if (ids != doc.end()) {
    if (!ids->is_array() || ids->empty() || ids->size() > kMaxReplayIds)
      throw BadRequest("event_ids: expected a non-empty array of at most " + std::to_string(kMaxReplayIds) +
                       " event ids");
    for (const auto& id : *ids) {
      if (!id.is_string() || id.get_ref<const std::string&>().empty() || id.get_ref<const std::string&>().size() > 200)
        throw BadRequest("event_ids: every element must be a non-empty string (an event id)");
      s.event_ids.push_back(id.get<std::string>());
    }
  } else {
    if (!reason->is_string()) throw BadRequest("reason: expected a string");
    s.reason = checked_reason(reason->get<std::string>(), "reason");
  }
  return s;
}

}  // namespace oss::api
