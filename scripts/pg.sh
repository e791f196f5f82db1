#!/usr/bin/env bash
# A throwaway PostgreSQL on a loopback port for the tests.
#   scripts/pg.sh start   → prints the URL; state in .run/pg.env
#   scripts/pg.sh stop    → stops it and deletes its data dir
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=.run/pg.env
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

as_pg() {  # initdb/postgres refuse to run as root
  if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}

case "${1:-}" in
start)
  mkdir -p .run
  PORT=${PGPORT_TEST:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
  DIR=$(mktemp -d /tmp/rxcrm-pg.XXXXXX)
  chmod 755 "$DIR"
  [ "$(id -u)" -eq 0 ] && chown postgres "$DIR"
  as_pg "$BIN/initdb -D $DIR/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >/dev/null
  as_pg "$BIN/pg_ctl -D $DIR/data -o \"-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off\" -l $DIR/pg.log -w start" >/dev/null
  echo "PG_DIR=$DIR" > $STATE
  echo "PG_PORT=$PORT" >> $STATE
  echo "RXCRM_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres" >> $STATE
  echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
  ;;
stop)
  [ -f $STATE ] || exit 0
  . $STATE
  as_pg "$BIN/pg_ctl -D $PG_DIR/data -m fast -w stop" >/dev/null 2>&1 || true
  rm -rf "$PG_DIR" $STATE
  ;;
*)
  echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
