#!/usr/bin/env bash
# rankqld's embedded PostgreSQL and schema migrations, end to end: first start
# creates the cluster and schema, SIGTERM stops it, a second start reuses it
# and migrates nothing, --db uses another server, a kill -9 is recovered from,
# and bad set-ups fail with one clear line.
#
# Every rankqld and postgres started here is stopped by the EXIT trap; each
# wait is bounded, so a hang fails a check instead of the whole run.
set -u
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

RANKQLD=${RANKQLD:-$RANKQL_BIN/rankqld}
PGBIN=${RANKQL_PG_BINDIR:-$(pg_config --bindir 2>/dev/null)}
[ -x "$PGBIN/initdb" ] ||
  PGBIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)
if [ ! -x "$RANKQLD" ] || [ ! -x "$PGBIN/initdb" ]; then
  not_ok "setup: need $RANKQLD (make) and PostgreSQL's initdb (postgresql-15)"
  finish
fi

SCRATCH=$(make_scratch)
DATA=$SCRATCH/data
SOCK=$DATA/pg-socket
EXT=$SCRATCH/ext                      # the throwaway server for --db
EXT_PORT=54391
migration_files=("$RANKQL_ROOT"/sql/[0-9]*.sql)
MIGRATIONS=${#migration_files[@]}
STARTED=()                            # rankqld pids
export PGCONNECT_TIMEOUT=5

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local p d
  for p in "${STARTED[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for d in "$DATA/pg" "$EXT/data"; do
    [ -f "$d/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate -w -t 20 stop >/dev/null 2>&1
  done
  [ -n "${SLEEPER:-}" ] && kill "$SLEEPER" 2>/dev/null
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

# start_rankqld ERRFILE ARGS...: runs rankqld in the background; sets RQ.
start_rankqld() {
  local err=$1; shift
  # rankqld serves HTTP once ready: a free port, so a busy default 8001 cannot fail the test.
  "$RANKQLD" "$@" --listen "127.0.0.1:$(free_port)" 2>"$err" &
  RQ=$!
  STARTED+=("$RQ")
}

# wait_ready ERRFILE PID: until the ready line (0), or exit / 60 s (1).
wait_ready() {
  local i
  for i in $(seq 1 600); do
    grep -qs '^rankqld: ready' "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# rankqld with a time limit, for runs that are meant to exit by themselves.
run_rankqld() { timeout 120 "$RANKQLD" "$@"; }

q() { psql -X -qAt -h "$SOCK" -U rankql -d rankql -c "$1" 2>&1; }
postmaster_running() { pgrep -f -- "-D $1( |\$)" >/dev/null; }
# shellcheck disable=SC2317  # run through check
no_postmaster() { ! postmaster_running "$1"; }
# pg_dump >= 15.14 wraps its output in \restrict KEY with a random key: not schema.
schema_dump() {
  "$PGBIN/pg_dump" -h "$SOCK" -U rankql -d rankql --schema-only --no-owner |
    grep -Ev '^\\(un)?restrict '
}

# ---- usage errors: exit 2, one line --------------------------------------------------
for args in "--bogus" "--listen" "--listen nohost" "--listen 127.0.0.1:0" \
            "--listen 127.0.0.1:99999" "--listen [::1:80" "extra-argument" "--data-dir=" \
            "--db postgres://x --pg-user postgres"; do
  # shellcheck disable=SC2086
  out=$(timeout 10 "$RANKQLD" $args 2>&1 >/dev/null); rc=$?
  check_eq "usage error exits 2: rankqld $args" 2 "$rc"
  check_eq "usage error is one line: rankqld $args" 1 "$(printf '%s\n' "$out" | wc -l)"
done
out=$(timeout 10 "$RANKQLD" --version); check_contains "--version prints the version" "rankqld " "$out"
out=$(timeout 10 "$RANKQLD" --help); check_contains "--help describes --data-dir" "--data-dir" "$out"

# ---- set-ups that cannot work: exit 1, one clear line, nothing created ----------------
out=$(RANKQL_PG_BINDIR=/nonexistent run_rankqld --data-dir "$SCRATCH/nobin" --migrate-only 2>&1); rc=$?
check_eq "missing PostgreSQL binaries exit 1" 1 "$rc"
check_contains "missing binaries: the message names RANKQL_PG_BINDIR" "RANKQL_PG_BINDIR=/nonexistent" "$out"
check_contains "missing binaries: the message names the programs" "initdb, pg_ctl and postgres" "$out"
check_eq "missing binaries: one line" 1 "$(printf '%s\n' "$out" | wc -l)"
check "missing binaries: no data directory created" test ! -e "$SCRATCH/nobin"

if [ "$(id -u)" = 0 ]; then
  mkdir -m 700 "$SCRATCH/locked"
  out=$(run_rankqld --data-dir "$SCRATCH/locked/data" --migrate-only 2>&1); rc=$?
  check_eq "root, unreachable data directory: exit 1" 1 "$rc"
  check_contains "root, unreachable data directory: names the blocking directory" \
    "user 'postgres', who cannot enter $SCRATCH/locked (mode 0700" "$out"
  check_contains "root, unreachable data directory: says what to do" "chmod o+x $SCRATCH/locked" "$out"
  check "root, unreachable data directory: nothing created" test ! -e "$SCRATCH/locked/data"
else
  ok "root, unreachable data directory # skip: not running as root"
fi

long=$SCRATCH/$(printf 'd%.0s' $(seq 1 100))
out=$(run_rankqld --data-dir "$long" --migrate-only 2>&1); rc=$?
check_eq "socket path too long: exit 1" 1 "$rc"
check_contains "socket path too long: says so" "longer than the 107 a Unix socket path may have" "$out"
check "socket path too long: nothing created" test ! -e "$long"

# ---- first start: cluster, database and schema ---------------------------------------
start_rankqld "$SCRATCH/run1.err" --data-dir "$DATA" --pg-no-sync
if wait_ready "$SCRATCH/run1.err" "$RQ"; then ok "first start gets ready"; else
  not_ok "first start gets ready"; sed 's/^/#   /' "$SCRATCH/run1.err"; fi
check_contains "first start creates the cluster" "creating a PostgreSQL" "$(cat "$SCRATCH/run1.err")"
check_contains "first start applies every migration" "$MIGRATIONS migrations applied" "$(cat "$SCRATCH/run1.err")"
check "cluster lives in DATA_DIR/pg" test -f "$DATA/pg/PG_VERSION"
check "server log is DATA_DIR/pg.log" test -s "$DATA/pg.log"
for t in models datasets jobs job_deps feature_cache proxy_results finetune_results \
         strategy_results dataset_similarity sessions session_variables api_tokens audit_log \
         schema_migrations; do
  check_eq "table $t exists" "$t" "$(q "SELECT to_regclass('public.$t')")"
done
for v in image_models text_models; do
  check_eq "view $v exists" "v" "$(q "SELECT relkind FROM pg_class WHERE relname = '$v'")"
done
check_eq "schema_migrations records every migration" "$MIGRATIONS" "$(q "SELECT count(*) FROM schema_migrations")"
check_eq "the server listens on no TCP address" "" "$(q "SHOW listen_addresses")"
check_eq "the socket is in DATA_DIR/pg-socket" "$SOCK" "$(q "SHOW unix_socket_directories")"
check_eq "constraints are enforced (text model with image_size)" "ERROR" \
  "$(q "INSERT INTO models (name, modality, runner, image_size) VALUES ('x', 'text', 'builtin', 224)" | grep -o '^ERROR' | head -1)"
q "INSERT INTO models (name, modality, runner, image_size) VALUES ('marker', 'image', 'builtin', 28)" >/dev/null
out=$(run_rankqld --data-dir "$DATA" --migrate-only 2>&1); rc=$?
check_eq "a second rankqld on the same data directory exits 1" 1 "$rc"
check_contains "a second rankqld says the directory is in use" "another rankqld (pid $RQ)" "$out"
schema_dump >"$SCRATCH/schema1.sql"
check "schema dump taken" test -s "$SCRATCH/schema1.sql"

stop_rankqld "$RQ"; rc=$?
check_eq "SIGTERM: rankqld exits 0" 0 "$rc"
check "SIGTERM: no postmaster left on the cluster" no_postmaster "$DATA/pg"
check "SIGTERM: postmaster.pid removed" test ! -e "$DATA/pg/postmaster.pid"

# ---- second start: same cluster, nothing to migrate ----------------------------------
start_rankqld "$SCRATCH/run2.err" --data-dir "$DATA" --pg-no-sync
if wait_ready "$SCRATCH/run2.err" "$RQ"; then ok "second start gets ready"; else
  not_ok "second start gets ready"; sed 's/^/#   /' "$SCRATCH/run2.err"; fi
err2=$(cat "$SCRATCH/run2.err")
check "second start runs no initdb" bash -c "! grep -q 'creating a PostgreSQL' '$SCRATCH/run2.err'"
check_contains "second start applies 0 migrations" "0 migrations applied" "$err2"
check_eq "second start keeps the data" "marker" "$(q "SELECT name FROM models WHERE name = 'marker'")"
schema_dump >"$SCRATCH/schema2.sql"
check "re-running migrations changes no schema" cmp -s "$SCRATCH/schema1.sql" "$SCRATCH/schema2.sql"

# ---- kill -9 of rankqld: the next one adopts the running postmaster -------------------
kill -KILL "$RQ"; wait "$RQ" 2>/dev/null
check "after kill -9 of rankqld its postmaster still runs" postmaster_running "$DATA/pg"
start_rankqld "$SCRATCH/run3.err" --data-dir "$DATA" --pg-no-sync
if wait_ready "$SCRATCH/run3.err" "$RQ"; then ok "restart after kill -9 gets ready"; else
  not_ok "restart after kill -9 gets ready"; sed 's/^/#   /' "$SCRATCH/run3.err"; fi
check_contains "restart after kill -9 adopts the postmaster" "adopted the PostgreSQL server" "$(cat "$SCRATCH/run3.err")"
check_eq "restart after kill -9 keeps the data" "marker" "$(q "SELECT name FROM models WHERE name = 'marker'")"

# ---- kill -9 of rankqld and postmaster: crash recovery --------------------------------
pm=$(head -1 "$DATA/pg/postmaster.pid")
kill -KILL "$RQ" "$pm"; wait "$RQ" 2>/dev/null
for _ in $(seq 1 50); do postmaster_running "$DATA/pg" || break; sleep 0.1; done
start_rankqld "$SCRATCH/run4.err" --data-dir "$DATA" --pg-no-sync
if wait_ready "$SCRATCH/run4.err" "$RQ"; then ok "restart after kill -9 of both gets ready"; else
  not_ok "restart after kill -9 of both gets ready"; sed 's/^/#   /' "$SCRATCH/run4.err"; fi
check_eq "crash recovery keeps the data" "marker" "$(q "SELECT name FROM models WHERE name = 'marker'")"

# ---- the postmaster dies under a running rankqld: it is started again -----------------
pm=$(head -1 "$DATA/pg/postmaster.pid")
kill -KILL "$pm"
for _ in $(seq 1 100); do
  grep -q '^rankqld: started PostgreSQL' <(sed -n '/exited unexpectedly/,$p' "$SCRATCH/run4.err") && break
  sleep 0.1
done
check_contains "a dead postmaster is noticed" "(pid $pm) exited unexpectedly" "$(cat "$SCRATCH/run4.err")"
check_eq "a dead postmaster is started again, data intact" "marker" \
  "$(q "SELECT name FROM models WHERE name = 'marker'")"
stop_rankqld "$RQ"; rc=$?
check_eq "SIGTERM after recovery: exit 0" 0 "$rc"
check "SIGTERM after recovery: no postmaster left" no_postmaster "$DATA/pg"

# ---- a stale postmaster.pid whose pid now belongs to another process ------------------
sleep 300 & SLEEPER=$!
printf '%s\n%s\n0\n5432\n%s\n\n      0     0\nready\n' "$SLEEPER" "$DATA/pg" "$SOCK" >"$DATA/pg/postmaster.pid"
[ "$(id -u)" = 0 ] && chown postgres: "$DATA/pg/postmaster.pid"
out=$(run_rankqld --data-dir "$DATA" --migrate-only --pg-no-sync 2>&1); rc=$?
check_eq "stale postmaster.pid with a reused pid does not block start" 0 "$rc"
check_contains "stale postmaster.pid is reported" "removed stale $DATA/pg/postmaster.pid" "$out"
kill "$SLEEPER" 2>/dev/null; wait "$SLEEPER" 2>/dev/null; SLEEPER=

# ---- a throwaway server for --db -------------------------------------------------------
mkdir -p "$EXT"; [ "$(id -u)" = 0 ] && chown postgres: "$EXT"
as_pg "$PGBIN/initdb" -D "$EXT/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$EXT/initdb.log" 2>&1
as_pg "$PGBIN/pg_ctl" -D "$EXT/data" -l "$EXT/server.log" -w -t 30 \
  -o "-k $EXT -p $EXT_PORT -c listen_addresses='' -c fsync=off" start >/dev/null 2>&1
check "throwaway server for --db starts" postmaster_running "$EXT/data"
psql -X -q -h "$EXT" -p "$EXT_PORT" -U postgres -d postgres -c "CREATE DATABASE rq" >/dev/null 2>&1

# A different live server holding our socket directory must be named, not fought.
as_pg "$PGBIN/pg_ctl" -D "$EXT/data" -m fast -w stop >/dev/null 2>&1
as_pg "$PGBIN/pg_ctl" -D "$EXT/data" -l "$EXT/server.log" -w -t 30 \
  -o "-k $SOCK -c listen_addresses='' -c fsync=off" start >/dev/null 2>&1
out=$(run_rankqld --data-dir "$DATA" --migrate-only 2>&1); rc=$?
check_eq "socket taken by another server: exit 1" 1 "$rc"
check_contains "socket taken by another server: says which" "in use by another PostgreSQL server" "$out"
check_contains "socket taken by another server: names its data directory" "data directory $EXT/data" "$out"
as_pg "$PGBIN/pg_ctl" -D "$EXT/data" -m fast -w stop >/dev/null 2>&1
as_pg "$PGBIN/pg_ctl" -D "$EXT/data" -l "$EXT/server.log" -w -t 30 \
  -o "-k $EXT -p $EXT_PORT -c listen_addresses='' -c fsync=off" start >/dev/null 2>&1

URL="host=$EXT port=$EXT_PORT user=postgres dbname=rq"
start_rankqld "$SCRATCH/db.err" --db "$URL" --data-dir "$SCRATCH/dbmode"
if wait_ready "$SCRATCH/db.err" "$RQ"; then ok "--db: ready"; else
  not_ok "--db: ready"; sed 's/^/#   /' "$SCRATCH/db.err"; fi
check_contains "--db: applies every migration" "$MIGRATIONS migrations applied" "$(cat "$SCRATCH/db.err")"
check_eq "--db: the schema is in that server" "$MIGRATIONS" \
  "$(psql -X -qAt -h "$EXT" -p "$EXT_PORT" -U postgres -d rq -c 'SELECT count(*) FROM schema_migrations' 2>&1)"
check "--db: no embedded cluster is created" test ! -e "$SCRATCH/dbmode"
stop_rankqld "$RQ"; rc=$?
check_eq "--db: SIGTERM exits 0" 0 "$rc"
check "--db: the external server is left running" postmaster_running "$EXT/data"

# Several rankqlds migrating one fresh database at once apply each migration once.
psql -X -q -h "$EXT" -p "$EXT_PORT" -U postgres -d postgres -c "CREATE DATABASE race" >/dev/null 2>&1
for i in 1 2 3; do
  run_rankqld --db "host=$EXT port=$EXT_PORT user=postgres dbname=race" --migrate-only 2>"$SCRATCH/race$i.err" &
done
wait
total=$(cat "$SCRATCH"/race*.err | sed -n 's/.*, \([0-9]*\) migrations\{0,1\} applied.*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
check_eq "concurrent migrations: each applied exactly once" "$MIGRATIONS" "$total"

finish
