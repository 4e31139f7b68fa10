#!/bin/sh
# The database of the application experiments: Debian's PostgreSQL (unmodified), a throwaway cluster made by
# initdb under $TMPDIR as the calling user (no `postgres` account, no root: run it as an unprivileged user;
# PostgreSQL refuses root), listening on all addresses on $PORT (default 5432), trusting every client (a lab
# only). Durability is off (fsync, synchronous_commit, full_page_writes), as for a cache-like test database:
# the experiments measure the network, not the disk. Creates the database `app` with the table
#   items (k int primary key, v text, n int)   rows 1..$KEYS (default 1000)
# prints PG_READY once it serves, runs until SIGTERM/SIGINT (or $STOP exists), then stops and removes the cluster.
set -eu
PORT=${PORT:-5432}
KEYS=${KEYS:-1000}
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
D=$(mktemp -d "${TMPDIR:-/tmp}/pg.XXXXXX")
"$BIN/initdb" -D "$D/data" -U app --auth=trust -E UTF8 --no-sync >"$D/initdb.log" 2>&1 || { cat "$D/initdb.log" >&2; rm -rf "$D"; exit 1; }
echo "host all all 0.0.0.0/0 trust" >>"$D/data/pg_hba.conf"
"$BIN/postgres" -D "$D/data" -p "$PORT" -k "$D" -c listen_addresses='*' -c fsync=off -c synchronous_commit=off \
  -c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB 2>"$D/server.log" &
PID=$!
stop() { kill -INT $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$D"; exit 0; }
trap stop TERM INT
i=0
until "$BIN/pg_isready" -q -h "$D" -p "$PORT" -U app -d postgres; do
  i=$((i+1)); [ $i -lt 300 ] && kill -0 $PID 2>/dev/null || { echo "pg.sh: PostgreSQL did not start within 30 s:" >&2; tail -5 "$D/server.log" >&2; kill $PID 2>/dev/null; rm -rf "$D"; exit 1; }
  sleep 0.1
done
"$BIN/psql" -q -h "$D" -p "$PORT" -U app -d postgres -c 'CREATE DATABASE app' >/dev/null
"$BIN/psql" -q -h "$D" -p "$PORT" -U app -d app -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE TABLE items (k int PRIMARY KEY, v text NOT NULL, n int NOT NULL DEFAULT 0);
INSERT INTO items (k, v) SELECT g, 'item ' || g FROM generate_series(1, $KEYS) g;
SQL
echo PG_READY
while [ ! -e "${STOP:-/nonexistent}" ] && kill -0 $PID 2>/dev/null; do sleep 0.2 & wait $!; done
stop
