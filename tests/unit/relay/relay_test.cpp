// Relay::run_once against an in-memory outbox and a scriptable broker: what gets published,
// in which order, what gets marked, and what is charged an attempt.
#include "relay.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "fakes/fake_outbox_store.hpp"
#include "fakes/fake_publisher.hpp"
#include "oss/metrics/registry.hpp"

namespace oss::relay {
namespace {

using namespace std::chrono_literals;
using testing::FakeOutboxStore;
using testing::FakePublisher;
using testing::ForwardingOutboxStore;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class RelayTest : public ::testing::Test {
 protected:
  RelayTest() { options_.retry_after = 2000ms; }

  Relay& relay() {
    if (!relay_) {
      relay_ = std::make_unique<Relay>(
          [this] {
            ++stores_made_;
            return std::make_unique<ForwardingOutboxStore>(store_);
          },
          publisher_, metrics_, options_);
    }
    return *relay_;
  }
  std::string metrics_text() const { return registry_.render(); }

  FakeOutboxStore store_;
  FakePublisher publisher_;
  metrics::Registry registry_;
  RelayMetrics metrics_{registry_};
  RelayOptions options_;
  int stores_made_ = 0;
  std::unique_ptr<Relay> relay_;
};

TEST_F(RelayTest, NothingToDo) {
  EXPECT_EQ(relay().run_once(), 0u);
  EXPECT_THAT(publisher_.batches(), IsEmpty());
  EXPECT_EQ(store_.rebalance_calls(), 1);
  EXPECT_EQ(stores_made_, 1);
}

TEST_F(RelayTest, PublishesAllRowsInPositionOrderAndMarksThem) {
  store_.add("crm", "A");
  store_.add("mes", "B");
  store_.add("crm", "A");
  store_.add("crm", "C");
  store_.add("mes", "B");

  EXPECT_EQ(relay().run_once(), 5u);

  EXPECT_THAT(publisher_.batches(), ElementsAre(ElementsAre(1, 2, 3, 4, 5)));
  EXPECT_THAT(store_.mark_calls(), ElementsAre(ElementsAre(1, 2, 3, 4, 5)));
  EXPECT_THAT(store_.published_positions(), ElementsAre(1, 2, 3, 4, 5));
  EXPECT_THAT(store_.failures(), IsEmpty());
  const auto text = metrics_text();
  EXPECT_THAT(text, HasSubstr("outbox_relay_published_total{source=\"crm\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("outbox_relay_published_total{source=\"mes\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("outbox_relay_partitions_owned 4\n"));
  // One cycle: one rebalance, one fetch, one batch written to the broker.
  EXPECT_THAT(text, HasSubstr("outbox_relay_step_seconds_count{step=\"rebalance\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("outbox_relay_step_seconds_count{step=\"fetch\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("outbox_relay_step_seconds_count{step=\"send\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("outbox_relay_step_seconds_count{step=\"housekeeping\"} 0\n"));

  // Nothing left: the next cycle publishes nothing and the factory is not called again.
  EXPECT_EQ(relay().run_once(), 0u);
  EXPECT_EQ(publisher_.batches().size(), 1u);
  EXPECT_EQ(stores_made_, 1);
}

TEST_F(RelayTest, RespectsTheBatchSize) {
  options_.batch_size = 2;
  for (int i = 0; i < 5; ++i) store_.add("crm", "A");
  // One cycle pipelines several batches of at most batch_size rows each.
  EXPECT_EQ(relay().run_once(), 5u);
  EXPECT_EQ(relay().run_once(), 0u);
  EXPECT_THAT(publisher_.batches(), ElementsAre(ElementsAre(1, 2), ElementsAre(3, 4), ElementsAre(5)));
  EXPECT_THAT(store_.published_positions(), ElementsAre(1, 2, 3, 4, 5));
}

TEST_F(RelayTest, ReturnedRowIsNotMarkedAndIsChargedAnAttempt) {
  store_.add("crm", "A");
  const auto bad = store_.add("crm", "B");
  store_.add("mes", "C");
  publisher_.return_as_unroutable(FakeOutboxStore::event_id_for(bad));

  EXPECT_EQ(relay().run_once(), 3u);

  EXPECT_THAT(store_.mark_calls(), ElementsAre(ElementsAre(1, 3)));
  EXPECT_FALSE(store_.published(bad));
  EXPECT_EQ(store_.attempts(bad), 1);
  EXPECT_FALSE(store_.parked(bad));
  ASSERT_EQ(store_.failures().size(), 1u);
  EXPECT_EQ(store_.failures()[0].position, bad);
  EXPECT_EQ(store_.failures()[0].kind, "returned");
  const auto text = metrics_text();
  EXPECT_THAT(text, HasSubstr("outbox_relay_publish_failures_total{kind=\"returned\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("outbox_relay_parked_total 0\n"));
}

TEST_F(RelayTest, NackedRowIsNotMarkedNorChargedAndWaitsForItsRetryTime) {
  const auto bad = store_.add("crm", "A");
  store_.add("crm", "B");
  publisher_.nack(FakeOutboxStore::event_id_for(bad));

  relay().run_once();

  EXPECT_THAT(store_.published_positions(), ElementsAre(2));
  EXPECT_FALSE(store_.published(bad));
  EXPECT_EQ(store_.attempts(bad), 0) << "one nack is the broker's state, not the row's";
  ASSERT_EQ(store_.failures().size(), 1u);
  EXPECT_FALSE(store_.failures()[0].charged);
  EXPECT_THAT(metrics_text(), HasSubstr("outbox_relay_publish_failures_total{kind=\"nacked\"} 1\n"));

  // Not hammered: it waits retry_after, then goes out again and the broker takes it.
  EXPECT_EQ(relay().run_once(), 0u);
  publisher_.clear_refusals();
  store_.advance(2s);
  EXPECT_EQ(relay().run_once(), 1u);
  EXPECT_TRUE(store_.published(bad));
  EXPECT_EQ(store_.attempts(bad), 0);
}

TEST_F(RelayTest, RowNackedAloneWhileOthersAreAckedIsChargedOnlyFromItsThirdNackInARow) {
  options_.max_attempts = 1;
  const auto bad = store_.add("crm", "A");
  publisher_.nack(FakeOutboxStore::event_id_for(bad));
  for (int i = 0; i < NackPolicy::kStreakToCharge; ++i) {
    store_.add("mes", "B" + std::to_string(i));  // acked alongside it each time
    relay().run_once();
    store_.advance(1h);
    if (i + 1 < NackPolicy::kStreakToCharge) {
      EXPECT_EQ(store_.attempts(bad), 0) << "nack " << i + 1;
      EXPECT_FALSE(store_.parked(bad)) << "nack " << i + 1;
    }
  }
  EXPECT_EQ(store_.attempts(bad), 1);
  EXPECT_TRUE(store_.parked(bad)) << "nacked every time while the broker took the rest: the row's own problem";
  EXPECT_EQ(store_.published_positions().size(), static_cast<std::size_t>(NackPolicy::kStreakToCharge));
  EXPECT_THAT(metrics_text(), HasSubstr("outbox_relay_parked_total 1\n"));
}

TEST_F(RelayTest, BatchNackedWholeIsABrokerFaultNothingIsChargedOrParked) {
  options_.max_attempts = 1;
  const auto a = store_.add("crm", "A");
  const auto b = store_.add("crm", "B");
  publisher_.nack(FakeOutboxStore::event_id_for(a));
  publisher_.nack(FakeOutboxStore::event_id_for(b));

  for (int i = 0; i < 5; ++i) {
    EXPECT_THROW(relay().run_once(), std::runtime_error) << "cycle " << i;
    store_.advance(1h);
  }

  for (auto p : {a, b}) {
    EXPECT_EQ(store_.attempts(p), 0);
    EXPECT_FALSE(store_.parked(p));
  }
  const auto text = metrics_text();
  EXPECT_THAT(text, HasSubstr("outbox_relay_parked_total 0\n"));
  EXPECT_THAT(text, HasSubstr("outbox_relay_broker_faults_total{kind=\"nacked\"} 5\n"));
  EXPECT_THAT(text, HasSubstr("outbox_relay_errors_total{kind=\"broker\"} 5\n"));

  // The broker recovers: everything goes out.
  publisher_.clear_refusals();
  EXPECT_EQ(relay().run_once(), 2u);
  EXPECT_THAT(store_.published_positions(), ElementsAre(a, b));
}

TEST_F(RelayTest, ABrokerFaultBetweenNacksStartsTheCountAgain) {
  options_.max_attempts = 1;
  options_.broker_settle = 0ms;  // this test is about the streak alone, not the settle window
  const auto bad = store_.add("crm", "A");
  publisher_.nack(FakeOutboxStore::event_id_for(bad));
  auto cycle_with_company = [&](const std::string& id) {
    store_.add("mes", id);
    relay().run_once();
    store_.advance(1h);
  };
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i + 1 < NackPolicy::kStreakToCharge; ++i) cycle_with_company("B" + std::to_string(round * 10 + i));
    // The connection breaks in the next batch (the broker restarting, say).
    store_.add("mes", "C" + std::to_string(round));
    publisher_.lose_connection_after(0);
    EXPECT_THROW(relay().run_once(), std::runtime_error);
    store_.advance(1h);
  }
  EXPECT_EQ(store_.attempts(bad), 0);
  EXPECT_FALSE(store_.parked(bad));
  EXPECT_THAT(metrics_text(), HasSubstr("outbox_relay_broker_faults_total{kind=\"connection\"} 3\n"));
}

TEST_F(RelayTest, RepeatedConnectionLossesNeverChargeOrParkARow) {
  options_.max_attempts = 1;
  for (int i = 0; i < 4; ++i) store_.add("crm", "A" + std::to_string(i));
  for (int i = 0; i < 6; ++i) {
    publisher_.lose_connection_after(0);
    EXPECT_THROW(relay().run_once(), std::runtime_error) << "cycle " << i;  // run() backs off here
  }
  publisher_.lose_connection_after(2);
  EXPECT_THROW(relay().run_once(), std::runtime_error);

  EXPECT_THAT(store_.failures(), IsEmpty());
  EXPECT_EQ(relay().run_once(), 2u);
  EXPECT_THAT(store_.published_positions(), ElementsAre(1, 2, 3, 4));
  for (std::int64_t p = 1; p <= 4; ++p) EXPECT_EQ(store_.attempts(p), 0);
  EXPECT_THAT(metrics_text(), HasSubstr("outbox_relay_parked_total 0\n"));
  EXPECT_THAT(metrics_text(), HasSubstr("outbox_relay_broker_faults_total{kind=\"connection\"} 7\n"));
}

// The settle window: right after a broker fault, a recovering broker may return messages as
// unroutable (bindings not back yet) or nack them; that is not the row's fault.
TEST_F(RelayTest, RefusalsRightAfterABrokerFaultAreRetriedWithoutAnAttempt) {
  options_.max_attempts = 1;
  const auto bad = store_.add("crm", "A");
  publisher_.lose_connection_after(0);
  EXPECT_THROW(relay().run_once(), std::runtime_error);
  publisher_.return_as_unroutable(FakeOutboxStore::event_id_for(bad));

  EXPECT_EQ(relay().run_once(), 1u);

  EXPECT_EQ(store_.attempts(bad), 0);
  EXPECT_FALSE(store_.parked(bad));
  ASSERT_EQ(store_.failures().size(), 1u);
  EXPECT_FALSE(store_.failures()[0].charged);
  EXPECT_EQ(store_.failures()[0].kind, "returned");
  EXPECT_THAT(metrics_text(), HasSubstr("outbox_relay_parked_total 0\n"));
  // Retried after retry_after like any refusal; once the bindings are back it goes out.
  publisher_.clear_refusals();
  store_.advance(2s);
  EXPECT_EQ(relay().run_once(), 1u);
  EXPECT_TRUE(store_.published(bad));
}

TEST_F(RelayTest, OutsideTheSettleWindowARefusalAfterAFaultCountsAgain) {
  options_.max_attempts = 1;
  options_.broker_settle = 0ms;
  const auto bad = store_.add("crm", "A");
  store_.add("mes", "B");  // routed: the broker is taking messages again
  publisher_.lose_connection_after(0);
  EXPECT_THROW(relay().run_once(), std::runtime_error);
  publisher_.return_as_unroutable(FakeOutboxStore::event_id_for(bad));

  relay().run_once();

  EXPECT_EQ(store_.attempts(bad), 1);
  EXPECT_TRUE(store_.parked(bad)) << "the broker has settled: an unroutable row is the row's problem";
}

// The window opens at a broker fault and its length counts from the first message the broker
// routes again: a broker that returns everything is still recovering (its bindings are not back;
// after a SIGKILL on a loaded host that took more than 20 s), however long that takes.
TEST_F(RelayTest, RefusalsAreNotChargedUntilTheBrokerRoutesAgainThenTheWindowRuns) {
  options_.max_attempts = 1;
  options_.broker_settle = 0ms;
  const auto bad = store_.add("crm", "A");
  publisher_.lose_connection_after(0);
  EXPECT_THROW(relay().run_once(), std::runtime_error);
  publisher_.return_as_unroutable(FakeOutboxStore::event_id_for(bad));
  for (int cycle = 0; cycle < 5; ++cycle) {
    store_.advance(1h);
    EXPECT_EQ(relay().run_once(), 1u) << "cycle " << cycle;
    EXPECT_EQ(store_.attempts(bad), 0) << "nothing has been routed since the fault, cycle " << cycle;
  }
  EXPECT_FALSE(store_.parked(bad));
  EXPECT_EQ(publisher_.times_published(bad), 6);  // the lost publish and five returns

  // Another row goes through: the broker routes again, and with a zero window the next refusal
  // of the same row is charged.
  store_.add("mes", "B");
  store_.advance(1h);
  relay().run_once();
  EXPECT_EQ(store_.attempts(bad), 1);
  EXPECT_TRUE(store_.parked(bad));
}

TEST_F(RelayTest, AFreshFaultReopensTheWindowAfterTheBrokerHadRoutedAgain) {
  options_.max_attempts = 1;
  options_.broker_settle = 0ms;
  store_.add("mes", "B");
  publisher_.lose_connection_after(0);
  EXPECT_THROW(relay().run_once(), std::runtime_error);
  EXPECT_EQ(relay().run_once(), 1u);  // routed again: the window (0 ms) is over
  const auto bad = store_.add("crm", "A");
  publisher_.lose_connection_after(0);
  EXPECT_THROW(relay().run_once(), std::runtime_error);
  publisher_.return_as_unroutable(FakeOutboxStore::event_id_for(bad));

  relay().run_once();

  EXPECT_EQ(store_.attempts(bad), 0) << "a new fault: nothing routed since";
  EXPECT_FALSE(store_.parked(bad));
}

TEST_F(RelayTest, RefusedRowWaitsForItsRetryTime) {
  const auto bad = store_.add("crm", "A");
  publisher_.return_as_unroutable(FakeOutboxStore::event_id_for(bad));
  relay().run_once();
  ASSERT_EQ(publisher_.times_published(bad), 1);

  // Not due yet: not published again.
  EXPECT_EQ(relay().run_once(), 0u);
  store_.advance(1999ms);
  EXPECT_EQ(relay().run_once(), 0u);
  EXPECT_EQ(publisher_.times_published(bad), 1);

  // Due after retry_after: published again, and this time the broker takes it.
  publisher_.clear_refusals();
  store_.advance(1ms);
  EXPECT_EQ(relay().run_once(), 1u);
  EXPECT_EQ(publisher_.times_published(bad), 2);
  EXPECT_TRUE(store_.published(bad));
  EXPECT_EQ(store_.attempts(bad), 1);
}

TEST_F(RelayTest, RowIsParkedAfterMaxAttempts) {
  options_.max_attempts = 3;
  const auto bad = store_.add("crm", "A");
  store_.add("mes", "B");
  publisher_.return_as_unroutable(FakeOutboxStore::event_id_for(bad));

  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(relay().run_once(), i == 0 ? 2u : 1u) << "cycle " << i;
    EXPECT_EQ(store_.attempts(bad), i + 1);
    store_.advance(1h);
  }

  EXPECT_TRUE(store_.parked(bad));
  EXPECT_FALSE(store_.published(bad));
  EXPECT_THAT(metrics_text(), HasSubstr("outbox_relay_parked_total 1\n"));
  EXPECT_THAT(metrics_text(), HasSubstr("outbox_relay_publish_failures_total{kind=\"returned\"} 3\n"));

  // Parked rows are no longer fetched.
  EXPECT_EQ(relay().run_once(), 0u);
  EXPECT_EQ(publisher_.times_published(bad), 3);
}

TEST_F(RelayTest, NotDueRowHoldsBackLaterRowsOfItsAggregateOnly) {
  const auto a1 = store_.add("crm", "A");
  // a1 failed before and waits for its next attempt.
  store_.record_failures({{a1, "earlier failure", "returned"}}, options_.max_attempts, 1000ms);
  const auto b1 = store_.add("crm", "B");
  const auto a2 = store_.add("crm", "A");
  const auto other_source_a = store_.add("mes", "A");  // another source's stream of the same id
  const auto b2 = store_.add("crm", "B");

  EXPECT_EQ(relay().run_once(), 3u);
  EXPECT_THAT(publisher_.batches(), ElementsAre(ElementsAre(b1, other_source_a, b2)));
  EXPECT_FALSE(store_.published(a1));
  EXPECT_FALSE(store_.published(a2));

  store_.advance(1s);
  EXPECT_EQ(relay().run_once(), 2u);
  EXPECT_THAT(publisher_.batches().back(), ElementsAre(a1, a2));
  EXPECT_THAT(store_.published_positions(), ElementsAre(a1, b1, a2, other_source_a, b2));
}

TEST_F(RelayTest, ConnectionLostThrowsAndMarksOnlyWhatWasConfirmed) {
  for (int i = 0; i < 5; ++i) store_.add("crm", i % 2 == 0 ? "A" : "B");
  publisher_.lose_connection_after(2);

  EXPECT_THROW(relay().run_once(), std::runtime_error);

  EXPECT_THAT(store_.published_positions(), ElementsAre(1, 2));
  for (std::int64_t p = 3; p <= 5; ++p) {
    EXPECT_FALSE(store_.published(p));
    EXPECT_EQ(store_.attempts(p), 0) << "a fault is not the row's fault";
  }
  EXPECT_THAT(store_.failures(), IsEmpty());
  const auto text = metrics_text();
  EXPECT_THAT(text, HasSubstr("outbox_relay_republished_after_fault_total 3\n"));
  EXPECT_THAT(text, HasSubstr("outbox_relay_errors_total{kind=\"broker\"} 1\n"));

  // The next cycle publishes the rest.
  EXPECT_EQ(relay().run_once(), 3u);
  EXPECT_THAT(publisher_.batches().back(), ElementsAre(3, 4, 5));
  EXPECT_THAT(store_.published_positions(), ElementsAre(1, 2, 3, 4, 5));
}

TEST_F(RelayTest, ConnectionLostBeforeAnyConfirmMarksNothing) {
  store_.add("crm", "A");
  store_.add("crm", "A");
  publisher_.lose_connection_after(0);

  EXPECT_THROW(relay().run_once(), std::runtime_error);

  EXPECT_THAT(store_.mark_calls(), IsEmpty());
  EXPECT_THAT(metrics_text(), HasSubstr("outbox_relay_republished_after_fault_total 2\n"));
}

TEST_F(RelayTest, ChannelErrorIsolatesThePoisonRowOneByOne) {
  for (int i = 0; i < 4; ++i) store_.add("crm", "A" + std::to_string(i));
  publisher_.poison(3);

  relay().run_once();

  EXPECT_THAT(publisher_.batches(), ElementsAre(ElementsAre(1, 2, 3, 4), ElementsAre(1), ElementsAre(2),
                                                ElementsAre(3), ElementsAre(4)));
  EXPECT_THAT(store_.published_positions(), ElementsAre(1, 2, 4));
  EXPECT_EQ(store_.attempts(3), 1);
  for (std::int64_t p : {1, 2, 4}) EXPECT_EQ(store_.attempts(p), 0);
  ASSERT_EQ(store_.failures().size(), 1u);
  EXPECT_EQ(store_.failures()[0].position, 3);
  EXPECT_EQ(store_.failures()[0].kind, "refused");
  const auto text = metrics_text();
  EXPECT_THAT(text, HasSubstr("outbox_relay_republished_after_fault_total 4\n"));
  EXPECT_THAT(text, HasSubstr("outbox_relay_publish_failures_total{kind=\"refused\"} 1\n"));
}

TEST_F(RelayTest, PoisonRowIsParkedAfterMaxAttemptsWhileOthersFlow) {
  options_.max_attempts = 2;
  store_.add("crm", "A");
  const auto poison = store_.add("crm", "B");
  publisher_.poison(poison);

  relay().run_once();
  store_.advance(1h);
  store_.add("crm", "C");
  relay().run_once();

  EXPECT_TRUE(store_.parked(poison));
  EXPECT_EQ(store_.attempts(poison), 2);
  EXPECT_THAT(store_.published_positions(), ElementsAre(1, 3));
  EXPECT_THAT(metrics_text(), HasSubstr("outbox_relay_parked_total 1\n"));
}

// Relay::run sleeps (NOTIFY or poll interval) only after a cycle that handled nothing: a row
// committed while a cycle waited for its confirms goes out in the very next cycle.
TEST_F(RelayTest, RowCommittedDuringACycleIsFetchedAtOnceAndTheRelaySleepsOnlyWhenIdle) {
  store_.add("crm", "A");
  store_.add("crm", "B");
  bool committed = false;
  store_.on_mark([&] {
    if (!committed) store_.add("mes", "C");  // commits while batch 1 is being confirmed
    committed = true;
  });
  std::atomic<bool> stop{false};
  store_.on_wait([&] { stop = true; });

  relay().run(stop);

  EXPECT_THAT(publisher_.batches(), ElementsAre(ElementsAre(1, 2), ElementsAre(3)));
  EXPECT_THAT(store_.published_positions(), ElementsAre(1, 2, 3));
  EXPECT_EQ(store_.wait_calls(), 1) << "one sleep, after the cycle that found nothing";
  EXPECT_EQ(store_.fetch_calls(), 3);
}

// SIGTERM is seen at once whatever --poll-interval is: the wait is cut into slices of at most
// 100 ms with the stop flag checked between them.
TEST_F(RelayTest, AnIdleRelayWaitsInSlicesSoThatAStopIsSeenAtOnce) {
  options_.poll_interval = std::chrono::hours(1);
  std::atomic<bool> stop{false};
  store_.on_wait([&] {
    if (store_.wait_calls() == 3) stop = true;
  });
  auto done = std::async(std::launch::async, [&] { relay().run(stop); });
  const bool finished = done.wait_for(30s) == std::future_status::ready;
  stop = true;
  done.wait();
  ASSERT_TRUE(finished) << "the relay did not see the stop";
  EXPECT_EQ(store_.wait_calls(), 3) << "stopped right after the slice in which the stop came";
  for (auto t : store_.wait_timeouts()) EXPECT_LE(t, 100ms);
  EXPECT_EQ(store_.fetch_calls(), 1) << "one cycle, then a single wait in slices";
}

// An idle relay keeps its broker connection alive while it waits (heartbeats are only sent
// when the connection is used): the first wait keeps it alive, and later ones about once a
// second, not at every slice. Each wait here takes 100 ms of real time.
TEST_F(RelayTest, AnIdleRelayKeepsItsBrokerConnectionAliveWhileItWaits) {
  options_.poll_interval = std::chrono::hours(1);
  std::atomic<bool> stop{false};
  store_.on_wait([&] {
    std::this_thread::sleep_for(100ms);
    if (store_.wait_calls() == 25) stop = true;
  });
  auto done = std::async(std::launch::async, [&] { relay().run(stop); });
  const bool finished = done.wait_for(60s) == std::future_status::ready;
  stop = true;
  done.wait();
  ASSERT_TRUE(finished);
  EXPECT_GE(publisher_.keep_alives(), 2) << "25 waits of 100 ms span more than a second";
  EXPECT_LT(publisher_.keep_alives(), 25) << "not at every slice";
}

TEST_F(RelayTest, ABusyRelayDoesNotAskForKeepAlives) {
  for (int i = 0; i < 5; ++i) store_.add("crm", "K-" + std::to_string(i));
  std::atomic<bool> stop{false};
  store_.on_mark([&] {
    if (store_.published_positions().size() == 5) stop = true;
  });
  relay().run(stop);
  ASSERT_EQ(store_.published_positions().size(), 5u);
  EXPECT_EQ(publisher_.keep_alives(), 0) << "publishing keeps the connection alive by itself";
}

// The other side: rows that are fetched but held (waiting for their retry time) count as
// nothing handled, so the relay sleeps instead of spinning over them.
TEST_F(RelayTest, HeldRowsDoNotKeepTheRelaySpinning) {
  const auto bad = store_.add("crm", "A");
  publisher_.return_as_unroutable(FakeOutboxStore::event_id_for(bad));
  std::atomic<bool> stop{false};
  store_.on_wait([&] { stop = true; });
  // Guard: a spinning relay never calls wait_for_commit; stop it and fail instead of hanging.
  auto done = std::async(std::launch::async, [&] { relay().run(stop); });
  const bool finished = done.wait_for(30s) == std::future_status::ready;
  stop = true;
  done.wait();

  ASSERT_TRUE(finished) << "the relay kept cycling over a held row without sleeping";
  EXPECT_EQ(store_.attempts(bad), 1);
  EXPECT_EQ(publisher_.batches().size(), 1u) << "the held row is not published again before its retry time";
  EXPECT_EQ(store_.wait_calls(), 1);
}

// Published rows leave dead entries in the pending index that every cycle's first fetch walks
// over: the relay vacuums the hot table after --vacuum-after rows it marked, not before.
TEST_F(RelayTest, VacuumsTheHotTableAfterEnoughRowsWerePublished) {
  options_.vacuum_after_rows = 3;
  options_.vacuum_min_interval = 0ms;
  options_.batch_size = 2;
  store_.notify_on_wait(true);  // each wait ends as if woken, so the loop comes round again
  std::atomic<bool> stop{false};
  // Each run: a cycle that publishes, one that finds nothing (caught up) and sleeps, then the
  // next loop's housekeeping (where the vacuum happens), a second empty cycle and sleep: stop.
  int waits = 0;
  store_.on_wait([&] {
    if (++waits % 2 == 0) stop = true;
  });
  store_.add("crm", "A");
  store_.add("crm", "B");
  relay().run(stop);
  EXPECT_THAT(store_.published_positions(), ElementsAre(1, 2));
  EXPECT_EQ(store_.vacuum_calls(), 0) << "2 rows published, threshold 3";

  for (const char* agg : {"C", "D", "E", "F", "G"}) store_.add("mes", agg);
  stop = false;
  relay().run(stop);
  EXPECT_EQ(store_.published_positions().size(), 7u);
  EXPECT_EQ(store_.vacuum_calls(), 1) << "7 rows since the last vacuum: one vacuum, then the count starts again";
  EXPECT_THAT(metrics_text(), HasSubstr("outbox_relay_vacuums_total 1\n"));
}

TEST_F(RelayTest, VacuumAfterZeroLeavesTheTableToAutovacuum) {
  options_.vacuum_after_rows = 0;
  options_.vacuum_min_interval = 0ms;
  std::atomic<bool> stop{false};
  store_.on_wait([&] { stop = true; });
  for (int i = 0; i < 50; ++i) store_.add("crm", "A" + std::to_string(i));
  relay().run(stop);
  EXPECT_EQ(store_.published_positions().size(), 50u);
  EXPECT_EQ(store_.vacuum_calls(), 0);
}

}  // namespace
}  // namespace oss::relay
