#!/usr/bin/env bash
# Runs every test suite and ends with one summary line, "N passed, N failed".
#
#   unit         build/tests/test_*        (cmocka)
#   sanitizer    build-san/tests/test_*    (the same unit tests under ASan/UBSan)
#   fuzz smoke   tests/fuzz/run-fuzz.sh    (libFuzzer, a few seconds per target)
#   integration  tests/integration/*.sh    (real rankqld, real PostgreSQL; print "ok - …" / "not ok - …"),
#                and again on build-san/bin (all but the itest wrappers and "# san: skip" scripts)
#
# RANKQL_TEST_ONLY=unit|san|fuzz|integration runs one group.
set -u
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0
failed=0
failed_names=()
only=${RANKQL_TEST_ONLY:-}

# cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s), listed below:".
run_cmocka() {  # label binary
  local label=$1 bin=$2 out rc p f
  out=$("$bin" 2>&1); rc=$?
  printf '%s\n' "$out" | sed "s|^|[$label] |"
  p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
  f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
  p=${p:-0}; f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed before cmocka's summary
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -eq 0 ] || failed_names+=("$label $(basename "$bin")")
}

# Integration scripts print TAP-like lines; a non-zero exit without "not ok" counts as one failure.
run_script() {  # label script
  local label=$1 script=$2 out rc p f
  out=$(timeout "${RANKQL_TEST_TIMEOUT:-900}" bash "$script" 2>&1); rc=$?
  printf '%s\n' "$out" | sed "s|^|[$label] |"
  p=$(printf '%s\n' "$out" | grep -c '^ok - ')
  f=$(printf '%s\n' "$out" | grep -c '^not ok - ')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -eq 0 ] || failed_names+=("$label $(basename "$script")")
}

if [ -z "$only" ] || [ "$only" = unit ]; then
  for t in build/tests/test_*; do [ -x "$t" ] && run_cmocka unit "$t"; done
fi
if [ -z "$only" ] || [ "$only" = san ]; then
  for t in build-san/tests/test_*; do [ -x "$t" ] && run_cmocka san "$t"; done
fi
if [ -z "$only" ] || [ "$only" = fuzz ]; then
  [ -x tests/fuzz/run-fuzz.sh ] && run_script fuzz tests/fuzz/run-fuzz.sh
fi
if [ -z "$only" ] || [ "$only" = integration ]; then
  for s in tests/integration/test_*.sh; do [ -f "$s" ] && run_script integration "$s"; done
  # The whole suite once more on the ASan/UBSan build (server, worker, shell): a sanitizer
  # report makes a program's exit status, and so a check, fail. The itest_* programs already
  # ran on both builds (lib.sh run_itest), so their scripts are not run twice; a script that
  # says "# san: skip (why)" near its top is left out.
  if [ -x build-san/bin/rankqld ] && [ -x build-san/bin/rankql-worker ]; then
    for s in tests/integration/test_*.sh; do
      [ -f "$s" ] || continue
      grep -q 'run_itest' "$s" && continue
      head -30 "$s" | grep -q '^# san: skip' && continue
      RANKQL_BIN=$PWD/build-san/bin run_script integration-san "$s"
    done
  fi
fi

if [ ${#failed_names[@]} -gt 0 ]; then
  echo "failing suites:"; printf '  %s\n' "${failed_names[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
