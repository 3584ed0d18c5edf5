#!/usr/bin/env bash
# Throwaway PostgreSQL 15 and RabbitMQ nodes for the demo, tests and benchmarks.
#
#   scripts/servers.sh start [DIR]     start both on free loopback ports; writes DIR/env
#   scripts/servers.sh stop  [DIR]     stop what start started in DIR (nothing else)
#   scripts/servers.sh status [DIR]
#   scripts/servers.sh restart-pg|stop-pg|start-pg|restart-rabbit|stop-rabbit|start-rabbit|kill-rabbit|kill-pg [DIR]
#   scripts/servers.sh start-cluster DIR | stop-cluster DIR | cluster-status DIR
#                                      PostgreSQL and a 3-node RabbitMQ cluster; DIR/env adds
#                                      OSS_TEST_AMQP_URLS (the three nodes, comma-separated)
#   scripts/servers.sh kill-node DIR N | stop-node DIR N | start-node DIR N    (N = 1, 2 or 3)
#   scripts/servers.sh ctl DIR N ARGS...  rabbitmqctl ARGS on node N, e.g. list_queues name leader online
#   scripts/servers.sh rabbitctl DIR ARGS...  rabbitmqctl ARGS on the single node of `start`
#
# DIR defaults to .run/servers in the project. Everything lives under DIR; the servers listen
# on 127.0.0.1 only. `source DIR/env` gives OSS_TEST_PG_URL_BASE, OSS_TEST_AMQP_URL, ...
# Servers it did not start are never touched: stop only acts on the pid/node recorded in DIR.
#
# PostgreSQL settings at `start` (initdb time): OSS_PG_FSYNC and OSS_PG_SYNCHRONOUS_COMMIT (both
# on by default); OSS_PG_STAT_STATEMENTS=on preloads pg_stat_statements and creates the view in
# the postgres database, for profiling a benchmark (it costs a little on every statement, so it
# is off by default). RabbitMQ: OSS_RABBIT_MAX_MESSAGE_SIZE (4 MiB) and OSS_RABBIT_WAL_MAX_BYTES
# (16 MiB; raft.wal_max_size_bytes, see the comment in the config below).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cmd="${1:-}"
dir="${2:-${OSS_SERVERS_DIR:-$root/.run/servers}}"
PGBIN=/usr/lib/postgresql/15/bin
RMQBIN=/usr/lib/rabbitmq/bin
PG_PASSWORD="${OSS_PG_PASSWORD:-oss-test-pw}"

log() { printf '[servers] %s\n' "$*" >&2; }

free_port() {
  # A free port not handed out before in this directory (scripts/lib/free-port.py: servers
  # started back to back could otherwise be given the same one before either binds it).
  python3 "$here/lib/free-port.py" "$dir/.ports"
}

free_port_below() {
  # Erlang's distribution port must be < 65536, and the CLI tools take theirs from
  # DIST_PORT+10000, so stay below 55536; both below the kernel's ephemeral range (from 32768),
  # where the test programs take their ports (scripts/lib/free-port.py).
  python3 "$here/lib/free-port.py" "$dir/.ports" 20000 22700
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
  local port="$1"
  as_postgres "$PGBIN/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log/postgresql.log" -w -t 60 \
    -o "-p $port -k $dir/pg/sock -c listen_addresses=127.0.0.1" start >/dev/null
}

pg_stop() {
  [ -f "$dir/pg/data/postmaster.pid" ] || return 0
  as_postgres "$PGBIN/pg_ctl" -D "$dir/pg/data" -m fast -w -t 60 stop >/dev/null || true
}

pg_kill() {
  [ -f "$dir/pg/data/postmaster.pid" ] || return 0
  local pid
  pid=$(head -1 "$dir/pg/data/postmaster.pid")
  kill -9 "$pid" 2>/dev/null || true
  # Children notice the postmaster's death and exit; wait for the port to close.
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  sleep 0.5
  rm -f "$dir/pg/data/postmaster.pid"
}

rabbit_env() {
  export HOME="$dir/rabbit/home"
  export RABBITMQ_NODENAME="$RABBIT_NODE"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT="$AMQP_PORT"
  export RABBITMQ_DIST_PORT="$RABBIT_DIST_PORT"
  export RABBITMQ_MNESIA_BASE="$dir/rabbit/mnesia"
  export RABBITMQ_LOG_BASE="$dir/rabbit/log"
  export RABBITMQ_CONFIG_FILE="$dir/rabbit/rabbitmq"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/rabbit/enabled_plugins"
  export RABBITMQ_PID_FILE="$dir/rabbit/rabbit.pid"
  export ERL_EPMD_ADDRESS=127.0.0.1
}

