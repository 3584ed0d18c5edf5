#!/usr/bin/env bash
# The dashboard's browser test: starts a fresh order-status-service (with API tokens) and an
# outbox relay on the test servers, seeds a few orders, runs dashboard.test.js in headless
# Chromium against them, and stops what it started.
#
#   tests/browser/run.sh [BUILD_DIR]          (default: build)
#
# Needs: OSS_TEST_PG_URL_BASE and OSS_TEST_AMQP_URL (scripts/test.sh exports them; or
# `source .run/servers/env`), the built programs in BUILD_DIR/bin, psql, node >= 18 and npm
# (playwright-core is installed into tests/browser/node_modules on first use), and Debian's
# chromium (/usr/bin/chromium, or CHROMIUM=...).
# The screenshot goes to $SCREENSHOT (default BUILD_DIR/browser/dashboard.png); to refresh the
# one in the docs: SCREENSHOT=docs/dashboard.png tests/browser/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "$root" && realpath -m "${1:-${BUILD_DIR:-build}}")
log() { printf '[browser] %s\n' "$*" >&2; }
fail() { log "$*"; exit 1; }

: "${OSS_TEST_PG_URL_BASE:?set it (source .run/servers/env, or run through scripts/test.sh)}"
: "${OSS_TEST_AMQP_URL:?set it (source .run/servers/env, or run through scripts/test.sh)}"
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || fail "no Chromium at $chromium (apt-get install -y chromium, or set CHROMIUM)"
command -v node >/dev/null || fail "node is not installed"
command -v psql >/dev/null || fail "psql is not installed"
for p in order-status-service outbox-relay; do [ -x "$build/bin/$p" ] || fail "$build/bin/$p is missing; build first"; done
if [ ! -d "$here/node_modules/playwright-core" ]; then
  log "installing playwright-core (npm ci)"
  (cd "$here" && npm ci --no-audit --no-fund >/dev/null)
fi

id="b$(date +%s)$$"
work=$(mktemp -d "${TMPDIR:-/tmp}/oss-browser-XXXXXX")
crm_db="$OSS_TEST_PG_URL_BASE/crm_$id"
oss_db="$OSS_TEST_PG_URL_BASE/oss_$id"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

psql -qX "$OSS_TEST_PG_URL_BASE/postgres" -c "CREATE DATABASE crm_$id" -c "CREATE DATABASE oss_$id" >/dev/null
"$build/bin/outbox-relay" install --db "$crm_db" >"$work/install.log" 2>&1 || fail "outbox-relay install: $(cat "$work/install.log")"
"$build/bin/order-status-service" migrate --db "$oss_db" >"$work/migrate.log" 2>&1 || fail "migrate: $(cat "$work/migrate.log")"

# An operator token; the tokens file holds only its SHA-256.
token="browser-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
printf '[{"name": "ops-browser", "role": "operator", "sha256": "%s"}]\n' \
  "$(printf %s "$token" | sha256sum | cut -d' ' -f1)" >"$work/tokens.json"

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
metrics_port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
names=(--exchange "orders.events.$id" --queue "order-status-service.events.$id" --dlq "order-status-service.dlq.$id"
  --notifications-tail "order-status-service.notifications.$id")
"$build/bin/order-status-service" run --db "$oss_db" --amqp "$OSS_TEST_AMQP_URL" --http "127.0.0.1:$port" \
  --tokens "$work/tokens.json" "${names[@]}" --notifications-exchange "orders.notifications.$id" --early-retry-delays 10m \
  >"$work/service.log" 2>&1 &
pids+=($!)
"$build/bin/outbox-relay" run --db "$crm_db" --amqp "$OSS_TEST_AMQP_URL" --exchange "orders.events.$id" \
  --metrics "127.0.0.1:$metrics_port" >"$work/relay.log" 2>&1 &
pids+=($!)
url="http://127.0.0.1:$port"
for _ in $(seq 1 150); do
  curl -fsS "$url/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$url/readyz" >/dev/null || fail "the service did not get ready: $(tail -20 "$work/service.log")"

emit() {  # source order status
  psql -qX "$crm_db" -c "SELECT outbox.emit(source => '$1', aggregate_type => 'order', aggregate_id => '$2',
    event_type => 'order.status_changed', payload => '{\"status\": \"$3\"}'::jsonb)" >/dev/null
}
log "seeding orders"
for n in 1001 1002 1003 1004 1005 1006; do emit crm "ORD-$n" SUBMITTED; done
emit crm ORD-1007 SUBMITED  # a typo: dead-lettered (unknown_status)
emit mes ORD-1008 PRICE_CALCULATED  # its creation never comes: parked as early (retried in 10 min)
api() { curl -fsS -H "Authorization: Bearer $token" "$url$1"; }
for _ in $(seq 1 150); do
  [ "$(api /v1/stats | node -pe 'const s=JSON.parse(require("fs").readFileSync(0));s.orders+"/"+s.dead_letters_open')" = "6/1" ] && break
  sleep 0.2
done
[ "$(api /v1/stats | node -pe 'const s=JSON.parse(require("fs").readFileSync(0));s.orders+"/"+s.dead_letters_open')" = "6/1" ] \
  || fail "seed events did not arrive: $(api /v1/stats) $(tail -20 "$work/service.log")"
for _ in $(seq 1 150); do
  [ "$(api /v1/early-events | node -pe 'JSON.parse(require("fs").readFileSync(0)).count')" = "1" ] && break
  sleep 0.2
done
[ "$(api /v1/early-events | node -pe 'JSON.parse(require("fs").readFileSync(0)).count')" = "1" ] \
  || fail "the early seed event was not parked: $(api /v1/early-events) $(tail -20 "$work/service.log")"
# Two orders have been waiting for a price far too long (as if submitted yesterday).
psql -qX "$oss_db" -c "UPDATE oss.orders SET status_entered_at = now() - interval '26 hours',
  sla_due_at = now() - interval '25 hours' WHERE order_id = 'ORD-1001';
  UPDATE oss.orders SET status_entered_at = now() - interval '3 hours 20 minutes',
  sla_due_at = now() - interval '2 hours 20 minutes' WHERE order_id = 'ORD-1002'" >/dev/null

# What the test runs to make a producer emit a new order while the page watches.
{
  printf 'psql -qX %q -c %q >/dev/null\n' "$crm_db" \
    "SELECT outbox.emit(source => 'crm', aggregate_type => 'order', aggregate_id => 'ORD-2001', event_type => 'order.status_changed', payload => '{\"status\": \"SUBMITTED\"}'::jsonb)"
} >"$work/emit.sh"

log "running the dashboard test against $url"
status=0
OSS_URL="$url" OSS_TOKEN="$token" CHROMIUM="$chromium" \
  EMIT_CMD="bash $work/emit.sh" \
  EMIT_ORDER_ID=ORD-2001 EXPECT_ORDERS=6 EXPECT_STUCK=2 CORRECT_ORDER=ORD-1003 WAITING_ORDER=ORD-1008 \
  SCREENSHOT=$(realpath -m "${SCREENSHOT:-$build/browser/dashboard.png}") \
  node "$here/dashboard.test.js" || status=$?
if [ "$status" -ne 0 ]; then
  log "service log (last 30 lines):"; tail -30 "$work/service.log" >&2
  exit "$status"
fi
if grep -q "$token" "$work/service.log" "$work/relay.log"; then fail "the token appeared in a log"; fi
log "passed"
