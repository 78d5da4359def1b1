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
FM=${RANKQL_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
TRI=$FM/train-images-idx3-ubyte.gz TRL=$FM/train-labels-idx1-ubyte.gz
PGBIN=${RANKQL_PG_BINDIR:-$(pg_config --bindir 2>/dev/null)}
[ -x "$PGBIN/initdb" ] || PGBIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)
for tool in curl jq python3; do
  command -v "$tool" >/dev/null || { not_ok "setup: $tool is needed"; finish; }
done
for f in "$RANKQLD" "$WORKER" "$PGBIN/initdb"; do
  [ -x "$f" ] || { not_ok "setup: need $f (make build-all; PostgreSQL's initdb)"; finish; }
done
for f in "$TRI" "$TRL"; do
  [ -r "$f" ] || { not_ok "setup: need $f (apt-get install dataset-fashion-mnist)"; finish; }
done

SCRATCH=$(make_scratch)
DATA=$SCRATCH/data
SRV=
export PGCONNECT_TIMEOUT=5
# shellcheck disable=SC2317  # run by the EXIT trap
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  [ "$BASHPID" = "$$" ] || return 0
  rm -f "$SCRATCH/pause"
  if [ -n "$SRV" ]; then
    kill -TERM "$SRV" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$SRV" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SRV" 2>/dev/null
  fi
  [ -f "$DATA/pg/postmaster.pid" ] &&
    as_pg "$PGBIN/pg_ctl" -D "$DATA/pg" -m immediate -w -t 20 stop >/dev/null 2>&1
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

JSON=(-H 'Content-Type: application/json')
# query TEXT [MAX-SECONDS]: POST /v1/query in the test's session; sets STATUS and RESP.
query() {
  jq -n --arg q "$1" --arg s "$SESSION" '{query: $q, session: $s}' >"$SCRATCH/body.json"
  STATUS=$(curl -s -o "$SCRATCH/resp" -w '%{http_code}' --max-time "${2:-60}" "${JSON[@]}" \
    --data-binary "@$SCRATCH/body.json" "$BASE/v1/query" 2>/dev/null) || true
  [ -n "$STATUS" ] || STATUS=000
  RESP=$(cat "$SCRATCH/resp" 2>/dev/null)
}
# sql TEXT: psql on the embedded cluster (for the tables the language does not show).
sql() { as_pg psql -X -Atq "host=$DATA/pg-socket port=5432 user=rankql dbname=rankql" -c "$1" 2>&1; }
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
PORT=$(free_port); BASE=http://127.0.0.1:$PORT
printf '#!/bin/sh\nwhile [ -e %q ]; do sleep 0.2; done\nexec %q "$@" --lease 6\n' \
  "$SCRATCH/pause" "$WORKER" >"$SCRATCH/worker"
chmod 755 "$SCRATCH/worker"
RANKQL_WORKER=$SCRATCH/worker "$RANKQLD" --data-dir "$DATA" --pg-no-sync --workers 2 \
  --listen "127.0.0.1:$PORT" 2>"$SCRATCH/srv.err" &
SRV=$!
started=0
for _ in $(seq 1 600); do
  grep -qs '^rankqld: listening on ' "$SCRATCH/srv.err" && { started=1; break; }
  kill -0 "$SRV" 2>/dev/null || break
  sleep 0.1
done
if [ "$started" = 1 ]; then ok "rankqld starts"; else
  not_ok "rankqld starts"; sed 's/^/#   /' "$SCRATCH/srv.err"; finish; fi
SESSION=$(curl -s -X POST "$BASE/v1/sessions" | jq -r .session)