rabbit_start() {
  ( rabbit_env; "$RMQBIN/rabbitmq-server" -detached >/dev/null 2>&1 )
  local ok=0
  for _ in $(seq 1 120); do
    if ( rabbit_env; "$RMQBIN/rabbitmqctl" -n "$RABBIT_NODE" -q await_startup --timeout 5 ) >/dev/null 2>&1; then
      ok=1; break
    fi
    sleep 0.5
  done
  [ "$ok" = 1 ] || { log "RabbitMQ did not start; see $dir/rabbit/log"; return 1; }
}

rabbit_stop() {
  [ -f "$dir/rabbit/rabbit.pid" ] || return 0
  ( rabbit_env; "$RMQBIN/rabbitmqctl" -n "$RABBIT_NODE" -q stop ) >/dev/null 2>&1 || true
  local pid
  pid=$(cat "$dir/rabbit/rabbit.pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/rabbit/rabbit.pid"
}

rabbit_kill() {
  local pid
  pid=$(cat "$dir/rabbit/rabbit.pid" 2>/dev/null || true)
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$dir/rabbit/rabbit.pid"
}

pg_init() {
  # initdb, settings, start on $PG_PORT, and the oss/crm/mes databases.
  log "initdb in $dir/pg"
  local pwfile="$dir/pg/pwfile"
  echo "$PG_PASSWORD" >"$pwfile"
  [ "$(id -u)" = 0 ] && chown postgres: "$pwfile"
  as_postgres "$PGBIN/initdb" -D "$dir/pg/data" -U postgres --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >>"$dir/pg/data/postgresql.conf" <<EOF
max_connections = 300
shared_buffers = 256MB
synchronous_commit = ${OSS_PG_SYNCHRONOUS_COMMIT:-on}
fsync = ${OSS_PG_FSYNC:-on}
log_min_messages = warning
log_line_prefix = '%m [%p] '
EOF
  local stat_statements="${OSS_PG_STAT_STATEMENTS:-off}"
  if [ "$stat_statements" = on ]; then
    printf "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n" >>"$dir/pg/data/postgresql.conf"
  fi
  log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  pg_start "$PG_PORT"
  for db in oss crm mes; do
    as_postgres "$PGBIN/../bin/psql" -h "$dir/pg/sock" -p "$PG_PORT" -U postgres -qAt -c "CREATE DATABASE $db" postgres >/dev/null 2>&1 ||
      psql -h "$dir/pg/sock" -p "$PG_PORT" -U postgres -qAt -c "CREATE DATABASE $db" postgres >/dev/null
  done
  if [ "$stat_statements" = on ]; then
    as_postgres "$PGBIN/../bin/psql" -h "$dir/pg/sock" -p "$PG_PORT" -U postgres -qAt \
      -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" postgres >/dev/null
    log "pg_stat_statements on (SELECT ... FROM pg_stat_statements in the postgres database)"
  fi
}

load_env() {
  [ -f "$dir/env" ] || { log "no servers recorded in $dir"; exit 1; }
  # shellcheck disable=SC1091
  source "$dir/env"
}

start() {
  if [ -f "$dir/env" ]; then
    # shellcheck disable=SC1091
    source "$dir/env"
    if as_postgres "$PGBIN/pg_ctl" -D "$dir/pg/data" status >/dev/null 2>&1 &&
       ( rabbit_env; "$RMQBIN/rabbitmqctl" -n "$RABBIT_NODE" -q status ) >/dev/null 2>&1; then
      log "already running ($dir)"; return 0
    fi
    log "stale state in $dir; restarting"
    stop_all
  fi
  rm -rf "$dir"
  mkdir -p "$dir/pg/data" "$dir/pg/sock" "$dir/pg/log" "$dir/rabbit/home" "$dir/rabbit/mnesia" "$dir/rabbit/log"
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$dir/pg"; fi
  chmod 700 "$dir/pg/data"

  PG_PORT=$(free_port)
  AMQP_PORT=$(free_port)
  RABBIT_DIST_PORT=$(free_port_below)
  RABBIT_NODE="oss-$AMQP_PORT@localhost"
  MGMT_PORT=$(free_port)

  pg_init

  cat >"$dir/rabbit/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
loopback_users.guest = true
management.tcp.port = $MGMT_PORT
management.tcp.ip = 127.0.0.1
log.console = false
log.file.level = warning
vm_memory_high_watermark.relative = 0.2
disk_free_limit.absolute = 50MB
# Small enough that tests can produce an event the broker refuses (the relay must park it).
max_message_size = ${OSS_RABBIT_MAX_MESSAGE_SIZE:-4194304}
# Quorum queues share one write-ahead log; when it reaches this size the broker rolls it and
# writes every queue's entries out to segment files at once. At the default 512 MiB each roll
# stalled confirms and deliveries for 1-1.5 s, every 2-3 minutes at 2,000 events/s end to end
# (docs/performance.md, "RabbitMQ's WAL roll"); at 16 MiB the rolls come every few seconds and
# no such stall shows. Same setting in docker/rabbitmq/rabbitmq.conf.
raft.wal_max_size_bytes = ${OSS_RABBIT_WAL_MAX_BYTES:-16777216}
EOF
  if [ "${OSS_RABBIT_MANAGEMENT:-0}" = 1 ]; then
    echo '[rabbitmq_consistent_hash_exchange,rabbitmq_management].' >"$dir/rabbit/enabled_plugins"
  else
    echo '[rabbitmq_consistent_hash_exchange].' >"$dir/rabbit/enabled_plugins"
  fi
  log "starting RabbitMQ node $RABBIT_NODE on 127.0.0.1:$AMQP_PORT"
  rabbit_start

  cat >"$dir/env" <<EOF
# written by scripts/servers.sh; source it
export OSS_SERVERS_DIR='$dir'
export PG_PORT=$PG_PORT
export AMQP_PORT=$AMQP_PORT
export RABBIT_DIST_PORT=$RABBIT_DIST_PORT
export RABBIT_NODE='$RABBIT_NODE'
export MGMT_PORT=$MGMT_PORT
export OSS_TEST_PG_HOST=127.0.0.1
export OSS_TEST_PG_PORT=$PG_PORT
export OSS_TEST_PG_PASSWORD='$PG_PASSWORD'
export OSS_TEST_PG_URL_BASE='postgresql://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT'
export OSS_TEST_AMQP_URL='amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2f'
export OSS_TEST_SERVERS_SCRIPT='$here/servers.sh'
EOF
  log "ready: source $dir/env"
}

stop_all() {
  if [ -f "$dir/env" ]; then
    # shellcheck disable=SC1091
    source "$dir/env"
    rabbit_stop
  fi
  pg_stop
}

# ---- A 3-node RabbitMQ cluster (plus one PostgreSQL) under DIR -------------------------------
# Node N (1..3) lives in DIR/rabbitN with its own name, AMQP and distribution ports; the nodes
# share HOME=DIR/home (one Erlang cookie) and are joined to node 1 with `rabbitmqctl
# join_cluster`. DIR/env adds OSS_TEST_AMQP_URLS (all three, comma-separated), AMQP_PORT_N and
# RABBIT_NODE_N; OSS_TEST_AMQP_URL is node 1, so single-node tests also run against a cluster.
CLUSTER_SIZE=3

node_env() {
  local n="$1" port_var="AMQP_PORT_$1" dist_var="RABBIT_DIST_PORT_$1" node_var="RABBIT_NODE_$1"
  export HOME="$dir/home"
  export RABBITMQ_NODENAME="${!node_var}"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT="${!port_var}"
  export RABBITMQ_DIST_PORT="${!dist_var}"
  export RABBITMQ_MNESIA_BASE="$dir/rabbit$n/mnesia"
  export RABBITMQ_LOG_BASE="$dir/rabbit$n/log"
  export RABBITMQ_CONFIG_FILE="$dir/rabbit$n/rabbitmq"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/rabbit$n/enabled_plugins"
  export RABBITMQ_PID_FILE="$dir/rabbit$n/rabbit.pid"
  # Three nodes share two cores with everything else: no busy-waiting schedulers.
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none"
  export ERL_EPMD_ADDRESS=127.0.0.1
}

node_ctl() {  # node_ctl N args...: rabbitmqctl against node N
  local n="$1"; shift
  ( node_env "$n"; "$RMQBIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" -q "$@" )
}

check_node() {
  case "${1:-}" in
    1|2|3) ;;
    *) log "node must be 1, 2 or 3 (got '${1:-}')"; exit 2 ;;
  esac
}

