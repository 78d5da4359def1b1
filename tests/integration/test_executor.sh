#!/usr/bin/env bash
# Planner and executor against a real embedded PostgreSQL: runs build/tests/itest_executor
# (and the ASan/UBSan build of it when present) in a scratch directory. The C program
# prints the "ok - …" / "not ok - …" lines; this script makes sure no cluster outlives it.
#
#   BUILDS="build build-san" bash tests/integration/test_executor.sh
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILDS=${BUILDS:-"build build-san"}
SCRATCH=$(make_scratch)

# The postmaster a run left behind (a crash, a signal): stop it, then drop the scratch dir.
stop_cluster() {
  local pidfile pid
  for pidfile in "$SCRATCH"/*/data/pg/postmaster.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(head -n 1 "$pidfile")
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]; then
      kill -INT "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done
  rm -rf "$SCRATCH"
}
trap stop_cluster EXIT INT TERM

ran=0
for build in $BUILDS; do
  bin="$RANKQL_ROOT/$build/tests/itest_executor"
  if [ ! -x "$bin" ]; then
    [ "$build" = build ] && not_ok "executor: $bin is built (run make build-all)"
    continue
  fi
  ran=$((ran + 1))
  dir="$SCRATCH/$build"
  mkdir -p "$dir" && chmod 755 "$dir"
  echo "# $build/tests/itest_executor"
  # Prefix check names with the build, so both runs count separately.
  "$bin" "$dir" "$RANKQL_ROOT/tests/integration/where_cases.txt" \
    "$RANKQL_ROOT/scripts/demo-catalog.rql" >"$dir/stdout" 2>"$dir/stderr"
  rc=$?
  sed -e "s/^ok - /ok - [$build] /" -e "s/^not ok - /not ok - [$build] /" "$dir/stdout"
  if [ "$rc" -ne 0 ]; then
    TESTS_FAILED=$((TESTS_FAILED + 1))
    sed 's/^/#   /' "$dir/stderr" | tail -n 40
    # A run that died before its summary line crashed (sanitizer report, signal).
    grep -q '^# [0-9]* checks, [0-9]* failed$' "$dir/stdout" ||
      echo "not ok - [$build] itest_executor ran to the end (exit status $rc)"
  fi
done
[ "$ran" -gt 0 ] || not_ok "executor: no itest_executor binary to run"
finish
