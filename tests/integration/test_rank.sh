#!/usr/bin/env bash
# Task-aware ranking end to end (docs/jobs.md, docs/language.md "Task-aware ranking"): rankqld
# on its embedded PostgreSQL with its local worker, a small catalog of builtin models and
# Fashion-MNIST slices (Debian's dataset-fashion-mnist), and POST /v1/query. Covers the
# rankings' shape, a 1-NN error checked against an independent brute-force 1-NN
# (build/tests/itest_rank_nn, tests/integration/itest_rank_nn.c), the caches, answers
# without WAIT, data and label-only mutations, TESTED ON BENCHMARK and its aggregate, the
# errors, a failing job, NDJSON progress, SHOW/CANCEL JOB, a worker killed with -9, and
# replay models answered from recorded fine-tune runs (tests/fixtures/replay-records.csv,
# scripts/replay-catalog.sh).
#
# The local worker is started through RANKQL_WORKER, a wrapper that adds --lease 6 to
# rankql-worker's flags: everything else is rankqld's default worker, but the job of a
# killed worker is re-queued after ~6 s instead of 30 s, which keeps the kill -9 case short.
#
# Every rankqld and postgres started here is stopped by the EXIT trap; every request and wait
# is bounded, so a hang fails a check instead of the whole run.
# jq programs are single-quoted: their $names are jq's.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# section N: a comment with the seconds since the start, to see where the time goes.
T_START=$(date +%s.%N)
section() { echo "# $1 at $(awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"; }

RANKQLD=${RANKQLD:-$RANKQL_BIN/rankqld}
WORKER=${RANKQL_WORKER_BIN:-$RANKQL_BIN/rankql-worker}
SHELL_BIN=$RANKQL_BIN/rankql
NN=${RANKQL_ITEST_NN:-$RANKQL_ROOT/build/tests/itest_rank_nn}
FM=${RANKQL_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
TRI=$FM/train-images-idx3-ubyte.gz TRL=$FM/train-labels-idx1-ubyte.gz
TEI=$FM/t10k-images-idx3-ubyte.gz TEL=$FM/t10k-labels-idx1-ubyte.gz
PGBIN=${RANKQL_PG_BINDIR:-$(pg_config --bindir 2>/dev/null)}
[ -x "$PGBIN/initdb" ] ||
  PGBIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)
for tool in curl jq; do
  command -v "$tool" >/dev/null || { not_ok "setup: $tool is needed (scripts/install-deps.sh)"; finish; }
done
for f in "$RANKQLD" "$WORKER" "$SHELL_BIN" "$NN" "$PGBIN/initdb"; do
  [ -x "$f" ] || { not_ok "setup: need $f (make build-all; PostgreSQL's initdb)"; finish; }
done
for f in "$TRI" "$TRL" "$TEI" "$TEL"; do
  [ -r "$f" ] || { not_ok "setup: need $f (apt-get install dataset-fashion-mnist)"; finish; }
done

SCRATCH=$(make_scratch)
DATA=$SCRATCH/data
SRV=
BG=()                       # background curls
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
  # A worker or postmaster that outlived rankqld (kill -KILL above): stop them too.
  [ -n "${WPID:-}" ] && kill -KILL "$WPID" 2>/dev/null
  [ -f "$DATA/pg/postmaster.pid" ] &&
    as_pg "$PGBIN/pg_ctl" -D "$DATA/pg" -m immediate -w -t 20 stop >/dev/null 2>&1
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

# ---- helpers -------------------------------------------------------------------------------
JSON=(-H 'Content-Type: application/json')
# query TEXT [MAX-SECONDS]: POST /v1/query; sets STATUS and RESP.
query() {
  jq -n --arg q "$1" '{query: $q}' >"$SCRATCH/body.json"
  STATUS=$(curl -s -o "$SCRATCH/resp" -w '%{http_code}' --max-time "${2:-60}" "${JSON[@]}" \
    --data-binary "@$SCRATCH/body.json" "$BASE/v1/query" 2>/dev/null) || true
  [ -n "$STATUS" ] || STATUS=000
  RESP=$(cat "$SCRATCH/resp" 2>/dev/null)
}
# jf FILTER: a jq filter over the last response (compact, raw strings).
jf() { printf '%s' "$RESP" | jq -cr "$1" 2>/dev/null; }
# expect NAME STATUS [CODE]: the last answer had that HTTP status (and error code).
expect() {
  local got; got=$(jf '.error.code // "-"')
  if [ "$STATUS" = "$2" ] && [ "$got" = "${3:--}" ]; then ok "$1"; else
    not_ok "$1"; printf '#   expected: %s %s\n#   actual:   %s %s\n' "$2" "${3:--}" "$STATUS" "${RESP:0:600}"; fi
}
# jcheck NAME FILTER: ok when FILTER over the last response is true.
jcheck() {
  if [ "$(jf "$2")" = true ]; then ok "$1"; else
    not_ok "$1"; printf '#   failed: %s\n#   on: %s\n' "$2" "${RESP:0:600}"; fi
}
# err_of MODEL PROXY: that model's err in the last response.
err_of() { jf "[.rows[] | select(.[1] == \"$1\" and .[2] == \"$2\") | .[3]][0]"; }
# feq A B: two decimals equal to 1e-9.
feq() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; exit !(a != "" && b != "" && d < 1e-9 && d > -1e-9) }'; }
# nn_ref ARGS…: the independent 1-NN's error rate over the given data.
nn_ref() { timeout 60 "$NN" "$@" | awk '{ printf "%.10f\n", $1 / $2 }'; }
# count_jobs KIND: how many jobs of that kind exist (a catalog query on jobs).
count_jobs() { query "SELECT id FROM jobs WHERE kind = '$1';"; jf .row_count; }
# The test's models, and how many there are.
MODELS="name LIKE 't/%'"
NMODELS=4

