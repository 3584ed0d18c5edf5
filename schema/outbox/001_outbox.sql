-- outbox schema, version 1: the transactional outbox a producer writes through outbox.emit().
-- Installed by `outbox-relay install`; idempotent through outbox.schema_migrations.

CREATE TABLE outbox.aggregate_sequences (
    source        text   NOT NULL,
    aggregate_id  text   NOT NULL,
    last_sequence bigint NOT NULL,
    PRIMARY KEY (source, aggregate_id)
);

-- `position` is assigned at insert, before commit, so it is NOT a commit-order high-water mark;
-- the relay never relies on it as one (ANCHORS: watermill#311). It only orders one aggregate's
-- rows, which commit in sequence order because emit() holds that aggregate's sequence row lock
-- until the producer's transaction ends.
CREATE TABLE outbox.events (
    position       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       uuid        NOT NULL,
    source         text        NOT NULL,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    sequence       bigint      NOT NULL,
    event_type     text        NOT NULL,
    payload        jsonb       NOT NULL,
    headers        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    occurred_at    timestamptz NOT NULL,
    partition      smallint    NOT NULL,
    published_at   timestamptz,
    attempts       integer     NOT NULL DEFAULT 0,
    last_error     text,
    next_attempt_at timestamptz,
    parked_at      timestamptz,
    UNIQUE (event_id),
    UNIQUE (source, aggregate_id, sequence)
);
-- What the relay scans: only unpublished, unparked rows, in position order (the relay filters
-- its partitions while walking it). Partial, so its size follows the backlog, not the table:
-- a fetch never walks over published rows kept for retention.
CREATE INDEX events_pending_idx ON outbox.events (position)
    WHERE published_at IS NULL AND parked_at IS NULL;
CREATE INDEX events_parked_idx ON outbox.events (parked_at) WHERE parked_at IS NOT NULL;
-- Deliberately no index on published_at or occurred_at: marking a row published is a non-HOT
-- update that inserts into every index, so each index costs on the relay's hot path (measured
-- in docs/performance.md). Retention walks the primary key from the oldest position instead,
-- and reconciliation's time window is a scan of a table that retention keeps short.

-- Number of partitions the aggregate key is hashed into. Relays own partitions through
-- session-level advisory locks; changing it needs all relays stopped and the backlog drained.
CREATE FUNCTION outbox.partition_count() RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 64';

CREATE FUNCTION outbox.partition_of(source text, aggregate_id text) RETURNS smallint
LANGUAGE sql IMMUTABLE STRICT AS
$$ SELECT (abs(hashtextextended(source || '/' || aggregate_id, 0)) % outbox.partition_count())::smallint $$;

CREATE FUNCTION outbox.emit(
    source         text,
    aggregate_type text,
    aggregate_id   text,
    event_type     text,
    payload        jsonb,
    headers        jsonb DEFAULT '{}'::jsonb)
RETURNS uuid
LANGUAGE plpgsql
AS $$
DECLARE
    v_id  uuid := gen_random_uuid();
    v_seq bigint;
BEGIN
    IF emit.source IS NULL OR emit.source !~ '^[A-Za-z0-9_-]+$' THEN
        RAISE EXCEPTION 'outbox.emit: source must be a non-empty name of letters, digits, _ or - (got %)',
            coalesce(quote_literal(emit.source), 'NULL') USING ERRCODE = '22023';
    END IF;
    IF emit.aggregate_type IS NULL OR btrim(emit.aggregate_type) = '' THEN
        RAISE EXCEPTION 'outbox.emit: aggregate_type must be a non-empty string' USING ERRCODE = '22023';
    END IF;
    IF emit.aggregate_id IS NULL OR btrim(emit.aggregate_id) = '' THEN
        RAISE EXCEPTION 'outbox.emit: aggregate_id must be a non-empty string' USING ERRCODE = '22023';
    END IF;
    IF emit.event_type IS NULL OR emit.event_type !~ '^[A-Za-z0-9_][A-Za-z0-9_.-]*$' THEN
        RAISE EXCEPTION 'outbox.emit: event_type must be a non-empty name of letters, digits, _, - or . (got %)',
            coalesce(quote_literal(emit.event_type), 'NULL') USING ERRCODE = '22023';
    END IF;
    IF emit.payload IS NULL OR jsonb_typeof(emit.payload) <> 'object' THEN
        RAISE EXCEPTION 'outbox.emit: payload must be a JSON object (got %)',
            coalesce(jsonb_typeof(emit.payload), 'NULL') USING ERRCODE = '22023';
    END IF;
    IF emit.headers IS NOT NULL AND jsonb_typeof(emit.headers) <> 'object' THEN
        RAISE EXCEPTION 'outbox.emit: headers must be a JSON object (got %)', jsonb_typeof(emit.headers)
            USING ERRCODE = '22023';
    END IF;

    -- The row lock taken here is held until the producer commits or rolls back, so one
    -- aggregate's events get gapless sequences in commit order.
    INSERT INTO outbox.aggregate_sequences AS s (source, aggregate_id, last_sequence)
    VALUES (emit.source, emit.aggregate_id, 1)
    ON CONFLICT ON CONSTRAINT aggregate_sequences_pkey
    DO UPDATE SET last_sequence = s.last_sequence + 1
    RETURNING s.last_sequence INTO v_seq;

    INSERT INTO outbox.events (event_id, source, aggregate_type, aggregate_id, sequence, event_type,
                               payload, headers, occurred_at, partition)
    VALUES (v_id, emit.source, emit.aggregate_type, emit.aggregate_id, v_seq, emit.event_type,
            emit.payload, coalesce(emit.headers, '{}'::jsonb), clock_timestamp(),
            outbox.partition_of(emit.source, emit.aggregate_id));

    -- Wake relays at commit. Switchable per database (ALTER DATABASE x SET outbox.notify = off):
    -- NOTIFY serialises committing transactions on a global queue lock (measured in
    -- docs/performance.md); relays still poll when it is off.
    IF coalesce(current_setting('outbox.notify', true), 'on') <> 'off' THEN
        PERFORM pg_notify('outbox_events', '');
    END IF;
    RETURN v_id;
END
$$;

COMMENT ON FUNCTION outbox.emit(text, text, text, text, jsonb, jsonb) IS
    'Record an event in the same transaction as the business change; returns its event_id.';
