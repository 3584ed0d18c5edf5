-- Least-privilege grants in the SERVICE database (oss). Idempotent: run after every
-- `order-status-service migrate`, as the database owner (the role that ran migrate):
--   psql "postgresql://oss_owner:...@host/oss" -v ON_ERROR_STOP=1 -f docker/postgres/grants-service.sql
-- Needs the roles oss_service and oss_readonly (docs/security.md).
\set ON_ERROR_STOP on
BEGIN;

REVOKE ALL ON SCHEMA oss, outbox FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA oss, outbox FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA oss, outbox FROM PUBLIC;

-- The service (run, escalate, stuck, dlq, reconcile): data, not DDL. It writes its own outbox
-- (notifications) through outbox.emit and relays it, so it needs the outbox tables too.
GRANT USAGE ON SCHEMA oss, outbox TO oss_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA oss, outbox TO oss_service;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA oss, outbox TO oss_service;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA oss, outbox TO oss_service;

-- Reporting/support: read-only.
GRANT USAGE ON SCHEMA oss TO oss_readonly;
GRANT SELECT ON ALL TABLES IN SCHEMA oss TO oss_readonly;

-- Tables a later migration creates (as this same owner) get the same grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA oss GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO oss_service;
ALTER DEFAULT PRIVILEGES IN SCHEMA outbox GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO oss_service;
ALTER DEFAULT PRIVILEGES IN SCHEMA oss, outbox GRANT USAGE, SELECT ON SEQUENCES TO oss_service;
ALTER DEFAULT PRIVILEGES IN SCHEMA oss, outbox GRANT EXECUTE ON FUNCTIONS TO oss_service;
ALTER DEFAULT PRIVILEGES IN SCHEMA oss GRANT SELECT ON TABLES TO oss_readonly;

COMMIT;
