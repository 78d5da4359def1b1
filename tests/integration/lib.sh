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
  ( sleep 60; kill -KILL "$pid" 2>/dev/null ) & w=$!
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
