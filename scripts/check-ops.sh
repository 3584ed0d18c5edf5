#!/usr/bin/env bash
# Checks the deployment side without a Docker engine (CI):
#   1. compose     docker-compose -f docker/docker-compose.yml config -q
#   2. rules       promtool check config/rules, promtool test rules (every alert has a test)
#   3. grafana     every dashboard and provisioning JSON parses (python3 -m json.tool), and
#                  every metric a panel or alert uses is one the programs export or is CONTRACT-level
#   4. shell       bash -n on the scripts the images and units run; systemd units are complete
#   5. build       docker/build.sh: the Dockerfile's own build step (scripts/install-deps.sh +
#                  cmake configure/build + runtime package list) into a throwaway directory
#   6. roles       only when a throwaway PostgreSQL + RabbitMQ are given (OSS_TEST_PG_URL_BASE and
#                  OSS_TEST_AMQP_URL, as scripts/test.sh exports): the compose init script and
#                  docker/postgres/grants-*.sql, then emit as the producer role, relay as the relay
#                  role and consume as the service role, and what each role must NOT be able to do
#
#   scripts/check-ops.sh              all of the above
#   scripts/check-ops.sh --no-build   skip 5 (fast: ~5 s)
# Environment: BUILD_DIR: reuse this configured build directory for step 5 (e.g. build);
#              otherwise a fresh one in a temporary directory (a full build, several minutes).
# Exits non-zero when any check fails (all checks run; failures are listed at the end).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
do_build=1
for a in "$@"; do
  case "$a" in
    --no-build) do_build=0 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check-ops: unknown option $a" >&2; exit 2 ;;
  esac
done

failures=()
log() { printf '[check-ops] %s\n' "$*" >&2; }
step() {  # step NAME COMMAND...: runs it, records a failure, never stops the script
  local name="$1"; shift
  local t0=$SECONDS
  if "$@"; then log "ok   $name ($((SECONDS - t0)) s)"; else log "FAIL $name"; failures+=("$name"); fi
}
need() {
  command -v "$1" >/dev/null && return 0
  log "missing $1: run scripts/install-deps.sh --ops (as root)"; return 1
}

