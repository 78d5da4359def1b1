#!/usr/bin/env bash
# The strategy host API on file data (docs/extensions.md "Host API"): builtin models on
# Fashion-MNIST slices, ranked by the builtin strategies through rankqld and its worker.
#   - proxy(name=nn) scores each model with the very proxy job (and embed jobs) a plain
#     RANK … BY "nn" submits: same errs, no new job after the plain ranking ran; and the
#     other way round, a strategy run first (embeddings computed inline in its worker slot)
#     leaves a plain ranking nothing to compute;
#   - hybrid(proxy=nn, k=1) fine-tunes exactly the signal's best model with FINETUNE's head
#     job (a finetune_results row, a registered "…@ft-…" model; the same FINETUNE afterwards
#     is cached), ranks it first with err = 1 − its test accuracy, and a repeat submits none.
# jq programs are single-quoted: their $names are jq's.
# shellcheck disable=SC2016
set -u
source "$(dirname "$0")/lib.sh"

RANKQLD=${RANKQLD:-$RANKQL_BIN/rankqld}
WORKER=${RANKQL_WORKER_BIN:-$RANKQL_BIN/rankql-worker}
rq_need_tools curl jq
rq_need_execs "$RANKQLD" "$WORKER"
rq_fashion_mnist
rq_scratch

rq_worker_wrapper
RANKQL_WORKER=$SCRATCH/worker rq_serve "rankqld starts with a worker" --data-dir "$DATA" --pg-no-sync

# Three builtin models (one with a fitted extractor: its embed jobs name the train slice as
# "fit") and small slices: train 600, test 300, and a second pair for the other direction.
rq_register "$(rq_builtin_model b/raw raw)" "$(rq_builtin_model b/pca-8 pca-8)" \
  "$(rq_builtin_model b/rp-16 rp-16)" \
  "$(rq_idx_dataset tr "$TRI" "$TRL" 0 600)" "$(rq_idx_dataset te "$TEI" "$TEL" 0 300)" \
  "$(rq_idx_dataset tr2 "$TRI" "$TRL" 600 1200)" "$(rq_idx_dataset te2 "$TEI" "$TEL" 300 600)"
ok "the catalog registers"

# By name: the fine-tuned model hybrid registers ("b/raw@ft-…") is no candidate.
ALL="name IN ('b/raw', 'b/pca-8', 'b/rp-16')"
# rank BY TRAIN TEST: RANK … BY "BY" on the builtin models; names → err of the last answer.
rank() { rq_query "RANK name FROM models WHERE $ALL TRAINED ON \"$2\" TESTED ON \"$3\" BY \"$1\" WAIT;" 170; }
errs() { rq_jf '(.columns | index("name")) as $n | (.columns | index("err")) as $e | [.rows[] | [.[$n], .[$e]]] | sort'; }
# jobs KIND: how many job rows of that kind exist.
jobs() { rq_query "SELECT id FROM jobs WHERE kind = '$1';"; rq_jf .row_count; }
# strategy_result: the result of the newest strategy job.
strategy_result() {
  rq_query "SELECT result FROM jobs WHERE kind = 'strategy' ORDER BY id DESC LIMIT 1;"
  rq_jf '.rows[0][0] | if type == "string" then fromjson else . end'
}

# ---- proxy(name=nn) after the plain ranking: the same jobs ------------------------------------
rank nn tr te
[ "$RQ_STATUS" = 200 ] || { not_ok "RANK … BY nn: $RQ_STATUS ${RQ_RESP:0:400}"; finish; }
PLAIN=$(errs)
check_eq "RANK … BY nn ranks the three models (3 proxy, 6 embed jobs)" '3 6 3' \
  "$(rq_jf '.rows | length') $(jobs embed) $(jobs proxy)"
rank 'proxy(name=nn)' tr te
[ "$RQ_STATUS" = 200 ] || not_ok "proxy(name=nn): $RQ_STATUS ${RQ_RESP:0:400}"
check_eq "proxy(name=nn) gives each model the plain ranking's 1-NN err" "$PLAIN" "$(errs)"
check_eq "... and submitted no embed or proxy job (the ranking's are its answers)" '6 3' \
  "$(jobs embed) $(jobs proxy)"
SR=$(strategy_result)
check_eq "... its account: three proxy scores, every one cached, of the ranking's proxy jobs" \
  'true' "$(jq -c --argjson n "$(rq_query "SELECT id FROM jobs WHERE kind = 'proxy' ORDER BY id;"; rq_jf '[.rows[][0]]')" \
  '(.proxied | length) == 3 and ([.proxied[].cached] | all) and ([.proxied[].job_id] | sort) == $n' <<<"$SR")"

