#!/usr/bin/env bash
# Runs every benchmark binary build/bench/bench_* (built from bench/bench_*.c by
# `make build-all`) from the repository root, each under a header. Benchmarks print
# rates and ratios against baselines measured in the same run, never pass/fail verdicts.
#
#   bench/run-bench.sh [NAME…]     only the named benchmarks (e.g. bench_parse)
#
# Exits non-zero when a benchmark fails or none was found.
set -u
cd "$(dirname "$0")/.."

if [ $# -gt 0 ]; then
  bins=()
  for n in "$@"; do bins+=("build/bench/${n#build/bench/}"); done
else
  bins=(build/bench/bench_*)
fi

status=0
ran=0
for bin in "${bins[@]}"; do
  [ -f "$bin" ] && [ -x "$bin" ] || { [ $# -gt 0 ] && { echo "run-bench: no $bin" >&2; status=1; }; continue; }
  ran=$((ran + 1))
  echo "==== $(basename "$bin") ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -m), $(nproc 2>/dev/null || echo '?') CPUs)"
  "$bin"; rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "run-bench: $(basename "$bin") exited with status $rc" >&2
    status=1
  fi
  echo
done
if [ "$ran" -eq 0 ]; then
  echo "run-bench: no benchmarks in build/bench (run make build-all)" >&2
  exit 1
fi
exit $status
