#include "sla/calendar.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace oss::sla {
namespace {

constexpr std::int64_t kUsPerSecond = 1'000'000;
constexpr std::int64_t kSecondsPerDay = 86'400;
constexpr int kSearchDays = 3660;

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0); }

bool is_holiday(const domain::CalendarDef& def, std::int64_t day) {
  return std::binary_search(def.holidays.begin(), def.holidays.end(), static_cast<std::int32_t>(day));
}

std::size_t weekday_index(std::int64_t day) {  // 0 = Monday
  const std::chrono::weekday wd{std::chrono::sys_days(std::chrono::days(day))};
  return static_cast<std::size_t>(wd.iso_encoding() - 1);
}

}  // namespace

ZoneOffsets::ZoneOffsets(std::vector<std::pair<std::int64_t, std::int32_t>> transitions)
    : transitions_(std::move(transitions)) {
  if (transitions_.empty()) transitions_.emplace_back(0, 0);
  std::sort(transitions_.begin(), transitions_.end());
}

std::int32_t ZoneOffsets::offset_at(std::int64_t utc_seconds) const {
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), utc_seconds,
                             [](std::int64_t v, const auto& e) { return v < e.first; });
  if (it == transitions_.begin()) return transitions_.front().second;
  return std::prev(it)->second;
}

std::int64_t ZoneOffsets::to_utc(std::int64_t local_seconds) const {
  // Two fixed-point steps find the offset in force at the resulting instant. For an
  // ambiguous local time (fall back) prefer the earlier instant, i.e. the larger offset.
  const std::int64_t guess = local_seconds - offset_at(local_seconds);
  const std::int64_t utc = local_seconds - offset_at(guess);
  const std::int32_t before = offset_at(utc - 7200);
  if (before > offset_at(utc) && offset_at(local_seconds - before) == before) return local_seconds - before;
  return utc;
}

BusinessCalendar::BusinessCalendar(domain::CalendarDef def, ZoneOffsets zone) : def_(std::move(def)), zone_(std::move(zone)) {}

std::optional<core::TimePoint> BusinessCalendar::add(core::TimePoint start, std::chrono::microseconds working) const {
  std::int64_t remaining = working.count();
  const std::int64_t start_us = start.time_since_epoch().count();
  if (remaining <= 0) return start;
  const std::int64_t start_s = floor_div(start_us, kUsPerSecond);
  // Begin a day early: the local day of `start` may begin before `start` in UTC.
  std::int64_t day = floor_div(start_s + zone_.offset_at(start_s), kSecondsPerDay) - 1;
  for (int n = 0; n < kSearchDays; ++n, ++day) {
    if (is_holiday(def_, day)) continue;
    for (const auto& iv : def_.week[weekday_index(day)]) {
      const std::int64_t a = zone_.to_utc(day * kSecondsPerDay + iv.start_minute * std::int64_t{60}) * kUsPerSecond;
      const std::int64_t b = zone_.to_utc(day * kSecondsPerDay + iv.end_minute * std::int64_t{60}) * kUsPerSecond;
      const std::int64_t from = std::max(a, start_us);
      if (from >= b) continue;
      if (remaining <= b - from) return core::TimePoint(std::chrono::microseconds(from + remaining));
      remaining -= b - from;
    }
  }
  return std::nullopt;
}

bool BusinessCalendar::working_at(core::TimePoint t) const {
  const std::int64_t s = floor_div(t.time_since_epoch().count(), kUsPerSecond);
  const std::int64_t local = s + zone_.offset_at(s);
  const std::int64_t day = floor_div(local, kSecondsPerDay);
  if (is_holiday(def_, day)) return false;
  const std::int64_t minute = (local - day * kSecondsPerDay) / 60;
  const auto& intervals = def_.week[weekday_index(day)];
  return std::any_of(intervals.begin(), intervals.end(), [minute](const auto& iv) {
    return minute >= iv.start_minute && minute < iv.end_minute;
  });
}

TimerRules::TimerRules(const domain::Workflow& workflow, std::map<std::string, BusinessCalendar, std::less<>> calendars)
    : workflow_(&workflow), calendars_(std::move(calendars)) {}

core::TimePoint TimerRules::due(const std::optional<std::string>& calendar, core::TimePoint start,
                                std::chrono::milliseconds after) const {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(after);
  if (calendar) {
    const auto it = calendars_.find(*calendar);
    if (it != calendars_.end()) {
      if (auto t = it->second.add(start, us)) return *t;
      return core::TimePoint::max();  // no working time within ten years: never due
    }
  }
  return start + us;
}

