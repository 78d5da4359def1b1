# Shared helpers for integration scripts. Each check prints "ok - name" or
# "not ok - name"; tests/run-tests.sh counts those lines.
# shellcheck shell=bash

RANKQL_ROOT=${RANKQL_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
RANKQL_BIN=${RANKQL_BIN:-$RANKQL_ROOT/build/bin}
TESTS_FAILED=0

ok()      { echo "ok - $*"; }
not_ok()  { echo "not ok - $*"; TESTS_FAILED=$((TESTS_FAILED + 1)); }
# check NAME CMD...: runs CMD, ok when it exits 0.
check()   { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }
# check_eq NAME EXPECTED ACTUAL
check_eq() {
  if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; printf '#   expected: %s\n#   actual:   %s\n' "$2" "$3"; fi
}
# check_contains NAME NEEDLE HAYSTACK
check_contains() {
  case "$3" in *"$2"*) ok "$1" ;; *) not_ok "$1"; printf '#   expected to contain: %s\n#   actual: %s\n' "$2" "$3" ;; esac
}
# A scratch directory the PostgreSQL user can reach (root runs postgres as that user).
make_scratch() { local d; d=$(mktemp -d /tmp/rankql-test.XXXXXX); chmod 755 "$d"; echo "$d"; }
# stop_rankqld PID (a child of this shell): SIGTERM, then its exit status (124 if it did not exit in 60 s).
stop_rankqld() {
  local pid=$1 w rc
  kill -TERM "$pid" 2>/dev/null
  # The watchdog keeps no copy of our stdout and takes its sleep with it when stopped: a
  # lingering sleep holding the pipe made run-tests.sh's $(…) wait its full 60 s.
  ( exec >/dev/null 2>&1; sleep 60 & s=$!; trap 'kill $s; exit 0' TERM; wait $s; kill -KILL "$pid" ) & w=$!
  wait "$pid"; rc=$?
  if kill -0 "$w" 2>/dev/null; then kill "$w" 2>/dev/null; wait "$w" 2>/dev/null; else rc=124; fi
  return "$rc"
}
finish()  { exit $(( TESTS_FAILED > 0 ? 1 : 0 )); }
# free_port: a TCP port on 127.0.0.1 that nothing listens on right now (20000-59999).
free_port() {
  local p _
  for _ in $(seq 1 200); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    if command -v ss >/dev/null 2>&1; then
      [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ] && { echo "$p"; return 0; }
    elif ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"; return 0
    fi
  done
  return 1
}

