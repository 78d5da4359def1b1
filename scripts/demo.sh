#!/usr/bin/env bash
# `make demo`: start rankqld on its own embedded PostgreSQL, load the demo catalog and run
# the demo statements through the rankql shell, then stop everything.
#
#   RANKQL_DEMO_DIR   where the demo's data directory lives (default /tmp/rankql-demo;
#                     under /tmp so the unprivileged PostgreSQL user can reach it when
#                     make runs as root)
#   RANKQL_DEMO_PORT  HTTP port (default 8001, or the next free one)
#   RANKQL_DEMO_KEEP=1  leave the server running at the end
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${RANKQL_BIN:-build/bin}
DIR=${RANKQL_DEMO_DIR:-/tmp/rankql-demo}
PORT=${RANKQL_DEMO_PORT:-8001}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
while port_busy "$PORT"; do PORT=$((PORT + 1)); done

mkdir -p "$DIR"
chmod 755 "$DIR"
LOG="$DIR/rankqld.log"

echo "== starting rankqld (data in $DIR/data, http://127.0.0.1:$PORT)"
"$BIN/rankqld" --data-dir "$DIR/data" --listen "127.0.0.1:$PORT" --max-wait 900 >"$LOG" 2>&1 &
SERVER=$!
stop_server() {
  if [ "${RANKQL_DEMO_KEEP:-0}" = 1 ]; then
    echo "== rankqld keeps running (pid $SERVER); stop it with: kill $SERVER"
    return
  fi
  kill -TERM "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  echo "== rankqld stopped"
}
trap stop_server EXIT

for _ in $(seq 1 120); do
  if curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$SERVER" 2>/dev/null; then
    echo "rankqld exited; its log:" >&2; cat "$LOG" >&2; exit 1
  fi
  sleep 0.5
done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "rankqld did not answer; log:" >&2; cat "$LOG" >&2; exit 1; }

RQ=("$BIN/rankql" -H "127.0.0.1:$PORT")

echo "== loading the demo catalog (scripts/demo-catalog.rql)"
"${RQ[@]}" --on-error-stop -f scripts/demo-catalog.rql >/dev/null

echo "== running demo/queries.rql"
"${RQ[@]}" --on-error-stop -f demo/queries.rql
