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
