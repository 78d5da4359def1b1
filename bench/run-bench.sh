#!/usr/bin/env bash
# Runs every benchmark binary build/bench/bench_* (built from bench/bench_*.c by
# `make build-all`) and every benchmark script bench/bench_*.sh (which start what they
# measure, e.g. rankqld) from the repository root, each under a header. Benchmarks print
# rates and ratios against baselines measured in the same run, never pass/fail verdicts.
#
#   bench/run-bench.sh [NAME…]     only the named benchmarks (e.g. bench_parse, bench_http)
#
# The benchmarks (docs/benchmarks.md has what each measures and recent numbers):
#   bench_parse     parser throughput vs lexing and reading the SHiFT example queries
#   bench_proxy_nn  exact 1-NN vs the machine's SGEMM rate (and faiss when installed)
#   bench_rank      proxy rankings of the demo zoo on Fashion-MNIST vs a ground truth of
#                   linear classifiers trained on the full train set: rank correlation,
#                   regret, and cost as a ratio of the ground truth's (a few minutes on 2
#                   cores; RANKQL_BENCH_QUICK=1 uses 20000 train rows for the ground truth)
#   bench_sh        the successive-halving cost simulator (shift-spec §7.1): SH vs no SH, 1 and 8
#                   devices, as ratios of the no-SH cost
#   bench_http      HTTP catalog queries vs the same SQL over libpq (starts rankqld)
#   bench_replay    search strategies on recorded fine-tune runs through rankqld (scripts/rankql-bench
#                   replay): regret, cost and ratio to fine-tune-all (skipped without the records)
#   bench_load      wrk at 64 connections, 30 s per round: catalog queries (baseline) vs a mix
#                   with cached rankings, p50/p99, rankqld's RSS per round; the one benchmark
#                   that fails a run: on any non-2xx answer or socket error (bench/load_mix.lua)
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
