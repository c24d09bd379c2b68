#!/usr/bin/env bash
# Build Epoch and run it in front of a throwaway PostgreSQL 15 cluster that
# holds the sample "shop" database.
#
#   bash scripts/run.sh            # proxy on 127.0.0.1:6432
#   PORT=7000 bash scripts/run.sh  # another proxy port
#
# The cluster lives in .data/pg (git-ignored) and is reused by later runs.
# PostgreSQL gets a free loopback port; TCP logins use scram-sha-256 (user
# "shop", password "shop"; not "epoch": a role named like the epoch schema would
# put its new tables there through the "$user" entry of search_path); local socket logins use peer (setup only).
# Ctrl-C stops the proxy and PostgreSQL.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PORT=${PORT:-6432}
PG_BIN=/usr/lib/postgresql/15/bin
PG_DIR=$ROOT/.data/pg
PG_DATA=$PG_DIR/data
PG_LOG=$PG_DIR/postgres.log
PROXY_LOG=$PG_DIR/epoch-proxy.log
PROXY=$ROOT/build/epoch-proxy

log() { printf 'run: %s\n' "$*" >&2; }
die() { printf 'run: error: %s\n' "$*" >&2; exit 1; }

# initdb refuses to run as root: the cluster belongs to "postgres" then.
if [[ $(id -u) -eq 0 ]]; then
  AS_PG=(runuser -u postgres --)
  PG_SUPERUSER=postgres
else
  AS_PG=()
  PG_SUPERUSER=$(id -un)
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

proxy_pid=
sock_dir=
pg_started=0

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [[ -n $proxy_pid ]] && kill -0 "$proxy_pid" 2>/dev/null; then
    log "stopping epoch-proxy (pid $proxy_pid)"
    kill -INT "$proxy_pid" 2>/dev/null
    for _ in $(seq 1 100); do
      kill -0 "$proxy_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$proxy_pid" 2>/dev/null; then
      log "epoch-proxy did not exit within 10s; killing it"
      kill -KILL "$proxy_pid" 2>/dev/null
    fi
    wait "$proxy_pid" 2>/dev/null
  fi
  if [[ $pg_started -eq 1 ]]; then
    log "stopping PostgreSQL"
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 30 >/dev/null \
      || log "pg_ctl stop failed; see $PG_LOG"
  fi
  if [[ -n $sock_dir ]]; then
    rm -rf "$sock_dir"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ $PORT =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$PORT'"

bash scripts/deps.sh
cmake -S . -B build
cmake --build build -j2
[[ -x $PROXY ]] || die "$PROXY was not built"

if port_in_use "$PORT"; then
  die "127.0.0.1:$PORT is already in use (set PORT=... to use another port)"
fi

# ---- PostgreSQL ---------------------------------------------------------------
mkdir -p "$PG_DIR"
if [[ $(id -u) -eq 0 ]]; then
  chown postgres: "$PG_DIR"
  "${AS_PG[@]}" test -w "$PG_DIR" \
    || die "user postgres cannot write $PG_DIR (a parent directory is not accessible to it)"
fi

if [[ ! -s $PG_DATA/PG_VERSION ]]; then
  log "initialising a PostgreSQL 15 cluster in $PG_DATA"
  rm -rf "$PG_DATA.tmp"
  "${AS_PG[@]}" "$PG_BIN/initdb" -D "$PG_DATA.tmp" -U "$PG_SUPERUSER" -E UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 --no-sync >"$PG_DIR/initdb.log" 2>&1 \
    || die "initdb failed; see $PG_DIR/initdb.log"
  # Truncating/appending keeps the files owned by the cluster's user.
  cat >"$PG_DATA.tmp/pg_hba.conf" <<'EOF'
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  peer
host    all       all   127.0.0.1/32   scram-sha-256
EOF
  cat >>"$PG_DATA.tmp/postgresql.conf" <<'EOF'

# ---- scripts/run.sh ----
listen_addresses = '127.0.0.1'
password_encryption = 'scram-sha-256'
max_connections = 200
log_min_messages = warning
EOF
  mv "$PG_DATA.tmp" "$PG_DATA"
fi

# A cluster left running by a killed earlier run: stop it, we restart it on a fresh port.
if "${AS_PG[@]}" "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1; then
  log "stopping a PostgreSQL left running by an earlier run"
  "${AS_PG[@]}" "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 30 >/dev/null
fi

PG_PORT=$(free_port)
sock_dir=$(mktemp -d /tmp/epoch-run-pg.XXXXXX)
if [[ $(id -u) -eq 0 ]]; then
  chown postgres: "$sock_dir"
fi
log "starting PostgreSQL on 127.0.0.1:$PG_PORT (log: $PG_LOG)"
pg_started=1
"${AS_PG[@]}" "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t 60 \
  -o "-p $PG_PORT -k $sock_dir" >/dev/null \
  || die "PostgreSQL did not start; see $PG_LOG"

psql_admin() {
  "${AS_PG[@]}" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock_dir" -p "$PG_PORT" \
    -U "$PG_SUPERUSER" "$@"
}

psql_admin -d postgres <<'EOF'
SELECT 'CREATE ROLE shop' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop') \gexec
ALTER ROLE shop LOGIN PASSWORD 'shop';
SELECT 'CREATE DATABASE shop OWNER shop' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'shop') \gexec
EOF

loaded=$(psql_admin -d shop -tAc "SELECT to_regclass('public.order_totals') IS NOT NULL")
if [[ $loaded != t ]]; then
  log "loading scripts/sample.sql into database shop"
  PGPASSWORD=shop "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" \
    -U shop -d shop --single-transaction -f scripts/sample.sql >/dev/null
fi

# ---- epoch-proxy --------------------------------------------------------------
log "starting epoch-proxy on 127.0.0.1:$PORT (log also in $PROXY_LOG)"
: >"$PROXY_LOG"
"$PROXY" --listen "127.0.0.1:$PORT" --backend "host=127.0.0.1 port=$PG_PORT" \
  --config "$ROOT/conf/epoch.conf" 2> >(tee -a "$PROXY_LOG" >&2) &
proxy_pid=$!

ready=0
for _ in $(seq 1 150); do
  if grep -q 'listening on' "$PROXY_LOG"; then
    ready=1
    break
  fi
  kill -0 "$proxy_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ $ready -ne 1 ]]; then
  kill -0 "$proxy_pid" 2>/dev/null || { wait "$proxy_pid" || true; proxy_pid=; }
  die "epoch-proxy did not report 'listening on' within 15s; see $PROXY_LOG"
fi

cat <<EOF

  Epoch is listening on 127.0.0.1:$PORT in front of PostgreSQL 15 (127.0.0.1:$PG_PORT).
  Connect with:

    PGPASSWORD=shop psql -h 127.0.0.1 -p $PORT -U shop shop

  or with the git-like command line:

    PGPASSWORD=shop build/epoch -h 127.0.0.1 -p $PORT -U shop -d shop status

  Reload the config: kill -HUP $proxy_pid     Stop: Ctrl-C

EOF

wait "$proxy_pid"