PORT=$(free_port); BASE=http://127.0.0.1:$PORT
printf '#!/bin/sh\nexec %q "$@" --lease 6\n' "$WORKER" >"$SCRATCH/worker"
chmod 755 "$SCRATCH/worker"
# Strategy plugins (case 15): the test process plugins and the test C plugin.
EXT=$SCRATCH/ext; mkdir -p "$EXT"
cp "$RANKQL_ROOT"/tests/extensions/*.json "$RANKQL_ROOT"/tests/extensions/*.sh \
  "$RANKQL_ROOT"/tests/extensions/*.py "$EXT"/
cp "${RANKQL_TEST_PLUGIN:-$RANKQL_BIN/../tests/extensions/test_plugin.so}" "$EXT"/ 2>/dev/null
RANKQL_WORKER=$SCRATCH/worker "$RANKQLD" --data-dir "$DATA" --pg-no-sync --extensions "$EXT" \
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

# ---- the catalog, loaded with the rankql shell ----------------------------------------------
section catalog
# Labels for the label-only change: line i+1 holds the label of row i (a fixed pattern).
{ echo label; for i in $(seq 0 599); do echo $(( (i * 7 + 3) % 10 )); done; } >"$SCRATCH/labels.csv"
cp "$TRI" "$SCRATCH/bad-images.gz"; cp "$TRL" "$SCRATCH/bad-labels.gz"
chmod 644 "$SCRATCH"/*.gz "$SCRATCH/labels.csv"
idx() { printf "('idx', 'image', '%s', {labels: '%s'}, {start: %d, stop: %d})" "$1" "$2" "$3" "$4"; }
cat >"$SCRATCH/catalog.rql" <<EOF
REGISTER MODEL "t/raw" (runner, modality, source, spec, image_size, dimension, batch_size)
  VALUES ('builtin', 'image', 'builtin', {extractor: "raw"}, 28, 784, 1024);
REGISTER MODEL "t/pca-8" (runner, modality, source, spec, image_size, dimension, batch_size)
  VALUES ('builtin', 'image', 'builtin', {extractor: "pca", k: 8}, 28, 8, 1024);
REGISTER MODEL "t/rp-16" (runner, modality, source, spec, image_size, dimension, batch_size)
  VALUES ('builtin', 'image', 'builtin', {extractor: "random_projection", k: 16, seed: 1}, 28, 16, 1024);
REGISTER MODEL "t/hog" (runner, modality, source, spec, image_size, dimension, batch_size)
  VALUES ('builtin', 'image', 'builtin', {extractor: "hog", cell: 7, block: 2, bins: 9}, 28, 324, 1024);
REGISTER DATASET "tr"  (format, modality, location, spec, slice) VALUES $(idx "$TRI" "$TRL" 0 2000);
REGISTER DATASET "tr2" (format, modality, location, spec, slice) VALUES $(idx "$TRI" "$TRL" 2000 2500);
REGISTER DATASET "te"  (format, modality, location, spec, slice) VALUES $(idx "$TEI" "$TEL" 0 500);
REGISTER DATASET "te2" (format, modality, location, spec, slice) VALUES $(idx "$TEI" "$TEL" 500 1000);
REGISTER DATASET "big" (format, modality, location, spec, slice) VALUES $(idx "$TRI" "$TRL" 0 12000);
REGISTER DATASET "k1"  (format, modality, location, spec, slice) VALUES $(idx "$TRI" "$TRL" 20000 30000);
REGISTER DATASET "k2"  (format, modality, location, spec, slice) VALUES $(idx "$TRI" "$TRL" 20000 30000);
REGISTER DATASET "bad" (format, modality, location, spec, slice)
  VALUES $(idx "$SCRATCH/bad-images.gz" "$SCRATCH/bad-labels.gz" 0 1000);
REGISTER DATASET "lab" (format, location, spec)
  VALUES ('csv', '$SCRATCH/labels.csv', {labels_only: true, label_column: 0, header: true});
EOF
out=$(timeout 60 "$SHELL_BIN" -H "127.0.0.1:$PORT" --on-error-stop -f "$SCRATCH/catalog.rql" 2>&1); rc=$?
check_eq "the catalog loads with the rankql shell" 0 "$rc"
[ "$rc" = 0 ] || printf '%s\n' "$out" | sed 's/^/#   /'

rank_q() {  # rank_q TRAIN TEST PROXIES [TAIL]: the ranking query text
  printf 'SELECT name FROM image_models WHERE %s ORDER BY err TRAINED ON %s TESTED ON TASK %s CLASSIFIED BY [%s] %s;' \
    "$MODELS" "$1" "$2" "$3" "${4-WAIT}"
}
bench_q() {  # bench_q ORDER-KEY: a TESTED ON BENCHMARK ranking
  printf 'SELECT name FROM image_models WHERE %s ORDER BY %s TRAINED ON "tr" TESTED ON BENCHMARK ["te", "te2"] CLASSIFIED BY ["Euclidean NN"] WAIT;' \
    "$MODELS" "$1"
}

# ---- 1. WAIT ranking with two proxies ----------------------------------------------------------
section "case 1"
Q1=$(rank_q '"tr"' '"te"' '"Euclidean NN", "logme"')
query "$Q1" 90
expect "1: a WAIT ranking answers 200" 200
R1=$RESP
jcheck "1: status complete, nothing remaining" '.status == "complete" and .remaining_jobs == 0'
jcheck "1: columns rank, name, proxy, err, acc" '.columns == ["rank", "name", "proxy", "err", "acc"]'
jcheck "1: one ranking per proxy" '[.rankings[].proxy] == ["Euclidean NN", "logme"]'
jcheck "1: each ranking has every model once" \
  "[.rankings[].proxy as \$p | [.rows[] | select(.[2] == \$p) | .[1]] | sort] == [range(2) | [\"t/hog\", \"t/pca-8\", \"t/raw\", \"t/rp-16\"]]"
jcheck "1: rankings count their rows, none pending" "[.rankings[] | .rows == $NMODELS and .pending == 0] | all"
jcheck "1: rows sorted by err ascending, rank 1..n" \
  '[.rankings[].proxy as $p | [.rows[] | select(.[2] == $p)] | ([.[][3]] == ([.[][3]] | sort)) and ([.[][0]] == [range(1; length + 1)])] | all'
jcheck "1: acc = 1 - err for nn" \
  '[.rows[] | select(.[2] == "Euclidean NN") | (.[4] - (1 - .[3])) | fabs < 1e-12] | all'
jcheck "1: acc null for logme" '[.rows[] | select(.[2] == "logme") | .[4] == null] | all'
jcheck "1: the jobs: 8 embed + 8 proxy, all submitted" '.jobs == {"total": 16, "cached": 0, "submitted": 16, "remaining": 0, "failed": 0}'
query "$(rank_q '"tr"' '"te"' '"Euclidean NN", "logme"' 'LIMIT 3 WAIT')"
jcheck "1: LIMIT 3 applies to each ranking" '[.rankings[].rows] == [3, 3] and (.rows | length) == 6'
full=$(printf '%s' "$R1" | jq -c '[.rows[] | select(.[0] <= 3)]')
check_eq "1: LIMIT keeps the top of each ranking" "$full" "$(jf .rows)"

# ---- 2. correctness against an independent 1-NN -------------------------------------------------
section "case 2"
RESP=$R1
ref=$(nn_ref "$TRI" "$TRL" 0 2000 "$TEI" "$TEL" 0 500)
got=$(err_of t/raw "Euclidean NN")
if feq "$ref" "$got"; then ok "2: raw 1-NN err equals the brute-force 1-NN ($ref)"; else
  not_ok "2: raw 1-NN err equals the brute-force 1-NN"; printf '#   expected %s, got %s\n' "$ref" "$got"; fi

# ---- 3. caches ------------------------------------------------------------------------------------
section "case 3"
query "$Q1" 60
jcheck "3: the same query again submits nothing" '.jobs.submitted == 0 and .jobs.cached == 16 and .status == "complete"'
check_eq "3: ... and answers the same rows" "$(printf '%s' "$R1" | jq -c .rows)" "$(jf .rows)"
query "$(rank_q '"tr"' '"te"' '"Cosine NN"')" 60
jcheck "3: a new proxy re-uses the embeddings (one proxy job per model)" \
  ".jobs.submitted == $NMODELS and .jobs.cached == 8 and .status == \"complete\" and (.rows | length) == $NMODELS"
# The shell reads the same cached ranking (its csv output: a header and one line per model).
out=$(timeout 30 "$SHELL_BIN" -H "127.0.0.1:$PORT" --format csv -c "$(rank_q '"tr"' '"te"' '"Cosine NN"')" 2>/dev/null)
check_eq "3: the rankql shell prints the cached ranking" "rank,name,proxy,err,acc $((NMODELS + 1))" \
  "$(printf '%s\n' "$out" | head -1) $(printf '%s\n' "$out" | grep -c .)"

# Feature files that vanished (deleted by hand, a data directory restored without them) are
# noticed before submitting: their rows are forgotten and the embeddings computed again.
find "$DATA/features" -name '*.rqf' -delete
query "$(rank_q '"tr"' '"te"' '"hscore"')" 90
jcheck "3: lost feature files are embedded again instead of failing the proxies" \
  ".status == \"complete\" and .jobs.submitted == $((NMODELS + 8)) and (.rows | length) == $NMODELS"

# EXPLAIN of a ranking: its jobs and what the caches hold, without running it.
query "EXPLAIN JSON $(rank_q '"tr"' '"te"' '"Euclidean NN", "hscore", "linear"')" 30
jcheck "3: EXPLAIN JSON of a ranking shows Rank → Proxy jobs → Embed jobs with cache hits" \
  "(.plan.node == \"Rank\") and (.plan.children[0].node == \"Proxy jobs\") and
   (.plan.children[0].detail == \"$((3 * NMODELS)) ($((2 * NMODELS)) cached, $NMODELS to run)\") and
   (.plan.children[0].children[0].detail | startswith(\"$((2 * NMODELS)) (\"))"
query "SELECT id FROM jobs;"; before_explain=$(jf .row_count)
query "EXPLAIN $(rank_q '"tr"' '"te"' '"linear"')" 30
jcheck "3: EXPLAIN prints the plan as lines and does not run it" \
  '(.rows[0][0] | startswith("Rank: 1 ranking by linear")) and (.notices | any(test("did not run")))'
check_eq "3: ... no job was submitted" "$before_explain" "$(query "SELECT id FROM jobs;"; jf .row_count)"
query "EXPLAIN ANALYZE $(rank_q '"tr"' '"te"' '"linear"')" 90
jcheck "3: EXPLAIN ANALYZE runs it and says what ran" \
  "(.rows | map(.[0]) | any(startswith(\"Jobs run: $NMODELS of\"))) and (.rows[-1][0] | startswith(\"Execution time:\"))"

# ---- 4. without WAIT ----------------------------------------------------------------------------
section "case 4"
Q4=$(rank_q '"tr"[0:1500]' '"te"[0:400]' '"Euclidean NN"' '')
# A dry run ("dry": true, SHiFT's) only looks: nothing is submitted.
jobs_before=$(query "SELECT id FROM jobs;"; jf .row_count)
jq -n --arg q "$Q4" '{query: $q, dry: true}' >"$SCRATCH/body.json"
STATUS=$(curl -s -o "$SCRATCH/resp" -w '%{http_code}' --max-time 10 "${JSON[@]}" \
  --data-binary "@$SCRATCH/body.json" "$BASE/v1/query" 2>/dev/null) || true
RESP=$(cat "$SCRATCH/resp" 2>/dev/null)
jcheck "4: a dry run says what remains and submits nothing" \
  '.status == "dry" and .remaining_jobs > 0 and .jobs.submitted == 0 and (.rows | length) == 0'
check_eq "4: ... no job row was made" "$jobs_before" "$(query "SELECT id FROM jobs;"; jf .row_count)"
t0=$(date +%s.%N)
query "$Q4" 10
t1=$(date +%s.%N)
expect "4: a ranking without WAIT answers 200" 200
jcheck "4: ... status running with jobs remaining" '.status == "running" and .remaining_jobs > 0 and .jobs.remaining == .remaining_jobs'
jcheck "4: ... the known rows and the pending models add up" \
  "(.rankings[0].rows + .rankings[0].pending) == $NMODELS and (.rows | length) == .rankings[0].rows"
check "4: ... at once (under 3 s)" awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 3) }'
query "${Q4%;} WAIT;" 90
jcheck "4: the same query with WAIT completes" ".status == \"complete\" and .remaining_jobs == 0 and (.rows | length) == $NMODELS"

# ---- 5. appending a training dataset embeds only the new one -------------------------------------
section "case 5"
before=$(count_jobs embed)
query "$(rank_q '["tr", "tr2"]' '"te"' '"Euclidean NN"')" 90
R5=$RESP
after=$(count_jobs embed)
RESP=$R5
jcheck "5: TRAINED ON [\"tr\", \"tr2\"] completes" ".status == \"complete\" and (.rows | length) == $NMODELS"
check_eq "5: only the new dataset is embedded (one embed job per model)" "$NMODELS" "$((after - before))"
jcheck "5: submitted = new embeds + proxy jobs" ".jobs.submitted == $((2 * NMODELS))"

# ---- 6. a data mutation --------------------------------------------------------------------------
section "case 6"
# Every other of the first 600 training rows takes the pixels and label of a row of "tr2".
BASE_IDX=$(seq -s, 0 2 598); OTHER_IDX=$(seq -s, 0 299)
query "$(rank_q "(\"tr\" CHANGE [$BASE_IDX] TO \"tr2\" [$OTHER_IDX])" '"te"' '"Euclidean NN"')" 90
jcheck "6: the mutated ranking completes" ".status == \"complete\" and (.rows | length) == $NMODELS"
jcheck "6: it re-uses the base's and the target's features (proxy jobs only)" ".jobs.submitted == $NMODELS"
ref6=$(nn_ref "$TRI" "$TRL" 0 2000 "$TEI" "$TEL" 0 500 --change "$TRI" "$TRL" 2000 "$BASE_IDX" "$OTHER_IDX")
got6=$(err_of t/raw "Euclidean NN")
if feq "$ref6" "$got6"; then ok "6: mutated raw 1-NN err equals the brute-force 1-NN on changed data ($ref6)"; else
  not_ok "6: mutated raw 1-NN err equals the brute-force 1-NN on changed data"; printf '#   expected %s, got %s\n' "$ref6" "$got6"; fi
if feq "$ref" "$ref6"; then same=1; else same=0; fi
if feq "$got" "$got6"; then gsame=1; else gsame=0; fi
check_eq "6: the mutation changes the err exactly when the brute force says so" "$same" "$gsame"

# ---- 7. a label-only change (re-scored from the stored neighbours) ------------------------------
section "case 7"
query "$(rank_q "(\"tr\" CHANGE [$BASE_IDX] TO \"lab\" [$OTHER_IDX])" '"te"' '"Euclidean NN"')" 90
R7=$RESP
jcheck "7: the label-changed ranking completes" ".status == \"complete\" and (.rows | length) == $NMODELS and .jobs.submitted == $NMODELS"
ref7=$(nn_ref "$TRI" "$TRL" 0 2000 "$TEI" "$TEL" 0 500 --labels-csv "$SCRATCH/labels.csv" "$BASE_IDX" "$OTHER_IDX")
got7=$(err_of t/raw "Euclidean NN")
if feq "$ref7" "$got7"; then ok "7: label-changed raw 1-NN err equals the brute-force 1-NN ($ref7)"; else
  not_ok "7: label-changed raw 1-NN err equals the brute-force 1-NN"; printf '#   expected %s, got %s\n' "$ref7" "$got7"; fi
query "SELECT id, result.rescored, result.err FROM jobs WHERE kind = 'proxy' ORDER BY id DESC LIMIT $NMODELS;"
jcheck "7: its proxy jobs were re-scored from the unchanged query's neighbours" '([.rows[] | .[1] == true] | all) and (.rows | length) > 0'
errs7=$(printf '%s' "$R7" | jq -c '[.rows[][3]] | sort')
check_eq "7: the jobs' results are the ranking's errs" "$errs7" "$(jf '[.rows[][2]] | sort')"

# ---- 8. TESTED ON BENCHMARK ----------------------------------------------------------------------
section "case 8"
query "$(bench_q err)" 90
R8=$RESP
jcheck "8: BENCHMARK: a dataset column" '.columns == ["rank", "name", "proxy", "dataset", "err", "acc"]'
jcheck "8: one ranking per test dataset" "[.rankings[] | [.dataset, .rows]] == [[\"te\", $NMODELS], [\"te2\", $NMODELS]]"
jcheck "8: rows name their dataset, each ranking sorted" \
  '[("te", "te2") as $d | [.rows[] | select(.[3] == $d)] | ([.[][4]] == ([.[][4]] | sort)) and length > 0] | all'
te_rows=$(jf '[.rows[] | select(.[3] == "te") | [.[1], .[4]]]')
check_eq "8: the \"te\" ranking is the TASK ranking on \"te\"" \
  "$(printf '%s' "$R1" | jq -c '[.rows[] | select(.[2] == "Euclidean NN") | [.[1], .[3]]]')" "$te_rows"
query "$(bench_q 'AVG(err)')" 60
jcheck "8: ORDER BY AVG(err): one ranking" ".status == \"complete\" and (.rankings | length) == 1 and (.rows | length) == $NMODELS"
means=$(printf '%s' "$R8" | jq -c '[.rows | group_by(.[1])[] | {key: .[0][1], value: ([.[][4]] | add / length)}] | from_entries')
jcheck "8: its values are the means of the per-dataset errs" \
  "($means) as \$m | [.rows[] | (.[4] - \$m[.[1]]) | fabs < 1e-12] | all"
jcheck "8: sorted by the mean, rank 1..n" '([.rows[][4]] == ([.rows[][4]] | sort)) and [.rows[][0]] == [range(1; (.rows | length) + 1)]'
jcheck "8: the aggregate's rows name the datasets averaged" '[.rows[][3] == "te, te2"] | all'

# ---- 9. errors -----------------------------------------------------------------------------------
section "case 9"
query "$(rank_q '"nope"' '"te"' '"Euclidean NN"')"
expect "9: an unknown dataset: 404" 404 not_found
check_contains "9: ... naming it" '"nope"' "$(jf .error.message)"
query "$(rank_q '"tr"' '"te"' '"bogus"')"
expect "9: an unknown proxy: 400" 400 semantic_error
check_contains "9: ... naming it" '"bogus"' "$(jf .error.message)"
query 'REGISTER MODEL "x/tf" (tf_image_model_url, required_image_size, batch_size) VALUES ("https://tfhub.dev/google/imagenet/resnet_v2_50/feature_vector/4", {height: 224, width: 224}, 512);'
expect "9: a tfhub model registers" 200
query "SELECT name FROM image_models WHERE name IN ('t/raw', 'x/tf') ORDER BY err TRAINED ON \"tr\" TESTED ON TASK \"te\" CLASSIFIED BY [\"Euclidean NN\"] WAIT;" 30
expect "9: a ranking with a model that cannot embed: 200" 200
jcheck "9: ... the tfhub model is skipped with a notice" \
  '[.notices[] | test("1 model skipped: runner tfhub")] | any'
jcheck "9: ... and the others are ranked" '[.rows[][1]] == ["t/raw"] and .status == "complete"'
query "REGISTER DATASET \"vt\" (format, spec, split) VALUES ('vtab', {vtab_name: 'cifar'}, 'train');"
expect "9: a vtab dataset registers" 200
query "$(rank_q '"vt"' '"te"' '"Euclidean NN"')"
expect "9: ranking on a vtab dataset: 422" 422 validation_error
check_contains "9: ... saying why" 'format vtab' "$(jf .error.message)"
query "SELECT name FROM image_models WHERE $MODELS ORDER BY err;"
expect "9: ORDER BY err without TRAINED ON: 400" 400 semantic_error
query "SELECT name FROM image_models WHERE $MODELS ORDER BY err TESTED ON \"te\";"
expect "9: TESTED ON without TRAINED ON: 400" 400 semantic_error
query "$(rank_q '("tr" CHANGE [0, 1] TO "tr2" [3, 500])' '"te"' '"Euclidean NN"')"
expect "9: a CHANGE target index past the target's size: 400" 400 semantic_error
check_contains "9: ... naming the index and the target" 'index 500 is past the 500 examples of "tr2"' "$(jf .error.message)"
query "$(rank_q '"tr"[5:5]' '"te"' '"Euclidean NN"')"
expect "9: an empty slice: 400" 400 semantic_error
query "$(rank_q '"tr"' '"te"' '"Euclidean NN"' 'BUDGET 1000')"
expect "9: BUDGET without CHUNK: 400" 400 semantic_error
query "$(rank_q '"tr"' '"te"' '"Euclidean NN"' 'CHUNK 100 BUDGET 3')"
expect "9: a budget below the minimum: 400" 400 semantic_error

# ---- 10. a failing job ---------------------------------------------------------------------------
section "case 10"
# "bad" was registered from a copy of the training images; cut that copy short now.
head -c 100000 "$TRI" >"$SCRATCH/bad-images.gz"
nfeat() { find "$DATA/features" -type f 2>/dev/null | wc -l; }
before=$(nfeat)
query "$(rank_q '"bad"' '"te"' '"Euclidean NN"')" 60
expect "10: a ranking whose data cannot be read: 200" 200
jcheck "10: status partial, nothing remaining" '.status == "partial" and .remaining_jobs == 0 and .jobs.failed > 0'
jcheck "10: a failure per model, naming the model and the error" \
  "([.failures[].model] | sort) == [\"t/hog\", \"t/pca-8\", \"t/raw\", \"t/rp-16\"] and ([.failures[].error | test(\"bad-images.gz: truncated\")] | all)"
jcheck "10: the failures are notices too" '[.notices[] | test("model t/raw, proxy Euclidean NN failed: .*truncated")] | any'
check_eq "10: no feature file (nor temporary file) is written for it" "$before" "$(nfeat)"

# ---- 11. NDJSON progress -------------------------------------------------------------------------
section "case 11"
jq -n --arg q "$(rank_q '"tr"[0:1000]' '"te2"' '"Euclidean NN"')" '{query: $q, stream: true}' >"$SCRATCH/body.json"
curl -sN --max-time 90 "${JSON[@]}" --data-binary "@$SCRATCH/body.json" "$BASE/v1/query" >"$SCRATCH/stream" 2>/dev/null
RESP=$(jq -sc . "$SCRATCH/stream" 2>/dev/null)
jcheck "11: the stream is progress lines, a result line, an end line" \
  '([.[].type] | join(" ") | test("^(progress )+result end$"))'
jcheck "11: progress counts the submitted jobs, jobs_done increases to them" \
  '[.[] | select(.type == "progress")] as $p | ($p[0].jobs_total == ([.[] | select(.type == "result") | .result.jobs.submitted][0])) and ([$p[].jobs_total] | unique | length) == 1 and ([$p[].jobs_done] == ([$p[].jobs_done] | sort)) and $p[-1].jobs_done == $p[-1].jobs_total'
jcheck "11: fraction in [0, 1], ending at 1" \
  '[.[] | select(.type == "progress") | .fraction] as $f | ([$f[] | . >= 0 and . <= 1] | all) and $f[-1] == 1'
jcheck "11: the result line holds the complete ranking" \
  "[.[] | select(.type == \"result\") | .result | .status == \"complete\" and (.rows | length) == $NMODELS] == [true]"

# ---- 12. SHOW JOBS, CANCEL JOB -------------------------------------------------------------------
section "case 12"
query "SELECT id FROM jobs;"; njobs=$(jf .row_count)
query "SHOW JOBS;"
expect "12: SHOW JOBS: 200" 200
jcheck "12: it lists every job with its kind and status" \
  "(.row_count == $njobs) and (.columns[0:3] == [\"id\", \"kind\", \"status\"]) and ([.rows[][1]] | unique) - [\"check\"] == [\"embed\", \"proxy\"]"
QBIG=$(rank_q '"big"' '"te"' '"Euclidean NN"' '')
query "$QBIG" 10
jcheck "12: a big ranking without WAIT leaves jobs queued" '.status == "running" and .remaining_jobs > 0'
query "SELECT id FROM jobs WHERE kind = 'proxy' AND status = 'queued' ORDER BY id DESC LIMIT 1;"
victim=$(jf '.rows[0][0] // empty')
query "CANCEL JOB ${victim:-0};"
expect "12: CANCEL JOB of a queued job: 200" 200
jcheck "12: ... it is cancelled" '.cancelled == true'
query "SELECT status FROM jobs WHERE id = ${victim:-0};"
check_eq "12: ... its status says so" "cancelled" "$(jf '.rows[0][0]')"
query "CANCEL JOB ${victim:-0};"
jcheck "12: cancelling it again cancels nothing" '.cancelled == false'
query "${QBIG%;} WAIT;" 90
jcheck "12: the query with WAIT re-submits it and completes" \
  ".status == \"complete\" and .jobs.submitted >= 1 and (.rows | length) == $NMODELS and .rankings[0].pending == 0"
query "SELECT status FROM jobs WHERE id = ${victim:-0};"
check_eq "12: the cancelled job ran again (same row)" "done" "$(jf '.rows[0][0]')"
# CANCEL QUERY: a ranking that submits work answers with its query_id.
QCQ=$(rank_q '"big"' '"te2"' '"Cosine NN"' '')
query "$QCQ" 10
qid=$(jf '.query_id // empty')
jcheck "12: a ranking that submits jobs names its query_id" '(.query_id | test("^[0-9a-f-]{36}$")) and .remaining_jobs > 0'
query "CANCEL QUERY '${qid:-none}';"
expect "12: CANCEL QUERY: 200" 200
jcheck "12: ... it cancels the query's unfinished jobs" '.cancelled_jobs > 0'
query "SELECT id FROM jobs WHERE status IN ('queued', 'running');"
check_eq "12: ... none of them is left queued or running" "0" "$(jf .row_count)"
query "CANCEL QUERY '${qid:-none}';"
jcheck "12: cancelling it again cancels nothing" '.cancelled_jobs == 0'
query "${QCQ%;} WAIT;" 90
jcheck "12: the query with WAIT submits them again and completes" \
  ".status == \"complete\" and (.rows | length) == $NMODELS"

# ---- 13. kill -9 of the worker while a job runs --------------------------------------------------
section "case 13"
# "k1" and "k2" are the same rows under two names (so two sets of jobs): "k1" undisturbed,
# "k2" with the worker killed while one of its jobs runs.
query "$(rank_q '"k1"' '"te"' '"Euclidean NN"')" 90
R13=$RESP
jcheck "13: the undisturbed run completes" ".status == \"complete\" and (.rows | length) == $NMODELS"
jq -n --arg q "$(rank_q '"k2"' '"te"' '"Euclidean NN"')" '{query: $q}' >"$SCRATCH/body13.json"
curl -s --max-time 60 "${JSON[@]}" --data-binary "@$SCRATCH/body13.json" "$BASE/v1/query" \
  >"$SCRATCH/resp13" 2>/dev/null &
CURL13=$!; BG+=("$CURL13")
running=
for _ in $(seq 1 100); do
  query "SELECT id FROM jobs WHERE status = 'running' ORDER BY id LIMIT 1;" 5
  running=$(jf '.rows[0][0] // empty')
  [ -n "$running" ] && break
  sleep 0.1
done
old=$(worker_pid)
if [ -n "$running" ] && [ -n "$old" ]; then
  kill -KILL "$old"
  ok "13: worker $old killed with -9 while job $running runs"
else
  not_ok "13: worker killed with -9 while a job runs"; echo "#   running job: '$running', worker: '$old'"
fi
new=
for _ in $(seq 1 150); do
  new=$(worker_pid); [ -n "$new" ] && [ "$new" != "$old" ] && break; new=; sleep 0.1
done
WPID=$new
check "13: rankqld restarts the worker" test -n "$new"
check_contains "13: rankqld logs the kill" "killed by signal 9" "$(cat "$SCRATCH/srv.err")"
t0=$(date +%s)
wait "$CURL13"
RESP=$(cat "$SCRATCH/resp13" 2>/dev/null)
jcheck "13: the WAIT query completes" ".status == \"complete\" and .remaining_jobs == 0 and (.rows | length) == $NMODELS"
echo "# kill -9 case: WAIT returned $(( $(date +%s) - t0 )) s after the restart"
check_eq "13: ... with the undisturbed run's rows" "$(printf '%s' "$R13" | jq -c .rows)" "$(jf .rows)"
# The job seen running may have finished just before the kill; whichever jobs the worker
# held were re-queued when their lease expired, and ran a second time.
query "SELECT id, status, attempts FROM jobs WHERE attempts > 1;"
jcheck "13: the killed worker's jobs ran again after their lease expired" \
  '(.rows | length) > 0 and ([.rows[] | .[1] == "done" and .[2] == 2] | all)'

# ---- 14. replay models: answers from recorded fine-tune runs -------------------------------------
section "case 14"
# tests/fixtures/replay-records.csv, by hand: on dmlab org/alpha ran twice (best 0.40; 100 +
# 50.5 s), org/beta once (0.55), org/gamma three times (best 0.35); org/delta ran only on
# eurosat. The rule (docs/runners.md "replay"): the best run's accuracy, the time of all runs.
REC=$SCRATCH/records.csv
cp "$RANKQL_ROOT/tests/fixtures/replay-records.csv" "$REC"; chmod 644 "$REC"
for m in alpha beta gamma delta; do
  query "REGISTER MODEL \"r/$m\" (runner, modality, spec) VALUES ('replay', 'image', {records: '$REC', model_identifier: 'org/$m'});"
  expect "14: replay model r/$m registers" 200
done
query "REGISTER DATASET \"r/dmlab\" (format, spec) VALUES ('replay', {records: '$REC', train_dataset_name: 'dmlab'});"
expect "14: a replay dataset registers" 200
query "SELECT size, num_classes FROM datasets WHERE name = 'r/dmlab';"
jcheck "14: ... with size and num_classes NULL" '.rows == [[null, null]]'
query "REGISTER MODEL \"r/x\" (runner, modality, spec) VALUES ('replay', 'image', {records: '$REC', model_identifier: 'org/nobody'});"
expect "14: a model_identifier the records lack: 422" 422 validation_error
jcheck "14: ... naming model_identifier" '.error.field == "model_identifier"'
query "REGISTER MODEL \"r/x\" (runner, modality, spec) VALUES ('replay', 'image', {records: '$SCRATCH/none.csv', model_identifier: 'org/alpha'});"
expect "14: a records file that does not exist: 422" 422 validation_error
jcheck "14: ... naming records" '.error.field == "records"'
printf 'model_identifier,train_dataset_name,elapsed_time\norg/alpha,dmlab,1\n' >"$SCRATCH/short.csv"
query "REGISTER DATASET \"r/x\" (format, spec) VALUES ('replay', {records: '$SCRATCH/short.csv', train_dataset_name: 'dmlab'});"
expect "14: a records file without test_accuracy: 422" 422 validation_error
jcheck "14: ... naming records and the column" '.error.field == "records" and (.error.message | test("test_accuracy"))'
query "REGISTER DATASET \"r/x\" (format, spec) VALUES ('replay', {records: '$REC', train_dataset_name: 'cifar100'});"
expect "14: a train_dataset_name the records lack: 422" 422 validation_error
jcheck "14: ... naming train_dataset_name" '.error.field == "train_dataset_name"'

RQ="RANK name FROM models WHERE name LIKE 'r/%' TRAINED ON \"r/dmlab\" TESTED ON TASK \"r/dmlab\" BY \"nn\" WAIT;"
query "$RQ" 60
R14=$RESP
expect "14: RANK … BY \"nn\" over replay models: 200" 200
jcheck "14: the models in order of recorded accuracy, err = 1 - best test_accuracy" \
  '[.rows[] | [.[1], (.[3] * 1e9 | round)]] == [["r/beta", 450000000], ["r/alpha", 600000000], ["r/gamma", 650000000]]'
jcheck "14: acc = the recorded accuracy" '[.rows[] | (.[4] - (1 - .[3])) | fabs < 1e-12] | all'
jcheck "14: no embed job, one proxy job per model" '.jobs.total == 4 and .jobs.submitted == 4 and .jobs.failed == 1'
jcheck "14: the model without a record on dmlab shows in failures" \
  '.failures == [{"model": "r/delta", "proxy": "nn", "error": "no recorded run of org/delta on dmlab"}] and .status == "partial"'
query "SELECT result.elapsed_seconds, result.runs FROM jobs WHERE kind = 'proxy' AND status = 'done' ORDER BY id DESC LIMIT 3;"
jcheck "14: the jobs' results carry the recorded cost and the number of runs" \
  '([.rows[] | [.[0], .[1]]] | sort) == [[80, 3], [150.5, 2], [200, 1]]'
query "$RQ" 60
jcheck "14: the same ranking again: the three answers come from the cache" \
  '.jobs.cached == 3 and ([.rows[][1]] == ["r/beta", "r/alpha", "r/gamma"]) and (.failures | length) == 1'
check_eq "14: ... with the same rows" "$(printf '%s' "$R14" | jq -c .rows)" "$(jf .rows)"
query "RANK name FROM models WHERE name IN ('r/alpha', 'r/beta', 'r/gamma') TRAINED ON \"r/dmlab\" TESTED ON TASK \"r/dmlab\" BY \"nn\" WAIT;" 60
jcheck "14: without the unrecorded model it is fully cached" \
  '.jobs.submitted == 0 and .jobs.cached == 3 and .status == "complete"'
query "SELECT name FROM models WHERE name LIKE 'r/%' ORDER BY err TRAINED ON \"r/dmlab\" TESTED ON TASK \"r/dmlab\" CLASSIFIED BY [\"linear\"] WAIT;" 60
jcheck "14: every proxy gets the recorded fine-tune accuracy" \
  "[.rows[] | [.[1], .[3]]] == $(printf '%s' "$R14" | jq -c '[.rows[] | [.[1], .[3]]]')"
query "SELECT name FROM models WHERE name LIKE 'r/%' OR name = 't/raw' ORDER BY err TRAINED ON \"r/dmlab\" TESTED ON TASK \"r/dmlab\" WAIT;" 60
jcheck "14: a builtin model on replay data is skipped with a notice" \
  '([.notices[] | test("1 model skipped: runner builtin cannot answer on replay datasets")] | any) and (.rows | length) == 3'
query "SELECT name FROM models WHERE name LIKE 'r/%' OR name = 't/raw' ORDER BY err TRAINED ON \"tr\" TESTED ON TASK \"te\" WAIT;" 60
jcheck "14: replay models on file data are skipped with a notice" \
  '([.notices[] | test("4 models skipped: runner replay")] | any) and [.rows[][1]] == ["t/raw"]'
query "SELECT name FROM models WHERE name LIKE 'r/%' ORDER BY err TRAINED ON \"r/dmlab\" TESTED ON TASK \"te\" WAIT;"
expect "14: a replay dataset mixed with a file dataset: 400" 400 semantic_error
query "SELECT name FROM models WHERE name LIKE 'r/%' ORDER BY err TRAINED ON \"r/dmlab\"[0:10] TESTED ON TASK \"r/dmlab\" WAIT;"
expect "14: a slice of a replay dataset: 400" 400 semantic_error

# The loader: a catalogue for every model and dataset of a records file, loaded with the shell.
"$RANKQL_ROOT/scripts/replay-catalog.sh" --prefix rc/ "$REC" >"$SCRATCH/replay.rql"; rc=$?
check_eq "14: scripts/replay-catalog.sh writes a catalogue (4 models, 2 datasets)" "0 6" \
  "$rc $(grep -c '^REGISTER' "$SCRATCH/replay.rql")"
out=$(timeout 60 "$SHELL_BIN" -H "127.0.0.1:$PORT" --on-error-stop -f "$SCRATCH/replay.rql" 2>&1); rc=$?
check_eq "14: ... which loads with the rankql shell" 0 "$rc"
[ "$rc" = 0 ] || printf '%s\n' "$out" | sed 's/^/#   /'
query "RANK name FROM models WHERE name LIKE 'rc/%' TRAINED ON \"rc/dmlab\" TESTED ON TASK \"rc/dmlab\" BY \"nn\" WAIT;" 60
jcheck "14: ... and ranks like the hand-registered models" \
  "[.rows[] | [.[1][7:], .[3]]] == $(printf '%s' "$R14" | jq -c '[.rows[] | [.[1][2:], .[3]]]') and [.failures[].model] == [\"rc/org/delta\"]"
query "RANK name FROM models WHERE name LIKE 'rc/%' TRAINED ON \"rc/eurosat\" TESTED ON TASK \"rc/eurosat\" BY \"nn\" WAIT;" 60
jcheck "14: ... on its other task too" \
  '[.rows[] | [.[1], (.[3] * 1e9 | round)]] == [["rc/org/beta", 100000000], ["rc/org/delta", 200000000]]'

# A changed records file changes the digest: the answers are computed again.
printf '9,109,org/alpha,HuggingFace,5,dmlab,25,{},0.7\n' >>"$REC"
query "$RQ" 60
jcheck "14: after the records file changed, its jobs run again with the new runs" \
  '.jobs.cached == 0 and [.rows[] | [.[1], (.[3] * 1e9 | round)]][0] == ["r/alpha", 300000000]'

# ---- 15. strategy plugins (docs/extensions.md) -----------------------------------------------
section "case 15"
strat_q() { printf 'RANK name FROM image_models WHERE %s TRAINED ON "tr" TESTED ON TASK "te" BY "%s" %s;' "$MODELS" "$1" "${2-WAIT}"; }
query "$(strat_q 'random(seed=1)')" 60
expect "15: RANK … BY \"random(seed=1)\" WAIT answers 200" 200
R15=$RESP
jcheck "15: every model once, rank 1..n, status complete" \
  "([.rows[][1]] | sort) == [\"t/hog\", \"t/pca-8\", \"t/raw\", \"t/rp-16\"] and [.rows[][0]] == [1, 2, 3, 4] and .status == \"complete\""
jcheck "15: one strategy job, submitted" '.jobs.total == 1 and .jobs.submitted == 1 and .rankings[0].kind == "builtin"'
query "$(strat_q 'random(seed=1)')" 60
jcheck "15: the second time it is cached, with the same rows" \
  ".jobs.cached == 1 and .jobs.submitted == 0 and .rows == $(printf '%s' "$R15" | jq -c .rows)"
query "$(strat_q 'random(seed=1)' 'LIMIT 2 WAIT')" 60
jcheck "15: LIMIT keeps the top of the strategy's order" ".rows == $(printf '%s' "$R15" | jq -c '.rows[:2]')"
query "SELECT id FROM jobs WHERE kind = 'strategy' AND status = 'done';"
jcheck "15: one strategy job is done" '.row_count == 1'
query "$(strat_q 'random(seed=2)')" 60
jcheck "15: another seed is another job" '.jobs.submitted == 1 and (.rows | length) == 4'
query "$(strat_q 'namelen')" 60
jcheck "15: a process plugin's ranking (by name length)" \
  '[.rows[][1]] == ["t/hog", "t/raw", "t/pca-8", "t/rp-16"] and [.rows[][3]] == [5, 5, 7, 7] and .rankings[0].kind == "process"'
query "$(strat_q 'namelen(reverse=true, scale=2)')" 60
jcheck "15: ... with parameters" '[.rows[][1]] == ["t/rp-16", "t/pca-8", "t/raw", "t/hog"] and .rows[0][3] == 14'
if [ -f "$EXT/test_plugin.so" ]; then
  query "$(strat_q 'testc(reverse=true)')" 60
  jcheck "15: a C plugin's ranking" '(.rows | length) == 4 and .rankings[0].kind == "so" and [.rows[][3]] == [0, 1, 2, 3]'
  query "$(strat_q 'testc(mode=crash)')" 60
  jcheck "15: a crashing C plugin fails its job, shown in failures" \
    '(.rows | length) == 0 and (.failures[0].error | test("crashed: killed by signal 11")) and .status == "partial"'
else
  not_ok "15: the test C plugin is built (make build/tests/extensions/test_plugin.so)"
fi
query "$(strat_q 'crash')" 60
jcheck "15: a crashing process plugin shows in failures" \
  '(.rows | length) == 0 and (.failures[0].error | test("strategy crash crashed: killed by signal 11"))'
query "$(strat_q 'slow')" 60
jcheck "15: a slow one is killed at its time limit" '(.failures[0].error | test("timed out after 2 s"))'
query "$(strat_q 'malformed')" 60
jcheck "15: malformed output fails the job" '(.failures[0].error | test("malformed output"))'
query "$(strat_q 'random(seed=1)' 'WAIT')" 60
jcheck "15: the worker still ranks after the failures" ".rows == $(printf '%s' "$R15" | jq -c .rows)"
query "$(strat_q 'random(sed=1)')"
expect "15: an unknown parameter: 400" 400 semantic_error
check_contains "15: ... naming it" 'unknown parameter "sed"' "$(jf .error.message)"
query "$(strat_q 'random(seed=-1)')"
expect "15: a parameter out of range: 400" 400 semantic_error
query "$(strat_q "namelen(scale='x')")"
expect "15: a parameter of the wrong type: 400" 400 semantic_error
query "$(strat_q 'nosuch')"
expect "15: an unknown strategy: 400" 400 semantic_error
query "SHOW EXTENSIONS;"
jcheck "15: SHOW EXTENSIONS lists the strategies with kind and parameters" \
  '([.rows[] | [.[0], .[2]]] | contains([["random", "builtin"], ["namelen", "process"], ["crash", "process"]])) and ([.rows[] | select(.[0] == "namelen") | .[3].scale.type] == ["float"]) and .columns[0:4] == ["name", "version", "kind", "parameters"]'
jcheck "15: ... and says why a plugin was skipped" '[.notices[] | test("badparams.json skipped")] | any'

# ---- 16. successive halving ------------------------------------------------------------------------
section "case 16"
# 4 models, η = 2: 2 rounds. AUTO picks the smallest chunk whose last round sees all of "tr".
QSH=$(rank_q '"tr"' '"te"' '"Euclidean NN"' 'CHUNK AUTO BUDGET AUTO WAIT')
query "$QSH" 120
jcheck "16: CHUNK AUTO BUDGET AUTO WAIT completes both rounds" \
  '.status == "complete" and .sh.rounds_done == 2 and (.sh.rounds | length) == 2 and .sh.rounds[1].train_rows == 2000'
jcheck "16: ranked by rounds survived, then err (2, 1, 0, 0)" \
  '([.rows[] | .[3]] == [2, 1, 0, 0]) and (.columns == ["rank", "name", "proxy", "rounds", "train_rows", "err", "acc"])'
RSH=$RESP
T0=$(jf '.sh.rounds[0].train_rows')
# Brute force: round 0 is a plain ranking on the first T0 rows (the models here need no fit, except
# pca, whose basis SH fits on all of "tr": compare the others), and its two best go on.
query "$(rank_q "\"tr\"[0:$T0]" '"te"' '"Euclidean NN"')" 120
PLAIN0=$RESP
ok0=true
for m in t/raw t/rp-16 t/hog; do
  r=$(printf '%s' "$RSH" | jq -r --arg m "$m" '.rows[] | select(.[1] == $m) | "\(.[3]) \(.[5])"')
  p=$(printf '%s' "$PLAIN0" | jq -r --arg m "$m" '.rows[] | select(.[1] == $m) | .[3]')
  if [ "${r%% *}" = 0 ] && ! feq "${r#* }" "$p"; then ok0=false; echo "#   $m: SH round-0 err ${r#* } vs plain $p"; fi
done
check "16: round-0 errs of the eliminated models equal a plain ranking on the first $T0 rows" $ok0
best2=$(printf '%s' "$PLAIN0" | jq -c '[.rows[] | select(.[1] != "t/pca-8")] | sort_by(.[3], .[1]) | .[0:2] | map(.[1])')
surv=$(printf '%s' "$RSH" | jq -c '[.rows[] | select(.[3] >= 1) | .[1]]')
# pca-8's round-0 features differ from a plain slice's (fit on all of "tr"), so only check when
# it did not survive.
if printf '%s' "$surv" | grep -q 't/pca-8'; then ok "16: (pca-8 survived round 0: survivor check skipped)"; else
  check_eq "16: the two survivors of round 0 are its two lowest errs" "$(printf '%s' "$best2" | jq -c 'sort')" "$(printf '%s' "$surv" | jq -c 'sort')"
fi
full=$(query "$(rank_q '"tr"' '"te"' '"Euclidean NN"')" 60; err_of "$(printf '%s' "$RSH" | jq -r '.rows[0][1]')" "Euclidean NN")
check "16: the winner's err is its err on the whole training set" feq "$(printf '%s' "$RSH" | jq -r '.rows[0][5]')" "$full"
query "$QSH" 60
jcheck "16: asked again, SH runs no job" '.status == "complete" and .jobs.submitted == 0'
check_eq "16: ... and ranks the same" "$(printf '%s' "$RSH" | jq -c .rows)" "$(jf .rows)"
# ETA 3 (4 models): L = ceil(log_3 4) = 2, S = 4, 2, keep 2, 1; CHUNK 100 BUDGET 40: r = 5, 10,
# prefixes 100·5 = 500 and 100·(5 + 15) = 2000 rows.
query "$(rank_q '"tr"' '"te"' '"Euclidean NN"' 'CHUNK 100 BUDGET 40 ETA 3 WAIT')" 120
jcheck "16: ETA 3 runs and reports eta 3 and its rounds (4 keep 2 on 500 rows, 2 keep 1 on 2000)" \
  '.status == "complete" and .sh.eta == 3 and .sh.rounds_done == 2 and ([.sh.rounds[] | [.models, .keep, .train_rows]] == [[4, 2, 500], [2, 1, 2000]]) and ([.rows[] | .[3]] == [2, 1, 0, 0])'
# ETA 4: one round (4^1 ≥ 4) of all 4 models on all of "tr" (AUTO: B = 4, C = 2000), keep 1: the
# plain ranking's order (err, then the catalogue order SH breaks ties with).
query "$(rank_q '"tr"' '"te"' '"Euclidean NN"' 'CHUNK AUTO BUDGET AUTO ETA 4 WAIT')" 120
jcheck "16: ETA 4: one round of 4 models on 2000 rows, keep 1" \
  '.status == "complete" and .sh.eta == 4 and ([.sh.rounds[] | [.models, .keep, .train_rows]] == [[4, 1, 2000]]) and ([.rows[] | .[3]] == [1, 0, 0, 0])'
W4=$(jf '.rows[0][5]')
query "$(rank_q '"tr"' '"te"' '"Euclidean NN"')" 60
check "16: ... its winner's err is the full ranking's lowest err" feq "$W4" "$(jf '[.rows[][3]] | min')"
# Two proxies: one SH per proxy, sharing the chunks' embed jobs. On "tr"[0:1600], CHUNK 100
# BUDGET AUTO (B = 8: r = 1, 2; prefixes 100 and 400 rows). NN alone first; then both: only
# logme's proxy jobs (4 + 2) and the round-1 chunk of its survivors that NN's did not have
# are new; then logme alone runs nothing and ranks as in the pair.
SHT='"tr"[0:1600]'
query "$(rank_q "$SHT" '"te"' '"Euclidean NN"' 'CHUNK 100 BUDGET AUTO WAIT')" 120
RNN=$RESP
E0=$(count_jobs embed)
query "$(rank_q "$SHT" '"te"' '"Euclidean NN", "logme"' 'CHUNK 100 BUDGET AUTO WAIT')" 120
RPAIR=$RESP
E1=$(count_jobs embed)
jcheck "16: two proxies with CHUNK: two SH rankings, both complete" \
  '.status == "complete" and ([.rankings[] | [.proxy, .rows, .rounds_done]] == [["Euclidean NN", 4, 2], ["logme", 4, 2]]) and ([.rows[] | .[0]] == [1, 2, 3, 4, 1, 2, 3, 4])'
pair_rows() { printf '%s' "$RPAIR" | jq -c --arg p "$1" '[.rows[] | select(.[2] == $p)]'; }
check_eq "16: ... the NN ranking equals NN's SH alone" "$(printf '%s' "$RNN" | jq -c .rows)" "$(pair_rows "Euclidean NN")"
extra=$(printf '%s' "$RPAIR" | jq '[.rows[] | select(.[3] >= 1)] | (map(select(.[2] == "logme") | .[1]) - map(select(.[2] == "Euclidean NN") | .[1])) | length')
check_eq "16: ... new embed jobs: only logme's round-1 survivors outside NN's ($extra)" "$extra" "$((E1 - E0))"
check_eq "16: ... jobs submitted: logme's 6 proxy jobs + those embeds" "$((6 + extra))" "$(printf '%s' "$RPAIR" | jq .jobs.submitted)"
query "$(rank_q "$SHT" '"te"' '"logme"' 'CHUNK 100 BUDGET AUTO WAIT')" 120
jcheck "16: logme's SH alone then runs no job" '.status == "complete" and .jobs.submitted == 0'
check_eq "16: ... and ranks as in the pair" "$(jf .rows)" "$(pair_rows logme)"
query "$(rank_q '"tr"' '"te"' '"Euclidean NN"' 'ETA 3 WAIT')"
expect "16: ETA without CHUNK: 400" 400 semantic_error
query "$(rank_q '"tr"' '"te"' '"Euclidean NN"' 'CHUNK 100 ETA 65')"
expect "16: ETA above 64: 400" 400 semantic_error
query "$(rank_q '"tr"' '"te"' '"Euclidean NN"' 'CHUNK 100 ETA 1')"
expect "16: ETA 1: 400 syntax error" 400 syntax_error
check_contains "16: ... at its position" 'ETA must be an integer of at least 2, not 1' "$(jf .error.message)"
# The embed jobs above had different sizes (chunks of 100 to 1500 rows, whole slices): the
# cost model now knows each model's fixed seconds per job (least-squares intercept).
query "EXPLAIN JSON $(rank_q '"tr"' '"te"' '"Euclidean NN"' 'CHUNK AUTO')"
jcheck "16: EXPLAIN: every model's job_seconds is measured (an intercept ≥ 0)" \
  '[.plan.model_rates[] | .job_seconds_measured and .job_seconds >= 0 and .source == "measured"] | (length == 4 and all)'
echo "# 16: measured rates: $(jf '[.plan.model_rates[] | "\(.model) a=\(.job_seconds) s/row=\(.seconds_per_row)"] | join(", ")')"
echo "# 16: plan choice: $(jf '.plan.plan_choice')"
query "$(rank_q '"tr2"' '"te"' '"Euclidean NN"' 'CHUNK 50 BUDGET AUTO')" 20
jcheck "16: without WAIT it submits round 0 and says so" '.status == "running" and .sh.rounds_done == 0 and .remaining_jobs > 0'

# ---- shutdown ------------------------------------------------------------------------------------
section shutdown
if stop_rankqld "$SRV"; then ok "rankqld stops cleanly"; else not_ok "rankqld stops cleanly"; fi
SRV=
check "the worker stopped with rankqld" bash -c "! kill -0 ${WPID:-0} 2>/dev/null"
section end
finish