# ---- C integration programs (tests/integration/itest_*.c) --------------------------------
# itest_scratch: a scratch directory for itest programs, removed on exit together with any
# postmaster a crashed run left behind in it ($ITEST_SCRATCH/<build>/data/pg).
itest_scratch() {
  ITEST_SCRATCH=$(make_scratch)
  trap itest_cleanup EXIT INT TERM
}
# shellcheck disable=SC2317  # run by the EXIT trap
itest_cleanup() {
  local pidfile pid
  for pidfile in "$ITEST_SCRATCH"/*/data/pg/postmaster.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(head -n 1 "$pidfile")
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]; then
      kill -INT "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done
  rm -rf "$ITEST_SCRATCH"
}
# run_itest NAME TIMEOUT ARGS…: runs $build/tests/NAME for each build of $BUILDS (default
# "build build-san") with its own scratch dir as the first argument, then ARGS ("{build}"
# in them becomes the build's folder). Check names get a "[build] " prefix so both builds
# count; a run that dies before its "# N checks, N failed" line counts as a failure.
run_itest() {
  local name=$1 limit=$2 build bin dir rc ran=0 args a
  shift 2
  for build in ${BUILDS:-build build-san}; do
    bin="$RANKQL_ROOT/$build/tests/$name"
    if [ ! -x "$bin" ]; then
      [ "$build" = build ] && not_ok "$name: $bin is built (run make build-all)"
      continue
    fi
    ran=$((ran + 1))
    dir="$ITEST_SCRATCH/$build"
    mkdir -p "$dir" && chmod 755 "$dir"
    echo "# $build/tests/$name"
    args=()
    for a in "$@"; do args+=("${a//\{build\}/$RANKQL_ROOT/$build}"); done
    timeout "$limit" "$bin" "$dir" "${args[@]}" >"$dir/stdout" 2>"$dir/stderr"
    rc=$?
    sed -e "s/^ok - /ok - [$build] /" -e "s/^not ok - /not ok - [$build] /" "$dir/stdout"
    if [ "$rc" -ne 0 ]; then
      TESTS_FAILED=$((TESTS_FAILED + 1))
      sed 's/^/#   /' "$dir/stderr" | tail -n 40
      grep -q '^# [0-9]* checks, [0-9]* failed$' "$dir/stdout" ||
        echo "not ok - [$build] $name ran to the end (exit status $rc)"
    fi
  done
  [ "$ran" -gt 0 ] || not_ok "$name: no binary to run"
}

# ---- rankqld over HTTP (test_rank.sh and test_http.sh keep their own copies) ------------------
# rq_pg_bindir: PostgreSQL's bin directory ($RANKQL_PG_BINDIR, pg_config, else the newest
# /usr/lib/postgresql/*/bin).
rq_pg_bindir() {
  local d=${RANKQL_PG_BINDIR:-$(pg_config --bindir 2>/dev/null)}
  [ -x "$d/initdb" ] || d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)
  echo "$d"
}
# rq_as_pg CMD…: runs CMD as the postgres user when we are root (PostgreSQL refuses root).
rq_as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# rq_start LOG ARGS…: starts $RANKQLD ARGS… in the background with stderr to LOG; sets RQ_PID
# and returns 0 once it logs "listening on" (1 if it exits or takes over 60 s).
rq_start() {
  local log=$1 n0 _; shift
  n0=$(grep -cs '^rankqld: listening on ' "$log"); n0=${n0:-0}   # LOG may hold earlier runs
  "$RANKQLD" "$@" 2>>"$log" &
  RQ_PID=$!
  for _ in $(seq 1 600); do
    [ "$(grep -cs '^rankqld: listening on ' "$log")" -gt "$n0" ] && return 0
    kill -0 "$RQ_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# rq_query TEXT [MAX-SECONDS]: POST {"query": TEXT} (and "session": $RQ_SESSION when set) to
# $RQ_BASE/v1/query; sets RQ_STATUS (000 when no answer came) and RQ_RESP. Uses $RQ_TMP.
rq_query() {
  local body=$RQ_TMP/rq_body.$BASHPID resp=$RQ_TMP/rq_resp.$BASHPID
  jq -n --arg q "$1" --arg s "${RQ_SESSION:-}" '{query: $q} + (if $s == "" then {} else {session: $s} end)' >"$body"
  RQ_STATUS=$(curl -s -o "$resp" -w '%{http_code}' --max-time "${2:-60}" \
    -H 'Content-Type: application/json' --data-binary "@$body" "$RQ_BASE/v1/query" 2>/dev/null) || true
  [ -n "$RQ_STATUS" ] || RQ_STATUS=000
  RQ_RESP=$(cat "$resp" 2>/dev/null)
  rm -f "$body" "$resp"
}
# rq_jf FILTER: a jq filter over the last answer (compact, raw strings).
rq_jf() { printf '%s' "$RQ_RESP" | jq -cr "$1" 2>/dev/null; }
# rq_jcheck NAME FILTER: ok when FILTER over the last answer is true.
rq_jcheck() {
  if [ "$(rq_jf "$2")" = true ]; then ok "$1"; else
    not_ok "$1"; printf '#   failed: %s\n#   on: %s\n' "$2" "${RQ_RESP:0:600}"; fi
}
# rq_idx FILE LABELS START STOP: the VALUES tuple of an idx dataset slice (REGISTER DATASET).
rq_idx() { printf "('idx', 'image', '%s', {labels: '%s'}, {start: %d, stop: %d})" "$1" "$2" "$3" "$4"; }
# rq_expect NAME STATUS [CODE]: ok when the last answer had that HTTP status (and error code).
rq_expect() {
  local got; got=$(rq_jf '.error.code // "-"')
  if [ "$RQ_STATUS" = "$2" ] && [ "$got" = "${3:--}" ]; then ok "$1"; else
    not_ok "$1"; printf '#   expected: %s %s\n#   actual:   %s %s\n' "$2" "${3:--}" "$RQ_STATUS" "${RQ_RESP:0:600}"; fi
}

# ---- set-up shared by the scripts that start rankqld on a scratch directory ------------------
# rq_need_tools TOOL…: a setup failure (and the end of the script) unless each TOOL is on PATH.
rq_need_tools() {
  local t
  for t in "$@"; do command -v "$t" >/dev/null || { not_ok "setup: $t is needed (scripts/install-deps.sh)"; finish; }; done
}
# rq_need_execs FILE…: a setup failure (and the end) unless each FILE is executable.
rq_need_execs() {
  local f
  for f in "$@"; do [ -x "$f" ] || { not_ok "setup: need $f (make build-all; PostgreSQL's initdb)"; finish; }; done
}
# rq_fashion_mnist [train]: sets TRI TRL TEI TEL to Fashion-MNIST's IDX files ($RANKQL_FASHION_MNIST);
# a setup failure (and the end) unless they (with "train": TRI and TRL only) are readable.
rq_fashion_mnist() {
  local fm=${RANKQL_FASHION_MNIST:-/usr/share/datasets/fashion-mnist} f files
  TRI=$fm/train-images-idx3-ubyte.gz TRL=$fm/train-labels-idx1-ubyte.gz
  TEI=$fm/t10k-images-idx3-ubyte.gz TEL=$fm/t10k-labels-idx1-ubyte.gz
  files=("$TRI" "$TRL"); [ "${1:-}" = train ] || files+=("$TEI" "$TEL")
  for f in "${files[@]}"; do
    [ -r "$f" ] || { not_ok "setup: need $f (apt-get install dataset-fashion-mnist)"; finish; }
  done
}
# rq_scratch: SCRATCH (a make_scratch dir), DATA=$SCRATCH/data, RQ_TMP; clears RQ_PID, RQ_WPID and
# RQ_BG; exports PGCONNECT_TIMEOUT and sanitizer defaults; rq_cleanup runs on EXIT.
rq_scratch() {
  SCRATCH=$(make_scratch); DATA=$SCRATCH/data; RQ_TMP=$SCRATCH
  RQ_PID='' RQ_WPID='' RQ_BG=()
  export PGCONNECT_TIMEOUT=5
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  trap rq_cleanup EXIT
}
# rq_cleanup: (EXIT, main shell only) the script's rq_on_exit if defined, kills RQ_BG, stops rankqld
# RQ_PID (TERM, KILL after 20 s), kills RQ_WPID, stops a postmaster left in $DATA/pg, removes $SCRATCH.
# shellcheck disable=SC2317  # run by the EXIT trap
rq_cleanup() {
  local p
  [ "$BASHPID" = "$$" ] || return 0
  declare -F rq_on_exit >/dev/null && rq_on_exit
  for p in "${RQ_BG[@]}"; do kill "$p" 2>/dev/null; done
  if [ -n "$RQ_PID" ]; then
    kill -TERM "$RQ_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$RQ_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$RQ_PID" 2>/dev/null
  fi
  [ -n "$RQ_WPID" ] && kill -KILL "$RQ_WPID" 2>/dev/null
  [ -f "$DATA/pg/postmaster.pid" ] &&
    rq_as_pg "$(rq_pg_bindir)/pg_ctl" -D "$DATA/pg" -m immediate -w -t 20 stop >/dev/null 2>&1
  rm -rf "$SCRATCH"
}
# rq_serve NAME ARGS…: rq_start with stderr to $SCRATCH/srv.err on a free port (sets PORT and
# RQ_BASE); "ok - NAME", else "not ok - NAME" with the log, and the end of the script.
rq_serve() {
  local name=$1; shift
  PORT=$(free_port); RQ_BASE=http://127.0.0.1:$PORT
  if rq_start "$SCRATCH/srv.err" "$@" --listen "127.0.0.1:$PORT"; then ok "$name"; else
    not_ok "$name"; sed 's/^/#   /' "$SCRATCH/srv.err"; finish; fi
}
# rq_stop: stops rankqld RQ_PID (stop_rankqld) and clears RQ_PID; returns its exit status.
rq_stop() { local rc=0; stop_rankqld "$RQ_PID" || rc=$?; RQ_PID=; return "$rc"; }
# rq_worker_wrapper [SH-LINE…]: $SCRATCH/worker, a script for RANKQL_WORKER that runs the SH-LINEs,
# then $WORKER with rankqld's flags and --lease 6 (a killed worker's jobs return after ~6 s).
rq_worker_wrapper() {
  { echo '#!/bin/sh'; printf '%s\n' "$@"; printf 'exec %q "$@" --lease 6\n' "$WORKER"; } >"$SCRATCH/worker"
  chmod 755 "$SCRATCH/worker"
}
# rq_worker_pid: the pid of rankqld's (RQ_PID) local worker, empty when none runs.
rq_worker_pid() { pgrep -P "$RQ_PID" -x rankql-worker | head -1; }
# rq_wait_worker: sets RQ_WPID to rankqld's local worker (5 s at most); fails when none came.
rq_wait_worker() {
  for _ in $(seq 1 50); do RQ_WPID=$(rq_worker_pid); [ -n "$RQ_WPID" ] && return 0; sleep 0.1; done
  return 1
}
# rq_sql TEXT: psql (unaligned, tuples only) on the embedded database of $DATA, as postgres when root.
rq_sql() {
  rq_as_pg "$(rq_pg_bindir)/psql" -X -qAt -d "host=$DATA/pg-socket port=5432 user=rankql dbname=rankql" \
    -c "$1" 2>&1
}
RQ_T0=$(date +%s.%N)
# rq_section NAME: a comment with the seconds since lib.sh was sourced, to see where the time goes.
rq_section() { echo "# $1 at $(awk -v a="$RQ_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"; }
# rq_builtin_model NAME raw|pca-8|rp-16: the REGISTER MODEL statement of a builtin image model
# for 28×28 images (batches of 1024).
rq_builtin_model() {
  local spec
  case $2 in
    raw)   spec='{extractor: "raw"}, 28, 784' ;;
    pca-8) spec='{extractor: "pca", k: 8}, 28, 8' ;;
    rp-16) spec='{extractor: "random_projection", k: 16, seed: 1}, 28, 16' ;;
    *) echo "rq_builtin_model: unknown kind $2" >&2; return 1 ;;
  esac
  printf 'REGISTER MODEL "%s" (runner, modality, source, spec, image_size, dimension, batch_size) VALUES (%s, %s, 1024);' \
    "$1" "'builtin', 'image', 'builtin'" "$spec"
}
# rq_idx_dataset NAME IMAGES LABELS START STOP: the REGISTER DATASET statement of an idx slice.
rq_idx_dataset() {
  printf 'REGISTER DATASET "%s" (format, modality, location, spec, slice) VALUES %s;' "$1" "$(rq_idx "$2" "$3" "$4" "$5")"
}
# rq_register STMT…: each statement with rq_query; "not ok - catalog: STMT" for each one not
# answered 200; returns how many were not.
rq_register() {
  local stmt bad=0
  for stmt in "$@"; do
    rq_query "$stmt"
    [ "$RQ_STATUS" = 200 ] || { not_ok "catalog: $stmt: $RQ_STATUS ${RQ_RESP:0:300}"; bad=$((bad + 1)); }
  done
  return "$bad"
}
