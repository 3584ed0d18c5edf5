#include "domain/workflow.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cerrno>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>
#include <system_error>

#include "oss/core/duration.hpp"

namespace oss::domain {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw WorkflowError(where + ": " + what);
}

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string at_index(const std::string& where, std::size_t i) {
  return where + "[" + std::to_string(i) + "]";
}

std::string member(const std::string& where, std::string_view key) {
  return where.empty() ? std::string(key) : where + "." + std::string(key);
}

void expect_object(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, std::string("expected an object, got ") + j.type_name());
}

void reject_unknown_keys(const json& obj, const std::string& where,
                         std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : obj.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string list;
    for (const auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    fail(member(where, key), "unknown key (expected one of: " + list + ")");
  }
}

const json* find(const json& obj, std::string_view key) {
  const auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string required_string(const json& obj, std::string_view key, const std::string& where) {
  const std::string loc = member(where, key);
  const json* v = find(obj, key);
  if (v == nullptr) fail(loc, "missing");
  if (!v->is_string()) fail(loc, std::string("expected a string, got ") + v->type_name());
  std::string s = v->get<std::string>();
  if (s.empty()) fail(loc, "must not be empty");
  return s;
}

bool optional_bool(const json& obj, std::string_view key, const std::string& where) {
  const json* v = find(obj, key);
  if (v == nullptr) return false;
  if (!v->is_boolean()) {
    fail(member(where, key), std::string("expected true or false, got ") + v->type_name());
  }
  return v->get<bool>();
}

milliseconds duration_at(const json& obj, std::string_view key, const std::string& where) {
  const std::string loc = member(where, key);
  const json* v = find(obj, key);
  if (v == nullptr) fail(loc, "missing");
  if (!v->is_string()) {
    fail(loc, std::string("expected a duration string such as \"2d\", got ") + v->type_name());
  }
  const auto text = v->get<std::string>();
  milliseconds d{};
  try {
    d = core::parse_duration(text);
  } catch (const core::DurationError& e) {
    fail(loc, e.what());
  }
  if (d.count() <= 0) fail(loc, "duration must be greater than zero, got " + in_quotes(text));
  return d;
}

bool valid_status_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

struct ParsedStatus {
  StatusDef def;
  std::string where;  // "statuses[i]"
};

StatusDef parse_status(const json& j, const std::string& where) {
  expect_object(j, where);
  reject_unknown_keys(
      j, where,
      {"name", "initial", "terminal", "sla", "escalations", "auto_transition", "calendar"});
  StatusDef s;
  s.name = required_string(j, "name", where);
  if (!valid_status_name(s.name)) {
    fail(member(where, "name"),
         "invalid status name " + in_quotes(s.name) + " (use letters, digits, '_', '-' or '.')");
  }
  s.initial = optional_bool(j, "initial", where);
  s.terminal = optional_bool(j, "terminal", where);
  if (s.initial && s.terminal) {
    fail(where, "status " + in_quotes(s.name) + " cannot be both initial and terminal");
  }
  if (find(j, "sla") != nullptr) {
    if (s.terminal) fail(member(where, "sla"), "a terminal status cannot have an SLA");
    s.sla = duration_at(j, "sla", where);
  }
  if (const json* esc = find(j, "escalations")) {
    const std::string loc = member(where, "escalations");
    if (s.terminal) fail(loc, "a terminal status cannot have escalations");
    if (!esc->is_array()) fail(loc, std::string("expected an array, got ") + esc->type_name());
    for (std::size_t i = 0; i < esc->size(); ++i) {
      const std::string eloc = at_index(loc, i);
      const json& e = (*esc)[i];
      expect_object(e, eloc);
      reject_unknown_keys(e, eloc, {"level", "after"});
      Escalation level{required_string(e, "level", eloc), duration_at(e, "after", eloc)};
      for (std::size_t k = 0; k < s.escalations.size(); ++k) {
        if (s.escalations[k].level == level.level) {
          fail(member(eloc, "level"), "duplicate escalation level " + in_quotes(level.level) +
                                          " (already at " + at_index(loc, k) + ")");
        }
      }
      if (!s.escalations.empty() && level.after <= s.escalations.back().after) {
        fail(member(eloc, "after"), "escalation levels must be increasing in 'after': " +
                                        core::format_duration(level.after) + " is not later than " +
                                        core::format_duration(s.escalations.back().after) + " of " +
                                        at_index(loc, s.escalations.size() - 1));
      }
      s.escalations.push_back(std::move(level));
    }
  }
  if (const json* at = find(j, "auto_transition")) {
    const std::string loc = member(where, "auto_transition");
    if (s.terminal) fail(loc, "a terminal status cannot have an auto_transition");
    expect_object(*at, loc);
    reject_unknown_keys(*at, loc, {"after", "to", "reason"});
    AutoTransition a;
    a.after = duration_at(*at, "after", loc);
    a.to = required_string(*at, "to", loc);
    a.reason = required_string(*at, "reason", loc);
    s.auto_transition = std::move(a);
  }
  if (find(j, "calendar") != nullptr) s.calendar = required_string(j, "calendar", where);
  return s;
}


// "HH:MM" → minutes since midnight; "24:00" allowed only as an end.
std::optional<int> parse_hhmm(std::string_view t, bool is_end) {
  if (t.size() != 5 || t[2] != ':') return std::nullopt;
  for (std::size_t i : {0u, 1u, 3u, 4u})
    if (t[i] < '0' || t[i] > '9') return std::nullopt;
  const int h = (t[0] - '0') * 10 + (t[1] - '0');
  const int m = (t[3] - '0') * 10 + (t[4] - '0');
  if (m > 59) return std::nullopt;
  if (h == 24 && m == 0 && is_end) return 24 * 60;
  if (h > 23) return std::nullopt;
  return h * 60 + m;
}

std::optional<std::int32_t> parse_local_date(std::string_view t) {
  if (t.size() != 10 || t[4] != '-' || t[7] != '-') return std::nullopt;
  for (std::size_t i = 0; i < t.size(); ++i)
    if (i != 4 && i != 7 && (t[i] < '0' || t[i] > '9')) return std::nullopt;
  const auto num = [&](std::size_t pos, std::size_t len) {
    int v = 0;
    for (std::size_t i = pos; i < pos + len; ++i) v = v * 10 + (t[i] - '0');
    return v;
  };
  const std::chrono::year_month_day ymd{std::chrono::year{num(0, 4)},
                                        std::chrono::month{static_cast<unsigned>(num(5, 2))},
                                        std::chrono::day{static_cast<unsigned>(num(8, 2))}};
  if (!ymd.ok()) return std::nullopt;
  return static_cast<std::int32_t>(std::chrono::sys_days(ymd).time_since_epoch().count());
}

bool valid_time_zone_name(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '+' || c == '/';
  });
}

