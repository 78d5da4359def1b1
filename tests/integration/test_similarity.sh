#!/usr/bin/env bash
# Dataset similarity and cost estimates end to end (docs/language.md "Dataset similarity",
# "Cost estimates"): rankqld on its embedded PostgreSQL with its local worker, the builtin
# raw-pixel probe, three small datasets — two slices of Fashion-MNIST train ("fa", "fb") and
# the same images inverted ("inv", 255 − pixel: another distribution) — and a third slice
# ("fc") added while the worker is paused, so its entries are null while its jobs wait.
# The distances are checked against an independent computation in Python from the image
# files. Then EXPLAIN of a ranking shows the cost estimates, EXPLAIN ANALYZE the actual
# seconds, and CHUNK AUTO the planner's choice between successive halving and a full
# ranking.
#
# The local worker is started through a wrapper that waits while $SCRATCH/pause exists, so
# the test can stop work (kill the worker; rankqld restarts the wrapper, which waits).
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

RANKQLD=${RANKQLD:-$RANKQL_BIN/rankqld}
WORKER=${RANKQL_WORKER_BIN:-$RANKQL_BIN/rankql-worker}
rq_need_tools curl jq python3
rq_need_execs "$RANKQLD" "$WORKER" "$(rq_pg_bindir)/initdb"
rq_fashion_mnist train
rq_scratch
# shellcheck disable=SC2317  # run by the EXIT trap (rq_cleanup): a paused wrapper goes on
rq_on_exit() { rm -f "$SCRATCH/pause"; }

# ---- data: two slices of Fashion-MNIST, the inverted images, and the reference distances --
python3 - "$TRI" "$TRL" "$SCRATCH" <<'EOF' || { not_ok "setup: the inverted dataset is written"; finish; }
import gzip, struct, sys, math
tri, trl, out = sys.argv[1:4]
img = gzip.open(tri).read()
lab = gzip.open(trl).read()
n, rows, cols = struct.unpack(">III", img[4:16])
d = rows * cols
def pixels(i): return img[16 + i * d:16 + (i + 1) * d]
N = 600
# "inv": images 0..599 inverted, in IDX files of their own.
with gzip.open(f"{out}/inv-images.gz", "wb") as f:
    f.write(struct.pack(">IIII", 0x803, N, rows, cols))
    f.write(bytes(255 - b for i in range(N) for b in pixels(i)))
with gzip.open(f"{out}/inv-labels.gz", "wb") as f:
    f.write(struct.pack(">II", 0x801, N) + lab[8:8 + N])
# The probe is the raw extractor (pixels / 255): mean and population variance per pixel.
def gauss(idx, invert=False):
    s = [0.0] * d; q = [0.0] * d
    for i in idx:
        for j, b in enumerate(pixels(i)):
            x = ((255 - b) if invert else b) / 255.0
            s[j] += x; q[j] += x * x
    m = [v / len(idx) for v in s]
    var = [max(q[j] / len(idx) - m[j] * m[j], 0.0) for j in range(d)]
    return m, var
def w2(a, b):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a[0], b[0])) +
                     sum((math.sqrt(x) - math.sqrt(y)) ** 2 for x, y in zip(a[1], b[1])))
fa, fb, inv = gauss(range(0, N)), gauss(range(1000, 1000 + N)), gauss(range(0, N), True)
with open(f"{out}/ref", "w") as f:
    f.write(f"{w2(fa, fb):.10f} {w2(fa, inv):.10f} {w2(fb, inv):.10f}\n")
