// Business-time arithmetic and the escalation ladder, on hand-written zone tables (no database).
#include <gtest/gtest.h>

#include "domain/workflow.hpp"
#include "sla/calendar.hpp"

namespace oss::sla {
namespace {

using namespace std::chrono_literals;
using core::parse_rfc3339;

// Europe/Berlin around 2026: CET (+1h), CEST (+2h) from 2026-03-29T01:00Z to 2026-10-25T01:00Z.
ZoneOffsets berlin() {
  return ZoneOffsets({{-4'000'000'000, 3600},
                      {parse_rfc3339("2026-03-29T01:00:00Z").time_since_epoch().count() / 1'000'000, 7200},
                      {parse_rfc3339("2026-10-25T01:00:00Z").time_since_epoch().count() / 1'000'000, 3600}});
}

domain::CalendarDef office(std::vector<std::string> holidays = {}) {
  nlohmann::json doc = {
      {"name", "w"},
      {"statuses", {{{"name", "A"}, {"initial", true}}, {{"name", "B"}, {"terminal", true}}}},
      {"transitions", {{{"from", nullptr}, {"to", "A"}, {"sources", {"crm"}}}, {{"from", "A"}, {"to", "B"}, {"sources", {"crm"}}}}},
      {"calendars",
       {{"office",
         {{"time_zone", "Europe/Berlin"},
          {"working_hours", {{"mon", {"09:00-17:00"}}, {"tue", {"09:00-17:00"}}, {"wed", {"09:00-17:00"}},
                             {"thu", {"09:00-17:00"}}, {"fri", {"09:00-12:00", "13:00-17:00"}}}},
          {"holidays", holidays}}}}}};
  return *domain::parse_workflow(doc).calendar("office");
}

std::string add(const BusinessCalendar& c, const std::string& start, std::chrono::microseconds d) {
  const auto t = c.add(parse_rfc3339(start), d);
  return t ? core::format_rfc3339(*t) : "never";
}

TEST(ZoneOffsetsTest, LooksUpAndConvertsLocalTimes) {
  const auto z = berlin();
  EXPECT_EQ(z.offset_at(parse_rfc3339("2026-01-10T12:00:00Z").time_since_epoch().count() / 1'000'000), 3600);
  EXPECT_EQ(z.offset_at(parse_rfc3339("2026-07-10T12:00:00Z").time_since_epoch().count() / 1'000'000), 7200);
  // 2026-07-10 09:00 local (CEST) is 07:00Z.
  const std::int64_t local = parse_rfc3339("2026-07-10T09:00:00Z").time_since_epoch().count() / 1'000'000;
  EXPECT_EQ(z.to_utc(local), local - 7200);
  EXPECT_EQ(ZoneOffsets().offset_at(0), 0);
}

TEST(BusinessCalendarTest, OneWorkingHourDoesNotBreachOverAWeekend) {
  const BusinessCalendar c(office(), berlin());
  // Friday 2026-01-09 16:30 CET (15:30Z): 30 min left; Monday 09:30 CET = 08:30Z.
  EXPECT_EQ(add(c, "2026-01-09T15:30:00Z", 1h), "2026-01-12T08:30:00.000Z");
  // Saturday: counting starts Monday 09:00.
  EXPECT_EQ(add(c, "2026-01-10T10:00:00Z", 1h), "2026-01-12T09:00:00.000Z");
  // Within a day, and across the Friday lunch break.
  EXPECT_EQ(add(c, "2026-01-07T08:00:00Z", 2h), "2026-01-07T10:00:00.000Z");
  EXPECT_EQ(add(c, "2026-01-09T10:30:00Z", 1h), "2026-01-09T12:30:00.000Z");
  // Exactly at the end of the working day: due then, not the next morning.
  EXPECT_EQ(add(c, "2026-01-07T15:00:00Z", 1h), "2026-01-07T16:00:00.000Z");
  EXPECT_EQ(add(c, "2026-01-07T15:00:00Z", 0h), "2026-01-07T15:00:00.000Z");
}

TEST(BusinessCalendarTest, HolidaysAreSkipped) {
  const BusinessCalendar c(office({"2026-12-25", "2026-12-28"}), berlin());
  // Thursday 24 Dec 16:30 CET; Fri 25 holiday, weekend, Mon 28 holiday → Tuesday 09:30 CET.
  EXPECT_EQ(add(c, "2026-12-24T15:30:00Z", 1h), "2026-12-29T08:30:00.000Z");
  EXPECT_EQ(add(c, "2026-12-24T15:30:00Z", 8h), "2026-12-29T15:30:00.000Z");
}

TEST(BusinessCalendarTest, DaylightSavingChangesTheUtcHours) {
  const BusinessCalendar c(office(), berlin());
  // Friday 2026-03-27 16:00 CET (15:00Z); Monday 30 March is CEST: 09:00 local = 07:00Z.
  EXPECT_EQ(add(c, "2026-03-27T15:00:00Z", 2h), "2026-03-30T08:00:00.000Z");
  EXPECT_TRUE(c.working_at(parse_rfc3339("2026-03-30T07:00:00Z")));
  EXPECT_FALSE(c.working_at(parse_rfc3339("2026-03-30T06:59:00Z")));
  EXPECT_FALSE(c.working_at(parse_rfc3339("2026-03-28T10:00:00Z")));  // Saturday
}

TEST(BusinessCalendarTest, ACalendarWithOnlyHolidaysNeverFallsDue) {
  domain::CalendarDef def = office();
  def.week = {};
  def.week[0] = {{540, 600}};
  const BusinessCalendar c(def, ZoneOffsets());
  EXPECT_EQ(add(c, "2026-01-05T00:00:00Z", 1h), "2026-01-05T10:00:00.000Z");  // Monday 09:00-10:00 UTC
  EXPECT_EQ(add(c, "2026-01-05T00:00:00Z", 2h), "2026-01-12T10:00:00.000Z");  // next Monday
}

TEST(TimerRulesTest, ShippedLadderAndAutoTransition) {
  const auto& wf = domain::shipped_workflow();
  const TimerRules rules(wf, {});
  const auto t0 = parse_rfc3339("2026-03-02T08:00:00Z");
  const auto s = rules.on_enter("SUBMITTED", t0);
  EXPECT_EQ(s.sla_due_at, t0 + 1h);
  EXPECT_EQ(s.next_escalation_level, 0);
  EXPECT_EQ(s.next_escalation_at, t0 + 1h);
  EXPECT_FALSE(s.auto_transition_at.has_value());
  const auto next = rules.rung_after("SUBMITTED", t0, 0);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->first, 1);
  EXPECT_EQ(next->second, t0 + 24h);
  EXPECT_FALSE(rules.rung_after("SUBMITTED", t0, 1).has_value());
  const auto p = rules.on_enter("PRICE_CALCULATED", t0);
  EXPECT_EQ(p.auto_transition_at, t0 + std::chrono::hours(7 * 24));
  const auto f = rules.on_enter("FROZEN", t0);
  EXPECT_FALSE(f.sla_due_at || f.next_escalation_at || f.auto_transition_at);
  EXPECT_FALSE(rules.on_enter("DELIVERED", t0).sla_due_at.has_value());
}

}  // namespace
}  // namespace oss::sla