CalendarDef parse_calendar(const std::string& name, const json& j, const std::string& where) {
  expect_object(j, where);
  reject_unknown_keys(j, where, {"time_zone", "working_hours", "holidays"});
  CalendarDef c;
  c.name = name;
  c.time_zone = required_string(j, "time_zone", where);
  if (!valid_time_zone_name(c.time_zone))
    fail(member(where, "time_zone"), "not an IANA time zone name: " + in_quotes(c.time_zone));
  const std::string hloc = member(where, "working_hours");
  const json* hours = find(j, "working_hours");
  if (hours == nullptr) fail(hloc, "missing");
  expect_object(*hours, hloc);
  static constexpr std::array<std::string_view, 7> kDays{"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
  reject_unknown_keys(*hours, hloc, {"mon", "tue", "wed", "thu", "fri", "sat", "sun"});
  bool any = false;
  for (std::size_t d = 0; d < kDays.size(); ++d) {
    const json* day = find(*hours, kDays[d]);
    if (day == nullptr) continue;
    const std::string dloc = member(hloc, kDays[d]);
    if (!day->is_array()) fail(dloc, std::string("expected an array of \"HH:MM-HH:MM\", got ") + day->type_name());
    for (std::size_t i = 0; i < day->size(); ++i) {
      const std::string iloc = at_index(dloc, i);
      const json& v = (*day)[i];
      if (!v.is_string()) fail(iloc, std::string("expected \"HH:MM-HH:MM\", got ") + v.type_name());
      const std::string text = v.get<std::string>();
      const auto dash = text.find('-');
      const auto a = dash == std::string::npos ? std::nullopt : parse_hhmm(std::string_view(text).substr(0, dash), false);
      const auto b = dash == std::string::npos ? std::nullopt : parse_hhmm(std::string_view(text).substr(dash + 1), true);
      if (!a || !b || *a >= *b) fail(iloc, "expected \"HH:MM-HH:MM\" with start before end, got " + in_quotes(text));
      if (!c.week[d].empty() && c.week[d].back().end_minute > *a)
        fail(iloc, "intervals must be increasing and must not overlap");
      c.week[d].push_back({*a, *b});
      any = true;
    }
  }
  if (!any) fail(hloc, "no working interval in the whole week");
  if (const json* hol = find(j, "holidays")) {
    const std::string loc = member(where, "holidays");
    if (!hol->is_array()) fail(loc, std::string("expected an array of \"YYYY-MM-DD\", got ") + hol->type_name());
    for (std::size_t i = 0; i < hol->size(); ++i) {
      const json& v = (*hol)[i];
      const auto day = v.is_string() ? parse_local_date(v.get<std::string>()) : std::nullopt;
      if (!day) fail(at_index(loc, i), "expected a date \"YYYY-MM-DD\", got " + v.dump());
      c.holidays.push_back(*day);
    }
    std::sort(c.holidays.begin(), c.holidays.end());
    c.holidays.erase(std::unique(c.holidays.begin(), c.holidays.end()), c.holidays.end());
  }
  return c;
}

}  // namespace

