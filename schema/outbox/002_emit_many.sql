-- outbox schema, version 2: outbox.emit_many(), the set-based emit for producers that record
-- many events in one transaction (the service's own notifications: one call per batch instead
-- of one PL/pgSQL call per event, which dominated the service's apply time).
--
-- Same guarantees as emit(): per (source, aggregate_id) gapless sequences in commit order (the
-- aggregate_sequences rows stay locked until the transaction ends), events of one aggregate in
-- array order. Callers that may run concurrently for the same aggregates must serialise on them
-- (the service holds each order's advisory lock), as with several emit() calls in one transaction.

CREATE FUNCTION outbox.emit_many(
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

    IF v_count > 0 AND coalesce(current_setting('outbox.notify', true), 'on') <> 'off' THEN
        PERFORM pg_notify('outbox_events', '');
    END IF;
    RETURN v_count;
END
$$;

COMMENT ON FUNCTION outbox.emit_many(text, text, text[], text, jsonb[]) IS
    'Record many events of one source and type in the caller''s transaction; returns how many.';
