#!/usr/bin/env bash
# Builds and runs the libFuzzer targets (tests/fuzz/fuzz_*.c) under ASan/UBSan.
#
#   tests/fuzz/run-fuzz.sh             the smoke run of `make test`: 20 s in all, shared
#                                      evenly between the targets (FUZZ_SMOKE_SECONDS)
#   tests/fuzz/run-fuzz.sh SECONDS     SECONDS for each target; `make fuzz` passes
#                                      FUZZ_SECONDS (300)
#
# Targets: fuzz_parse (lexer, parser, AST JSON), fuzz_datasets (every reader of datasets/),
# fuzz_http_body (request bodies, query parameters and header values of server/request.c,
# tokens of server/auth.c). Target fuzz_X starts from a scratch copy of tests/fuzz/corpus/X/
# (or corpus/Y/ for fuzz_Y_Z when there is no corpus/Y_Z/: fuzz_http_body reads corpus/http/;
# new inputs never land in the repository) with the dictionary tests/fuzz/X.dict when there
# is one. tests/fuzz/make-corpus.py writes the datasets and http seeds. Each target prints
# its executions and one TAP-like line, "ok - fuzz X: N executions, 0 crashes" or
# "not ok - fuzz X: … <crash file>"; crash, leak and timeout inputs are kept under
# build-fuzz/artifacts/. Exits non-zero when any target failed.
#
# Environment: FUZZ_TARGETS ("datasets parse": only these), FUZZ_MAX_LEN (4096),
# FUZZ_TIMEOUT (10 s per input), FUZZ_ARGS (extra libFuzzer flags, e.g. "-seed=1"),
# FUZZ_KEEP_CORPUS=DIR (keep the grown corpus in DIR).
set -u
cd "$(dirname "$0")/../.."

each=${1:-}
smoke=${FUZZ_SMOKE_SECONDS:-20}
max_len=${FUZZ_MAX_LEN:-4096}
timeout=${FUZZ_TIMEOUT:-10}
build=build-fuzz
artifacts=$build/artifacts

if ! out=$(make --no-print-directory fuzz-build 2>&1); then
  printf '%s\n' "$out" | tail -30
  echo "not ok - fuzz: build failed (make fuzz-build)"
  exit 1
fi

targets=()
for src in tests/fuzz/fuzz_*.c; do
  [ -f "$src" ] || continue
  name=$(basename "$src" .c)
  name=${name#fuzz_}
  if [ -n "${FUZZ_TARGETS:-}" ] && [[ " $FUZZ_TARGETS " != *" $name "* ]]; then
    continue
  fi
  targets+=("$name")
done
if [ ${#targets[@]} -eq 0 ]; then
  echo "not ok - fuzz: no targets in tests/fuzz"
  exit 1
fi
if [ -n "$each" ]; then
  per=$each
else
  per=$(( smoke / ${#targets[@]} ))
fi
[ "$per" -ge 1 ] || per=1

scratch=$(mktemp -d "${TMPDIR:-/tmp}/rankql-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$artifacts"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
for t in "${targets[@]}"; do
  bin=$build/fuzz_$t
  corpus=$scratch/$t
  mkdir -p "$corpus"
  seeds=tests/fuzz/corpus/$t
  [ -d "$seeds" ] || seeds=tests/fuzz/corpus/${t%_*}
  [ -d "$seeds" ] && cp -R "$seeds/." "$corpus/"
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  log=$scratch/$t.log
  start=$(date +%s)
  # shellcheck disable=SC2086
  "$bin" "${dict[@]}" -max_len="$max_len" -timeout="$timeout" -max_total_time="$per" \
    -print_final_stats=1 -artifact_prefix="$artifacts/$t-" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
  execs=${execs:-0}
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
  echo "fuzz $t: $execs executions in ${took}s (${cov:-no coverage line}), corpus $(ls "$corpus" | wc -l) inputs"
  if [ -n "${FUZZ_KEEP_CORPUS:-}" ]; then
    mkdir -p "$FUZZ_KEEP_CORPUS/$t" && cp -R "$corpus/." "$FUZZ_KEEP_CORPUS/$t/"
  fi
  crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  if [ "$rc" -eq 0 ] && [ -z "$crash" ]; then
    echo "ok - fuzz $t: $execs executions, 0 crashes"
  else
    # the sanitizer's or the target's own report, then the verdict
    grep -E 'ERROR:|SUMMARY:|runtime error|invariant broken|^  |^    #[0-9]' "$log" | head -40
    if [ -n "$crash" ]; then
      echo "not ok - fuzz $t: crash after $execs executions, input saved in $crash (rerun: $bin $crash)"
    else
      tail -20 "$log"
      echo "not ok - fuzz $t: libFuzzer exited with status $rc after $execs executions"
    fi
    status=1
  fi
done
exit $status
