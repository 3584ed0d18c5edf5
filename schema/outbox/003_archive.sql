-- outbox schema, version 3: published rows move out of the hot table.
--
-- Until version 2 the relay marked a published row with `UPDATE outbox.events SET published_at`:
-- a non-HOT update of a wide row that inserted into every index of the table (37 % of the relay
-- connection's time during a backlog drain), and retention then DELETEd the published rows in
-- batches, leaving the B-tree indexes at their peak size until a REINDEX.
--
-- From version 3 on, the relay moves a confirmed row, in ONE statement (so atomically), from
-- outbox.events to outbox.events_archive: a narrower table with no B-tree index, range-partitioned
-- by published_at. outbox.events then only holds unpublished and parked rows (plus rows published
-- before the upgrade, which retention deletes as before), so it stays as small as the backlog;
-- retention drops whole archive partitions (no dead tuples, no index bloat).
--
-- Readers: outbox.all_events is the one stable place to read every event of this outbox,
-- published or not (a view over both tables; a single query sees each event exactly once,
-- because the move is one statement). The producer API (outbox.emit, outbox.emit_many) is unchanged.

CREATE TABLE outbox.events_archive (
    position       bigint      NOT NULL,
    event_id       uuid        NOT NULL,
    source         text        NOT NULL,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    sequence       bigint      NOT NULL,
    event_type     text        NOT NULL,
    payload        jsonb       NOT NULL,
    headers        jsonb       NOT NULL,
    occurred_at    timestamptz NOT NULL,
    published_at   timestamptz NOT NULL,
    attempts       integer     NOT NULL
) PARTITION BY RANGE (published_at);

-- Reconciliation reads a time window by occurred_at; a BRIN index costs next to nothing per insert
-- (rows arrive in roughly occurred_at order) and lets that window skip most of each partition.
CREATE INDEX events_archive_occurred_brin ON outbox.events_archive USING brin (occurred_at);

-- The archive's partitions and their bounds (kept by the two functions below, in the same
-- transaction as the DDL, so it always matches the catalog).
CREATE TABLE outbox.archive_partitions (
    name        text        PRIMARY KEY,
    lower_bound timestamptz NOT NULL,
    upper_bound timestamptz NOT NULL,
    CHECK (lower_bound < upper_bound)
);

-- Creates the archive partition that holds `at` if there is none: [lower, upper) aligned to
-- `width` (UTC epoch multiples), clipped so it never overlaps an existing partition (relays
-- configured with different retentions may ask for different widths). Returns true if it created
-- one. SECURITY DEFINER so that the relay's role needs no CREATE privilege; lock_timeout so that
-- a long reader of the archive delays the creation, never the relay (which creates partitions
-- ahead of time and retries).
CREATE FUNCTION outbox.archive_ensure_partition(at timestamptz, width interval)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
SET datestyle = 'ISO, YMD'
SET lock_timeout = '200ms'
AS $$
DECLARE
    w   double precision := extract(epoch FROM width);
    lo  timestamptz;
    hi  timestamptz;
    nm  text;
BEGIN
    IF at IS NULL OR w IS NULL OR w < 1 THEN
        RAISE EXCEPTION 'outbox.archive_ensure_partition: need a time and a width of at least 1 second'
            USING ERRCODE = '22023';
    END IF;
    -- One creator at a time in this database (key class 0x0B0C5E1D, see pg_outbox_store.hpp).
    PERFORM pg_advisory_xact_lock(185359901, 1);
    IF EXISTS (SELECT 1 FROM outbox.archive_partitions p WHERE p.lower_bound <= at AND at < p.upper_bound) THEN
        RETURN false;
    END IF;
    lo := to_timestamp(floor(extract(epoch FROM at) / w) * w);
    hi := lo + make_interval(secs => w);
    -- No partition holds `at`, so every partition lies wholly below or wholly above it.
    lo := greatest(lo, (SELECT max(p.upper_bound) FROM outbox.archive_partitions p WHERE p.upper_bound <= at));
    hi := least(hi, (SELECT min(p.lower_bound) FROM outbox.archive_partitions p WHERE p.lower_bound > at));
    nm := 'events_archive_' || to_char(lo, 'YYYYMMDD"t"HH24MISS');
    EXECUTE format('CREATE TABLE outbox.%I PARTITION OF outbox.events_archive FOR VALUES FROM (%L) TO (%L)',
                   nm, lo, hi);
    INSERT INTO outbox.archive_partitions (name, lower_bound, upper_bound) VALUES (nm, lo, hi);
    RETURN true;
END
$$;

-- Drops the oldest archive partition whose rows were all published before `cutoff`; returns its
-- name and its row count as last estimated by (auto)vacuum/analyze (no count(*) scan), or no row
-- if there is none. One partition per call, so a lock timeout only postpones that one.
CREATE FUNCTION outbox.archive_drop_oldest(cutoff timestamptz)
RETURNS TABLE (name text, rows_estimate bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '200ms'
AS $$
DECLARE
    v_name text;
    v_rows bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(185359901, 1);
    SELECT p.name INTO v_name FROM outbox.archive_partitions p
    WHERE p.upper_bound <= cutoff ORDER BY p.lower_bound LIMIT 1;
    IF v_name IS NULL THEN
        RETURN;
    END IF;
    SELECT greatest(c.reltuples, 0)::bigint INTO v_rows
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'outbox' AND c.relname = v_name;
    EXECUTE format('DROP TABLE IF EXISTS outbox.%I', v_name);
    DELETE FROM outbox.archive_partitions p WHERE p.name = v_name;
    name := v_name;
    rows_estimate := coalesce(v_rows, 0);
    RETURN NEXT;
END
$$;

REVOKE EXECUTE ON FUNCTION outbox.archive_ensure_partition(timestamptz, interval) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION outbox.archive_drop_oldest(timestamptz) FROM PUBLIC;

-- Every event of this outbox, published or not, in one place (reconcile and the invariant checker
-- read this). Columns of outbox.events except `partition`; archived rows have no last_error,
-- next_attempt_at or parked_at (a parked row stays in outbox.events until it is published).
CREATE VIEW outbox.all_events AS
SELECT position, event_id, source, aggregate_type, aggregate_id, sequence, event_type, payload, headers,
       occurred_at, published_at, attempts, last_error, next_attempt_at, parked_at
FROM outbox.events
UNION ALL
SELECT position, event_id, source, aggregate_type, aggregate_id, sequence, event_type, payload, headers,
       occurred_at, published_at, attempts, NULL::text, NULL::timestamptz, NULL::timestamptz
FROM outbox.events_archive;

COMMENT ON VIEW outbox.all_events IS
    'Every event of this outbox: unpublished and parked rows (outbox.events) and published ones (outbox.events_archive).';
COMMENT ON TABLE outbox.events_archive IS
    'Published events, moved here by the relay after the broker confirmed them; partitions dropped after the retention.';
