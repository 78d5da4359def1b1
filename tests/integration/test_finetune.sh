#!/usr/bin/env bash
# FINETUNE end to end (docs/language.md "FINETUNE", docs/jobs.md "Fine-tune jobs"): rankqld on
# its embedded PostgreSQL with its local worker, builtin models and Fashion-MNIST slices
# (Debian's dataset-fashion-mnist, as test_rank.sh). Covers a head fine-tune with WAIT and the
# model it registers (SELECT … WHERE finetuned, its parent), a repeat answered from
# finetune_results (no job), an answer without WAIT, knob and name errors with positions, the
# worker killed with -9 mid-training (the job resumes from its checkpoint on its second
# attempt and ends with the undisturbed run's weights and accuracies), and replay fine-tunes
# answered from tests/fixtures/replay-records.csv.
#
# The local worker runs through a wrapper that adds --lease 6 (a killed worker's job is
# re-queued after ~6 s) and sets RANKQL_FT_CHECKPOINT_SECONDS=0.3 (checkpoints often enough
# to be seen before the kill).
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

RANKQLD=${RANKQLD:-$RANKQL_BIN/rankqld}
WORKER=${RANKQL_WORKER_BIN:-$RANKQL_BIN/rankql-worker}
rq_need_tools curl jq
rq_need_execs "$RANKQLD" "$WORKER" "$(rq_pg_bindir)/initdb"
rq_fashion_mnist
rq_scratch

# col NAME [ROW]: a column of the last FINETUNE answer, by name.
col() { rq_jf "(.columns | index(\"$1\")) as \$i | .rows[${2:-0}][\$i]"; }

rq_worker_wrapper 'export RANKQL_FT_CHECKPOINT_SECONDS=0.3'
RANKQL_WORKER=$SCRATCH/worker rq_serve "rankqld starts with its embedded PostgreSQL" \
  --data-dir "$DATA" --pg-no-sync
rq_wait_worker
check "rankqld starts a local worker" test -n "$RQ_WPID"

# ---- the catalog ----------------------------------------------------------------------------
rq_section catalog
rq_register "$(rq_builtin_model t/pca-8 pca-8)" "$(rq_builtin_model t/rp-16 rp-16)" \
  "$(rq_idx_dataset tr "$TRI" "$TRL" 0 1000)" "$(rq_idx_dataset te "$TEI" "$TEL" 0 500)" \
  "$(rq_idx_dataset k1 "$TRI" "$TRL" 1000 2000)" "$(rq_idx_dataset k2 "$TRI" "$TRL" 1000 2000)"
ok "the catalog registers"

# ---- 1. a head fine-tune with WAIT -----------------------------------------------------------
rq_section "case 1"
F1="FINETUNE \"t/pca-8\" WITH \"tr\" USING \"head(epochs=15, test='te')\" WAIT;"
rq_query "$F1" 120
rq_expect "1: FINETUNE … WAIT answers 200" 200
R1=$RQ_RESP
rq_jcheck "1: status complete, one row" '.status == "complete" and .row_count == 1 and .remaining_jobs == 0'
rq_jcheck "1: the columns" '.columns == ["model", "strategy", "knobs", "train_accuracy", "test_accuracy", "elapsed_seconds", "new_model_id", "new_model", "job_id", "status", "attempts", "resumed_from_epoch", "error"]'
rq_jcheck "1: model, strategy, status" '.rows[0][0] == "t/pca-8" and .rows[0][1] == "head" and .rows[0][9] == "done"'
rq_jcheck "1: the knobs: given ones and defaults, typed" \
  '.rows[0][2] == {"head": "linear", "hidden": 64, "lr": 0.05, "epochs": 15, "batch_size": 64, "weight_decay": 0.0001, "momentum": 0.9, "seed": 1, "holdout": 0.2}'
# A linear head on 8 PCA components of Fashion-MNIST: far above chance (0.1), below 1.
rq_jcheck "1: accuracies in range (0.5, 1)" '.rows[0][3] > 0.5 and .rows[0][3] < 1 and .rows[0][4] > 0.5 and .rows[0][4] < 1'
rq_jcheck "1: jobs: 2 embed + 1 finetune" '.jobs == {"total": 3, "cached": 0, "submitted": 3, "remaining": 0, "failed": 0}'
NEW1=$(col new_model); NEWID1=$(col new_model_id); JOB1=$(col job_id)
check "1: the new model is named <parent>@ft-<8 hex>" bash -c "[[ '$NEW1' =~ ^t/pca-8@ft-[0-9a-f]{8}$ ]]"

