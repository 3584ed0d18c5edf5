#!/usr/bin/env bash
# Throwaway PostgreSQL 15 and RabbitMQ nodes for the demo, tests and benchmarks.
#
#   scripts/servers.sh start [DIR]     start both on free loopback ports; writes DIR/env
#   scripts/servers.sh stop  [DIR]     stop what start started in DIR (nothing else)
#   scripts/servers.sh status [DIR]
#   scripts/servers.sh restart-pg|stop-pg|start-pg|restart-rabbit|stop-rabbit|start-rabbit|kill-rabbit|kill-pg [DIR]
#
# DIR defaults to .run/servers in the project. Everything lives under DIR; the servers listen
# on 127.0.0.1 only. `source DIR/env` gives OSS_TEST_PG_URL_BASE, OSS_TEST_AMQP_URL, ...
# Servers it did not start are never touched: stop only acts on the pid/node recorded in DIR.
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
  # Ask the kernel for a free port (port 0), then release it for the server to take.
  python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

free_port_below() {
  # Erlang's distribution port must be < 65536 and should not collide; any free port works.
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! ss -ltnH "sport = :$p" | grep -q .; then echo "$p"; return 0; fi
  done
  return 1
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
  log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  pg_start "$PG_PORT"
  for db in oss crm mes; do
    as_postgres "$PGBIN/../bin/psql" -h "$dir/pg/sock" -p "$PG_PORT" -U postgres -qAt -c "CREATE DATABASE $db" postgres >/dev/null 2>&1 ||
      psql -h "$dir/pg/sock" -p "$PG_PORT" -U postgres -qAt -c "CREATE DATABASE $db" postgres >/dev/null
  done

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
  *) echo "usage: $0 start|stop|status|stop-pg|start-pg|restart-pg|kill-pg|stop-rabbit|start-rabbit|restart-rabbit|kill-rabbit [DIR]" >&2; exit 2 ;;
esac
