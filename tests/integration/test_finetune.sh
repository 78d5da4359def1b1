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
T_START=$(date +%s.%N)
section() { echo "# $1 at $(awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"; }

RANKQLD=${RANKQLD:-$RANKQL_BIN/rankqld}
WORKER=${RANKQL_WORKER_BIN:-$RANKQL_BIN/rankql-worker}
FM=${RANKQL_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
TRI=$FM/train-images-idx3-ubyte.gz TRL=$FM/train-labels-idx1-ubyte.gz
TEI=$FM/t10k-images-idx3-ubyte.gz TEL=$FM/t10k-labels-idx1-ubyte.gz
PGBIN=${RANKQL_PG_BINDIR:-$(pg_config --bindir 2>/dev/null)}
[ -x "$PGBIN/initdb" ] ||
  PGBIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)
for tool in curl jq; do
  command -v "$tool" >/dev/null || { not_ok "setup: $tool is needed (scripts/install-deps.sh)"; finish; }
done
for f in "$RANKQLD" "$WORKER" "$PGBIN/initdb"; do
  [ -x "$f" ] || { not_ok "setup: need $f (make build-all; PostgreSQL's initdb)"; finish; }
done
for f in "$TRI" "$TRL" "$TEI" "$TEL"; do
  [ -r "$f" ] || { not_ok "setup: need $f (apt-get install dataset-fashion-mnist)"; finish; }
done

SCRATCH=$(make_scratch)
DATA=$SCRATCH/data
SRV=
BG=()
export PGCONNECT_TIMEOUT=5
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# shellcheck disable=SC2317  # run by the EXIT trap
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local p
  [ "$BASHPID" = "$$" ] || return 0
  for p in "${BG[@]}"; do kill "$p" 2>/dev/null; done
  if [ -n "$SRV" ]; then
    kill -TERM "$SRV" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$SRV" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SRV" 2>/dev/null
  fi
  [ -n "${WPID:-}" ] && kill -KILL "$WPID" 2>/dev/null
  [ -f "$DATA/pg/postmaster.pid" ] &&
    as_pg "$PGBIN/pg_ctl" -D "$DATA/pg" -m immediate -w -t 20 stop >/dev/null 2>&1
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

JSON=(-H 'Content-Type: application/json')
# query TEXT [MAX-SECONDS]: POST /v1/query; sets STATUS and RESP.
query() {
  jq -n --arg q "$1" '{query: $q}' >"$SCRATCH/body.json"
  STATUS=$(curl -s -o "$SCRATCH/resp" -w '%{http_code}' --max-time "${2:-60}" "${JSON[@]}" \
    --data-binary "@$SCRATCH/body.json" "$BASE/v1/query" 2>/dev/null) || true
  [ -n "$STATUS" ] || STATUS=000
  RESP=$(cat "$SCRATCH/resp" 2>/dev/null)
}
jf() { printf '%s' "$RESP" | jq -cr "$1" 2>/dev/null; }
expect() {
  local got; got=$(jf '.error.code // "-"')
  if [ "$STATUS" = "$2" ] && [ "$got" = "${3:--}" ]; then ok "$1"; else
    not_ok "$1"; printf '#   expected: %s %s\n#   actual:   %s %s\n' "$2" "${3:--}" "$STATUS" "${RESP:0:600}"; fi
}
jcheck() {
  if [ "$(jf "$2")" = true ]; then ok "$1"; else
    not_ok "$1"; printf '#   failed: %s\n#   on: %s\n' "$2" "${RESP:0:800}"; fi
}
# col NAME [ROW]: a column of the last FINETUNE answer, by name.
col() { jf "(.columns | index(\"$1\")) as \$i | .rows[${2:-0}][\$i]"; }

PORT=$(free_port); BASE=http://127.0.0.1:$PORT
printf '#!/bin/sh\nRANKQL_FT_CHECKPOINT_SECONDS=0.3 exec %q "$@" --lease 6\n' "$WORKER" >"$SCRATCH/worker"
chmod 755 "$SCRATCH/worker"
RANKQL_WORKER=$SCRATCH/worker "$RANKQLD" --data-dir "$DATA" --pg-no-sync \
  --listen "127.0.0.1:$PORT" 2>"$SCRATCH/srv.err" &
