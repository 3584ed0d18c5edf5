// reconcile::compare: every emitted event is decided, in flight, waiting (parked as early in
// the service) or a problem (missing, unpublished, parked by the relay).
#include "reconcile/reconcile.hpp"

#include <gtest/gtest.h>

namespace oss::reconcile {
namespace {

using namespace std::chrono_literals;

EmittedEvent emitted(std::string id, core::TimePoint at, bool published = true) {
  EmittedEvent e;
  e.event_id = std::move(id);
  e.source = "mes";
  e.aggregate_id = "ORD-1";
  e.event_type = "order.status_changed";
  e.occurred_at = at;
  e.published = published;
  return e;
}

TEST(Reconcile, EventsParkedAsEarlyAreWaitingNotMissingWhateverTheirAge) {
  const auto now = core::parse_rfc3339("2026-12-07T10:00:00Z");
  const auto old = now - std::chrono::hours(2);
  const std::vector<EmittedEvent> events{emitted("a", old), emitted("b", old), emitted("c", old), emitted("d", now)};
  const auto r = compare(events, {{"a", "applied"}}, now, 60s, {"b"});
  EXPECT_EQ(r.emitted, 4u);
  EXPECT_EQ(r.decided_by_outcome.at("applied"), 1u);
  EXPECT_EQ(r.waiting, 1u);
  EXPECT_EQ(r.in_flight, 1u);  // d: within the grace period
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].event.event_id, "c");
  EXPECT_EQ(r.problems[0].state, State::missing);
  EXPECT_FALSE(r.ok());
  // Without the park, b is missing too.
  EXPECT_EQ(compare(events, {{"a", "applied"}}, now, 60s).problems.size(), 2u);
}

}  // namespace
}  // namespace oss::reconcile
