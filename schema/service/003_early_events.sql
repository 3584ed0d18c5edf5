-- order-status-service schema, version 3: early events parked next to their order
-- (docs/adr/0004-early-events-parked-in-the-database.md).
--
-- An event whose predecessor has not been applied yet is written here in its batch's
-- transaction and acked. The transaction that applies its predecessor (under the order's
-- advisory lock) loads the order's parked events, decides them after its own events and
-- deletes those it decided. Events whose predecessor never comes are sent back to the events
-- queue at next_retry_at (with backoff) by the early-event sweeper, and dead-lettered as
-- retries_exhausted once their retries are spent.
CREATE TABLE oss.early_events (
    event_id      uuid        PRIMARY KEY,
    order_id      text        NOT NULL,
    source        text        NOT NULL,
    sequence      bigint      NOT NULL,
    event_type    text        NOT NULL,
    body          text        NOT NULL,   -- the message body as delivered (valid JSON)
    routing_key   text        NOT NULL DEFAULT '',
    message_id    text        NOT NULL DEFAULT '',
    attempt       integer     NOT NULL DEFAULT 0,   -- retries through the queue so far
    replay        boolean     NOT NULL DEFAULT false,  -- an operator's DLQ replay
    waiting_for   text        NOT NULL DEFAULT '',  -- why it is early ("waiting for mes sequence 3")
    parked_at     timestamptz NOT NULL DEFAULT clock_timestamp(),  -- first parked (kept across retries)
    next_retry_at timestamptz NOT NULL
);
-- The applying transaction loads an order's parked events; the sweeper scans what is due.
CREATE INDEX early_events_order_idx ON oss.early_events (order_id, source, sequence);
CREATE INDEX early_events_due_idx ON oss.early_events (next_retry_at);
