#!/usr/bin/env bash
# Reliability scenarios: load shapes from our users' incident reviews and faults under load,
# each judged by the invariant checker (oss-verify). See docs/reliability.md.
#
#   scripts/scenarios.sh --full  [--build DIR] [--out FILE] [--only a,b]   the documented full form
#   scripts/scenarios.sh --short [--build DIR] [--out FILE] [--only a,b]   the CI form (same code, scaled down)
#
#   --build DIR      build directory with bin/{outbox-relay,order-status-service,oss-load,oss-verify}
#                    (default: build)
#   --servers DIR    use the PostgreSQL+RabbitMQ already running in DIR (scripts/servers.sh start DIR);
#                    default: start a private set in .run/scenario-servers ($OSS_SCENARIO_SERVERS_DIR)
#                    and stop it at the end
#   --test-servers   use the servers of $OSS_SERVERS_DIR (what scripts/test.sh started; the ctest form)
#   --out FILE       markdown results table (default .run/scenarios/results-<form>.md); a .jsonl beside it
#   --only LIST      comma-separated scenario names (steady, spike, burst, slow-consumer, retry-storm,
#                    backlog, kill-relay, kill-service, kill-rabbit, kill-pg)
#   --keep           keep each scenario's databases (default: dropped after a passing verdict)
#
# Every scenario: fresh crm/mes/service databases, its own exchange and queue names, one relay per
# producer, one service (two for kill-service), oss-load producing at a scheduled rate while the
# fault is injected at fixed offsets, then oss-verify. Exit 0 when every scenario drained and
# every verdict holds, 1 otherwise, 2 bad usage.
# Only processes this script started are signalled (by recorded pid); faults on the servers go
# through scripts/servers.sh on the servers directory in use (kill-pg, kill-rabbit, ...).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
form="" build="$root/build" servers_dir="" own_servers=1 out="" only="" keep=0

usage() { sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --full) form=full ;;
    --short) form=short ;;
    --build) build="$(cd "${2:?--build needs a directory}" && pwd)"; shift ;;
    --servers) servers_dir="$(cd "${2:?--servers needs a directory}" && pwd)"; own_servers=0; shift ;;
    --test-servers)
      servers_dir="${OSS_SERVERS_DIR:?--test-servers: OSS_SERVERS_DIR is not set (source the servers env file)}"
      own_servers=0 ;;
    --out) out="${2:?--out needs a file}"; shift ;;
    --only) only="${2:?--only needs a list}"; shift ;;
    --keep) keep=1 ;;
    -h|--help) usage ;;
    *) echo "scenarios.sh: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done
[ -n "$form" ] || { echo "scenarios.sh: say --full or --short" >&2; usage; }
for p in outbox-relay order-status-service oss-load oss-verify; do
  [ -x "$build/bin/$p" ] || { echo "scenarios.sh: $build/bin/$p missing (cmake --build $build --target $p)" >&2; exit 2; }
done

work="$root/.run/scenarios/$form-$(date -u +%Y%m%dT%H%M%S)-$$"
mkdir -p "$work"
out="${out:-$root/.run/scenarios/results-$form.md}"
mkdir -p "$(dirname "$out")"
jsonl="${out%.md}.jsonl"
: >"$jsonl"