# ---- the other way round: the strategy first, embeddings computed in its slot ---------------
rank 'proxy(name=linear)' tr2 te2
[ "$RQ_STATUS" = 200 ] || not_ok "proxy(name=linear) on tr2: $RQ_STATUS ${RQ_RESP:0:400}"
STRAT=$(errs)
check_eq "proxy(name=linear) on new data ran its 6 embed and 3 proxy jobs inline" '12 6' \
  "$(jobs embed) $(jobs proxy)"
rank linear tr2 te2
check_eq "a plain RANK … BY linear then finds every job cached (3 + 6, none submitted)" '9 9 0' \
  "$(rq_jf '"\(.jobs.total) \(.jobs.cached) \(.jobs.submitted)"')"
check_eq "... with the strategy's errs" "$STRAT" "$(errs)"

# ---- hybrid(proxy=nn, k=1): one head fine-tune, FINETUNE's job ---------------------------------
BEST=$(jq -r 'sort_by(.[1]) | .[0][0]' <<<"$PLAIN")
rank 'hybrid(proxy=nn, k=1)' tr te
[ "$RQ_STATUS" = 200 ] || not_ok "hybrid: $RQ_STATUS ${RQ_RESP:0:400}"
check_eq "hybrid(proxy=nn, k=1) fine-tunes one model (one finetune job)" 1 "$(jobs finetune)"
SR=$(strategy_result)
rq_query "SELECT result FROM jobs WHERE kind = 'finetune';"
FT=$(rq_jf '.rows[0][0] | if type == "string" then fromjson else . end')
rq_query "SELECT id FROM models WHERE name = '$BEST';"
BEST_ID=$(rq_jf '.rows[0][0]')
check_eq "... of the signal's best ($BEST): the strategy's account names it and its finetune job" \
  true "$(jq -c --argjson ft "$FT" --argjson id "$BEST_ID" '(.finetuned | length) == 1 and .finetuned[0].model_id == $id and .finetuned[0].accuracy == $ft.test_accuracy and $ft.runner == "head"' <<<"$SR")"
rq_query "SELECT name FROM models WHERE name LIKE '$BEST@ft-%';"
check_eq "... the fine-tuned model is registered like FINETUNE's (the job's model_name)" \
  "[[$(jq -c .model_name <<<"$FT")]]" "$(rq_jf .rows)"
rank 'hybrid(proxy=nn, k=1)' tr te
check_eq "... a repeat submits no job" '1 0' "$(rq_jf '"\(.jobs.cached) \(.jobs.submitted)"')"
rq_jcheck "... ranks it first with err = 1 − its test accuracy, the others by their nn err" \
  "$(printf '(.columns | index("name")) as $n | (.columns | index("err")) as $e | .rows[0][$n] == "%s" and ((.rows[0][$e] - (1 - %s)) | fabs) < 1e-9 and ([.rows[1:][] | [.[$n], .[$e]]] | sort) == (%s | map(select(.[0] != "%s")))' \
    "$BEST" "$(jq -r .test_accuracy <<<"$FT")" "$PLAIN" "$BEST")"
check_eq "... and no new fine-tune job" 1 "$(jobs finetune)"
rq_query "FINETUNE \"$BEST\" WITH \"tr\" USING \"head(test='te')\" WAIT;" 120
check_eq "FINETUNE of that model on the same data is the strategy's job (cached)" 'cached 1' \
  "$(rq_jf '(.columns | index("status")) as $s | .rows[0][$s]') $(jobs finetune)"

# ---- errors ----------------------------------------------------------------------------------
rq_query "REGISTER MODEL \"r/x\" (runner, modality, spec) VALUES ('replay', 'image', {records: '$RANKQL_ROOT/tests/fixtures/replay-strategies.csv', model_identifier: 'org/m1'});"
[ "$RQ_STATUS" = 200 ] || not_ok "register r/x: $RQ_STATUS ${RQ_RESP:0:300}"
rq_query "RANK name FROM models WHERE name IN ('b/raw', 'r/x') TRAINED ON \"tr\" TESTED ON \"te\" BY \"proxy(name=nn)\" WAIT;" 120
rq_jcheck "a replay model on file data ranks after the scored one" \
  '(.columns | index("name")) as $n | [.rows[][$n]] == ["b/raw", "r/x"]'
rq_query "RANK name FROM models WHERE name = 'r/x' TRAINED ON \"tr\" TESTED ON \"te\" BY \"proxy(name=nn)\" WAIT;" 120
rq_jcheck "... alone, the strategy fails with the host's reason" \
  '[.notices[]? | test("proxy_score: model r/x has runner replay: recorded runs answer on replay datasets")] | any'

finish