StayTimers TimerRules::on_enter(const std::string& status, core::TimePoint entered_at) const {
  StayTimers t;
  const auto* def = workflow_->status(status);
  if (def == nullptr) return t;
  if (def->sla) t.sla_due_at = due(def->calendar, entered_at, *def->sla);
  if (!def->escalations.empty()) {
    t.next_escalation_level = 0;
    t.next_escalation_at = due(def->calendar, entered_at, def->escalations.front().after);
  }
  if (def->auto_transition) t.auto_transition_at = due(def->calendar, entered_at, def->auto_transition->after);
  return t;
}

std::optional<std::pair<int, core::TimePoint>> TimerRules::rung_after(const std::string& status,
                                                                      core::TimePoint entered_at, int level) const {
  const auto* def = workflow_->status(status);
  if (def == nullptr || level < -1) return std::nullopt;
  const int next_level = level + 1;
  const auto next = static_cast<std::size_t>(next_level);
  if (next >= def->escalations.size()) return std::nullopt;
  return std::make_pair(next_level, due(def->calendar, entered_at, def->escalations[next].after));
}

core::TimePoint TimerRules::silence_due(const domain::SourceSilenceRule& rule, core::TimePoint last_event_at) const {
  return due(rule.calendar, last_event_at, rule.window);
}

const domain::SourceSilenceRule* TimerRules::silence_rule(std::string_view source) const {
  for (const auto& r : workflow_->source_silence())
    if (r.source == source) return &r;
  return nullptr;
}

ZoneOffsets load_zone_offsets(pqxx::transaction_base& tx, const std::string& time_zone) {
  // Daily samples find the days on which the offset changes, hourly samples inside those days
  // the hour, minute samples inside that hour the minute: ~20k rows instead of 60M.
  const auto rows = tx.exec_params(
      "WITH d AS ("
      "  SELECT t, extract(epoch from (t AT TIME ZONE $1) - (t AT TIME ZONE 'UTC'))::int AS off"
      "  FROM generate_series(timestamptz '1990-01-01 00:00Z', timestamptz '2100-01-01 00:00Z', interval '1 day') t),"
      " cd AS (SELECT t FROM (SELECT t, off, lag(off) OVER (ORDER BY t) AS prev FROM d) x WHERE x.prev <> x.off),"
      " h AS (SELECT g AS t, extract(epoch from (g AT TIME ZONE $1) - (g AT TIME ZONE 'UTC'))::int AS off"
      "  FROM cd, generate_series(cd.t - interval '1 day', cd.t, interval '1 hour') g),"
      " ch AS (SELECT t FROM (SELECT t, off, lag(off) OVER (ORDER BY t) AS prev FROM h) x WHERE x.prev <> x.off),"
      " m AS (SELECT g AS t, extract(epoch from (g AT TIME ZONE $1) - (g AT TIME ZONE 'UTC'))::int AS off"
      "  FROM ch, generate_series(ch.t - interval '1 hour', ch.t, interval '1 minute') g)"
      "SELECT extract(epoch from t)::bigint, off FROM ("
      "  (SELECT t, off FROM d ORDER BY t LIMIT 1) UNION ALL SELECT t, off FROM m) s ORDER BY 1",
      time_zone);
  std::vector<std::pair<std::int64_t, std::int32_t>> transitions;
  for (const auto& row : rows) {
    const auto t = row[0].as<std::int64_t>();
    const auto off = row[1].as<std::int32_t>();
    if (transitions.empty()) {
      transitions.emplace_back(std::numeric_limits<std::int64_t>::min() / 4, off);
    } else if (transitions.back().second != off) {
      transitions.emplace_back(t, off);
    }
  }
  return ZoneOffsets(std::move(transitions));
}

TimerRules load_timer_rules(const domain::Workflow& workflow, pqxx::connection& conn) {
  std::map<std::string, BusinessCalendar, std::less<>> calendars;
  std::map<std::string, ZoneOffsets> zones;
  for (const auto& def : workflow.calendar_defs()) {
    auto it = zones.find(def.time_zone);
    if (it == zones.end()) {
      try {
        pqxx::read_transaction tx(conn);
        it = zones.emplace(def.time_zone, load_zone_offsets(tx, def.time_zone)).first;
      } catch (const pqxx::data_exception& e) {
        throw std::invalid_argument("calendars." + def.name + ".time_zone: PostgreSQL does not know the time zone '" +
                                    def.time_zone + "'");
      }
    }
    calendars.emplace(def.name, BusinessCalendar(def, it->second));
  }
  return TimerRules(workflow, std::move(calendars));
}

}  // namespace oss::sla
