-- order-status-service schema, version 1.

CREATE TABLE oss.orders (
    order_id          text        PRIMARY KEY,
    status            text        NOT NULL,
    status_entered_at timestamptz NOT NULL,
    sla_due_at        timestamptz,
    version           bigint      NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
-- "What is due" is an index range scan over the stored due time (not a scan of all orders).
CREATE INDEX orders_sla_due_idx ON oss.orders (sla_due_at) WHERE sla_due_at IS NOT NULL;
CREATE INDEX orders_status_idx ON oss.orders (status, order_id);

-- Highest sequence consumed per (order, source): tells stale and early events apart.
CREATE TABLE oss.order_sources (
    order_id      text   NOT NULL,
    source        text   NOT NULL,
    last_sequence bigint NOT NULL,
    PRIMARY KEY (order_id, source)
);

CREATE TABLE oss.status_history (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    text        NOT NULL,
    from_status text,
    to_status   text        NOT NULL,
    event_id    uuid,
    source      text        NOT NULL,
    sequence    bigint,
    occurred_at timestamptz NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text,
    reason      text
);
CREATE INDEX status_history_order_idx ON oss.status_history (order_id, id);
-- Belt and braces for "never applied twice": one history row per event.
CREATE UNIQUE INDEX status_history_event_idx ON oss.status_history (event_id) WHERE event_id IS NOT NULL;

-- Inbox: every event id the service has decided on, with the decision. Deduplication and
-- reconciliation read it. Early events are not here (they are still in flight).
CREATE TABLE oss.processed_events (
    event_id     uuid        PRIMARY KEY,
    order_id     text,
    source       text,
    sequence     bigint,
    event_type   text,
    outcome      text        NOT NULL CHECK (outcome IN ('applied', 'stale', 'dead_lettered', 'ignored')),
    processed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX processed_events_time_idx ON oss.processed_events (processed_at);

CREATE TABLE oss.dead_letters (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         text,
    order_id         text,
    source           text,
    reason           text        NOT NULL,
    error            text        NOT NULL,
    routing_key      text,
    body             bytea       NOT NULL,
    headers          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    dead_lettered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    replayed_at      timestamptz
);
CREATE INDEX dead_letters_open_idx ON oss.dead_letters (reason, id) WHERE replayed_at IS NULL;
CREATE INDEX dead_letters_event_idx ON oss.dead_letters (event_id);
