-- Least-privilege grants in a PRODUCER database (crm, mes, ...). Idempotent: run after every
-- `outbox-relay install` (an upgrade may replace emit() and drop its SECURITY DEFINER).
-- Run as the owner of schema outbox (the role that ran `outbox-relay install`) or a superuser:
--   psql "postgresql://outbox_owner:...@host/crm" -v ON_ERROR_STOP=1 -f docker/postgres/grants-producer.sql
-- Needs the roles outbox_producer, outbox_relay, outbox_reader (docs/security.md).
\set ON_ERROR_STOP on
BEGIN;

-- Nobody gets anything by default.
REVOKE ALL ON SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA outbox FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA outbox FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA outbox FROM PUBLIC;

-- Producers: EXECUTE on outbox.emit and nothing else. emit() writes outbox.events and
-- outbox.aggregate_sequences, so it runs with its owner's rights (SECURITY DEFINER) and a
-- fixed search_path (every object in it is schema-qualified or in pg_catalog).
-- Proposed for the schema itself in a next migration; until then this statement does it.
ALTER FUNCTION outbox.emit(text, text, text, text, jsonb, jsonb)
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
GRANT USAGE ON SCHEMA outbox TO outbox_producer;
GRANT EXECUTE ON FUNCTION outbox.emit(text, text, text, text, jsonb, jsonb) TO outbox_producer;

-- The relay: read pending rows, mark them published/failed/parked, purge old published rows,
-- read the schema version. Advisory locks, pg_locks and LISTEN need no grant.
GRANT USAGE ON SCHEMA outbox TO outbox_relay;
GRANT SELECT, UPDATE, DELETE ON outbox.events TO outbox_relay;
GRANT SELECT ON outbox.schema_migrations TO outbox_relay;
GRANT EXECUTE ON FUNCTION outbox.partition_count() TO outbox_relay;
-- Outbox schema >= 3: a confirmed row moves to outbox.events_archive (INSERT); archive partitions
-- are created and dropped through SECURITY DEFINER functions (no CREATE privilege needed).
GRANT INSERT ON outbox.events_archive TO outbox_relay;
GRANT EXECUTE ON FUNCTION outbox.archive_ensure_partition(timestamptz, interval),
                          outbox.archive_drop_oldest(timestamptz) TO outbox_relay;
-- Outbox schema >= 4: each relay connection keeps its wake-up flag (outbox.notify = idle) and
-- removes the rows of relay sessions that are gone. emit() reads the flags with its owner's
-- rights, so producers need nothing more.
GRANT SELECT, INSERT, UPDATE, DELETE ON outbox.relay_wakeups TO outbox_relay;

-- Reconcile (order-status-service reconcile --source-db): read-only.
GRANT USAGE ON SCHEMA outbox TO outbox_reader;
GRANT SELECT ON outbox.events, outbox.schema_migrations TO outbox_reader;
GRANT SELECT ON outbox.events_archive, outbox.all_events TO outbox_reader;  -- schema >= 3: every event

COMMIT;