tmp=$(mktemp -d /tmp/check-ops.XXXXXX)
cleanup() {
  [ -n "${svc_pid:-}" ] && kill "$svc_pid" 2>/dev/null
  [ -n "${relay_pid:-}" ] && kill "$relay_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

# ---- 1. compose ----------------------------------------------------------------------------
check_compose() {
  need docker-compose || return 1
  docker-compose -f docker/docker-compose.yml config -q || return 1
  # The services the issue asks for are all there.
  local services
  services=$(docker-compose -f docker/docker-compose.yml config --services) || return 1
  local want missing=0
  for want in postgres rabbitmq outbox-install-crm outbox-install-mes oss-migrate db-grants \
              relay-crm relay-mes oss-1 oss-2 escalation-cron prometheus grafana; do
    grep -qx "$want" <<<"$services" || { log "compose: service $want missing"; missing=1; }
  done
  return "$missing"
}

# ---- 2. Prometheus -------------------------------------------------------------------------
check_rules() {
  need promtool || return 1
  promtool check rules docker/prometheus/alerts.yml || return 1
  # promtool check config resolves rule_files relative to the config file.
  promtool check config docker/prometheus/prometheus.yml >/dev/null || return 1
  (cd docker/prometheus && promtool test rules alerts_test.yml) || return 1
  # Every alert in the rules file is exercised by at least one test case.
  python3 - <<'PY'
import re, sys
rules = open("docker/prometheus/alerts.yml").read()
tests = open("docker/prometheus/alerts_test.yml").read()
alerts = set(re.findall(r"^\s*- alert:\s*(\S+)", rules, re.M))
tested = set(re.findall(r"alertname:\s*(\S+)", tests))
missing = sorted(alerts - tested)
if missing:
    print("[check-ops] alerts without a promtool test:", ", ".join(missing)); sys.exit(1)
print(f"[check-ops] {len(alerts)} alerts, all tested")
PY
}

# ---- 3. Grafana ----------------------------------------------------------------------------
check_grafana() {
  local f rc=0
  for f in docker/grafana/dashboards/*.json; do
    python3 -m json.tool "$f" >/dev/null || { log "invalid JSON: $f"; rc=1; }
  done
  python3 - <<'PY' || rc=1
import json, re, sys, glob
# Metric families the code exports today, and the CONTRACT-level ones other work adds.
known = {
  "outbox_relay_backlog_rows", "outbox_relay_oldest_unpublished_age_seconds", "outbox_relay_published_total",
  "outbox_relay_publish_failures_total", "outbox_relay_errors_total", "outbox_relay_parked_rows",
  "outbox_relay_parked_total", "outbox_relay_confirm_latency_seconds", "outbox_relay_emit_to_confirm_seconds",
  "outbox_relay_partitions_owned", "outbox_relay_batch_size", "outbox_relay_purged_rows_total",
  "outbox_relay_republished_after_fault_total",
  "oss_events_total", "oss_dead_letters_total", "oss_event_end_to_end_seconds", "oss_batch_processing_seconds",
  "oss_batch_size", "oss_broker_connected", "oss_database_retries_total", "oss_broker_errors_total",
  "oss_early_parked_total", "oss_early_unparked_total", "oss_early_retries_total", "oss_early_retries_in_place_total",
  "oss_early_sweep_failures_total",
  "oss_early_parked", "oss_early_parked_oldest_seconds",
  # forthcoming (CONTRACT-level; see docs/configuration.md "Metrics")
  "oss_escalations_open", "oss_orders_due", "oss_sla_scan_seconds", "oss_http_requests_total",
  "oss_dead_letters_open", "oss_consumer_lag_messages",
  "up",
}
suffixes = ("_bucket", "_sum", "_count")
bad = []
for path in glob.glob("docker/grafana/dashboards/*.json"):
    dash = json.load(open(path))
    for panel in dash.get("panels", []):
        for t in panel.get("targets", []):
            for name in re.findall(r"\b((?:oss|outbox_relay)_[a-z_]+|up)\b", t.get("expr", "")):
                base = name
                for s in suffixes:
                    if base.endswith(s) and base[: -len(s)] in known:
                        base = base[: -len(s)]
                if base not in known:
                    bad.append(f"{path}: panel '{panel.get('title')}': unknown metric {name}")
# The alert rules may only use the same metrics.
for name in re.findall(r"\b((?:oss|outbox_relay)_[a-z_]+)\b", open("docker/prometheus/alerts.yml").read()):
    base = name
    for s in suffixes:
        if base.endswith(s) and base[: -len(s)] in known:
            base = base[: -len(s)]
    if base not in known:
        bad.append(f"docker/prometheus/alerts.yml: unknown metric {name}")
for b in bad: print("[check-ops]", b)
sys.exit(1 if bad else 0)
PY
  if python3 -c 'import yaml' 2>/dev/null; then
    for f in docker/grafana/provisioning/*/*.yml docker/prometheus/*.yml docker/rabbitmq/*.conf; do
      case "$f" in *.conf) continue ;; esac
      python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' "$f" || { log "invalid YAML: $f"; rc=1; }
    done
  fi
  return "$rc"
}

# ---- 4. scripts and units --------------------------------------------------------------------
check_shell_and_units() {
  local f rc=0
  for f in docker/build.sh docker/healthcheck.sh docker/postgres/init-databases.sh scripts/check-ops.sh; do
    bash -n "$f" || { log "syntax error: $f"; rc=1; }
    [ -x "$f" ] || { log "not executable: $f"; rc=1; }
  done
  for f in deploy/systemd/*.service deploy/systemd/*.timer; do
    grep -q '^\[Unit\]' "$f" && grep -q '^\[Install\]' "$f" || { log "$f: needs [Unit] and [Install]"; rc=1; }
    grep -q '^\[Timer\]\|^\[Service\]' "$f" || { log "$f: needs [Service] or [Timer]"; rc=1; }
  done
  if command -v systemd-analyze >/dev/null && [ -d /run/systemd/system ]; then
    systemd-analyze verify deploy/systemd/*.service deploy/systemd/*.timer || rc=1
  fi
  return "$rc"
}

# ---- 5. the Dockerfile's build step ----------------------------------------------------------
check_build() {
  # docker/build.sh must be what the Dockerfile runs.
  grep -q '^RUN scripts/install-deps.sh' docker/Dockerfile && grep -q 'docker/build.sh /out' docker/Dockerfile ||
    { log "docker/Dockerfile no longer runs scripts/install-deps.sh + docker/build.sh"; return 1; }
  # Every path the build stage COPYs from the context exists (a renamed directory breaks the image).
  local src
  for src in $(awk '/^COPY / && !/--from=/ {for (i = 2; i < NF; i++) print $i}' docker/Dockerfile); do
    [ -e "$src" ] || { log "docker/Dockerfile copies $src, which does not exist"; return 1; }
  done
  local build_dir="${BUILD_DIR:-$tmp/build}"
  BUILD_DIR="$build_dir" docker/build.sh "$tmp/out" >"$tmp/build.log" 2>&1 ||
    { tail -n 40 "$tmp/build.log" >&2; return 1; }
  local p rc=0
  while read -r p; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      { log "runtime package $p is not a Debian package here"; rc=1; }
  done <"$tmp/out/runtime-packages.txt"
  for p in libpq5 librabbitmq4; do
    grep -qx "$p" "$tmp/out/runtime-packages.txt" || { log "runtime packages lack $p"; rc=1; }
  done
  "$tmp/out/usr/local/bin/outbox-relay" run --help >/dev/null && "$tmp/out/usr/local/bin/order-status-service" run --help >/dev/null || rc=1
  return "$rc"
}

# ---- 6. least-privilege roles against real servers -----------------------------------------
check_roles() {
  local base="$OSS_TEST_PG_URL_BASE" amqp="$OSS_TEST_AMQP_URL" bin="${BIN_DIR:-${BUILD_DIR:-build}/bin}"
  [ -x "$bin/outbox-relay" ] || bin="$tmp/out/usr/local/bin"
  [ -x "$bin/outbox-relay" ] || { log "roles: no built programs (BIN_DIR)"; return 1; }
  local hostport="${base#*@}" sfx="opscheck$$"
  local crm="${sfx}_crm" mes="${sfx}_mes" oss="${sfx}_oss"
  local pw="ops-check-pw"
  u() { echo "postgresql://$1:$pw@$hostport/$2"; }
  (
    export PGHOST="${hostport%%:*}" PGPORT="${hostport##*:}" PGPASSWORD="${OSS_TEST_PG_PASSWORD:-}" POSTGRES_USER=postgres
    export OUTBOX_OWNER_PASSWORD=$pw OUTBOX_RELAY_PASSWORD=$pw CRM_APP_PASSWORD=$pw MES_APP_PASSWORD=$pw \
           OSS_OWNER_PASSWORD=$pw OSS_SERVICE_PASSWORD=$pw OSS_READONLY_PASSWORD=$pw CRM_DB=$crm MES_DB=$mes OSS_DB=$oss
    # Roles already present (an earlier run) keep their password; set it for this check.
    docker/postgres/init-databases.sh >/dev/null &&
    for r in outbox_owner outbox_relay crm_app mes_app oss_owner oss_service oss_readonly; do
      psql -U postgres -qAt -d postgres -c "ALTER ROLE $r PASSWORD '$pw'" || exit 1
    done
  ) || return 1
  "$bin/outbox-relay" install --db "$(u outbox_owner "$crm")" 2>"$tmp/roles.log" || { cat "$tmp/roles.log" >&2; return 1; }
  "$bin/order-status-service" migrate --db "$(u oss_owner "$oss")" 2>>"$tmp/roles.log" || { cat "$tmp/roles.log" >&2; return 1; }
  psql "$(u outbox_owner "$crm")" -qAt -v ON_ERROR_STOP=1 -f docker/postgres/grants-producer.sql >/dev/null || return 1
  psql "$(u outbox_owner "$crm")" -qAt -v ON_ERROR_STOP=1 -f docker/postgres/grants-producer.sql >/dev/null || return 1  # idempotent
  psql "$(u oss_owner "$oss")" -qAt -v ON_ERROR_STOP=1 -f docker/postgres/grants-service.sql >/dev/null || return 1

  local rc=0
  allowed() { psql "$1" -qAt -v ON_ERROR_STOP=1 -c "$2" >/dev/null 2>"$tmp/psql.err" || { log "roles: should be allowed: $2 ($(head -1 "$tmp/psql.err"))"; rc=1; }; }
  denied()  { if psql "$1" -qAt -v ON_ERROR_STOP=1 -c "$2" >/dev/null 2>&1; then log "roles: should be denied: $2"; rc=1; fi; }
  local app relay
  app=$(u crm_app "$crm") relay=$(u outbox_relay "$crm")
  allowed "$app" "SELECT outbox.emit(source => 'crm', aggregate_type => 'order', aggregate_id => 'ORD-OPS-1', event_type => 'order.status_changed', payload => '{\"status\":\"SUBMITTED\"}'::jsonb)"
  denied "$app" "SELECT count(*) FROM outbox.events"
  denied "$app" "INSERT INTO outbox.events (event_id) SELECT event_id FROM outbox.events WHERE false"
  denied "$app" "DELETE FROM outbox.aggregate_sequences"
  denied "$app" "SELECT outbox.partition_of('crm', 'x')"
  denied "$relay" "SELECT outbox.emit('crm', 'order', 'X', 'order.status_changed', '{}'::jsonb)"
  denied "$relay" "INSERT INTO outbox.events (event_id) SELECT event_id FROM outbox.events WHERE false"
  denied "$relay" "CREATE TABLE outbox.x (i int)"
  denied "$(u oss_service "$oss")" "CREATE TABLE oss.x (i int)"
  denied "$(u oss_readonly "$oss")" "DELETE FROM oss.orders"
  allowed "$(u oss_readonly "$oss")" "SELECT count(*) FROM oss.orders"
  allowed "$(u oss_service "$crm")" "SELECT count(*) FROM outbox.events"  # reconcile's read
  allowed "$(u oss_service "$crm")" "SELECT count(*) FROM outbox.all_events"  # reconcile's read (schema >= 3)
  allowed "$relay" "SELECT outbox.archive_ensure_partition(now(), interval '1 hour')"
  allowed "$relay" "INSERT INTO outbox.relay_wakeups (pid) VALUES (pg_backend_pid()) ON CONFLICT (pid) DO UPDATE SET sleeping = false"  # schema >= 4
  denied "$app" "SELECT count(*) FROM outbox.relay_wakeups"
  allowed "$app" "SET outbox.notify = idle; SELECT outbox.emit('crm', 'order', 'ORD-OPS-2', 'order.status_changed', '{\"status\":\"SUBMITTED\"}'::jsonb)"

  # The programs themselves under these roles: the event reaches oss.orders.
  "$bin/order-status-service" run --db "$(u oss_service "$oss")" --amqp "$amqp" --http 127.0.0.1:0 \
    --exchange "$sfx.events" --queue "$sfx.events" --dlq "$sfx.dlq" --relay-notifications false >"$tmp/service.log" 2>&1 &
  svc_pid=$!
  "$bin/outbox-relay" run --db "$relay" --amqp "$amqp" --exchange "$sfx.events" --metrics 127.0.0.1:0 >"$tmp/relay.log" 2>&1 &
  relay_pid=$!
  local status=""
  for _ in $(seq 1 60); do
    status=$(psql "$(u oss_readonly "$oss")" -qAt -c "SELECT status FROM oss.orders WHERE order_id = 'ORD-OPS-1'" 2>/dev/null)
    [ -n "$status" ] && break
    kill -0 "$svc_pid" 2>/dev/null && kill -0 "$relay_pid" 2>/dev/null || break
    sleep 0.5
  done
  if [ "$status" != SUBMITTED ]; then
    log "roles: the event did not reach oss.orders under least-privilege roles"; tail -n 15 "$tmp/service.log" "$tmp/relay.log" >&2; rc=1
  fi
  if grep -q "cannot keep a wake-up flag" "$tmp/relay.log"; then
    log "roles: the relay role cannot write outbox.relay_wakeups"; grep "wake-up" "$tmp/relay.log" >&2; rc=1
  fi
  kill "$svc_pid" "$relay_pid" 2>/dev/null; wait "$svc_pid" "$relay_pid" 2>/dev/null; svc_pid="" relay_pid=""
  # Leave no test databases or queues behind (roles stay: they are cluster-wide and reused).
  PGPASSWORD="${OSS_TEST_PG_PASSWORD:-}" psql "$base/postgres" -qAt -c "DROP DATABASE IF EXISTS $crm" -c "DROP DATABASE IF EXISTS $mes" -c "DROP DATABASE IF EXISTS $oss" >/dev/null 2>&1 || true
  return "$rc"
}

step compose check_compose
step "prometheus rules" check_rules
step grafana check_grafana
step "scripts and units" check_shell_and_units
if [ "$do_build" = 1 ]; then step "dockerfile build steps" check_build; else log "skip dockerfile build steps (--no-build)"; fi
if [ -n "${OSS_TEST_PG_URL_BASE:-}" ] && [ -n "${OSS_TEST_AMQP_URL:-}" ]; then
  step "least-privilege roles" check_roles
else
  log "skip least-privilege roles (no OSS_TEST_PG_URL_BASE/OSS_TEST_AMQP_URL; scripts/servers.sh start gives them)"
fi

if [ "${#failures[@]}" -gt 0 ]; then
  log "FAILED: ${failures[*]}"; exit 1
fi
log "all ops checks passed"