# ---- 2. the new model is in the catalog -------------------------------------------------------
rq_section "case 2"
rq_query "SELECT id, name, parent, finetuned, tags, runner, dimension FROM models WHERE finetuned;"
rq_jcheck "2: SELECT … WHERE finetuned finds it with its parent" \
  ".rows == [[$NEWID1, \"$NEW1\", \"t/pca-8\", true, [\"finetuned\", \"head\"], \"builtin\", 10]]"
rq_query "SELECT spec FROM models WHERE name = '$NEW1';"
rq_jcheck "2: its spec names the head weights and the parent" \
  '.rows[0][0].head.kind == "linear" and .rows[0][0].head.classes == 10 and .rows[0][0].head.dim == 8 and (.rows[0][0].head.path | test("^finetune/[0-9a-f]{2}/[0-9a-f]{64}[.]head$")) and .rows[0][0].parent.name == "t/pca-8"'
WPATH=$(rq_jf '.rows[0][0].head.path'); WDIG=$(rq_jf '.rows[0][0].head.digest')
check "2: the weights file exists under the data directory" test -s "$DATA/$WPATH"
check "2: no checkpoint is left" bash -c "[ -z \"\$(find '$DATA/finetune' -name '*.ckpt')\" ]"
rq_query "SELECT name FROM models WHERE NOT FINETUNED ORDER BY name;"
rq_jcheck "2: NOT FINETUNED excludes it" '[.rows[][0]] == ["t/pca-8", "t/rp-16"]'

# ---- 3. a repeat is answered from finetune_results ---------------------------------------------
rq_section "case 3"
rq_query "$F1" 60
rq_jcheck "3: a repeated FINETUNE submits no job" '.jobs.submitted == 0 and .jobs.cached == 3 and .rows[0][9] == "cached" and (has("query_id") | not)'
rq_jcheck "3: ... with the same answer" "[.rows[0][3,4,6,7,8]] == $(printf '%s' "$R1" | jq -c '[.rows[0][3,4,6,7,8]]')"
rq_query "SELECT id FROM jobs WHERE kind = 'finetune';"
rq_jcheck "3: one finetune job exists" '.row_count == 1'

# ---- 4. without WAIT, then collected -----------------------------------------------------------
rq_section "case 4"
F4="FINETUNE \"t/rp-16\" WITH \"tr\" USING \"head(head=mlp, hidden=16, lr=0.02, epochs=10, test='te[0:200]')\";"
rq_query "$F4" 30
rq_jcheck "4: without WAIT: status running, its job id, a query id" \
  '.status == "running" and .remaining_jobs > 0 and (.query_id | type) == "string" and (.rows[0][8] | type) == "number" and .rows[0][9] != "done"'
JOB4=$(rq_jf '.rows[0][8]')
rq_query "${F4%;} WAIT;" 120
rq_jcheck "4: the same statement with WAIT collects it (same job)" \
  ".status == \"complete\" and .rows[0][8] == $JOB4 and .rows[0][9] == \"done\" and .rows[0][2].head == \"mlp\" and .rows[0][2].hidden == 16"
rq_query "SELECT dimension FROM models WHERE name = '$(col new_model)';"
rq_jcheck "4: an mlp head's model has the hidden width as dimension" '.rows == [[16]]'

# ---- 5. errors --------------------------------------------------------------------------------
rq_section "case 5"
rq_query 'FINETUNE "nope" WITH "tr" WAIT;'
rq_expect "5: an unknown model: 404" 404 not_found
rq_jcheck "5: ... at its position" '.error.line == 1 and .error.column == 10'
rq_query 'FINETUNE "t/pca-8" WITH "none" WAIT;'
rq_expect "5: an unknown dataset: 404" 404 not_found
rq_query 'FINETUNE "t/pca-8" WITH "tr" USING "fancy(lr=1)" WAIT;'
rq_expect "5: an unknown strategy: 400" 400 semantic_error
rq_jcheck "5: ... listing the strategies" '.error.message | test("head, exec, replay")'
rq_query 'FINETUNE "t/pca-8" WITH "tr" USING "head(lr=100)" WAIT;'
rq_expect "5: a knob out of range: 422" 422 validation_error
rq_jcheck "5: ... naming the knob, its range and its position" \
  '.error.field == "lr" and (.error.message | test("lr: 100 is out of range, allowed: number in \\[1e-05, 10\\], log scale")) and .error.column == 42'
rq_query 'FINETUNE "t/pca-8" WITH "tr" USING "head(depth=3)" WAIT;'
rq_expect "5: an unknown knob: 422" 422 validation_error
rq_jcheck "5: ... listing the knobs" '.error.field == "depth" and (.error.message | test("knobs: head, hidden, lr"))'
rq_query 'FINETUNE "t/pca-8" WITH "tr" USING "head(batch_size=100)" WAIT;'
rq_expect "5: a categorical knob outside its values: 422" 422 validation_error
rq_query "SELECT id FROM jobs WHERE kind = 'finetune';"
rq_jcheck "5: no job was submitted by a bad statement" '.row_count == 2'

