#!/usr/bin/env bash
# Run the product end to end on this machine: throwaway PostgreSQL + RabbitMQ, one outbox-relay
# per producer database (crm, mes), one order-status-service, and the demo producer emitting
# realistic order traffic through outbox.emit.
#
#   scripts/demo.sh [--orders N]   build, start everything, run the producer, print where to look;
#                                  then keep running until Ctrl-C / SIGTERM, which stops it all.
#                                  With CI=true or without a terminal: check that the last order
#                                  reached DELIVERED or CANCELLED, then stop everything and exit.
#   scripts/demo.sh --stop         stop a demo started earlier (only what it started).
#
# Environment: DEMO_ORDERS, DEMO_RATE (and the producer's other DEMO_* variables),
# OSS_DEMO_HTTP_PORT (the API's port; default 8080 when free, else any free port).
# Everything lives under .run/demo (servers, logs); nothing else is touched.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
dir="$root/.run/demo"
logs="$dir/logs"
bin="$root/build/bin"

log() { printf '[demo] %s\n' "$*"; }
die() { printf '[demo] error: %s\n' "$1" >&2; exit "${2:-1}"; }

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

free_port() {  # never the same port twice in this run (scripts/lib/free-port.py)
  python3 "$here/lib/free-port.py" "$dir/.ports"
}
port_is_free() {
  python3 -c 'import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}
# http_get URL: prints the body; exit status 0 only for HTTP 200.
http_get() {
  python3 -c 'import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e:
    sys.stdout.write(e.read().decode()); sys.exit(1)
except Exception as e:
    sys.stdout.write(str(e)); sys.exit(2)' "$1"
}
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$1"; }

# A recorded pid is only ever signalled while it still runs one of our programs (no pid reuse).
ours() {
  local pid="$1" want="$2"
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$want"
}

# Stops the programs recorded in $dir/pids (newest first: producer, relays, service), then the
# servers that scripts/servers.sh started in $dir.
stop_programs() {
  [ -f "$dir/pids" ] || return 0
  local name pid
  tac "$dir/pids" | while read -r name pid; do
    if ours "$pid" "$bin/"; then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 150); do ours "$pid" "$bin/" || break; sleep 0.1; done
      if ours "$pid" "$bin/"; then log "$name did not stop in 15s; killing it"; kill -KILL "$pid" 2>/dev/null || true; fi
    fi
  done
  rm -f "$dir/pids"
}
stop_all() {
  stop_programs
  if [ -f "$dir/pg/data/postmaster.pid" ] || [ -f "$dir/rabbit/rabbit.pid" ]; then
    log "stopping PostgreSQL and RabbitMQ ($dir)"
    "$here/servers.sh" stop "$dir" >/dev/null 2>&1 || log "warning: scripts/servers.sh stop $dir failed"
  fi
}

cmd_stop() {
  local pid
  pid=$(cat "$dir/demo.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && [ "$pid" != "$$" ] && ours "$pid" "demo.sh"; then
    log "asking the running demo (pid $pid) to stop"
    kill -TERM "$pid"
    for _ in $(seq 1 600); do ours "$pid" "demo.sh" || break; sleep 0.1; done
  fi
  rm -f "$dir/demo.pid"
  stop_all  # whatever a killed demo left behind (only what it recorded in $dir)
  log "stopped"
}

orders="${DEMO_ORDERS:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --stop) cmd_stop; exit 0 ;;
    --orders) [ $# -ge 2 ] || die "--orders needs a value" 2; orders="$2"; shift 2 ;;
    --orders=*) orders="${1#--orders=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" 2 ;;
  esac
done
[ -z "$orders" ] || [[ "$orders" =~ ^[0-9]+$ ]] || die "--orders: expected a number, got '$orders'" 2

interactive=1
if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ] || [ ! -t 0 ] || [ ! -t 1 ]; then interactive=0; fi

cd "$root"
if pid=$(cat "$dir/demo.pid" 2>/dev/null) && ours "$pid" "demo.sh"; then
  die "a demo is already running (pid $pid); stop it with scripts/demo.sh --stop" 2
fi
stop_all  # leftovers of a demo that was killed: only what it recorded in $dir

log "checking dependencies"
"$here/install-deps.sh"

log "building"
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build -G Ninja -DOSS_BUILD_TESTS=OFF -DOSS_BUILD_BENCH=OFF
fi
cmake --build build --target outbox-relay order-status-service demo-producer

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_all
  rm -f "$dir/demo.pid"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted; stopping"; exit 130' INT
trap 'log "terminated; stopping"; exit 143' TERM