idx() { printf "('idx', 'image', '%s', {labels: '%s'}, {start: %d, stop: %d})" "$1" "$2" "$3" "$4"; }
query "REGISTER MODEL \"s/raw\" (runner, modality, source, spec, image_size, dimension, batch_size)
  VALUES ('builtin', 'image', 'builtin', {extractor: \"raw\"}, 28, 784, 1024);
REGISTER MODEL \"s/rp-16\" (runner, modality, source, spec, image_size, dimension, batch_size)
  VALUES ('builtin', 'image', 'builtin', {extractor: \"random_projection\", k: 16, seed: 1}, 28, 16, 1024);
REGISTER MODEL \"s/pca-8\" (runner, modality, source, spec, image_size, dimension, batch_size)
  VALUES ('builtin', 'image', 'builtin', {extractor: \"pca\", k: 8}, 28, 8, 1024);
REGISTER DATASET \"fa\" (format, modality, location, spec, slice) VALUES $(idx "$TRI" "$TRL" 0 600);
REGISTER DATASET \"fb\" (format, modality, location, spec, slice) VALUES $(idx "$TRI" "$TRL" 1000 1600);
REGISTER DATASET \"fc\" (format, modality, location, spec, slice) VALUES $(idx "$TRI" "$TRL" 2000 2600);
REGISTER DATASET \"inv\" (format, modality, location, spec, slice)
  VALUES $(idx "$SCRATCH/inv-images.gz" "$SCRATCH/inv-labels.gz" 0 600);
DECLARE three AS SELECT * FROM datasets WHERE name IN ('fa', 'fb', 'inv') ORDER BY name;
DECLARE probe_m AS SELECT * FROM models WHERE name = 's/raw';" 60
expect "the catalog and the variables are made" 200

# ---- 1. the matrix, with WAIT -------------------------------------------------------------
Q1='SELECT vec FROM three WHERE probe = probe_m WAIT;'
query "$Q1" 90
expect "1: SELECT vec … WAIT answers 200" 200
R1=$RESP
jcheck "1: complete, nothing remaining; 3 embed + 3 similarity jobs ran" \
  '.status == "complete" and .remaining_jobs == 0 and .jobs.total == 6 and .jobs.submitted == 6'
jcheck "1: rows and columns are named by the datasets, in the variable's order" \
  '.columns == ["dataset", "fa", "fb", "inv"] and [.rows[][0]] == ["fa", "fb", "inv"]'
jcheck "1: symmetric with a 0 diagonal" \
  '([.rows as $r | range(3) as $i | range(3) as $j | $r[$i][$j + 1] == $r[$j][$i + 1]] | all) and
   ([range(3) as $i | .rows[$i][$i + 1] == 0] | all)'
jcheck "1: the two Fashion-MNIST slices are closer than either is to the inverted images" \
  '.rows[0][2] < .rows[0][3] and .rows[0][2] < .rows[1][3] and .rows[0][2] > 0'
close() { awk -v a="$1" -v b="$2" 'BEGIN { d = (a - b) / b; exit !(a != "" && d < 1e-4 && d > -1e-4) }'; }
for pair in "fa fb 2 $REF_AB" "fa inv 3 $REF_AI" "fb inv 3 $REF_BI"; do
  set -- $pair
  row=$([ "$1" = fa ] && echo 0 || echo 1)
  got=$(jf ".rows[$row][$3]")
  if close "$got" "$4"; then ok "1: W2($1, $2) = $got equals the Python reference"; else
    not_ok "1: W2($1, $2) equals the Python reference"; printf '#   expected %s, got %s\n' "$4" "$got"; fi
done
jcheck "1: the result names probe, method and distance" \
  '.similarity.probe == "s/raw" and .similarity.method == "gaussian_diag" and .similarity.distance == "wasserstein2" and .similarity.known == [true, true, true]'

# ---- 2. the caches -------------------------------------------------------------------------
query "$Q1" 30
jcheck "2: a repeat runs no job" '.jobs.submitted == 0 and .jobs.cached == 6 and .status == "complete"'
check_eq "2: ... and gives the same matrix" "$(printf '%s' "$R1" | jq -c .rows)" "$(jf .rows)"
query "SELECT vec FROM datasets WHERE probe = 's/raw' AND name IN ('inv', 'fa');" 30
jcheck "2: FROM datasets with a name filter and the probe by name: from the cache" \
  '.jobs.submitted == 0 and .columns == ["dataset", "fa", "inv"] and .status == "complete"'
query "SELECT id FROM jobs WHERE kind = 'similarity';" 10
check_eq "2: one similarity job per dataset" 3 "$(jf .row_count)"
check_eq "2: one stored vector (2 × 784 reals) per dataset" "3 1568" \
  "$(sql "SELECT count(*), min(cardinality(vec)) FROM dataset_similarity" | tr '|' ' ')"

# ---- 3. without WAIT: a new dataset's entries are null while its jobs wait ----------------
touch "$SCRATCH/pause"
for w in $(pgrep -P "$SRV" -x rankql-worker); do kill -TERM "$w"; done
for _ in $(seq 1 100); do [ -z "$(pgrep -P "$SRV" -x rankql-worker)" ] && break; sleep 0.1; done
check "3: the worker is paused" test -z "$(pgrep -P "$SRV" -x rankql-worker)"
Q3="SELECT vec FROM datasets WHERE probe = probe_m AND name IN ('fa', 'fb', 'fc', 'inv') ORDER BY name;"
query "$Q3" 20
expect "3: without WAIT it answers 200 at once" 200
jcheck "3: status running, 2 jobs remaining (fc's embed and similarity)" \
  '.status == "running" and .remaining_jobs == 2 and .jobs.submitted == 2 and .jobs.cached == 6'
jcheck "3: fc's row and column are null, the others known and in place" \
  '.columns == ["dataset", "fa", "fb", "fc", "inv"] and
   ([.rows[2][1:][] == null] | all) and ([.rows[][3] == null] | all) and
   ([.rows[0,1,3][1,2,4]] | all(. != null)) and .similarity.known == [true, true, false, true]'
jcheck "3: the known entries equal the complete matrix's" \
  "[.rows[0][2], .rows[0][4], .rows[1][4]] == [$(printf '%s' "$R1" | jq -c '[.rows[0][2], .rows[0][3], .rows[1][3]] | map(tostring) | join(",")' | tr -d '"')]"
rm -f "$SCRATCH/pause"
query "${Q3%;} WAIT;" 90
jcheck "3: with WAIT the matrix completes (fc close to fa and fb, far from inv)" \
  '.status == "complete" and ([.rows[][1:][]] | all(. != null)) and .rows[2][1] < .rows[2][4] and .rows[2][2] < .rows[2][4]'

# ---- 4. errors -----------------------------------------------------------------------------
query "SELECT vec FROM three WHERE probe = 's/pca-8';" 10
expect "4: a probe fitted per query (PCA) is refused" 400 semantic_error
query "SELECT vec FROM three WHERE probe = nosuch;" 10
expect "4: an unknown probe is 404" 404 not_found
query "SELECT vec FROM models WHERE probe = probe_m;" 10
expect "4: FROM models is refused" 400 semantic_error
query "SELECT vec FROM three WHERE probe = probe_m OR name = 'fa';" 10
expect "4: probe under OR is refused" 400 semantic_error

# ---- 5. cost estimates -------------------------------------------------------------------
check_eq "5: finished embed jobs measured the probe (model_costs: cpu, 4 jobs, 2400 rows)" \
  "s/raw cpu 4 2400 1" \
  "$(sql "SELECT m.name, c.device, c.jobs, c.rows, (c.seconds_per_row >= 0)::int FROM model_costs c JOIN models m ON m.id = c.model_id" | tr '|' ' ')"
query "EXPLAIN SELECT vec FROM datasets WHERE probe = probe_m;" 10
jcheck "5: EXPLAIN of SELECT vec: cached jobs, the measured rate" \
  '(.rows[0][0] | startswith("Similarity: 4 × 4")) and (.rows | map(.[0]) | any(test("Embed jobs: 4 \\(4 cached, 0 to run\\).*measured rate")))'
RQ='SELECT name FROM models WHERE name IN ('"'"'s/raw'"'"', '"'"'s/rp-16'"'"') ORDER BY err TRAINED ON "fa" TESTED ON "fb" CLASSIFIED BY ["Euclidean NN"]'
query "EXPLAIN JSON $RQ;" 10
jcheck "5: EXPLAIN of a ranking estimates every node; the cached embeddings cost 0" \
  '(.plan.estimated_seconds > 0) and (.plan.children[0].node == "Proxy jobs") and
   (.plan.children[0].estimated_seconds > 0) and (.plan.children[0].children[0].node == "Embed jobs") and
   (.plan.children[0].children[0].detail | test("^4 \\(2 cached, 2 to run\\)"))'
query "EXPLAIN ANALYZE $RQ WAIT;" 60
jcheck "5: EXPLAIN ANALYZE shows estimated and actual seconds" \
  '(.rows | map(.[0]) | any(test("^Estimated: .* s"))) and (.rows | map(.[0]) | any(test("^Actual: .*embed .* s.*proxy .* s")))'
query "EXPLAIN $RQ CHUNK AUTO;" 10
jcheck "5: CHUNK AUTO: the planner weighs SH against a full ranking and shows both" \
  '(.rows | map(.[0]) | any(test("^Plan choice: (successive halving|full ranking) \\(est\\. .* s\\) over (successive halving|full ranking) \\(est\\. .* s\\)")))'
jcheck "5: ... on 2 models and 600 rows the full ranking wins" \
  '(.rows | map(.[0]) | any(startswith("Plan choice: full ranking")))'
query "$RQ CHUNK AUTO WAIT;" 60
jcheck "5: CHUNK AUTO runs the chosen full ranking (no rounds column) and says why" \
  '.status == "complete" and (.columns | index("rounds") == null) and (.notices | any(test("CHUNK AUTO: full ranking")))'

stop_rankqld "$SRV"; rc=$?; SRV=
check_eq "rankqld stops cleanly" 0 "$rc"
finish
