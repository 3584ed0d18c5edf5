-- order-status-service schema, version 2: SLA timers, escalations, source silence.
--
-- Every timer is a stored due time, so a pass is an index range scan over what is due
-- (cost grows with the orders due, not with all orders).
ALTER TABLE oss.orders
    ADD COLUMN next_escalation_at    timestamptz,  -- due time of the next rung of the ladder
    ADD COLUMN next_escalation_level integer,      -- index of that rung in the status's ladder
    ADD COLUMN auto_transition_at    timestamptz;  -- when the status's auto transition fires

-- One index for both timers: a pass asks "least(next rung, auto transition) <= $at".
CREATE INDEX orders_next_timer_idx ON oss.orders ((least(next_escalation_at, auto_transition_at)), order_id)
    WHERE next_escalation_at IS NOT NULL OR auto_transition_at IS NOT NULL;
-- Keyset pagination of "stuck"/"due_before" lists: (sla_due_at, order_id).
CREATE INDEX orders_sla_due_key_idx ON oss.orders (sla_due_at, order_id) WHERE sla_due_at IS NOT NULL;

-- One row per raised rung. UNIQUE (kind, subject, stay_started_at, level) is what makes
-- concurrent passes (cron + running services) raise each rung once per stay:
-- INSERT ... ON CONFLICT DO NOTHING, and the notification is emitted only when the row was
-- inserted, in the same transaction.
CREATE TABLE oss.escalations (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text        NOT NULL CHECK (kind IN ('order_sla', 'source_silence')),
    subject         text        NOT NULL,          -- order id or source name
    status          text        NOT NULL DEFAULT '',  -- the order's status during the stay
    stay_started_at timestamptz NOT NULL,          -- status_entered_at, or the source's last event
    level           text        NOT NULL,
    due_at          timestamptz NOT NULL,
    raised_at       timestamptz NOT NULL,          -- the pass's evaluation instant (--at)
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    resolved_at     timestamptz,
    resolution      text        NOT NULL DEFAULT '',
    UNIQUE (kind, subject, stay_started_at, level)
);
CREATE INDEX escalations_open_idx ON oss.escalations (kind, subject) WHERE resolved_at IS NULL;
CREATE INDEX escalations_open_level_idx ON oss.escalations (level, id) WHERE resolved_at IS NULL;

-- Last event seen per source that has a source-silence rule, and when its silence is due.
CREATE TABLE oss.source_activity (
    source         text        PRIMARY KEY,
    last_event_at  timestamptz NOT NULL,
    silence_due_at timestamptz,
    silence_open   boolean     NOT NULL DEFAULT false
);
CREATE INDEX source_activity_due_idx ON oss.source_activity (silence_due_at) WHERE silence_due_at IS NOT NULL;