SRV=$!
started=0
for _ in $(seq 1 600); do
  grep -qs '^rankqld: listening on ' "$SCRATCH/srv.err" && { started=1; break; }
  kill -0 "$SRV" 2>/dev/null || break
  sleep 0.1
done
if [ "$started" = 1 ]; then ok "rankqld starts with its embedded PostgreSQL"; else
  not_ok "rankqld starts with its embedded PostgreSQL"; sed 's/^/#   /' "$SCRATCH/srv.err"; finish; fi
worker_pid() { pgrep -P "$SRV" -x rankql-worker | head -1; }
for _ in $(seq 1 50); do WPID=$(worker_pid); [ -n "$WPID" ] && break; sleep 0.1; done
check "rankqld starts a local worker" test -n "$WPID"

# ---- the catalog ----------------------------------------------------------------------------
section catalog
idx() { printf "('idx', 'image', '%s', {labels: '%s'}, {start: %d, stop: %d})" "$1" "$2" "$3" "$4"; }
for stmt in \
  "REGISTER MODEL \"t/pca-8\" (runner, modality, source, spec, image_size, dimension, batch_size) VALUES ('builtin', 'image', 'builtin', {extractor: \"pca\", k: 8}, 28, 8, 1024);" \
  "REGISTER MODEL \"t/rp-16\" (runner, modality, source, spec, image_size, dimension, batch_size) VALUES ('builtin', 'image', 'builtin', {extractor: \"random_projection\", k: 16, seed: 1}, 28, 16, 1024);" \
  "REGISTER DATASET \"tr\" (format, modality, location, spec, slice) VALUES $(idx "$TRI" "$TRL" 0 1000);" \
  "REGISTER DATASET \"te\" (format, modality, location, spec, slice) VALUES $(idx "$TEI" "$TEL" 0 500);" \
  "REGISTER DATASET \"k1\" (format, modality, location, spec, slice) VALUES $(idx "$TRI" "$TRL" 1000 2000);" \
  "REGISTER DATASET \"k2\" (format, modality, location, spec, slice) VALUES $(idx "$TRI" "$TRL" 1000 2000);"; do
  query "$stmt"
  [ "$STATUS" = 200 ] || { not_ok "catalog: $stmt"; echo "#   $RESP"; }
done
ok "the catalog registers"

# ---- 1. a head fine-tune with WAIT -----------------------------------------------------------
section "case 1"
F1="FINETUNE \"t/pca-8\" WITH \"tr\" USING \"head(epochs=15, test='te')\" WAIT;"
query "$F1" 120
expect "1: FINETUNE … WAIT answers 200" 200
R1=$RESP
jcheck "1: status complete, one row" '.status == "complete" and .row_count == 1 and .remaining_jobs == 0'
jcheck "1: the columns" '.columns == ["model", "strategy", "knobs", "train_accuracy", "test_accuracy", "elapsed_seconds", "new_model_id", "new_model", "job_id", "status", "attempts", "resumed_from_epoch", "error"]'
jcheck "1: model, strategy, status" '.rows[0][0] == "t/pca-8" and .rows[0][1] == "head" and .rows[0][9] == "done"'
jcheck "1: the knobs: given ones and defaults, typed" \
  '.rows[0][2] == {"head": "linear", "hidden": 64, "lr": 0.05, "epochs": 15, "batch_size": 64, "weight_decay": 0.0001, "momentum": 0.9, "seed": 1, "holdout": 0.2}'
# A linear head on 8 PCA components of Fashion-MNIST: far above chance (0.1), below 1.
jcheck "1: accuracies in range (0.5, 1)" '.rows[0][3] > 0.5 and .rows[0][3] < 1 and .rows[0][4] > 0.5 and .rows[0][4] < 1'
jcheck "1: jobs: 2 embed + 1 finetune" '.jobs == {"total": 3, "cached": 0, "submitted": 3, "remaining": 0, "failed": 0}'
NEW1=$(col new_model); NEWID1=$(col new_model_id); JOB1=$(col job_id)
check "1: the new model is named <parent>@ft-<8 hex>" bash -c "[[ '$NEW1' =~ ^t/pca-8@ft-[0-9a-f]{8}$ ]]"

# ---- 2. the new model is in the catalog -------------------------------------------------------
section "case 2"
query "SELECT id, name, parent, finetuned, tags, runner, dimension FROM models WHERE finetuned;"
jcheck "2: SELECT … WHERE finetuned finds it with its parent" \
  ".rows == [[$NEWID1, \"$NEW1\", \"t/pca-8\", true, [\"finetuned\", \"head\"], \"builtin\", 10]]"
