#!/usr/bin/env bash
# The builtin search strategies through rankqld and its worker (docs/extensions.md): a replay
# catalogue of tests/fixtures/replay-strategies.csv, RANK … BY "meta", "hybrid(k=2)", "sh",
# "finetune_all" and the Python example plugin (examples/plugins/topk_finetune), checked
# against the values computed by hand in tests/unit/test_strategies.c's header; the host's
# fine-tunes are real finetune jobs (cached: a repeat and another strategy reuse them), the
# cost accounts are in the strategy job's result, a repeat is answered from the cache.
set -u
source "$(dirname "$0")/lib.sh"

RANKQLD=${RANKQLD:-$RANKQL_BIN/rankqld}
WORKER=${RANKQL_WORKER_BIN:-$RANKQL_BIN/rankql-worker}
rq_need_tools curl jq python3
rq_need_execs "$RANKQLD" "$WORKER"
rq_scratch

REC=$SCRATCH/records.csv
cp "$RANKQL_ROOT/tests/fixtures/replay-strategies.csv" "$REC"; chmod 644 "$REC"
EXT=$SCRATCH/ext; mkdir -p "$EXT"
cp "$RANKQL_ROOT"/examples/plugins/topk_finetune.* "$EXT"/
chmod -R a+rX "$SCRATCH"

rq_worker_wrapper
RANKQL_WORKER=$SCRATCH/worker rq_serve "rankqld starts with a worker and the example plugin" \
  --data-dir "$DATA" --pg-no-sync --extensions "$EXT"

# The catalogue: r/m1..r/m5 and s/alpha, s/beta, s/gamma.
for m in 1 2 3 4 5; do
  rq_query "REGISTER MODEL \"r/m$m\" (runner, modality, spec) VALUES ('replay', 'image', {records: '$REC', model_identifier: 'org/m$m'});"
  [ "$RQ_STATUS" = 200 ] || not_ok "register r/m$m: $RQ_STATUS ${RQ_RESP:0:300}"
done
for d in alpha beta gamma; do
  rq_query "REGISTER DATASET \"s/$d\" (format, spec) VALUES ('replay', {records: '$REC', train_dataset_name: '$d'});"
  [ "$RQ_STATUS" = 200 ] || not_ok "register s/$d: $RQ_STATUS ${RQ_RESP:0:300}"
done
ok "the replay catalogue registers"

rank() { rq_query "RANK name FROM models WHERE runner = 'replay' AND $3 TRAINED ON \"s/$2\" TESTED ON TASK \"s/$2\" BY \"$1\" WAIT;" 120; }
# names and errs (rounded to 1e-6) of the last answer
shape() { rq_jf '[.rows[] | [.[1], (.[3] * 1e6 | round)]]'; }
ALL="name LIKE 'r/%'"

# meta on alpha: m2 0.70, m4 0.575, m3 0.475, m1 0.45, m5 no history (1e6). Nothing paid.
rank meta alpha "$ALL"
check_eq "meta on alpha ranks by the mean recorded accuracy elsewhere" \
  '[["r/m2",300000],["r/m4",425000],["r/m3",525000],["r/m1",550000],["r/m5",1000000000000]]' "$(shape)"
rq_query "SELECT id FROM jobs WHERE kind = 'finetune';"
check_eq "meta submits no fine-tune" 0 "$(rq_jf .row_count)"

# hybrid(k=2) on alpha: fine-tunes m2 (0.70) and m4 (0.80): m4, m2, then m3, m1, m5.
rank 'hybrid(k=2)' alpha "$ALL"
check_eq "hybrid(k=2) on alpha: the fine-tuned first by accuracy, then the signal" \
  '[["r/m4",200000],["r/m2",300000],["r/m3",525000],["r/m1",550000],["r/m5",1000000000000]]' "$(shape)"
