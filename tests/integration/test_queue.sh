#!/usr/bin/env bash
# The job queue with real worker processes against a real embedded PostgreSQL: runs
# build/tests/itest_queue (and the ASan/UBSan build of it when present) in a scratch
# directory, then checks rankql-worker's command line. The C program prints the
# "ok - …" / "not ok - …" lines; this script makes sure no cluster or worker outlives it.
#
#   BUILDS="build build-san" bash tests/integration/test_queue.sh
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

itest_scratch
SCRATCH=$ITEST_SCRATCH
# The worker program of each build ({build}/bin/rankql-worker); a hard bound, so a hung
# worker cannot hold the suite (the test itself takes ~15 s).
run_itest itest_queue 120 "{build}/bin/rankql-worker"

# ---- rankql-worker's command line --------------------------------------------------------
W="$RANKQL_BIN/rankql-worker"
if [ ! -x "$W" ]; then
  not_ok "rankql-worker is built ($W)"
  finish
fi
# usage_error NAME EXPECTED-MESSAGE ARGS...: exit status 2 and one line on stderr naming it.
usage_error() {
  local name=$1 want=$2 err rc lines
  shift 2
  err=$("$W" "$@" 2>&1 >/dev/null); rc=$?
  lines=$(printf '%s\n' "$err" | wc -l)
  if [ "$rc" -eq 2 ] && [ "$lines" -eq 1 ]; then
    check_contains "rankql-worker $name: exit 2, one line" "$want" "$err"
  else
    not_ok "rankql-worker $name: exit 2, one line (got $rc, $lines lines: $err)"
  fi
}
D=$SCRATCH
usage_error "without --db" "--db URL is required" --data-dir "$D"
usage_error "without --data-dir" "--data-dir DIR is required" --db postgres://x/y
usage_error "missing data dir" "is not a directory" --db postgres://x/y --data-dir "$D/nope"
usage_error "--slots 0" "--slots: '0' is not a number" --db x --data-dir "$D" --slots 0
usage_error "--slots abc" "--slots: 'abc'" --db x --data-dir "$D" --slots abc
usage_error "--lease 1" "--lease: '1'" --db x --data-dir "$D" --lease 1
usage_error "--kinds unknown" "unknown job kind 'bogus'" --db x --data-dir "$D" --kinds embed,bogus
usage_error "--kinds without runner" "no runner for 'sh'" --db x --data-dir "$D" --kinds sh
usage_error "--kinds twice" "'embed' is named twice" --db x --data-dir "$D" --kinds embed,embed
usage_error "--kinds empty" "name at least one job kind" --db x --data-dir "$D" --kinds ,
usage_error "unknown option" "unknown option '--frobnicate'" --frobnicate
usage_error "missing value" "--lease needs a value" --db x --data-dir "$D" --lease
usage_error "stray argument" "unexpected argument 'extra'" --db x --data-dir "$D" extra

out=$("$W" --help); rc=$?
check_eq "rankql-worker --help exits 0" 0 "$rc"
check_contains "rankql-worker --help lists --once" "--once" "$out"
out=$("$W" --version); rc=$?
check_eq "rankql-worker --version exits 0" 0 "$rc"
check_contains "rankql-worker --version" "rankql-worker " "$out"
# A database that is not there: a runtime error (1), after the start-up line.
err=$("$W" --db "host=$SCRATCH/nosocket dbname=x connect_timeout=2" --data-dir "$D" --slots 1 2>&1); rc=$?
check_eq "rankql-worker with an unreachable database exits 1" 1 "$rc"
check_contains "rankql-worker names the connection failure" "cannot connect to the database" "$err"
check_contains "rankql-worker's start-up line says whether the build has CUDA" "build" \
  "$(printf '%s\n' "$err" | head -n 1)"
finish
