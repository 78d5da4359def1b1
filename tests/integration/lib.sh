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
finish()  { exit $(( TESTS_FAILED > 0 ? 1 : 0 )); }