log "starting PostgreSQL and RabbitMQ in $dir"
OSS_RABBIT_MANAGEMENT=1 "$here/servers.sh" start "$dir"
mkdir -p "$logs"
echo $$ >"$dir/demo.pid"
: >"$dir/pids"

# shellcheck disable=SC1091
source "$dir/env"
base="$OSS_TEST_PG_URL_BASE"
amqp="$OSS_TEST_AMQP_URL"

log "installing the outbox schema in crm and mes, migrating oss"
"$bin/outbox-relay" install --db "$base/crm" >"$logs/install-crm.log" 2>&1 || { cat "$logs/install-crm.log" >&2; die "outbox-relay install (crm) failed"; }
"$bin/outbox-relay" install --db "$base/mes" >"$logs/install-mes.log" 2>&1 || { cat "$logs/install-mes.log" >&2; die "outbox-relay install (mes) failed"; }
"$bin/order-status-service" migrate --db "$base/oss" >"$logs/migrate-oss.log" 2>&1 || { cat "$logs/migrate-oss.log" >&2; die "order-status-service migrate failed"; }

# start_bg NAME COMMAND...: runs in its own session (Ctrl-C reaches only this script, which then
# stops the programs in order), output in $logs/NAME.log, pid recorded for --stop; $! is its pid.
start_bg() {
  local name="$1"; shift
  setsid "$@" >"$logs/$name.log" 2>&1 </dev/null &
  echo "$name $!" >>"$dir/pids"
}
# wait_ready NAME PID URL: until URL answers 200 (60 s), failing early when the program exits.
wait_ready() {
  local name="$1" pid="$2" url="$3"
  for _ in $(seq 1 120); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$logs/$name.log" >&2 || true
      die "$name exited during start; see $logs/$name.log"
    fi
    if http_get "$url" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  die "$name not ready after 60 s ($url); see $logs/$name.log"
}

: >"$dir/.ports"  # the ports this run hands out (free_port)
if [ -n "${OSS_DEMO_HTTP_PORT:-}" ]; then
  http_port="$OSS_DEMO_HTTP_PORT"
  port_is_free "$http_port" || die "OSS_DEMO_HTTP_PORT=$http_port is in use" 2
elif port_is_free 8080; then
  http_port=8080
else
  http_port=$(free_port)
fi
crm_metrics=$(free_port)
mes_metrics=$(free_port)
api="http://127.0.0.1:$http_port"

log "starting order-status-service (API on $api)"
start_bg order-status-service "$bin/order-status-service" run --db "$base/oss" --amqp "$amqp" --http "127.0.0.1:$http_port"
pid_order_status_service=$!
log "starting outbox-relay for crm (metrics on 127.0.0.1:$crm_metrics) and for mes (127.0.0.1:$mes_metrics)"
start_bg relay-crm "$bin/outbox-relay" run --db "$base/crm" --amqp "$amqp" --metrics "127.0.0.1:$crm_metrics"
pid_relay_crm=$!
start_bg relay-mes "$bin/outbox-relay" run --db "$base/mes" --amqp "$amqp" --metrics "127.0.0.1:$mes_metrics"
pid_relay_mes=$!
wait_ready order-status-service "$pid_order_status_service" "$api/readyz"
wait_ready relay-crm "$pid_relay_crm" "http://127.0.0.1:$crm_metrics/readyz"
wait_ready relay-mes "$pid_relay_mes" "http://127.0.0.1:$mes_metrics/readyz"
log "all running"

cat >"$dir/demo.env" <<EOF
# written by scripts/demo.sh
DEMO_API=$api
DEMO_CRM_DB_URL=$base/crm
DEMO_MES_DB_URL=$base/mes
DEMO_OSS_DB_URL=$base/oss
DEMO_AMQP_URL=$amqp
DEMO_RABBIT_MANAGEMENT=http://127.0.0.1:$MGMT_PORT/
EOF

producer_args=(--crm-db "$base/crm" --mes-db "$base/mes")
[ -z "$orders" ] || producer_args+=(--orders "$orders")
[ -z "${DEMO_RATE:-}" ] || producer_args+=(--rate "$DEMO_RATE")
log "running the demo producer: ${orders:-${DEMO_ORDERS:-200}} orders, ${DEMO_RATE:-50} events/s"
start_bg demo-producer "$bin/demo-producer" "${producer_args[@]}"
pid_demo_producer=$!
tail -n +1 -f --pid="$pid_demo_producer" "$logs/demo-producer.log" &
tail_pid=$!
producer_rc=0
wait "$pid_demo_producer" || producer_rc=$?
wait "$tail_pid" 2>/dev/null || true
[ "$producer_rc" = 0 ] || die "the demo producer failed (exit $producer_rc); see $logs/demo-producer.log"