query "SELECT spec FROM models WHERE name = '$NEW1';"
jcheck "2: its spec names the head weights and the parent" \
  '.rows[0][0].head.kind == "linear" and .rows[0][0].head.classes == 10 and .rows[0][0].head.dim == 8 and (.rows[0][0].head.path | test("^finetune/[0-9a-f]{2}/[0-9a-f]{64}[.]head$")) and .rows[0][0].parent.name == "t/pca-8"'
WPATH=$(jf '.rows[0][0].head.path'); WDIG=$(jf '.rows[0][0].head.digest')
check "2: the weights file exists under the data directory" test -s "$DATA/$WPATH"
check "2: no checkpoint is left" bash -c "[ -z \"\$(find '$DATA/finetune' -name '*.ckpt')\" ]"
query "SELECT name FROM models WHERE NOT FINETUNED ORDER BY name;"
jcheck "2: NOT FINETUNED excludes it" '[.rows[][0]] == ["t/pca-8", "t/rp-16"]'

# ---- 3. a repeat is answered from finetune_results ---------------------------------------------
section "case 3"
query "$F1" 60
jcheck "3: a repeated FINETUNE submits no job" '.jobs.submitted == 0 and .jobs.cached == 3 and .rows[0][9] == "cached" and (has("query_id") | not)'
jcheck "3: ... with the same answer" "[.rows[0][3,4,6,7,8]] == $(printf '%s' "$R1" | jq -c '[.rows[0][3,4,6,7,8]]')"
query "SELECT id FROM jobs WHERE kind = 'finetune';"
jcheck "3: one finetune job exists" '.row_count == 1'

# ---- 4. without WAIT, then collected -----------------------------------------------------------
section "case 4"
F4="FINETUNE \"t/rp-16\" WITH \"tr\" USING \"head(head=mlp, hidden=16, lr=0.02, epochs=10, test='te[0:200]')\";"
query "$F4" 30
jcheck "4: without WAIT: status running, its job id, a query id" \
  '.status == "running" and .remaining_jobs > 0 and (.query_id | type) == "string" and (.rows[0][8] | type) == "number" and .rows[0][9] != "done"'
JOB4=$(jf '.rows[0][8]')
query "${F4%;} WAIT;" 120
jcheck "4: the same statement with WAIT collects it (same job)" \
  ".status == \"complete\" and .rows[0][8] == $JOB4 and .rows[0][9] == \"done\" and .rows[0][2].head == \"mlp\" and .rows[0][2].hidden == 16"
query "SELECT dimension FROM models WHERE name = '$(col new_model)';"
jcheck "4: an mlp head's model has the hidden width as dimension" '.rows == [[16]]'

# ---- 5. errors --------------------------------------------------------------------------------
section "case 5"
query 'FINETUNE "nope" WITH "tr" WAIT;'
expect "5: an unknown model: 404" 404 not_found
jcheck "5: ... at its position" '.error.line == 1 and .error.column == 10'
query 'FINETUNE "t/pca-8" WITH "none" WAIT;'
expect "5: an unknown dataset: 404" 404 not_found
query 'FINETUNE "t/pca-8" WITH "tr" USING "fancy(lr=1)" WAIT;'
expect "5: an unknown strategy: 400" 400 semantic_error
jcheck "5: ... listing the strategies" '.error.message | test("head, exec, replay")'
query 'FINETUNE "t/pca-8" WITH "tr" USING "head(lr=100)" WAIT;'
expect "5: a knob out of range: 422" 422 validation_error
jcheck "5: ... naming the knob, its range and its position" \
  '.error.field == "lr" and (.error.message | test("lr: 100 is out of range, allowed: number in \\[1e-05, 10\\], log scale")) and .error.column == 42'
query 'FINETUNE "t/pca-8" WITH "tr" USING "head(depth=3)" WAIT;'
expect "5: an unknown knob: 422" 422 validation_error
jcheck "5: ... listing the knobs" '.error.field == "depth" and (.error.message | test("knobs: head, hidden, lr"))'
query 'FINETUNE "t/pca-8" WITH "tr" USING "head(batch_size=100)" WAIT;'
expect "5: a categorical knob outside its values: 422" 422 validation_error
query "SELECT id FROM jobs WHERE kind = 'finetune';"
jcheck "5: no job was submitted by a bad statement" '.row_count == 2'

