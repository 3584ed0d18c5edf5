#pragma once
/// Business-time arithmetic: "entered at T, due after 1 working hour of the Berlin office".
///
/// Why a UTC-offset table: converting between UTC and local time needs the tz database. The C++
/// packages we have offer nothing but glibc, whose localtime_r reads the zone from the TZ
/// environment variable (switching it per calendar is neither thread-safe nor cheap). PostgreSQL
/// ships the tz database and `AT TIME ZONE` is exact, so load_zone_offsets() asks it once per
/// zone for the zone's offset history (transitions found to the minute) and all arithmetic here
/// is then pure, thread-safe and unit-testable on hand-written tables.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "domain/workflow.hpp"
#include "oss/core/time.hpp"

namespace oss::sla {

/// UTC offsets of one zone over time: (from UTC second, offset seconds), sorted; before the
/// first entry the first offset applies. Immutable; thread-safe.
class ZoneOffsets {
 public:
  ZoneOffsets() : transitions_{{0, 0}} {}
  explicit ZoneOffsets(std::vector<std::pair<std::int64_t, std::int32_t>> transitions);
  static ZoneOffsets fixed(std::int32_t offset_seconds) { return ZoneOffsets({{0, offset_seconds}}); }
  std::int32_t offset_at(std::int64_t utc_seconds) const;
  /// UTC second of a local wall-clock second. In a gap (spring forward) the later offset is
  /// assumed; in an overlap (fall back) the earlier instant is taken.
  std::int64_t to_utc(std::int64_t local_seconds) const;
  std::size_t size() const { return transitions_.size(); }

 private:
  std::vector<std::pair<std::int64_t, std::int32_t>> transitions_;
};

/// A calendar with its zone resolved. Immutable; thread-safe.
class BusinessCalendar {
 public:
  BusinessCalendar(domain::CalendarDef def, ZoneOffsets zone);
  /// The instant at which `working` working time has passed since `start`. Searches up to ten
  /// years ahead; nullopt if the calendar has no working time in that span.
  std::optional<core::TimePoint> add(core::TimePoint start, std::chrono::microseconds working) const;
  /// Is `t` inside working time?
  bool working_at(core::TimePoint t) const;
  const domain::CalendarDef& def() const { return def_; }

 private:
  domain::CalendarDef def_;
  ZoneOffsets zone_;
};

/// The timers of one stay in a status.
struct StayTimers {
  std::optional<core::TimePoint> sla_due_at;
  std::optional<int> next_escalation_level;  // index into StatusDef::escalations
  std::optional<core::TimePoint> next_escalation_at;
  std::optional<core::TimePoint> auto_transition_at;
};

/// The workflow's time rules with every calendar resolved: when each timer of a stay falls due.
/// Immutable; thread-safe. Durations of a status with a calendar count working time of that
/// calendar; without one, wall-clock time.
class TimerRules {
 public:
  TimerRules(const domain::Workflow& workflow, std::map<std::string, BusinessCalendar, std::less<>> calendars);
  const domain::Workflow& workflow() const { return *workflow_; }

  /// `after` counted from `start` in `calendar` (wall-clock when nullopt or unknown).
  core::TimePoint due(const std::optional<std::string>& calendar, core::TimePoint start,
                      std::chrono::milliseconds after) const;
  /// Timers of a stay in `status` that began at `entered_at` (all empty for unknown statuses).
  StayTimers on_enter(const std::string& status, core::TimePoint entered_at) const;
  /// The rung after `level` of `status`'s ladder: (level + 1, due), or nullopt at the top.
  std::optional<std::pair<int, core::TimePoint>> rung_after(const std::string& status, core::TimePoint entered_at,
                                                            int level) const;
  /// When a source that last emitted at `last_event_at` becomes silent under `rule`.
  core::TimePoint silence_due(const domain::SourceSilenceRule& rule, core::TimePoint last_event_at) const;
  const domain::SourceSilenceRule* silence_rule(std::string_view source) const;

 private:
  const domain::Workflow* workflow_;
  std::map<std::string, BusinessCalendar, std::less<>> calendars_;
};

/// Resolves the workflow's calendars' zones through PostgreSQL. Throws std::invalid_argument
/// naming the calendar when PostgreSQL does not know its time zone.
TimerRules load_timer_rules(const domain::Workflow& workflow, pqxx::connection& conn);
/// The offset table of one IANA zone, 1990..2100, transitions to the minute.
ZoneOffsets load_zone_offsets(pqxx::transaction_base& tx, const std::string& time_zone);

}  // namespace oss::sla