Workflow parse_workflow(const json& doc) {
  if (!doc.is_object())
    fail("workflow", std::string("expected a JSON object, got ") + doc.type_name());
  reject_unknown_keys(doc, "", {"name", "statuses", "transitions", "calendars", "source_silence"});

  Workflow wf;
  wf.name_ = required_string(doc, "name", "");

  // --- statuses
  const json* statuses = find(doc, "statuses");
  if (statuses == nullptr) fail("statuses", "missing");
  if (!statuses->is_array() || statuses->empty()) {
    fail("statuses", std::string("expected a non-empty array, got ") +
                         (statuses->is_array() ? "an empty array" : statuses->type_name()));
  }
  for (std::size_t i = 0; i < statuses->size(); ++i) {
    const std::string where = at_index("statuses", i);
    StatusDef s = parse_status((*statuses)[i], where);
    if (const auto it = wf.index_.find(s.name); it != wf.index_.end()) {
      fail(member(where, "name"), "duplicate status " + in_quotes(s.name) + " (first defined at " +
                                      at_index("statuses", it->second) + ")");
    }
    wf.index_.emplace(s.name, i);
    wf.statuses_.push_back(std::move(s));
  }
  const std::size_t n = wf.statuses_.size();
  if (std::none_of(wf.statuses_.begin(), wf.statuses_.end(),
                   [](const StatusDef& s) { return s.initial; })) {
    fail("statuses", "no status is marked \"initial\": true, so no order could ever be created");
  }

  // --- transitions
  const json* transitions = find(doc, "transitions");
  if (transitions == nullptr) fail("transitions", "missing");
  if (!transitions->is_array()) {
    fail("transitions", std::string("expected an array, got ") + transitions->type_name());
  }
  wf.sources_.assign((n + 1) * n, {});
  std::map<std::pair<std::size_t, std::size_t>, std::size_t> explicit_at;  // (row,to) -> index
  for (std::size_t i = 0; i < transitions->size(); ++i) {
    const std::string where = at_index("transitions", i);
    const json& t = (*transitions)[i];
    expect_object(t, where);
    reject_unknown_keys(t, where, {"from", "to", "sources"});
    TransitionDef def;

    const json* from = find(t, "from");
    const std::string from_loc = member(where, "from");
    if (from == nullptr) {
      fail(from_loc, "missing (use null for order creation or \"*\" for any non-terminal status)");
    }
    if (from->is_string()) {
      def.from = from->get<std::string>();
      if (*def.from != kAnyStatus) {
        const auto fi = wf.index_of(*def.from);
        if (!fi) fail(from_loc, "unknown status " + in_quotes(*def.from));
        if (wf.statuses_[*fi].terminal) {
          fail(from_loc,
               "terminal status " + in_quotes(*def.from) + " cannot have outgoing transitions");
        }
      }
    } else if (!from->is_null()) {
      fail(from_loc,
           std::string("expected a status name, \"*\" or null, got ") + from->type_name());
    }

    def.to = required_string(t, "to", where);
    const auto ti = wf.index_of(def.to);
    if (!ti) fail(member(where, "to"), "unknown status " + in_quotes(def.to));
    if (!def.from && !wf.statuses_[*ti].initial) {
      fail(member(where, "to"), "creation (\"from\": null) must lead to an initial status; " +
                                    in_quotes(def.to) + " is not marked \"initial\": true");
    }
    if (def.from && *def.from == def.to) {
      fail(where, "a status cannot transition to itself (" + def.to + " → " + def.to + ")");
    }

    const json* sources = find(t, "sources");
    const std::string src_loc = member(where, "sources");
    if (sources == nullptr) fail(src_loc, "missing");
    if (!sources->is_array()) {
      fail(src_loc, std::string("expected an array of source names, got ") + sources->type_name());
    }
    if (sources->empty()) {
      fail(src_loc,
           "must list at least one source (e.g. [\"crm\"]); nobody could make this transition");
    }
    for (std::size_t k = 0; k < sources->size(); ++k) {
      const json& src = (*sources)[k];
      const std::string loc = at_index(src_loc, k);
      if (!src.is_string() || src.get_ref<const std::string&>().empty()) {
        fail(loc, std::string("expected a non-empty source name, got ") +
                      (src.is_string() ? "an empty string" : src.type_name()));
      }
      const auto& name = src.get_ref<const std::string&>();
      if (std::find(def.sources.begin(), def.sources.end(), name) != def.sources.end()) {
        fail(loc, "duplicate source " + in_quotes(name));
      }
      def.sources.push_back(name);
    }

    // Expand into the (from-row, to) matrix.
    std::vector<std::size_t> rows;
    if (!def.from) {
      rows.push_back(n);
    } else if (*def.from == kAnyStatus) {
      for (std::size_t r = 0; r < n; ++r) {
        if (!wf.statuses_[r].terminal && r != *ti) rows.push_back(r);
      }
    } else {
      rows.push_back(*wf.index_of(*def.from));
      const auto key = std::make_pair(rows.front(), *ti);
      if (const auto it = explicit_at.find(key); it != explicit_at.end()) {
        fail(where, "duplicate transition " + *def.from + " → " + def.to + " (already at " +
                        at_index("transitions", it->second) + ")");
      }
      explicit_at.emplace(key, i);
    }
    if (!def.from) {
      const auto key = std::make_pair(n, *ti);
      if (const auto it = explicit_at.find(key); it != explicit_at.end()) {
        fail(where, "duplicate creation transition to " + def.to + " (already at " +
                        at_index("transitions", it->second) + ")");
      }
      explicit_at.emplace(key, i);
    }
    for (const std::size_t r : rows) {
      auto& cell = wf.sources_[wf.cell(r, *ti)];
      for (const auto& s : def.sources) {
        if (std::find(cell.begin(), cell.end(), s) == cell.end()) cell.push_back(s);
      }
      std::sort(cell.begin(), cell.end());
    }
    wf.transitions_.push_back(std::move(def));
  }

  // --- calendars (reserved)
  if (const json* cal = find(doc, "calendars")) {
    if (!cal->is_object()) {
      fail("calendars", std::string("expected an object, got ") + cal->type_name());
    }
    wf.calendars_ = *cal;
    for (const auto& [name, value] : cal->items()) {
      if (!valid_status_name(name)) fail(member("calendars", name), "invalid calendar name");
      wf.calendar_defs_.push_back(parse_calendar(name, value, member("calendars", name)));
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    const auto& c = wf.statuses_[i].calendar;
    if (c && wf.calendar(*c) == nullptr)
      fail(member(at_index("statuses", i), "calendar"), "unknown calendar " + in_quotes(*c));
  }
  if (const json* silence = find(doc, "source_silence")) {
    if (!silence->is_array())
      fail("source_silence", std::string("expected an array, got ") + silence->type_name());
    for (std::size_t i = 0; i < silence->size(); ++i) {
      const std::string loc = at_index("source_silence", i);
      const json& r = (*silence)[i];
      expect_object(r, loc);
      reject_unknown_keys(r, loc, {"source", "window", "calendar", "level"});
      SourceSilenceRule rule;
      rule.source = required_string(r, "source", loc);
      rule.window = duration_at(r, "window", loc);
      if (find(r, "calendar") != nullptr) {
        rule.calendar = required_string(r, "calendar", loc);
        if (wf.calendar(*rule.calendar) == nullptr)
          fail(member(loc, "calendar"), "unknown calendar " + in_quotes(*rule.calendar));
      }
      if (find(r, "level") != nullptr) rule.level = required_string(r, "level", loc);
      for (const auto& other : wf.source_silence_)
        if (other.source == rule.source) fail(member(loc, "source"), "a second rule for source " + in_quotes(rule.source));
      wf.source_silence_.push_back(std::move(rule));
    }
  }

  // --- whole-workflow checks
  for (std::size_t i = 0; i < n; ++i) {
    const StatusDef& s = wf.statuses_[i];
    const std::string where = at_index("statuses", i);
    if (s.initial && wf.sources_[wf.cell(n, i)].empty()) {
      fail(where, "initial status " + in_quotes(s.name) +
                      " has no creation transition ({\"from\": null, \"to\": \"" + s.name +
                      "\", \"sources\": [...]})");
    }
    bool has_exit = false;
    for (std::size_t k = 0; k < n; ++k) has_exit = has_exit || !wf.sources_[wf.cell(i, k)].empty();
    if (!s.terminal && !has_exit) {
      fail(where, "status " + in_quotes(s.name) +
                      " is not terminal but has no outgoing transitions (add one or mark it "
                      "\"terminal\": true)");
    }
    if (s.auto_transition) {
      const std::string loc = member(member(where, "auto_transition"), "to");
      const auto to = wf.index_of(s.auto_transition->to);
      if (!to) fail(loc, "unknown status " + in_quotes(s.auto_transition->to));
      if (wf.sources_[wf.cell(i, *to)].empty()) {
        fail(loc, s.name + " → " + s.auto_transition->to +
                      " is not an allowed transition; add it to \"transitions\" (the source "
                      "\"sla\" is implied for automatic transitions)");
      }
    }
  }

  // Transitive closure (Floyd–Warshall); workflows have a handful of statuses.
  wf.reachable_.assign(n * n, 0);
  for (std::size_t a = 0; a < n; ++a) {
    for (std::size_t b = 0; b < n; ++b)
      wf.reachable_[a * n + b] = static_cast<char>(!wf.sources_[wf.cell(a, b)].empty());
  }
  for (std::size_t k = 0; k < n; ++k) {
    for (std::size_t a = 0; a < n; ++a) {
      if (!wf.reachable_[a * n + k]) continue;
      for (std::size_t b = 0; b < n; ++b) {
        if (wf.reachable_[k * n + b]) wf.reachable_[a * n + b] = 1;
      }
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    const bool from_creation =
        std::any_of(wf.statuses_.begin(), wf.statuses_.end(), [&](const StatusDef& s) {
          const std::size_t k = *wf.index_of(s.name);
          return s.initial && (k == i || wf.reachable_[k * n + i]);
        });
    if (!from_creation) {
      fail(at_index("statuses", i), "status " + in_quotes(wf.statuses_[i].name) +
                                        " cannot be reached from any initial status");
    }
  }
  return wf;
}

std::optional<std::size_t> Workflow::index_of(std::string_view name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

const StatusDef* Workflow::status(std::string_view name) const {
  const auto i = index_of(name);
  return i ? &statuses_[*i] : nullptr;
}

const CalendarDef* Workflow::calendar(std::string_view name) const {
  for (const auto& c : calendar_defs_)
    if (c.name == name) return &c;
  return nullptr;
}

bool Workflow::is_known(std::string_view name) const { return index_of(name).has_value(); }

bool Workflow::is_terminal(std::string_view name) const {
  const StatusDef* s = status(name);
  return s != nullptr && s->terminal;
}

bool Workflow::is_initial(std::string_view name) const {
  const StatusDef* s = status(name);
  return s != nullptr && s->initial;
}

bool Workflow::allows(const std::optional<std::string>& from, std::string_view to) const {
  const auto t = index_of(to);
  if (!t) return false;
  std::size_t row = statuses_.size();
  if (from) {
    const auto f = index_of(*from);
    if (!f) return false;
    row = *f;
  }
  return !sources_[cell(row, *t)].empty();
}

bool Workflow::source_may(const std::optional<std::string>& from, std::string_view to,
                          std::string_view source) const {
  const auto t = index_of(to);
  if (!t) return false;
  std::size_t row = statuses_.size();
  if (from) {
    const auto f = index_of(*from);
    if (!f) return false;
    row = *f;
  }
  const auto& allowed = sources_[cell(row, *t)];
  if (allowed.empty()) return false;
  if (std::binary_search(allowed.begin(), allowed.end(), source, std::less<>{})) return true;
  if (source == kSlaSource && row < statuses_.size()) {
    const auto& at = statuses_[row].auto_transition;
    return at && at->to == to;
  }
  return false;
}

bool Workflow::reachable(std::string_view from, std::string_view to) const {
  const auto f = index_of(from);
  const auto t = index_of(to);
  if (!f || !t) return false;
  return reachable_[*f * statuses_.size() + *t] != 0;
}

nlohmann::json Workflow::to_json() const {
  json out = json::object();
  out["name"] = name_;
  json statuses = json::array();
  for (const auto& s : statuses_) {
    json j = json::object();
    j["name"] = s.name;
    if (s.initial) j["initial"] = true;
    if (s.terminal) j["terminal"] = true;
    if (s.sla) j["sla"] = core::format_duration(*s.sla);
    if (!s.escalations.empty()) {
      json esc = json::array();
      for (const auto& e : s.escalations) {
        esc.push_back({{"level", e.level}, {"after", core::format_duration(e.after)}});
      }
      j["escalations"] = std::move(esc);
    }
    if (s.auto_transition) {
      j["auto_transition"] = {{"after", core::format_duration(s.auto_transition->after)},
                              {"to", s.auto_transition->to},
                              {"reason", s.auto_transition->reason}};
    }
    if (s.calendar) j["calendar"] = *s.calendar;
    statuses.push_back(std::move(j));
  }
  out["statuses"] = std::move(statuses);
  json transitions = json::array();
  for (const auto& t : transitions_) {
    transitions.push_back(
        {{"from", t.from ? json(*t.from) : json(nullptr)}, {"to", t.to}, {"sources", t.sources}});
  }
  out["transitions"] = std::move(transitions);
  if (!calendars_.empty()) out["calendars"] = calendars_;
  if (!source_silence_.empty()) {
    json rules = json::array();
    for (const auto& r : source_silence_) {
      json j = {{"source", r.source}, {"window", core::format_duration(r.window)}, {"level", r.level}};
      if (r.calendar) j["calendar"] = *r.calendar;
      rules.push_back(std::move(j));
    }
    out["source_silence"] = std::move(rules);
  }
  return out;
}

namespace {

// Rejects duplicate keys, which nlohmann::json would silently collapse to the last one
// (a second "sla" in a status would quietly win). Tracks the JSON location for the message.
class DuplicateKeyGuard {
 public:
  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        stack_.push_back(Frame{event == json::parse_event_t::object_start, {}, {}, 0});
        break;
      case json::parse_event_t::key: {
        Frame& top = stack_.back();
        top.key = parsed.get<std::string>();
        if (!top.keys.insert(top.key).second) fail(path(), "duplicate key");
        break;
      }
      case json::parse_event_t::value:
        if (!stack_.empty() && !stack_.back().object) ++stack_.back().index;
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        stack_.pop_back();
        if (!stack_.empty() && !stack_.back().object) ++stack_.back().index;
        break;
    }
    return true;
  }

 private:
  struct Frame {
    bool object;
    std::set<std::string> keys;
    std::string key;
    std::size_t index;
  };

  std::string path() const {
    std::string out;
    for (const auto& f : stack_) {
      out = f.object ? member(out, f.key) : at_index(out, f.index);
    }
    return out;
  }

  std::vector<Frame> stack_;
};

}  // namespace

Workflow parse_workflow_text(std::string_view text) {
  json doc;
  try {
    DuplicateKeyGuard guard;
    doc = json::parse(text.begin(), text.end(),
                      [&guard](int depth, json::parse_event_t event, json& parsed) {
                        return guard(depth, event, parsed);
                      });
  } catch (const json::exception& e) {
    throw WorkflowError(std::string("not valid JSON: ") + e.what());
  }
  return parse_workflow(doc);
}

Workflow load_workflow_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw WorkflowError("workflow file '" + path + "': cannot open: " + std::generic_category().message(errno));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) {
    throw WorkflowError("workflow file '" + path + "': cannot read: " + std::generic_category().message(errno));
  }
  try {
    return parse_workflow_text(buf.str());
  } catch (const WorkflowError& e) {
    throw WorkflowError("workflow file '" + path + "': " + e.what());
  }
}

}  // namespace oss::domain
