-- outbox schema, version 4: `outbox.notify = idle`, a wake-up that costs producers a NOTIFY
-- only while a relay sleeps.
--
-- NOTIFY takes a database-wide lock from the notifying transaction's pre-commit to its end, so
-- committing producers queue behind one another's commit flush: with it on, 8 producers
-- reached about half the commit rate they reach with it off (docs/performance.md). Yet a relay
-- only needs the wake-up when it is waiting: while it is busy it fetches again right after each
-- cycle anyway. Each relay connection keeps a row here and sets `sleeping` before it waits for
-- a notification (and looks for rows once more after that, for the commits that read the flag
-- before it was set); it clears it when a fetch finds rows. With `outbox.notify = idle`, emit()
-- notifies only when some relay sleeps. The window left: a producer that reads the flag just
-- before a relay sets it and commits just after that relay's last look waits for the relay's
-- --poll-interval (the safety net), as every commit does with `outbox.notify = off`.
--
-- outbox.notify, set per database, role or session (ALTER DATABASE crm SET outbox.notify = idle):
--   on    (the default) every emitting transaction notifies;
--   idle  only while a relay waits (schema version 4 and a relay of the same version);
--   off   never; relays poll every --poll-interval.

-- UNLOGGED: the flags describe live sessions only; after a crash the table starts empty and
-- each relay adds its row when it connects again.
CREATE UNLOGGED TABLE outbox.relay_wakeups (
    pid      integer     PRIMARY KEY,  -- the relay connection's backend (pg_backend_pid())
    sleeping boolean     NOT NULL DEFAULT false,
    since    timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE FUNCTION outbox.wake_relays() RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    CASE coalesce(current_setting('outbox.notify', true), 'on')
        WHEN 'off' THEN
            NULL;
        WHEN 'idle' THEN
            IF EXISTS (SELECT 1 FROM outbox.relay_wakeups WHERE sleeping) THEN
                PERFORM pg_notify('outbox_events', '');
            END IF;
        ELSE
            PERFORM pg_notify('outbox_events', '');
    END CASE;
END
$$;

COMMENT ON FUNCTION outbox.wake_relays() IS
    'NOTIFY the relays at commit as outbox.notify says: on (always), idle (only while one waits), off.';

CREATE OR REPLACE FUNCTION outbox.emit(
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

    PERFORM outbox.wake_relays();
    RETURN v_id;
END
$$;


CREATE OR REPLACE FUNCTION outbox.emit_many(
    source         text,
    aggregate_type text,
    aggregate_ids  text[],
    event_type     text,
    payloads       jsonb[])
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_count integer;
BEGIN
    IF emit_many.source IS NULL OR emit_many.source !~ '^[A-Za-z0-9_-]+$' THEN
        RAISE EXCEPTION 'outbox.emit_many: source must be a non-empty name of letters, digits, _ or -'
            USING ERRCODE = '22023';
    END IF;
    IF emit_many.aggregate_type IS NULL OR btrim(emit_many.aggregate_type) = '' THEN
        RAISE EXCEPTION 'outbox.emit_many: aggregate_type must be a non-empty string' USING ERRCODE = '22023';
    END IF;
    IF emit_many.event_type IS NULL OR emit_many.event_type !~ '^[A-Za-z0-9_][A-Za-z0-9_.-]*$' THEN
        RAISE EXCEPTION 'outbox.emit_many: bad event_type' USING ERRCODE = '22023';
    END IF;
    IF coalesce(cardinality(emit_many.aggregate_ids), 0) <> coalesce(cardinality(emit_many.payloads), 0) THEN
        RAISE EXCEPTION 'outbox.emit_many: aggregate_ids and payloads differ in length' USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(emit_many.aggregate_ids) a WHERE a IS NULL OR btrim(a) = '') THEN
        RAISE EXCEPTION 'outbox.emit_many: aggregate ids must be non-empty strings' USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(emit_many.payloads) p WHERE p IS NULL OR jsonb_typeof(p) <> 'object') THEN
        RAISE EXCEPTION 'outbox.emit_many: every payload must be a JSON object' USING ERRCODE = '22023';
    END IF;

    WITH input AS (
        SELECT u.aggregate_id, u.payload, u.n
        FROM unnest(emit_many.aggregate_ids, emit_many.payloads) WITH ORDINALITY AS u(aggregate_id, payload, n)),
    counts AS (
        SELECT i.aggregate_id, count(*) AS c FROM input i GROUP BY i.aggregate_id ORDER BY i.aggregate_id),
    seq AS (
        INSERT INTO outbox.aggregate_sequences AS s (source, aggregate_id, last_sequence)
        SELECT emit_many.source, c.aggregate_id, c.c FROM counts c
        ON CONFLICT ON CONSTRAINT aggregate_sequences_pkey
        DO UPDATE SET last_sequence = s.last_sequence + excluded.last_sequence
        RETURNING s.aggregate_id, s.last_sequence)
    INSERT INTO outbox.events (event_id, source, aggregate_type, aggregate_id, sequence, event_type,
                               payload, headers, occurred_at, partition)
    SELECT gen_random_uuid(), emit_many.source, emit_many.aggregate_type, i.aggregate_id,
           seq.last_sequence - c.c + row_number() OVER (PARTITION BY i.aggregate_id ORDER BY i.n),
           emit_many.event_type, i.payload, '{}'::jsonb, clock_timestamp(),
           outbox.partition_of(emit_many.source, i.aggregate_id)
    FROM input i JOIN counts c USING (aggregate_id) JOIN seq USING (aggregate_id)
    ORDER BY i.n;
    GET DIAGNOSTICS v_count = ROW_COUNT;

    IF v_count > 0 THEN
        PERFORM outbox.wake_relays();
    END IF;
    RETURN v_count;
END
$$;