node_launch() {
  # What the launcher prints (a boot failure such as a taken port) goes to launch.log, which
  # node_await shows when the node does not come up.
  ( node_env "$1"; "$RMQBIN/rabbitmq-server" -detached >>"$dir/rabbit$1/launch.log" 2>&1 )
}

node_await() {
  for _ in $(seq 1 "${NODE_AWAIT_TRIES:-180}"); do
    if node_ctl "$1" await_startup --timeout 5 >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "RabbitMQ node $1 did not start; see $dir/rabbit$1/log (its tail follows: the directory may be removed by the caller)"
  tail -n 30 "$dir/rabbit$1/launch.log" "$dir/rabbit$1/log"/*.log >&2 2>/dev/null || true
  node_ctl "$1" ping 2>&1 | head -n 3 >&2 || true  # is the Erlang VM up at all?
  return 1
}

node_kill() {
  local pid
  pid=$(cat "$dir/rabbit$1/rabbit.pid" 2>/dev/null || true)
  if [ -n "$pid" ]; then
    kill -9 "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$dir/rabbit$1/rabbit.pid"
}

node_stop() {
  [ -f "$dir/rabbit$1/rabbit.pid" ] || return 0
  node_ctl "$1" stop >/dev/null 2>&1 || true
  node_kill "$1"
}

# A node that does not come up (seen once in ~20 CI runs: node 2 never answered, reason lost)
# fails the whole start; the cluster is then stopped and started once more from scratch, with
# new ports, before giving up. A second failure is reported with the node's log tail.
start_cluster() {
  local attempt
  for attempt in 1 2; do
    # A separate process, so that `set -e` still holds inside (bash ignores it in a function
    # whose status is tested).
    if "$here/servers.sh" start-cluster-once "$dir"; then return 0; fi
    [ "$attempt" = 2 ] && break
    log "cluster start failed (attempt $attempt of 2); stopping what started, retrying with new ports"
    stop_cluster
  done
  return 1
}

start_cluster_once() {
  if [ -f "$dir/env" ]; then
    log "stale state in $dir; stopping it first"
    stop_cluster
  fi
  rm -rf "$dir"
  mkdir -p "$dir/pg/data" "$dir/pg/sock" "$dir/pg/log" "$dir/home"
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$dir/pg"; fi
  chmod 700 "$dir/pg/data"
  # One cookie for the three nodes and the CLI (HOME is shared).
  python3 -c 'import secrets; print(secrets.token_hex(20).upper(), end="")' >"$dir/home/.erlang.cookie"
  chmod 400 "$dir/home/.erlang.cookie"

  PG_PORT=$(free_port)
  local n p d urls=""
  for n in 1 2 3; do
    p=$(free_port)
    d=$(free_port_below)
    printf -v "AMQP_PORT_$n" '%s' "$p"
    printf -v "RABBIT_DIST_PORT_$n" '%s' "$d"
    printf -v "RABBIT_NODE_$n" '%s' "ossc$n-$p@localhost"
    urls="${urls:+$urls,}amqp://guest:guest@127.0.0.1:$p/%2f"
    mkdir -p "$dir/rabbit$n/mnesia" "$dir/rabbit$n/log"
    cat >"$dir/rabbit$n/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$p
loopback_users.guest = true
management.tcp.port = $(free_port)
management.tcp.ip = 127.0.0.1
log.console = false
log.file.level = warning
vm_memory_high_watermark.relative = 0.15
disk_free_limit.absolute = 50MB
max_message_size = ${OSS_RABBIT_MAX_MESSAGE_SIZE:-4194304}
EOF
    echo '[rabbitmq_consistent_hash_exchange].' >"$dir/rabbit$n/enabled_plugins"
  done
  # env first, so that stop-cluster can clean up a start that fails half-way.
  cat >"$dir/env" <<EOF
# written by scripts/servers.sh start-cluster; source it
export OSS_SERVERS_DIR='$dir'
export OSS_CLUSTER=1
export PG_PORT=$PG_PORT
export AMQP_PORT=$AMQP_PORT_1
export RABBIT_NODE='$RABBIT_NODE_1'
export AMQP_PORT_1=$AMQP_PORT_1 AMQP_PORT_2=$AMQP_PORT_2 AMQP_PORT_3=$AMQP_PORT_3
export RABBIT_DIST_PORT_1=$RABBIT_DIST_PORT_1 RABBIT_DIST_PORT_2=$RABBIT_DIST_PORT_2 RABBIT_DIST_PORT_3=$RABBIT_DIST_PORT_3
export RABBIT_NODE_1='$RABBIT_NODE_1' RABBIT_NODE_2='$RABBIT_NODE_2' RABBIT_NODE_3='$RABBIT_NODE_3'
export OSS_TEST_PG_HOST=127.0.0.1
export OSS_TEST_PG_PORT=$PG_PORT
export OSS_TEST_PG_PASSWORD='$PG_PASSWORD'
export OSS_TEST_PG_URL_BASE='postgresql://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT'
export OSS_TEST_AMQP_URL='amqp://guest:guest@127.0.0.1:$AMQP_PORT_1/%2f'
export OSS_TEST_AMQP_URLS='$urls'
export OSS_TEST_SERVERS_SCRIPT='$here/servers.sh'
EOF

  # The nodes boot while initdb runs; then 2 and 3 join node 1, one after the other.
  log "starting RabbitMQ nodes $RABBIT_NODE_1, $RABBIT_NODE_2, $RABBIT_NODE_3"
  for n in 1 2 3; do node_launch "$n"; done
  pg_init
  local pids=()
  for n in 1 2 3; do node_await "$n" & pids+=($!); done
  for n in 0 1 2; do wait "${pids[$n]}" || return 1; done
  for n in 2 3; do
    log "joining node $n to node 1"
    node_ctl "$n" stop_app >/dev/null
    node_ctl "$n" join_cluster "$RABBIT_NODE_1" >/dev/null
    node_ctl "$n" start_app >/dev/null  # returns once the app runs again
  done
  local running
  running=$(node_ctl 1 eval 'length(rabbit_nodes:all_running()).' 2>/dev/null || echo 0)
  [ "$running" = "$CLUSTER_SIZE" ] || { log "cluster has $running running nodes, expected $CLUSTER_SIZE"; return 1; }
  log "cluster of $CLUSTER_SIZE ready: source $dir/env"
}

stop_cluster() {
  if [ -f "$dir/env" ]; then
    # shellcheck disable=SC1091
    source "$dir/env"
    local n
    # In parallel: a node stopping while its peers are gone waits for nothing.
    for n in 3 2 1; do node_stop "$n" & done
    wait
  fi
  pg_stop
}

cluster_status() {
  load_env
  as_postgres "$PGBIN/pg_ctl" -D "$dir/pg/data" status >/dev/null 2>&1 && echo "pg: running" || echo "pg: stopped"
  local n node_var port_var
  for n in 1 2 3; do
    node_var="RABBIT_NODE_$n" port_var="AMQP_PORT_$n"
    if node_ctl "$n" status >/dev/null 2>&1; then
      echo "rabbit$n: running ${!node_var} amqp 127.0.0.1:${!port_var}"
    else
      echo "rabbit$n: stopped ${!node_var}"
    fi
  done
}

case "$cmd" in
  start) start ;;
  stop) stop_all; log "stopped ($dir)" ;;
  status)
    load_env
    as_postgres "$PGBIN/pg_ctl" -D "$dir/pg/data" status || true
    ( rabbit_env; "$RMQBIN/rabbitmqctl" -n "$RABBIT_NODE" -q status ) >/dev/null 2>&1 && echo "rabbit: running" || echo "rabbit: stopped" ;;
  stop-pg) load_env; pg_stop ;;
  kill-pg) load_env; pg_kill ;;
  start-pg) load_env; pg_start "$PG_PORT" ;;
  restart-pg) load_env; pg_stop; pg_start "$PG_PORT" ;;
  stop-rabbit) load_env; rabbit_stop ;;
  kill-rabbit) load_env; rabbit_kill ;;
  start-rabbit) load_env; rabbit_start ;;
  restart-rabbit) load_env; rabbit_stop; rabbit_start ;;
  start-cluster) start_cluster ;;
  start-cluster-once) start_cluster_once ;;  # one attempt; start-cluster calls it (up to twice)
  stop-cluster) stop_cluster; log "stopped cluster ($dir)" ;;
  cluster-status) cluster_status ;;
  kill-node) load_env; check_node "${3:-}"; node_kill "$3" ;;
  stop-node) load_env; check_node "${3:-}"; node_stop "$3" ;;
  start-node) load_env; check_node "${3:-}"; node_launch "$3"; node_await "$3" ;;
  ctl) load_env; check_node "${3:-}"; n="$3"; shift 3; node_ctl "$n" "$@" ;;
  rabbitctl) load_env; shift 2; ( rabbit_env; "$RMQBIN/rabbitmqctl" -n "$RABBIT_NODE" -q "$@" ) ;;
  *) echo "usage: $0 start|stop|status|stop-pg|start-pg|restart-pg|kill-pg|stop-rabbit|start-rabbit|restart-rabbit|kill-rabbit [DIR]" >&2
     echo "       $0 start-cluster|stop-cluster|cluster-status DIR;  $0 kill-node|stop-node|start-node DIR N  (N = 1..3)" >&2
     echo "       $0 ctl DIR N RABBITMQCTL-ARGS...;  $0 rabbitctl DIR RABBITMQCTL-ARGS..." >&2
     exit 2 ;;
esac
