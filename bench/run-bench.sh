#!/usr/bin/env bash
# Runs every benchmark binary build/bench/bench_* (built from bench/bench_*.c by
# `make build-all`) and every benchmark script bench/bench_*.sh (which start what they
# measure, e.g. rankqld) from the repository root, each under a header. Benchmarks print
# rates and ratios against baselines measured in the same run, never pass/fail verdicts.
#
#   bench/run-bench.sh [NAME…]     only the named benchmarks (e.g. bench_parse, bench_http)
#
# Exits non-zero when a benchmark fails or none was found.
set -u
cd "$(dirname "$0")/.."

if [ $# -gt 0 ]; then
  bins=()
  for n in "$@"; do
    n=${n#build/bench/}; n=${n#bench/}; n=${n%.sh}
    if [ -f "bench/$n.sh" ]; then bins+=("bench/$n.sh"); else bins+=("build/bench/$n"); fi
  done
else
  bins=(build/bench/bench_* bench/bench_*.sh)
fi

status=0
ran=0
for bin in "${bins[@]}"; do
  [ -f "$bin" ] && { [ -x "$bin" ] || [ "${bin%.sh}" != "$bin" ]; } || { [ $# -gt 0 ] && { echo "run-bench: no $bin" >&2; status=1; }; continue; }
  ran=$((ran + 1))
  echo "==== $(basename "$bin") ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -m), $(nproc 2>/dev/null || echo '?') CPUs)"
  case "$bin" in *.sh) bash "$bin" ;; *) "$bin" ;; esac; rc=$?
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