# ---- 6. kill -9 mid-training: resume from the checkpoint ---------------------------------------
rq_section "case 6"
# "k1" and "k2" are the same rows under two names (two jobs): k1 undisturbed, k2 killed.
KN="head=mlp, hidden=32, epochs=${RANKQL_FT_EPOCHS:-1000}, batch_size=32, test='te'"
t0=$(date +%s.%N)
rq_query "FINETUNE \"t/pca-8\" WITH \"k1\" USING \"head($KN)\" WAIT;" 170
rq_jcheck "6: the undisturbed run completes" '.status == "complete" and .rows[0][9] == "done"'
RK1=$RQ_RESP
echo "# undisturbed fine-tune: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
rq_query "SELECT spec FROM models WHERE name = '$(col new_model)';"
DIG1=$(rq_jf '.rows[0][0].head.digest')
rq_query "FINETUNE \"t/pca-8\" WITH \"k2\" USING \"head($KN)\";" 30
JOB6=$(col job_id)
# Wait for a checkpoint past epoch 0 of that job, then kill the worker.
ck=
for _ in $(seq 1 600); do
  ck=$(find "$DATA/finetune" -name '*.ckpt' 2>/dev/null | head -1)
  [ -n "$ck" ] && break
  sleep 0.1
done
old=$(rq_worker_pid)
if [ -n "$ck" ] && [ -n "$old" ]; then
  kill -KILL "$old"
  ok "6: worker $old killed with -9 while job $JOB6 trains (checkpoint $(basename "$ck"))"
else
  not_ok "6: worker killed with -9 after a checkpoint"; echo "#   checkpoint '$ck', worker '$old'"
fi
new=
for _ in $(seq 1 150); do
  new=$(rq_worker_pid); [ -n "$new" ] && [ "$new" != "$old" ] && break; new=; sleep 0.1
done
RQ_WPID=$new
check "6: rankqld restarts the worker" test -n "$new"
check "6: the checkpoint survives the kill" test -s "$ck"
rq_query "FINETUNE \"t/pca-8\" WITH \"k2\" USING \"head($KN)\" WAIT;" 170
rq_jcheck "6: the killed job completes on its second attempt, resumed from a checkpoint" \
  ".status == \"complete\" and .rows[0][8] == $JOB6 and .rows[0][9] == \"done\" and .rows[0][10] == 2 and .rows[0][11] > 0"
echo "# resumed from epoch $(rq_jf '.rows[0][11]')"
rq_jcheck "6: ... with the undisturbed run's accuracies" \
  "[.rows[0][3,4]] == $(printf '%s' "$RK1" | jq -c '[.rows[0][3,4]]')"
rq_query "SELECT spec FROM models WHERE name = '$(col new_model)';"
check_eq "6: ... and bit-identical weights (digest)" "$DIG1" "$(rq_jf '.rows[0][0].head.digest')"
check "6: the checkpoint is gone once the job is done" test ! -e "$ck"

# ---- 7. replay fine-tunes ----------------------------------------------------------------------
rq_section "case 7"
# tests/fixtures/replay-records.csv by hand: org/alpha on dmlab ran twice, best 0.40, 100 +
# 50.5 s; org/delta ran only on eurosat.
REC=$SCRATCH/records.csv
cp "$RANKQL_ROOT/tests/fixtures/replay-records.csv" "$REC"; chmod 644 "$REC"
for m in alpha delta; do
  rq_query "REGISTER MODEL \"r/$m\" (runner, modality, spec) VALUES ('replay', 'image', {records: '$REC', model_identifier: 'org/$m'});"
  rq_expect "7: replay model r/$m registers" 200
done
rq_query "REGISTER DATASET \"r/dmlab\" (format, spec) VALUES ('replay', {records: '$REC', train_dataset_name: 'dmlab'});"
rq_expect "7: a replay dataset registers" 200
rq_query 'FINETUNE "r/alpha" WITH "r/dmlab" WAIT;' 60
rq_jcheck "7: a replay fine-tune answers the best recorded run (0.40, 150.5 s), registers nothing" \
  '.status == "complete" and .rows[0][1] == "replay" and .rows[0][4] == 0.4 and .rows[0][5] == 150.5 and .rows[0][3] == null and .rows[0][6] == null and .rows[0][2] == {}'