check_eq "... one strategy job, submitted" '1 1' "$(rq_jf '"\(.jobs.total) \(.jobs.submitted)"')"
rq_query "SELECT id, status FROM jobs WHERE kind = 'finetune';"
check_eq "... its two fine-tunes are finetune jobs on the queue, done" '2 ["done"]' \
  "$(rq_jf '"\(.row_count) \([.rows[][1]] | unique | tostring)"')"
rank 'hybrid(k=2)' alpha "$ALL"
rq_jcheck "a repeat is answered from the cache" '.jobs.cached == 1 and .jobs.submitted == 0 and (.rows | length) == 5'

# sh(eta=2) on alpha: meta keeps 3 (m2 m4 m3), fine-tunes them: m4 0.80, m2 0.70, m3 0.60.
rank 'sh(eta=2)' alpha "$ALL"
check_eq "sh(eta=2) on alpha" \
  '[["r/m4",200000],["r/m2",300000],["r/m3",400000],["r/m1",550000],["r/m5",1000000000000]]' "$(shape)"
rq_query "SELECT id FROM jobs WHERE kind = 'finetune';"
check_eq "... the fine-tunes of hybrid are shared: one new job (m3)" 3 "$(rq_jf .row_count)"

# The cost accounts of the strategy jobs: hybrid paid 200 + 400, sh 200 + 400 + 50.
rq_query "SELECT result FROM jobs WHERE kind = 'strategy' ORDER BY id;"
check_eq "the strategy results report finetuned and finetune_seconds (meta 0, hybrid 600, sh 650)" \
  '[[0,0],[2,600],[3,650]]' \
  "$(rq_jf '[.rows[][0] | (if type == "string" then fromjson else . end) | [(.finetuned | length), .finetune_seconds]]')"
rq_jcheck "... and cost_seconds ≥ the seconds paid" \
  '[.rows[][0] | (if type == "string" then fromjson else . end) | .cost_seconds >= .finetune_seconds] | all'

# hybrid(k=2) on gamma (m1..m4): m2 0.50, m4 0.45 fine-tuned, then m1, m3.
rank 'hybrid(k=2)' gamma "name IN ('r/m1', 'r/m2', 'r/m3', 'r/m4')"
check_eq "hybrid(k=2) on gamma" '[["r/m2",500000],["r/m4",550000],["r/m1",450000],["r/m3",500000]]' "$(shape)"

# A failed fine-tune (m5 has no run on beta) ranks last of the fine-tuned, nothing else fails.
rank 'hybrid(k=2)' beta "$ALL"
check_eq "hybrid(k=2) on beta: m5's fine-tune fails (no recorded run), it ranks after m4" \
  '[["r/m4",300000],["r/m5",1000000000000],["r/m2",400000],["r/m3",425000],["r/m1",600000]]' "$(shape)"

# finetune_all on alpha: every model; the four fine-tunes done before are reused.
rank finetune_all alpha "$ALL"
check_eq "finetune_all on alpha" \
  '[["r/m4",200000],["r/m2",300000],["r/m5",350000],["r/m3",400000],["r/m1",500000]]' "$(shape)"

# The Python example through the engine: the same answer as hybrid(k=2).
rank 'topk_finetune(k=2)' alpha "$ALL"
check_eq "the Python example plugin (host calls over fds 3 and 4) answers like hybrid(k=2)" \
  '[["r/m4",200000],["r/m2",300000],["r/m3",525000],["r/m1",550000],["r/m5",1000000000000]]' "$(shape)"

rank 'hybrid(k=0)' alpha "$ALL"
check_eq "a bad parameter is a 400 naming it" '400 true' \
  "$RQ_STATUS $(rq_jf '.error.message | test("parameter k: 0 is out of range")')"
rank 'proxy(name=nn)' alpha "name IN ('r/m1', 'r/m4')"
check_eq "proxy(name=nn) on replay data is the recorded fine-tune" '[["r/m4",200000],["r/m1",500000]]' "$(shape)"

finish
