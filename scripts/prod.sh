#!/usr/bin/env bash
# The production topology on one machine (`make prod`): Debian's PostgreSQL and Redis on
# loopback ports with their data in .run/prod/ (created on first start, kept across restarts),
# and the app in production mode with several workers sharing state through Redis.
#
#   scripts/prod.sh run    start PostgreSQL + Redis (reusing leftovers), create the database
#                          and its role if missing, migrate, demo data on first start only,
#                          print the demo accounts, serve http://localhost:$PORT with $WORKERS
#                          workers; on exit or Ctrl-C the app and both servers are stopped
#   scripts/prod.sh stop   stop what an interrupted run left behind (`make prod-stop`)
#
# Environment: PORT (3000), WORKERS (number of cores), PROD_PG_PORT (55433),
# PROD_REDIS_PORT (56380), DEMO_LEADS / DEMO_DEALS (the first start's demo data).
# Both servers listen on 127.0.0.1 only and require passwords, generated on first start into
# .run/prod/secrets.env (mode 0600): the app connects as the role `rxcrm`, owner of the
# database `rxcrm`; the superuser `postgres` is reachable only through the cluster's socket
# in .run/prod/pg (mode 0700).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN=$ROOT/.run/prod
PGD=$RUN/pg              # the cluster in $PGD/data; socket and log beside it
RDD=$RUN/redis           # Redis: appendonly file, pid file, log, config (with the password)
SECRETS=$RUN/secrets.env
LOCK=$RUN/.lock
APP_PID=$RUN/app.pid
PORT=${PORT:-3000}
WORKERS=${WORKERS:-$(nproc 2>/dev/null || echo 2)}
PG_PORT=${PROD_PG_PORT:-55433}
REDIS_PORT=${PROD_REDIS_PORT:-56380}
PY=$ROOT/.venv/bin/python
export PATH="$ROOT/.venv/bin:$PATH" REFLEX_USE_NPM=1 REFLEX_TELEMETRY_ENABLED=false PYTHONDONTWRITEBYTECODE=1

BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)

say() { echo "prod: $*" >&2; }
die() { say "$*"; exit 1; }

as_pg() {  # initdb/postgres refuse to run as root
  if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}