# ---- 6. kill -9 mid-training: resume from the checkpoint ---------------------------------------
section "case 6"
# "k1" and "k2" are the same rows under two names (two jobs): k1 undisturbed, k2 killed.
KN="head=mlp, hidden=32, epochs=${RANKQL_FT_EPOCHS:-1000}, batch_size=32, test='te'"
t0=$(date +%s.%N)
query "FINETUNE \"t/pca-8\" WITH \"k1\" USING \"head($KN)\" WAIT;" 170
jcheck "6: the undisturbed run completes" '.status == "complete" and .rows[0][9] == "done"'
RK1=$RESP
echo "# undisturbed fine-tune: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
query "SELECT spec FROM models WHERE name = '$(col new_model)';"
DIG1=$(jf '.rows[0][0].head.digest')
query "FINETUNE \"t/pca-8\" WITH \"k2\" USING \"head($KN)\";" 30
JOB6=$(col job_id)
# Wait for a checkpoint past epoch 0 of that job, then kill the worker.
ck=
for _ in $(seq 1 600); do
  ck=$(find "$DATA/finetune" -name '*.ckpt' 2>/dev/null | head -1)
  [ -n "$ck" ] && break
  sleep 0.1
done
old=$(worker_pid)
if [ -n "$ck" ] && [ -n "$old" ]; then
  kill -KILL "$old"
  ok "6: worker $old killed with -9 while job $JOB6 trains (checkpoint $(basename "$ck"))"
else
  not_ok "6: worker killed with -9 after a checkpoint"; echo "#   checkpoint '$ck', worker '$old'"
fi
new=
for _ in $(seq 1 150); do
  new=$(worker_pid); [ -n "$new" ] && [ "$new" != "$old" ] && break; new=; sleep 0.1
done
WPID=$new
check "6: rankqld restarts the worker" test -n "$new"
check "6: the checkpoint survives the kill" test -s "$ck"
query "FINETUNE \"t/pca-8\" WITH \"k2\" USING \"head($KN)\" WAIT;" 170
jcheck "6: the killed job completes on its second attempt, resumed from a checkpoint" \
  ".status == \"complete\" and .rows[0][8] == $JOB6 and .rows[0][9] == \"done\" and .rows[0][10] == 2 and .rows[0][11] > 0"
echo "# resumed from epoch $(jf '.rows[0][11]')"
jcheck "6: ... with the undisturbed run's accuracies" \
  "[.rows[0][3,4]] == $(printf '%s' "$RK1" | jq -c '[.rows[0][3,4]]')"
query "SELECT spec FROM models WHERE name = '$(col new_model)';"
check_eq "6: ... and bit-identical weights (digest)" "$DIG1" "$(jf '.rows[0][0].head.digest')"
check "6: the checkpoint is gone once the job is done" test ! -e "$ck"

# ---- 7. replay fine-tunes ----------------------------------------------------------------------
section "case 7"
# tests/fixtures/replay-records.csv by hand: org/alpha on dmlab ran twice, best 0.40, 100 +
# 50.5 s; org/delta ran only on eurosat.
REC=$SCRATCH/records.csv
cp "$RANKQL_ROOT/tests/fixtures/replay-records.csv" "$REC"; chmod 644 "$REC"
for m in alpha delta; do
  query "REGISTER MODEL \"r/$m\" (runner, modality, spec) VALUES ('replay', 'image', {records: '$REC', model_identifier: 'org/$m'});"
  expect "7: replay model r/$m registers" 200
done
query "REGISTER DATASET \"r/dmlab\" (format, spec) VALUES ('replay', {records: '$REC', train_dataset_name: 'dmlab'});"
expect "7: a replay dataset registers" 200
query 'FINETUNE "r/alpha" WITH "r/dmlab" WAIT;' 60
jcheck "7: a replay fine-tune answers the best recorded run (0.40, 150.5 s), registers nothing" \
  '.status == "complete" and .rows[0][1] == "replay" and .rows[0][4] == 0.4 and .rows[0][5] == 150.5 and .rows[0][3] == null and .rows[0][6] == null and .rows[0][2] == {}'
