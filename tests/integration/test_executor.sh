#!/usr/bin/env bash
# Planner and executor against a real embedded PostgreSQL: runs build/tests/itest_executor
# (and the ASan/UBSan build of it when present) in a scratch directory. The C program
# prints the "ok - …" / "not ok - …" lines; lib.sh's run_itest makes sure no cluster outlives it.
#
#   BUILDS="build build-san" bash tests/integration/test_executor.sh
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

itest_scratch
run_itest itest_executor 600 "$RANKQL_ROOT/tests/integration/where_cases.txt" \
  "$RANKQL_ROOT/scripts/demo-catalog.rql"
finish
