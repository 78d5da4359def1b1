#!/usr/bin/env bash
# Search strategies on recorded fine-tune runs through the engine (scripts/rankql-bench
# replay): regret / cost / ratio to fine-tune-all per strategy and dataset, and means, on
# ../shared/data/ftrecords-dev.csv (RANKQL_REPLAY_RECORDS overrides; skipped when absent).
# docs/benchmarks.md "Replay" has the latest table.
set -u
cd "$(dirname "$0")/.."
REC=${RANKQL_REPLAY_RECORDS:-../shared/data/ftrecords-dev.csv}
if [ ! -r "$REC" ]; then
  echo "bench_replay: skipped: no records file $REC (set RANKQL_REPLAY_RECORDS)"
  exit 0
fi
exec scripts/rankql-bench replay --records "$REC" --bin "${RANKQL_BIN:-build/bin}"