EOF
chmod 644 "$SCRATCH"/*.gz
read -r REF_AB REF_AI REF_BI <"$SCRATCH/ref"

# ---- rankqld, its worker behind the pause wrapper -----------------------------------------
rq_worker_wrapper "$(printf 'while [ -e %q ]; do sleep 0.2; done' "$SCRATCH/pause")"
RANKQL_WORKER=$SCRATCH/worker rq_serve "rankqld starts" --data-dir "$DATA" --pg-no-sync --workers 2
RQ_SESSION=$(curl -s -X POST "$RQ_BASE/v1/sessions" | jq -r .session)

rq_query "$(rq_builtin_model s/raw raw)
$(rq_builtin_model s/rp-16 rp-16)
$(rq_builtin_model s/pca-8 pca-8)
$(rq_idx_dataset fa "$TRI" "$TRL" 0 600)
$(rq_idx_dataset fb "$TRI" "$TRL" 1000 1600)
$(rq_idx_dataset fc "$TRI" "$TRL" 2000 2600)
$(rq_idx_dataset inv "$SCRATCH/inv-images.gz" "$SCRATCH/inv-labels.gz" 0 600)
DECLARE three AS SELECT * FROM datasets WHERE name IN ('fa', 'fb', 'inv') ORDER BY name;
DECLARE probe_m AS SELECT * FROM models WHERE name = 's/raw';" 60
rq_expect "the catalog and the variables are made" 200

# ---- 1. the matrix, with WAIT -------------------------------------------------------------
Q1='SELECT vec FROM three WHERE probe = probe_m WAIT;'
rq_query "$Q1" 90
rq_expect "1: SELECT vec … WAIT answers 200" 200
R1=$RQ_RESP
rq_jcheck "1: complete, nothing remaining; 3 embed + 3 similarity jobs ran" \
  '.status == "complete" and .remaining_jobs == 0 and .jobs.total == 6 and .jobs.submitted == 6'
rq_jcheck "1: rows and columns are named by the datasets, in the variable's order" \
  '.columns == ["dataset", "fa", "fb", "inv"] and [.rows[][0]] == ["fa", "fb", "inv"]'
rq_jcheck "1: symmetric with a 0 diagonal" \
  '([.rows as $r | range(3) as $i | range(3) as $j | $r[$i][$j + 1] == $r[$j][$i + 1]] | all) and
   ([range(3) as $i | .rows[$i][$i + 1] == 0] | all)'
rq_jcheck "1: the two Fashion-MNIST slices are closer than either is to the inverted images" \
  '.rows[0][2] < .rows[0][3] and .rows[0][2] < .rows[1][3] and .rows[0][2] > 0'
close() { awk -v a="$1" -v b="$2" 'BEGIN { d = (a - b) / b; exit !(a != "" && d < 1e-4 && d > -1e-4) }'; }
for pair in "fa fb 2 $REF_AB" "fa inv 3 $REF_AI" "fb inv 3 $REF_BI"; do
  set -- $pair
  row=$([ "$1" = fa ] && echo 0 || echo 1)
  got=$(rq_jf ".rows[$row][$3]")
  if close "$got" "$4"; then ok "1: W2($1, $2) = $got equals the Python reference"; else
    not_ok "1: W2($1, $2) equals the Python reference"; printf '#   expected %s, got %s\n' "$4" "$got"; fi
done
rq_jcheck "1: the result names probe, method and distance" \
  '.similarity.probe == "s/raw" and .similarity.method == "gaussian_diag" and .similarity.distance == "wasserstein2" and .similarity.known == [true, true, true]'

# ---- 2. the caches -------------------------------------------------------------------------
rq_query "$Q1" 30
rq_jcheck "2: a repeat runs no job" '.jobs.submitted == 0 and .jobs.cached == 6 and .status == "complete"'
check_eq "2: ... and gives the same matrix" "$(printf '%s' "$R1" | jq -c .rows)" "$(rq_jf .rows)"
rq_query "SELECT vec FROM datasets WHERE probe = 's/raw' AND name IN ('inv', 'fa');" 30
rq_jcheck "2: FROM datasets with a name filter and the probe by name: from the cache" \
  '.jobs.submitted == 0 and .columns == ["dataset", "fa", "inv"] and .status == "complete"'
rq_query "SELECT id FROM jobs WHERE kind = 'similarity';" 10
check_eq "2: one similarity job per dataset" 3 "$(rq_jf .row_count)"
check_eq "2: one stored vector (2 × 784 reals) per dataset" "3 1568" \
  "$(rq_sql "SELECT count(*), min(cardinality(vec)) FROM dataset_similarity" | tr '|' ' ')"

# ---- 3. without WAIT: a new dataset's entries are null while its jobs wait ----------------
touch "$SCRATCH/pause"
for w in $(pgrep -P "$RQ_PID" -x rankql-worker); do kill -TERM "$w"; done
for _ in $(seq 1 100); do [ -z "$(pgrep -P "$RQ_PID" -x rankql-worker)" ] && break; sleep 0.1; done
check "3: the worker is paused" test -z "$(pgrep -P "$RQ_PID" -x rankql-worker)"
Q3="SELECT vec FROM datasets WHERE probe = probe_m AND name IN ('fa', 'fb', 'fc', 'inv') ORDER BY name;"
rq_query "$Q3" 20
rq_expect "3: without WAIT it answers 200 at once" 200
rq_jcheck "3: status running, 2 jobs remaining (fc's embed and similarity)" \
  '.status == "running" and .remaining_jobs == 2 and .jobs.submitted == 2 and .jobs.cached == 6'
rq_jcheck "3: fc's row and column are null, the others known and in place" \
  '.columns == ["dataset", "fa", "fb", "fc", "inv"] and
   ([.rows[2][1:][] == null] | all) and ([.rows[][3] == null] | all) and
   ([.rows[0,1,3][1,2,4]] | all(. != null)) and .similarity.known == [true, true, false, true]'
rq_jcheck "3: the known entries equal the complete matrix's" \
  "[.rows[0][2], .rows[0][4], .rows[1][4]] == [$(printf '%s' "$R1" | jq -c '[.rows[0][2], .rows[0][3], .rows[1][3]] | map(tostring) | join(",")' | tr -d '"')]"
rm -f "$SCRATCH/pause"
rq_query "${Q3%;} WAIT;" 90
rq_jcheck "3: with WAIT the matrix completes (fc close to fa and fb, far from inv)" \
  '.status == "complete" and ([.rows[][1:][]] | all(. != null)) and .rows[2][1] < .rows[2][4] and .rows[2][2] < .rows[2][4]'

# ---- 4. errors -----------------------------------------------------------------------------
rq_query "SELECT vec FROM three WHERE probe = 's/pca-8';" 10
rq_expect "4: a probe fitted per query (PCA) is refused" 400 semantic_error
rq_query "SELECT vec FROM three WHERE probe = nosuch;" 10
rq_expect "4: an unknown probe is 404" 404 not_found
rq_query "SELECT vec FROM models WHERE probe = probe_m;" 10
rq_expect "4: FROM models is refused" 400 semantic_error
rq_query "SELECT vec FROM three WHERE probe = probe_m OR name = 'fa';" 10
rq_expect "4: probe under OR is refused" 400 semantic_error

# ---- 5. cost estimates -------------------------------------------------------------------
check_eq "5: finished embed jobs measured the probe (model_costs: cpu, 4 jobs, 2400 rows)" \
  "s/raw cpu 4 2400 1" \
  "$(rq_sql "SELECT m.name, c.device, c.jobs, c.rows, (c.seconds_per_row >= 0)::int FROM model_costs c JOIN models m ON m.id = c.model_id" | tr '|' ' ')"
rq_query "EXPLAIN SELECT vec FROM datasets WHERE probe = probe_m;" 10
rq_jcheck "5: EXPLAIN of SELECT vec: cached jobs, the measured rate" \
  '(.rows[0][0] | startswith("Similarity: 4 × 4")) and (.rows | map(.[0]) | any(test("Embed jobs: 4 \\(4 cached, 0 to run\\).*measured rate")))'
RQ='SELECT name FROM models WHERE name IN ('"'"'s/raw'"'"', '"'"'s/rp-16'"'"') ORDER BY err TRAINED ON "fa" TESTED ON "fb" CLASSIFIED BY ["Euclidean NN"]'
rq_query "EXPLAIN JSON $RQ;" 10
rq_jcheck "5: EXPLAIN of a ranking estimates every node; the cached embeddings cost 0" \
  '(.plan.estimated_seconds > 0) and (.plan.children[0].node == "Proxy jobs") and
   (.plan.children[0].estimated_seconds > 0) and (.plan.children[0].children[0].node == "Embed jobs") and
   (.plan.children[0].children[0].detail | test("^4 \\(2 cached, 2 to run\\)"))'
rq_query "EXPLAIN ANALYZE $RQ WAIT;" 60
rq_jcheck "5: EXPLAIN ANALYZE shows estimated and actual seconds" \
  '(.rows | map(.[0]) | any(test("^Estimated: .* s"))) and (.rows | map(.[0]) | any(test("^Actual: .*embed .* s.*proxy .* s")))'
rq_query "EXPLAIN $RQ CHUNK AUTO;" 10
rq_jcheck "5: CHUNK AUTO: the planner weighs SH against a full ranking and shows both" \
  '(.rows | map(.[0]) | any(test("^Plan choice: (successive halving|full ranking) \\(est\\. .* s\\) over (successive halving|full ranking) \\(est\\. .* s\\)")))'
rq_jcheck "5: ... on 2 models and 600 rows the full ranking wins" \
  '(.rows | map(.[0]) | any(startswith("Plan choice: full ranking")))'
rq_query "$RQ CHUNK AUTO WAIT;" 60
rq_jcheck "5: CHUNK AUTO runs the chosen full ranking (no rounds column) and says why" \
  '.status == "complete" and (.columns | index("rounds") == null) and (.notices | any(test("CHUNK AUTO: full ranking")))'

rq_stop; rc=$?
check_eq "rankqld stops cleanly" 0 "$rc"
finish
