#!/usr/bin/env bash
# First start of the compose PostgreSQL (/docker-entrypoint-initdb.d): the two producer
# databases (crm, mes), the service's database (oss), and one role per job. Idempotent
# (existing roles keep their passwords, existing databases stay), so it can also be run by hand
# against any cluster as a superuser: PGHOST=... PGPORT=... PGPASSWORD=... POSTGRES_USER=postgres.
# Grants on tables come later (docker/postgres/grants-*.sql, after install/migrate), because
# `outbox-relay install` and `order-status-service migrate` create the tables.
#
#   role            login  what for
#   outbox_owner    yes    CREATE on crm and mes; runs `outbox-relay install`, so owns schema outbox
#   outbox_relay    yes    `outbox-relay run` (read/mark/delete outbox rows, nothing else)
#   outbox_producer no     may only call outbox.emit(); granted to the CRM/MES application roles
#   crm_app/mes_app yes    example application roles of the producers (members of outbox_producer)
#   outbox_reader   no     SELECT on outbox.events (reconcile reads the producers' outboxes)
#   oss_owner       yes    owns database oss; runs `order-status-service migrate`
#   oss_service     yes    `order-status-service run|escalate|stuck|dlq|reconcile`
#   oss_readonly    yes    SELECT on the service's tables (reporting, support)
#
# Environment: POSTGRES_USER; the *_PASSWORD variables below (docker-compose.yml passes them);
# CRM_DB, MES_DB, OSS_DB (default crm, mes, oss).
set -euo pipefail
crm="${CRM_DB:-crm}" mes="${MES_DB:-mes}" oss="${OSS_DB:-oss}"
psql=(psql -v ON_ERROR_STOP=1 -qAt --username "${POSTGRES_USER:-postgres}" --no-password)

"${psql[@]}" --dbname postgres \
  -v outbox_owner_pw="${OUTBOX_OWNER_PASSWORD:?}" -v outbox_relay_pw="${OUTBOX_RELAY_PASSWORD:?}" \
  -v crm_app_pw="${CRM_APP_PASSWORD:?}" -v mes_app_pw="${MES_APP_PASSWORD:?}" \
  -v oss_owner_pw="${OSS_OWNER_PASSWORD:?}" -v oss_service_pw="${OSS_SERVICE_PASSWORD:?}" \
  -v oss_readonly_pw="${OSS_READONLY_PASSWORD:?}" \
  -v crm="$crm" -v mes="$mes" -v oss="$oss" <<'SQL'
SET client_min_messages TO warning;
SELECT format('CREATE ROLE %I %s', r.name, r.spec)
  FROM (VALUES ('outbox_owner',    format('LOGIN PASSWORD %L', :'outbox_owner_pw')),
               ('outbox_relay',    format('LOGIN PASSWORD %L', :'outbox_relay_pw')),
               ('outbox_producer', 'NOLOGIN'),
               ('outbox_reader',   'NOLOGIN'),
               ('crm_app',         format('LOGIN PASSWORD %L', :'crm_app_pw')),
               ('mes_app',         format('LOGIN PASSWORD %L', :'mes_app_pw')),
               ('oss_owner',       format('LOGIN PASSWORD %L', :'oss_owner_pw')),
               ('oss_service',     format('LOGIN PASSWORD %L', :'oss_service_pw')),
               ('oss_readonly',    format('LOGIN PASSWORD %L', :'oss_readonly_pw'))) AS r(name, spec)
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.name)
\gexec
GRANT outbox_producer TO crm_app, mes_app;
GRANT outbox_reader TO oss_service;

SELECT format('CREATE DATABASE %I', d) FROM unnest(ARRAY[:'crm', :'mes']) AS d
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = d)
\gexec
SELECT format('CREATE DATABASE %I OWNER oss_owner', :'oss')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'oss')
\gexec
REVOKE ALL ON DATABASE :"crm", :"mes", :"oss" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"crm" TO outbox_owner, outbox_relay, crm_app, oss_service;
GRANT CONNECT ON DATABASE :"mes" TO outbox_owner, outbox_relay, mes_app, oss_service;
-- `outbox-relay install` creates schema outbox (CREATE SCHEMA IF NOT EXISTS needs CREATE on the
-- database even when the schema exists); outbox_owner then owns it and everything in it.
GRANT CREATE ON DATABASE :"crm", :"mes" TO outbox_owner;
GRANT CONNECT ON DATABASE :"oss" TO oss_service, oss_readonly;
SQL

for db in "$crm" "$mes" "$oss"; do
  "${psql[@]}" --dbname "$db" -c "REVOKE CREATE ON SCHEMA public FROM PUBLIC;"
done
echo "[init-databases] databases $crm, $mes, $oss and their roles are ready"