rq_query 'FINETUNE "r/alpha" WITH "r/dmlab" WAIT;' 60
rq_jcheck "7: ... and a repeat comes from the cache" '.jobs.submitted == 0 and .rows[0][9] == "cached"'
rq_query 'FINETUNE "r/delta" WITH "r/dmlab" WAIT;' 60
rq_jcheck "7: an unrecorded pair fails with the reason" \
  '.status == "partial" and .rows[0][9] == "failed" and (.rows[0][12] | test("no recorded fine-tune run of org/delta on dmlab"))'
rq_query 'FINETUNE "r/alpha" WITH "r/dmlab" USING "head" WAIT;' 60
rq_expect "7: head on a replay dataset: 400" 400 semantic_error
rq_query 'FINETUNE "t/pca-8" WITH "r/dmlab" WAIT;' 60
rq_expect "7: a builtin model on replay data: 400" 400 semantic_error
rq_query "FINETUNE \"t/pca-8\" WITH \"tr\" USING \"head(test='r/dmlab')\" WAIT;" 60
rq_expect "7: a replay dataset as the test data of a head: 400" 400 semantic_error
rq_query "FINETUNE \"t/pca-8\" WITH \"tr\" USING \"head(test='te[5:x]')\" WAIT;" 60
rq_expect "7: a malformed test slice: 400" 400 semantic_error

# ---- 8. a variable of models ------------------------------------------------------------------
rq_section "case 8"
rq_query "DECLARE pool AS SELECT * FROM models WHERE name LIKE 't/%' AND NOT FINETUNED ORDER BY name; ${F1/\"t\/pca-8\"/pool}" 120
RESP=$(rq_jf '.results[-1]')
rq_jcheck "8: FINETUNE of a variable: one row per model, in its order" \
  '[.rows[][0]] == ["t/pca-8", "t/rp-16"] and .status == "complete"'
# t/rp-16's embedding of "tr" is known from case 4: its "te" embedding and its fine-tune run.
rq_jcheck "8: ... the known one from the cache, the other trained" \
  '[.rows[][9]] == ["cached", "done"] and .jobs.submitted == 2'
rq_query 'DECLARE ds AS SELECT * FROM datasets; FINETUNE ds WITH "tr";'
rq_expect "8: a variable of datasets is not models: 400" 400 semantic_error
rq_jcheck "8: ... saying what it holds" '.error.message | test("variable \"ds\" holds datasets, not models")'

# ---- 9. exec fine-tunes through the command protocol --------------------------------------------
rq_section "case 9"
rq_query "REGISTER MODEL \"x/centroid\" (runner, modality, spec) VALUES ('exec', 'image', {command: ['python3', '$RANKQL_ROOT/examples/exec/finetune_centroid.py'], timeout_seconds: 120});"
rq_expect "9: an exec model registers" 200
rq_query "REGISTER DATASET \"sm\" (format, modality, location, spec, slice) VALUES $(rq_idx "$TRI" "$TRL" 0 300);"
rq_query "FINETUNE \"x/centroid\" WITH \"sm\" USING \"exec(epochs=2, test='te[0:100]')\" WAIT;" 120
rq_jcheck "9: an exec fine-tune runs the model's command and registers the result" \
  '.status == "complete" and .rows[0][1] == "exec" and .rows[0][2].epochs == 2 and .rows[0][4] > 0.4 and .rows[0][4] <= 1 and (.rows[0][7] | test("^x/centroid@ft-"))'
rq_query "SELECT parent, runner, finetuned FROM models WHERE name = '$(col new_model)';"
rq_jcheck "9: ... an exec model, child of its parent" '.rows == [["x/centroid", "exec", true]]'
rq_query "FINETUNE \"t/pca-8\" WITH \"sm\" USING \"exec\" WAIT;"
rq_expect "9: exec on a builtin model: 400" 400 semantic_error

# ---- 10. fine-tuned head models rank like any model ---------------------------------------------
rq_section "case 10"
# Their features are the parent's (same fit) through the head: logits (linear) or the hidden
# layer (mlp). The linear head of case 1 was trained on "tr" and scored 1 - err_test on "te";
# a 1-NN on its logits is a different classifier, so only sanity is checked here.
rq_query "SELECT name FROM models WHERE finetuned AND name LIKE 't/%' ORDER BY err TRAINED ON \"tr\" TESTED ON TASK \"te\" CLASSIFIED BY [\"Euclidean NN\"] WAIT;" 120
rq_jcheck "10: a ranking of the fine-tuned head models completes, every one ranked" \
  '.status == "complete" and (.rows | length) == 5 and ([.rows[][3] | . > 0 and . < 0.6] | all) and ((.failures // []) | length) == 0'
rq_jcheck "10: ... the linear head of case 1 among them" "[.rows[][1]] | index(\"$NEW1\") != null"

rq_section end
finish