listening() {  # is anything accepting connections on 127.0.0.1:$1?
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pg_running() { [ -f "$PGD/data/PG_VERSION" ] && as_pg "$BIN/pg_ctl -D $PGD/data status" >/dev/null 2>&1; }

redis_pid() {  # the pid of our Redis when it runs, else nothing
  local pid
  [ -f "$RDD/redis.pid" ] || return 0
  pid=$(cat "$RDD/redis.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q redis-server "/proc/$pid/cmdline" 2>/dev/null; then
    echo "$pid"
  fi
}

psql_su() {  # SQL (on stdin) as the superuser, through the cluster's own socket (others can't reach it)
  as_pg "$BIN/psql -h $PGD -p $PG_PORT -U postgres -d postgres -v ON_ERROR_STOP=1 -qtAX"
}

# ---- servers -----------------------------------------------------------------------------------
secrets() {
  mkdir -p "$RUN"
  if [ ! -f "$SECRETS" ]; then
    ( umask 077
      echo "PG_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(16))')" > "$SECRETS"
      echo "REDIS_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(16))')" >> "$SECRETS" )
  fi
  # shellcheck disable=SC1090
  . "$SECRETS"
}

start_pg() {
  [ -n "$BIN" ] || die "PostgreSQL is not installed: run \`make system-deps\`"
  if [ ! -f "$PGD/data/PG_VERSION" ]; then
    say "creating the PostgreSQL cluster in $PGD/data"
    rm -rf "$PGD"; mkdir -p "$PGD"; chmod 700 "$PGD"
    [ "$(id -u)" -eq 0 ] && chown postgres "$PGD"
    as_pg "$BIN/initdb -D $PGD/data -U postgres -E UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256" >/dev/null
  fi
  if pg_running; then
    PG_PORT=$(as_pg "sed -n 4p $PGD/data/postmaster.pid")
    say "PostgreSQL already running on port $PG_PORT (a leftover): reusing it"
  else
    listening "$PG_PORT" && die "port $PG_PORT is taken by another program: set PROD_PG_PORT"
    as_pg "$BIN/pg_ctl -D $PGD/data -l $PGD/pg.log -w -t 60 \
      -o \"-p $PG_PORT -k $PGD -c listen_addresses=127.0.0.1\" start" >/dev/null 9>&- \
      || die "PostgreSQL did not start; see $PGD/pg.log"
  fi
  # the app's role and database (created if missing; the password follows secrets.env)
  # (SQL on stdin: the password never appears on a command line)
  psql_su >/dev/null <<SQL
DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rxcrm') THEN CREATE ROLE rxcrm LOGIN; END IF; END \$\$;
ALTER ROLE rxcrm PASSWORD '$PG_PASSWORD';
SQL
  if [ "$(psql_su <<< "SELECT 1 FROM pg_database WHERE datname = 'rxcrm'")" != "1" ]; then
    say "creating the database rxcrm"
    psql_su <<< "CREATE DATABASE rxcrm OWNER rxcrm" >/dev/null
  fi
}

start_redis() {
  command -v redis-server >/dev/null || die "redis-server is not installed: run \`make system-deps\`"
  mkdir -p "$RDD"; chmod 700 "$RDD"
  ( umask 077; printf 'requirepass %s\n' "$REDIS_PASSWORD" > "$RDD/redis.conf" )
  if [ -n "$(redis_pid)" ]; then
    REDIS_PORT=$(cat "$RDD/port")
    say "Redis already running on port $REDIS_PORT (a leftover): reusing it"
    return
  fi
  listening "$REDIS_PORT" && die "port $REDIS_PORT is taken by another program: set PROD_REDIS_PORT"
  # state in Redis is per browser session: the append-only file keeps it across restarts
  redis-server "$RDD/redis.conf" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RDD" \
    --daemonize yes --pidfile "$RDD/redis.pid" --logfile "$RDD/redis.log" \
    --appendonly yes --save "" 9>&- || die "Redis did not start; see $RDD/redis.log"
  echo "$REDIS_PORT" > "$RDD/port"
  for _ in $(seq 50); do
    REDISCLI_AUTH=$REDIS_PASSWORD redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return
    sleep 0.2
  done
  die "Redis did not answer; see $RDD/redis.log"
}

stop_app() {  # $1: the app's pid when this run started it; else the pid file's, if it is reflex
  local pid=${1:-}
  if [ -z "$pid" ]; then
    pid=$(cat "$APP_PID" 2>/dev/null || true)
    grep -q reflex "/proc/$pid/cmdline" 2>/dev/null || pid=""
  fi
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    say "stopping the app (process group $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$APP_PID"
}

stop_servers() {
  local pid
  if pg_running; then
    say "stopping PostgreSQL"
    as_pg "$BIN/pg_ctl -D $PGD/data -m fast -w stop" >/dev/null 2>&1 || true
  fi
  pid=$(redis_pid)
  if [ -n "$pid" ]; then
    say "stopping Redis"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
}

cleanup() {
  trap - EXIT INT TERM HUP
  stop_app "${APP:-}"
  stop_servers
}

hide_password() { sed -E 's#(://[^:/@]+):[^@/]*@#\1:***@#g'; }

# ---- commands ----------------------------------------------------------------------------------
run() {
  mkdir -p "$RUN"
  exec 9>"$LOCK"
  flock -n 9 || die "make prod is already running in this checkout (stop it with Ctrl-C)"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM HUP
  secrets
  start_pg
  start_redis
  export REFLEX_DB_URL="postgresql+psycopg://rxcrm:$PG_PASSWORD@127.0.0.1:$PG_PORT/rxcrm"
  export REFLEX_REDIS_URL="redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT/0"
  export GRANIAN_WORKERS=$WORKERS
  "$PY" -m rxcrm.manage migrate 2>&1 | hide_password
  "$PY" -m rxcrm.seed --if-empty --leads "${DEMO_LEADS:-2000}" --deals "${DEMO_DEALS:-1000}"
  "$PY" -m rxcrm.manage accounts
  say "PostgreSQL 127.0.0.1:$PG_PORT (data $PGD), Redis 127.0.0.1:$REDIS_PORT (data $RDD)"
  say "starting rxcrm on http://localhost:$PORT with $WORKERS workers (the build takes a minute) …"
  # its own process group, so that stopping it stops every worker; fd 9 (the lock) stays here
  setsid "$ROOT/.venv/bin/reflex" run --env prod --frontend-port "$PORT" --backend-port "$PORT" 9>&- &
  APP=$!
  echo "$APP" > "$APP_PID"
  wait "$APP" || true
}

stop() {
  mkdir -p "$RUN"
  exec 9>"$LOCK"
  flock -n 9 || die "make prod is running in this checkout: stop it with Ctrl-C"
  stop_app
  stop_servers
  say "stopped (data kept in $RUN)"
}

case "${1:-}" in
run) run ;;
stop) stop ;;
*) echo "usage: $0 run|stop" >&2; exit 2 ;;
esac