log() { printf '[scenarios %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

free_port() {  # never the same port twice in this run (scripts/lib/free-port.py)
  python3 "$here/lib/free-port.py" "$work/.ports"
}

if [ "$own_servers" = 1 ]; then
  servers_dir="${OSS_SCENARIO_SERVERS_DIR:-$root/.run/scenario-servers}"
  log "starting PostgreSQL and RabbitMQ in $servers_dir"
  "$root/scripts/servers.sh" start "$servers_dir" >/dev/null
fi
servers() { "$root/scripts/servers.sh" "$1" "$servers_dir" >>"$work/servers.log" 2>&1; }
# shellcheck disable=SC1091
source "$servers_dir/env"
pg_base="$OSS_TEST_PG_URL_BASE"
amqp="$OSS_TEST_AMQP_URL"

# --- processes this script starts (pid files under $work/pids/<scenario>) ------------------------
# Each scenario keeps its own pid directory ($pids), so scenarios running side by side (see
# OSS_SCENARIO_JOBS below) never signal each other's relay-crm or service1.
pids="$work/pids/main"
mkdir -p "$pids"
pid_of() { cat "$pids/$1" 2>/dev/null || true; }
alive() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
signal() {  # signal NAME SIG
  local p; p=$(pid_of "$1")
  [ -n "$p" ] && kill "-$2" "$p" 2>/dev/null || true
}
stop_proc() {  # SIGTERM, then SIGKILL after 20 s
  local p i; p=$(pid_of "$1")
  [ -n "$p" ] || return 0
  kill -CONT "$p" 2>/dev/null || true
  kill -TERM "$p" 2>/dev/null || true
  for i in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then log "$1 did not stop on SIGTERM; SIGKILL"; kill -KILL "$p" 2>/dev/null || true; fi
  rm -f "$pids/$1"
}
start_relay() {  # start_relay NAME DB_URL
  local port; port=$(free_port)
  "$build/bin/outbox-relay" run --db "$2" --amqp "$amqp" --exchange "$exchange" \
    --metrics "127.0.0.1:$port" >>"$sdir/$1.log" 2>&1 &
  echo $! >"$pids/$1"
  echo "$port" >"$pids/$1.port"
}
start_service() {  # start_service NAME
  local port; port=$(free_port)
  "$build/bin/order-status-service" run --db "$oss_db" --amqp "$amqp" --http "127.0.0.1:$port" \
    --exchange "$exchange" --queue "$queue" --dlq "$dlq" --notifications-exchange "$notif" \
    --notifications-tail "order-status-service.notifications.sc.$id" >>"$sdir/$1.log" 2>&1 &
  echo $! >"$pids/$1"
  echo "$port" >"$pids/$1.port"
}
wait_ready() {  # wait_ready NAME: /readyz 200 within 60 s
  local port i; port=$(cat "$pids/$1.port")
  for i in $(seq 1 600); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; then return 0; fi
    alive "$1" || { log "$1 exited during start; see $sdir/$1.log"; return 1; }
    sleep 0.1
  done
  log "$1 not ready after 60 s"; return 1
}
service_metric() {  # service_metric NAME SAMPLE: its value in the instance's /metrics (0 if absent)
  local port; port=$(cat "$pids/$1.port")
  curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null | awk -v k="$2" '$1 == k {print $2; f = 1} END {if (!f) print 0}'
}
psql_base() { psql -X -q -v ON_ERROR_STOP=1 "$pg_base/${1}" -c "$2" >/dev/null; }

cleanup() {
  local f
  for f in "$work"/pids/*/*; do
    [ -e "$f" ] || continue
    case "$f" in *.port) continue ;; esac
    pids="$(dirname "$f")" stop_proc "$(basename "$f")"
  done
  if [ "$own_servers" = 1 ]; then "$root/scripts/servers.sh" stop "$servers_dir" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- scenario parameters: full | short ---------------------------------------------------------
# The full form's knobs can be scaled down for a quick look (say so when quoting its numbers):
# OSS_SCENARIO_RATE (events/s, 200), OSS_SCENARIO_STEADY (s, 120), OSS_SCENARIO_SPIKE (s per
# phase, 60), OSS_SCENARIO_BURST (events, 100000), OSS_SCENARIO_DOWN (s, 120), OSS_SCENARIO_TAIL
# (s of load around a fault, 60).
if [ "$form" = full ]; then
  R=${OSS_SCENARIO_RATE:-200}; D=${OSS_SCENARIO_TAIL:-60}; DRAIN=900s
  sp=${OSS_SCENARIO_SPIKE:-60}
  STEADY="$R:${OSS_SCENARIO_STEADY:-120}s"; SPIKE="$R:${sp}s $((R * 4)):${sp}s $R:${sp}s"
  BURST_N=${OSS_SCENARIO_BURST:-100000}; BURST_AT=10
  STALL_AT=$((D / 2)); STALL=20; STORM_AT=$((D / 2)); DOWN_AT=20; DOWN=${OSS_SCENARIO_DOWN:-120}
  FAULT_AT=$((D / 2)); FAULT_FOR=5
else
  R=40; D=6; DRAIN=180s
  STEADY="$R:6s"; SPIKE="$R:2s $((R * 4)):3s $R:2s"; BURST_N=2000; BURST_AT=2
  STALL_AT=3; STALL=5; STORM_AT=4; DOWN_AT=3; DOWN=5; FAULT_AT=3; FAULT_FOR=2
fi

# --- one scenario -------------------------------------------------------------------------------
run_scenario() {  # run_scenario NAME DESCRIPTION FAULT_FN PHASES... [-- extra oss-load args]
  local name="$1" desc="$2" fault="$3"; shift 3
  local phases=() extra=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do phases+=(--phase "$1"); shift; done
  [ "${1:-}" = "--" ] && { shift; extra=("$@"); }
  sdir="$work/$name"; mkdir -p "$sdir"
  pids="$work/pids/$name"; mkdir -p "$pids"
  local id; id="$(echo "$name" | tr -- - _)_$$_$RANDOM"
  crm_db="$pg_base/sc_crm_$id" mes_db="$pg_base/sc_mes_$id" oss_db="$pg_base/sc_oss_$id"
  exchange="orders.events.sc.$id" queue="order-status-service.events.sc.$id"
  dlq="order-status-service.dlq.sc.$id" notif="orders.notifications.sc.$id"
  log "== $name: $desc"
  local db
  for db in crm mes oss; do psql_base postgres "CREATE DATABASE sc_${db}_$id"; done
  "$build/bin/outbox-relay" install --db "$crm_db" >>"$sdir/setup.log" 2>&1 &
  "$build/bin/outbox-relay" install --db "$mes_db" >>"$sdir/setup.log" 2>&1 &
  "$build/bin/order-status-service" migrate --db "$oss_db" >>"$sdir/setup.log" 2>&1 &
  local j; for j in $(jobs -p); do wait "$j" || { log "setup failed; see $sdir/setup.log"; return 1; }; done
  start_service service1
  [ "$name" = kill-service ] && start_service service2
  wait_ready service1
  [ "$name" = kill-service ] && wait_ready service2
  start_relay relay-crm "$crm_db"
  start_relay relay-mes "$mes_db"
  # Both relays must have reached PostgreSQL and RabbitMQ before the load and its fault begin:
  # a relay that cannot reach a server at start exits 3 by design (a server lost later is
  # waited for), and on a slow build (sanitizers) the fault could otherwise land first.
  wait_ready relay-crm
  wait_ready relay-mes

  "$build/bin/oss-load" --crm-db "$crm_db" --mes-db "$mes_db" --service-db "$oss_db" --prefix "${name^^}" \
    --drain-timeout "$DRAIN" "${phases[@]}" "${extra[@]}" >"$sdir/load.json" 2>"$sdir/load.log" &
  local load_pid=$!
  local t0; t0=$(date +%s.%N)
  "$fault" >>"$sdir/fault.log" 2>&1 &
  local fault_pid=$!
  local load_rc=0 fault_rc=0
  wait "$load_pid" || load_rc=$?
  wait "$fault_pid" || fault_rc=$?
  [ "$fault_rc" = 0 ] || log "$name: the fault script failed ($fault_rc); see $sdir/fault.log"

  local note=""
  if [ "$name" = retry-storm ]; then
    # Every re-sent event must come back as a duplicate the service acked without effect.
    local resent dup i
    resent=$(grep -o 'unpublished again: [0-9]*' "$sdir/fault.log" | awk '{s += $3} END {print s + 0}')
    for i in $(seq 1 600); do
      dup=$(service_metric service1 'oss_events_total{outcome="duplicate"}'); dup=${dup:-0}
      [ "${dup%.*}" -ge "$resent" ] && break
      sleep 0.2
    done
    note="; re-sent $resent, the service acked $dup as duplicates"
    [ "${dup%.*}" -ge "$resent" ] || { log "retry-storm: only $dup of $resent re-sent events seen as duplicates"; load_rc=1; }
  fi
  local verify_rc=0
  "$build/bin/oss-verify" --db "$oss_db" --source-db "$crm_db" --source-db "$mes_db" --wait 30s --json \
    >"$sdir/verify.json" 2>"$sdir/verify.log" || verify_rc=$?
  # The verdict, from oss-verify's last JSON line. A drained scenario leaves nothing parked as
  # early: oss-verify counts such events as waiting, not lost, which is right for a live system
  # but not for a finished run, so they fail the scenario here (the only place that checks).
  local verdict
  verdict=$(python3 - "$sdir/verify.json" "$verify_rc" <<'PY'
import json, sys
rc = int(sys.argv[2])
try:
    d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
except Exception:
    print(f"checker failed (exit {rc})"); sys.exit()
if d["ok"] and d.get("waiting", 0):
    print(f"FAIL: {d['waiting']} still parked as early")
elif d["ok"]:
    dec = d["decided"]
    print("PASS: 0 lost, 0 doubled, histories valid (" + ", ".join(f"{k} {v}" for k, v in sorted(dec.items())) + ")")
else:
    print("FAIL: " + ", ".join(f"{k} {v}" for k, v in d["violations_by_kind"].items()))
PY
)
  if [ "$verify_rc" = 0 ] && [ "${verdict#PASS}" = "$verdict" ]; then
    log "$name: oss-verify exited 0 but the verdict is: $verdict"
    verify_rc=1
  fi
  if [ "$load_rc" != 0 ] || [ "$verify_rc" != 0 ]; then
    # Evidence while everything still runs: where the undecided events sit in the broker
    # (ready, or unacknowledged by a consumer that holds them) and what the services count.
    {
      echo "# queues (name ready unacked consumers) at $(date -u +%H:%M:%S.%N)"
      "$root/scripts/servers.sh" rabbitctl "$servers_dir" list_queues name messages_ready \
        messages_unacknowledged consumers 2>&1 || true
      echo "# consumers (queue channel ack prefetch)"
      "$root/scripts/servers.sh" rabbitctl "$servers_dir" list_consumers queue_name channel_pid ack_required \
        prefetch_count 2>&1 || true
      echo "# channels (name unacked prefetch)"
      "$root/scripts/servers.sh" rabbitctl "$servers_dir" list_channels name messages_unacknowledged \
        prefetch_count 2>&1 || true
    } >"$sdir/broker-state.txt"
    local inst
    for inst in service1 service2; do
      [ -f "$pids/$inst.port" ] || continue
      curl -fsS "http://127.0.0.1:$(cat "$pids/$inst.port")/metrics" >"$sdir/$inst.metrics" 2>&1 || true
    done
  fi
  stop_proc relay-crm; stop_proc relay-mes; stop_proc service1; stop_proc service2

  local summary
  summary=$(python3 - "$sdir/load.json" "$name" "$desc$note" "$verdict" "$load_rc" "$verify_rc" "$t0" <<'PY'
import json, math, sys
path, name, desc, verdict, load_rc, verify_rc, t0 = sys.argv[1:]
try:
    d = json.loads(open(path).read().strip().splitlines()[-1])
except Exception:
    d = {}
def num(k, fmt="{:,.0f}"):
    v = d.get(k)
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)
drain = num("drain_seconds", "{:.1f} s") if d.get("drained") else "NOT drained (" + num("drain_seconds", "{:.0f} s") + ")"
row = f"| {name} | {desc} | {num('emitted')} | {num('achieved_rate', '{:,.0f}/s')} of {num('target_rate', '{:,.0f}/s')} | {num('throughput_decided_per_s', '{:,.0f}/s')} | {num('e2e_p50_ms', '{:,.0f} ms')} | {num('e2e_p99_ms', '{:,.0f} ms')} | {drain} | {verdict} |"
print(row)
d.update({"scenario": name, "description": desc, "verdict": verdict, "load_exit": int(load_rc), "verify_exit": int(verify_rc)})
with open(path.rsplit("/", 1)[0] + "/summary.json", "w") as f:
    json.dump(d, f)
PY
)
  # Collected in scenario order at the end (scenarios may finish in any order).
  echo "$summary" >"$sdir/row.md"
  if [ "$load_rc" != 0 ] || [ "$verify_rc" != 0 ]; then
    log "$name: FAILED (oss-load exit $load_rc, oss-verify exit $verify_rc); logs in $sdir"
    sed -n '1,40p' "$sdir/verify.json" >&2 || true
    return 1
  else
    log "$name: $verdict"
    if [ "$keep" = 0 ]; then
      for db in crm mes oss; do psql_base postgres "DROP DATABASE IF EXISTS sc_${db}_$id WITH (FORCE)" & done
      wait || true
    fi
  fi
}

# --- the faults (run in the background at fixed offsets from the start of the load) -------------
no_fault() { :; }
stall_service() {  # the service stops processing (SIGSTOP) for STALL seconds
  sleep "$STALL_AT"; echo "SIGSTOP service1"; signal service1 STOP
  sleep "$STALL"; echo "SIGCONT service1"; signal service1 CONT
}
retry_storm() {  # the producers re-send everything: every published row goes back to the relay
  sleep "$STORM_AT"
  local db
  for db in "$crm_db" "$mes_db"; do
    # Published rows sit in outbox.events_archive (outbox schema 3) or, marked in place, in
    # outbox.events: both go back to unpublished, in one transaction. Counted: exactly the rows
    # that were published and now go out again, not every unpublished row (rows emitted but not
    # yet published, or published but not yet marked, reach the service once: applied, not
    # duplicates; counting them made the duplicate check wait for events that never came).
    psql -X -q -v ON_ERROR_STOP=1 -t "$db" <<'SQL'
BEGIN;
CREATE TEMP TABLE resent (n bigint) ON COMMIT DROP;
DO $$
DECLARE n bigint := 0;
BEGIN
  IF to_regclass('outbox.events_archive') IS NOT NULL THEN
    WITH moved AS (DELETE FROM outbox.events_archive RETURNING *)
    INSERT INTO outbox.events (position, event_id, source, aggregate_type, aggregate_id, sequence, event_type,
                               payload, headers, occurred_at, partition, published_at, attempts)
    OVERRIDING SYSTEM VALUE
    SELECT position, event_id, source, aggregate_type, aggregate_id, sequence, event_type, payload, headers,
           occurred_at, outbox.partition_of(source, aggregate_id), NULL, 0 FROM moved;
    GET DIAGNOSTICS n = ROW_COUNT;
  END IF;
  INSERT INTO resent VALUES (n);
END $$;
WITH reset AS (UPDATE outbox.events SET published_at = NULL, attempts = 0 WHERE published_at IS NOT NULL RETURNING 1)
INSERT INTO resent SELECT count(*) FROM reset;
SELECT 'unpublished again: ' || sum(n) FROM resent;
SELECT 'also pending, not re-sent: ' || (SELECT count(*) FROM outbox.events WHERE published_at IS NULL) - sum(n) FROM resent;
COMMIT;
SQL
  done
}
backlog() {  # the service is down for DOWN seconds under load, then comes back
  sleep "$DOWN_AT"; echo "SIGTERM service1"; stop_proc service1
  sleep "$DOWN"; echo "start service1"; start_service service1; wait_ready service1
}
kill_relay() {
  sleep "$FAULT_AT"; echo "SIGKILL relay-crm"; signal relay-crm KILL
  sleep "$FAULT_FOR"; echo "restart relay-crm"; start_relay relay-crm "$crm_db"
}
kill_service() {  # one of two instances
  sleep "$FAULT_AT"; echo "SIGKILL service1"; signal service1 KILL
  sleep "$FAULT_FOR"; echo "restart service1"; start_service service1; wait_ready service1
}
kill_rabbit() {
  sleep "$FAULT_AT"; echo "kill-rabbit"; servers kill-rabbit
  sleep "$FAULT_FOR"; echo "start-rabbit"; servers start-rabbit
}
kill_pg() {
  sleep "$FAULT_AT"; echo "kill-pg"; servers kill-pg
  sleep "$FAULT_FOR"; echo "start-pg"; servers start-pg
}

# Scenarios that leave the shared servers alone run side by side, OSS_SCENARIO_JOBS at a time
# (short form: 4; full form: 1, so its rates and latencies are not shared with a neighbour).
# The short form's load is 40 events/s, so its scenarios mostly wait (start, drain, checker);
# run one after another they took 150 s of CI. kill-rabbit and kill-pg stop the servers every
# scenario uses, so they run last and alone.
if [ "$form" = full ]; then jobs_max=${OSS_SCENARIO_JOBS:-1}; else jobs_max=${OSS_SCENARIO_JOBS:-4}; fi
[[ "$jobs_max" =~ ^[1-9][0-9]*$ ]] || { echo "scenarios.sh: OSS_SCENARIO_JOBS must be a positive integer" >&2; exit 2; }
failures=0 order=() running=()
reap() {  # reap N: wait until at most N scenarios still run, counting the failed ones
  # (Polled: bash's `wait -n` misses a job that ended before it was called; `wait PID` does not.)
  local p rest
  while :; do
    rest=()
    for p in "${running[@]}"; do
      if kill -0 "$p" 2>/dev/null; then rest+=("$p"); else wait "$p" || failures=$((failures + 1)); fi
    done
    running=("${rest[@]}")
    [ "${#running[@]}" -gt "$1" ] || return 0
    sleep 0.2
  done
}
scenario() {  # scenario side-by-side|alone NAME ...: run_scenario in a subshell of its own
  local how="$1"; shift
  if [ -n "$only" ] && [[ ",$only," != *",$1,"* ]]; then return 0; fi
  order+=("$1")
  if [ "$how" = alone ]; then reap 0; else reap $((jobs_max - 1)); fi
  ( run_scenario "$@" ) &
  running+=($!)
  [ "$how" = alone ] && reap 0
  return 0
}

log "$form form; build $build; servers $servers_dir; logs in $work; up to $jobs_max scenarios side by side"
start_all=$(date +%s)
scenario side-by-side steady "steady ${R}/s" no_fault $STEADY
scenario side-by-side spike "spike ×4 (${R}→$((R * 4))→${R}/s)" no_fault $SPIKE
scenario side-by-side burst "burst: $BURST_N order creations at once (import) over ${R}/s" no_fault "$R:${D}s" -- --burst "$BURST_N@${BURST_AT}s"
scenario side-by-side slow-consumer "service stalled (SIGSTOP) ${STALL} s under ${R}/s" stall_service "$R:$((STALL_AT + STALL + D / 2))s"
scenario side-by-side retry-storm "producers re-send everything (published_at reset) at ${STORM_AT} s" retry_storm "$R:$((STORM_AT + D / 2))s"
scenario side-by-side backlog "service down ${DOWN} s under ${R}/s, then back" backlog "$R:$((DOWN_AT + DOWN + D / 2))s"
scenario side-by-side kill-relay "SIGKILL of the CRM relay, restarted ${FAULT_FOR} s later" kill_relay "$R:$((FAULT_AT + FAULT_FOR + D / 2))s"
scenario side-by-side kill-service "SIGKILL of one of two service instances, restarted ${FAULT_FOR} s later" kill_service "$R:$((FAULT_AT + FAULT_FOR + D / 2))s"
scenario alone kill-rabbit "SIGKILL of RabbitMQ, restarted ${FAULT_FOR} s later" kill_rabbit "$R:$((FAULT_AT + FAULT_FOR + D / 2))s"
scenario alone kill-pg "SIGKILL of PostgreSQL (producers' and service's), restarted ${FAULT_FOR} s later" kill_pg "$R:$((FAULT_AT + FAULT_FOR + D / 2))s"
reap 0
elapsed=$(( $(date +%s) - start_all ))

{
  echo "Reliability scenarios, $form form, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, ${elapsed} s in all (up to $jobs_max side by side)."
  echo
  echo "| scenario | what happens | events | producer rate (achieved of target) | decided/s (load start to drained) | e2e p50 | e2e p99 | drain after load | invariant checker |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
  for name in "${order[@]}"; do
    if [ -f "$work/$name/row.md" ]; then cat "$work/$name/row.md"
    else echo "| $name | | | | | | | | FAIL: did not get as far as the checker (see $work/$name) |"; fi
  done
} >"$out"
for name in "${order[@]}"; do
  [ -f "$work/$name/summary.json" ] && { cat "$work/$name/summary.json"; echo; }
done >>"$jsonl"
cat "$out"
log "results: $out ($jsonl); $failures scenario(s) failed; ${elapsed} s"
[ "$failures" = 0 ]