query 'FINETUNE "r/alpha" WITH "r/dmlab" WAIT;' 60
jcheck "7: ... and a repeat comes from the cache" '.jobs.submitted == 0 and .rows[0][9] == "cached"'
query 'FINETUNE "r/delta" WITH "r/dmlab" WAIT;' 60
jcheck "7: an unrecorded pair fails with the reason" \
  '.status == "partial" and .rows[0][9] == "failed" and (.rows[0][12] | test("no recorded fine-tune run of org/delta on dmlab"))'
query 'FINETUNE "r/alpha" WITH "r/dmlab" USING "head" WAIT;' 60
expect "7: head on a replay dataset: 400" 400 semantic_error
query 'FINETUNE "t/pca-8" WITH "r/dmlab" WAIT;' 60
expect "7: a builtin model on replay data: 400" 400 semantic_error
query "FINETUNE \"t/pca-8\" WITH \"tr\" USING \"head(test='r/dmlab')\" WAIT;" 60
expect "7: a replay dataset as the test data of a head: 400" 400 semantic_error
query "FINETUNE \"t/pca-8\" WITH \"tr\" USING \"head(test='te[5:x]')\" WAIT;" 60
expect "7: a malformed test slice: 400" 400 semantic_error

# ---- 8. a variable of models ------------------------------------------------------------------
section "case 8"
query "DECLARE pool AS SELECT * FROM models WHERE name LIKE 't/%' AND NOT FINETUNED ORDER BY name; ${F1/\"t\/pca-8\"/pool}" 120
RESP=$(jf '.results[-1]')
jcheck "8: FINETUNE of a variable: one row per model, in its order" \
  '[.rows[][0]] == ["t/pca-8", "t/rp-16"] and .status == "complete"'
# t/rp-16's embedding of "tr" is known from case 4: its "te" embedding and its fine-tune run.
jcheck "8: ... the known one from the cache, the other trained" \
  '[.rows[][9]] == ["cached", "done"] and .jobs.submitted == 2'
query 'DECLARE ds AS SELECT * FROM datasets; FINETUNE ds WITH "tr";'
expect "8: a variable of datasets is not models: 400" 400 semantic_error
jcheck "8: ... saying what it holds" '.error.message | test("variable \"ds\" holds datasets, not models")'

# ---- 9. exec fine-tunes through the command protocol --------------------------------------------
section "case 9"
query "REGISTER MODEL \"x/centroid\" (runner, modality, spec) VALUES ('exec', 'image', {command: ['python3', '$RANKQL_ROOT/examples/exec/finetune_centroid.py'], timeout_seconds: 120});"
expect "9: an exec model registers" 200
query "REGISTER DATASET \"sm\" (format, modality, location, spec, slice) VALUES $(idx "$TRI" "$TRL" 0 300);"
query "FINETUNE \"x/centroid\" WITH \"sm\" USING \"exec(epochs=2, test='te[0:100]')\" WAIT;" 120
jcheck "9: an exec fine-tune runs the model's command and registers the result" \
  '.status == "complete" and .rows[0][1] == "exec" and .rows[0][2].epochs == 2 and .rows[0][4] > 0.4 and .rows[0][4] <= 1 and (.rows[0][7] | test("^x/centroid@ft-"))'
query "SELECT parent, runner, finetuned FROM models WHERE name = '$(col new_model)';"
jcheck "9: ... an exec model, child of its parent" '.rows == [["x/centroid", "exec", true]]'
query "FINETUNE \"t/pca-8\" WITH \"sm\" USING \"exec\" WAIT;"
expect "9: exec on a builtin model: 400" 400 semantic_error

# ---- 10. fine-tuned head models rank like any model ---------------------------------------------
section "case 10"
# Their features are the parent's (same fit) through the head: logits (linear) or the hidden
# layer (mlp). The linear head of case 1 was trained on "tr" and scored 1 - err_test on "te";
# a 1-NN on its logits is a different classifier, so only sanity is checked here.
query "SELECT name FROM models WHERE finetuned AND name LIKE 't/%' ORDER BY err TRAINED ON \"tr\" TESTED ON TASK \"te\" CLASSIFIED BY [\"Euclidean NN\"] WAIT;" 120
jcheck "10: a ranking of the fine-tuned head models completes, every one ranked" \
  '.status == "complete" and (.rows | length) == 5 and ([.rows[][3] | . > 0 and . < 0.6] | all) and ((.failures // []) | length) == 0'
jcheck "10: ... the linear head of case 1 among them" "[.rows[][1]] | index(\"$NEW1\") != null"

section end
finish