first_order=$(sed -n 's/^  orders .*(\([^ ]*\) \.\. \([^ )]*\)).*/\1/p' "$logs/demo-producer.log")
last_order=$(sed -n 's/^  orders .*(\([^ ]*\) \.\. \([^ )]*\)).*/\2/p' "$logs/demo-producer.log")
first_order="${first_order:-ORD-DEMO-000001}"
last_order="${last_order:-$first_order}"

where_to_look() {
  log "------------------------------------------------------------------------"
  log "order API:    $api/v1/orders/$first_order"
  log "              $api/v1/orders/$first_order/history"
  log "              $api/v1/orders?status=DELIVERED&limit=20"
  log "              $api/v1/escalations?open=true    $api/v1/dead-letters"
  log "dashboard:    $api/"
  log "metrics:      $api/metrics (service)"
  log "              http://127.0.0.1:$crm_metrics/metrics (relay crm), http://127.0.0.1:$mes_metrics/metrics (relay mes)"
  log "RabbitMQ:     http://127.0.0.1:$MGMT_PORT/ (guest/guest)"
  log "databases:    $base/{crm,mes,oss} (tables demo_orders, outbox.events)"
  log "logs:         $logs/"
  log "more traffic: $bin/demo-producer --crm-db $base/crm --mes-db $base/mes --orders 0"
  log "stop:         Ctrl-C here, or scripts/demo.sh --stop"
  log "------------------------------------------------------------------------"
}

if [ "$interactive" = 1 ]; then
  where_to_look
  log "running until Ctrl-C"
  while true; do
    for name in order-status-service relay-crm relay-mes; do
      v="pid_${name//-/_}"
      kill -0 "${!v}" 2>/dev/null || die "$name exited unexpectedly; see $logs/$name.log"
    done
    sleep 2 &
    wait $! || true
  done
fi

# metric NAME [LABEL_FILTER]: the sum of a Prometheus sample family in the service's /metrics.
metric() {
  http_get "$api/metrics" 2>/dev/null | python3 -c 'import sys
name, flt = sys.argv[1], sys.argv[2]
vals = [float(l.rsplit(" ", 1)[1]) for l in sys.stdin
        if (l.startswith(name + "{") or l.startswith(name + " ")) and flt in l]
print(int(sum(vals)) if vals else "")' "$1" "${2:-}"
}

committed=$(sed -n 's/^  committed *\([0-9]*\) events.*/\1/p' "$logs/demo-producer.log")
rolled_back=$(sed -n 's/^  rolled back *\([0-9]*\) events.*/\1/p' "$logs/demo-producer.log")
log "final check (up to 30 s): $last_order reaches DELIVERED or CANCELLED, and the service applies" \
    "exactly the ${committed:-?} committed events (none of the ${rolled_back:-?} rolled back ones)"
status="" applied=""
for _ in $(seq 1 60); do
  if body=$(http_get "$api/v1/orders/$last_order" 2>/dev/null); then
    status=$(printf '%s' "$body" | json_field status)
  fi
  applied=$(metric oss_events_total 'outcome="applied"' || true)
  case "$status" in DELIVERED|CANCELLED) [ "$applied" = "${committed:-}" ] || [ -z "$applied" ] && break ;; esac
  sleep 0.5
done
case "$status" in
  DELIVERED|CANCELLED) log "$last_order is $status; its history:" ;;
  *) die "$last_order is '${status:-unknown}' after 30 s, expected DELIVERED or CANCELLED; see $logs/" ;;
esac
http_get "$api/v1/orders/$last_order/history" | python3 -c '
import json, sys
body = json.load(sys.stdin)
rows = body if isinstance(body, list) else body.get("history", body.get("items", []))
for r in rows:
    print("[demo]   {:<21} -> {:<21} {:<3} seq {:<2} {:<11} {}".format(r.get("from") or "(new)", str(r.get("to")),
          str(r.get("source")), str(r.get("sequence")), str(r.get("actor", "")), r.get("reason", "")))' || true
dead=$(metric oss_dead_letters_total || true)
if [ -z "$applied" ]; then
  log "note: the service's /metrics has no oss_events_total; skipped the event count check"
elif [ "$applied" != "${committed:-}" ]; then
  die "the service applied $applied events, the producer committed ${committed:-?}; see $logs/"
else
  log "the service applied all $applied committed events; the $rolled_back rolled back ones never arrived"
fi
[ "${dead:-0}" = 0 ] || log "warning: $dead events were dead-lettered; see $api/v1/dead-letters (in $logs/order-status-service.log)"
log "demo finished; stopping everything"
