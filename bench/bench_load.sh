#!/usr/bin/env bash
# bench_load: a bounded loopback load test of rankqld (issue 7 item 7). wrk with 64 connections
# POSTs /v1/query (bench/load_mix.lua) for 30 s per round:
#   1. baseline: catalog queries only (SELECT … FROM models WHERE …, three shapes);
#   2. mixed: half of the requests a cached task-aware ranking (4 builtin models × 2 proxies on
#      Fashion-MNIST slices, computed once before the rounds, so every answer comes from
#      proxy_results without a job), half catalog queries;
#   3. mixed again (BENCH_LOAD_MIXED_ROUNDS - 1 times), to see whether rankqld's memory keeps
#      growing.
# Prints requests/s, p50/p99 latency, errors (non-2xx answers and socket errors: connect, read,
# write, timeout) and rankqld's RSS (VmRSS of /proc/PID/status) after each round, with the mixed
# rounds as ratios of the baseline. Exits 1 when any answer was not 2xx or a socket error
# happened (the load must cost no error); memory is reported, not judged.
#
#   bench/bench_load.sh                 (bench/run-bench.sh runs it)
#   BENCH_LOAD_SECONDS=30 BENCH_LOAD_CONNECTIONS=64 BENCH_LOAD_RANK_PERCENT=50
#   BENCH_LOAD_MIXED_ROUNDS=2 (mixed rounds after the baseline)
#   RANKQLD=build/bin/rankqld
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
RANKQLD=${RANKQLD:-$ROOT/build/bin/rankqld}
SECS=${BENCH_LOAD_SECONDS:-30}
CONNS=${BENCH_LOAD_CONNECTIONS:-64}
PCT=${BENCH_LOAD_RANK_PERCENT:-50}
NCPU=$(nproc 2>/dev/null || echo 2)
THREADS=$(( NCPU < CONNS ? NCPU : CONNS ))
FM=${RANKQL_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}

for tool in wrk curl jq; do
  command -v "$tool" >/dev/null || { echo "bench_load: $tool is needed (scripts/install-deps.sh)" >&2; exit 1; }
done
[ -x "$RANKQLD" ] || { echo "bench_load: no $RANKQLD (run make build-all)" >&2; exit 1; }
if [ ! -r "$FM/train-images-idx3-ubyte.gz" ] || [ ! -r "$FM/t10k-images-idx3-ubyte.gz" ]; then
  echo "bench_load: skipped: dataset-fashion-mnist not installed ($FM)"
  exit 0
fi

bench_scratch load

# One local worker slot: it only computes the ranking once, before the rounds.
bench_start bench_load --workers 1

post() { curl -s --max-time "${3:-60}" -X POST -H 'Content-Type: application/json' --data-binary "$1" "$BASE$2"; }
body() { jq -cn --arg q "$1" --arg s "${2:-@SESSION@}" '{query: $q, session: $s}'; }

# The catalog: 200 models over 4 sources (as bench_http), 4 builtin extractors and two slices.
stmts=""
for i in $(seq 1 200); do
  src=$(( i % 4 )); case $src in 0) src=bench ;; 1) src=TensorFlow ;; 2) src=torchvision ;; 3) src=other ;; esac
  stmts+="REGISTER MODEL \"m$i\" (modality, runner, spec, source, num_params, dimension) VALUES ('image', 'builtin', {extractor: 'pca', k: $((i % 64 + 1))}, '$src', $((i * 400000)), $((i % 64 + 1)));"
done
b="('builtin', 'image', 'builtin'"
stmts+="REGISTER MODEL \"t/raw\" (runner, modality, source, spec, image_size, dimension) VALUES $b, {extractor: 'raw'}, 28, 784);"
stmts+="REGISTER MODEL \"t/pca-8\" (runner, modality, source, spec, image_size, dimension) VALUES $b, {extractor: 'pca', k: 8}, 28, 8);"
stmts+="REGISTER MODEL \"t/rp-16\" (runner, modality, source, spec, image_size, dimension) VALUES $b, {extractor: 'random_projection', k: 16, seed: 1}, 28, 16);"
stmts+="REGISTER MODEL \"t/hog\" (runner, modality, source, spec, image_size, dimension) VALUES $b, {extractor: 'hog', cell: 7, block: 2, bins: 9}, 28, 324);"
idx() { printf "('idx', 'image', '%s', {labels: '%s'}, {start: %d, stop: %d})" "$FM/$1-images-idx3-ubyte.gz" "$FM/$1-labels-idx1-ubyte.gz" "$2" "$3"; }
stmts+="REGISTER DATASET \"tr\" (format, modality, location, spec, slice) VALUES $(idx train 0 2000);"
stmts+="REGISTER DATASET \"te\" (format, modality, location, spec, slice) VALUES $(idx t10k 0 500);"
out=$(post "$(jq -cn --arg q "$stmts" '{query: $q}')" /v1/query)
[ "$(jq -r '.results | length' <<<"$out" 2>/dev/null)" = 206 ] ||
  { echo "bench_load: registering the catalog failed: ${out:0:300}" >&2; exit 1; }

CATALOG=(
  "SELECT name, num_params FROM models WHERE source = 'bench' AND num_params < 50M ORDER BY num_params DESC LIMIT 10;"
  "SELECT name, dimension FROM models WHERE dimension IN (8, 16, 32) ORDER BY name LIMIT 20;"
  "SELECT name, source FROM models WHERE name LIKE 'm1%' AND num_params >= 4M ORDER BY name;"
)
RANK='SELECT name FROM image_models WHERE name LIKE '"'t/%'"' ORDER BY err TRAINED ON "tr" TESTED ON TASK "te" CLASSIFIED BY ["Euclidean NN", "logme"] WAIT;'

# The ranking once with WAIT (8 embed + 8 proxy jobs), then it must answer from the cache.
t0=$(date +%s.%N)
out=$(post "$(jq -cn --arg q "$RANK" '{query: $q}')" /v1/query 300)
[ "$(jq -r .status <<<"$out" 2>/dev/null)" = complete ] ||
  { echo "bench_load: the ranking did not complete: ${out:0:300}" >&2; exit 1; }
echo "bench_load: the ranking computed once in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s ($(jq -c .jobs <<<"$out"))"
out=$(post "$(jq -cn --arg q "$RANK" '{query: $q}')" /v1/query)
[ "$(jq -c '[.status, .jobs.submitted, .jobs.cached, (.rows | length)]' <<<"$out")" = '["complete",0,16,8]' ] ||
  { echo "bench_load: the ranking is not answered from the cache: ${out:0:300}" >&2; exit 1; }

# One session per wrk thread (a session runs at most --max-concurrent-queries at once).
sessions=()
for _ in $(seq 1 "$THREADS"); do sessions+=("$(post '{}' /v1/sessions | jq -r .session)"); done
SESSIONS=$(IFS=,; echo "${sessions[*]}")
for q in "${CATALOG[@]}"; do
  out=$(post "$(body "$q" "${sessions[0]}")" /v1/query)
  [ "$(jq -r '.row_count > 0' <<<"$out" 2>/dev/null)" = true ] ||
    { echo "bench_load: a catalog query answers no row: $q: ${out:0:300}" >&2; exit 1; }
  body "$q" >>"$SCRATCH/catalog.bodies"
done
body "$RANK" >"$SCRATCH/rank.bodies"

# wrk's "50%  1.23ms" → milliseconds.
to_ms() { awk '{ v = $1; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
  f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : 1;
  printf "%.3f", v * f }' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$RQ/status" 2>/dev/null || echo 0; }

run_round() {  # PERCENT → "rps p50 p99 requests non2xx socket_errors"
  local out rps p50 p99 reqs bad sock
  out=$(wrk -t "$THREADS" -c "$CONNS" -d "${SECS}s" --timeout 10s --latency -s bench/load_mix.lua \
          "$BASE" -- "$1" "$SESSIONS" "$SCRATCH/catalog.bodies" "$SCRATCH/rank.bodies" 2>&1)
  echo "$out" >>"$SCRATCH/wrk.out"
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
  bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' <<<"$out")
  sock=$(awk -F'[ ,]+' '/Socket errors:/ { print $4 + $6 + $8 + $10 }' <<<"$out")
  [ -n "$rps" ] || { echo "bench_load: wrk failed: $out" >&2; echo "0 0 0 0 0 1"; return; }
  echo "${rps:-0} ${p50:-0} ${p99:-0} ${reqs:-0} ${bad:-0} ${sock:-0}"
}

echo "bench_load: $CONNS connections, $THREADS wrk threads, ${SECS} s per round, $NCPU CPUs shared by wrk, rankqld and PostgreSQL"
echo "catalog: ${#CATALOG[@]} SELECTs on 204 models, in turn; ranking: $RANK (cached)"
printf '%-22s | %9s %9s %9s %9s %6s | %9s %9s | %8s %8s %8s\n' round "req/s" "p50 ms" "p99 ms" \
  requests errors "RSS KiB" "RSS +KiB" "req/s x" "p50 x" "p99 x"
rss0=$(rss_kib)
printf '%-22s | %9s %9s %9s %9s %6s | %9s %9s |\n' "start (after setup)" - - - - - "$rss0" -
status=0 prev=$rss0 base_rps='' base_p50='' base_p99=''
rounds=("baseline: catalog only:0" "mixed ($PCT% ranking):$PCT")
for i in $(seq 2 "${BENCH_LOAD_MIXED_ROUNDS:-2}"); do rounds+=("mixed again ($i):$PCT"); done
for round in "${rounds[@]}"; do
  name=${round%:*} pct=${round##*:}
  read -r rps p50 p99 reqs bad sock <<<"$(run_round "$pct")"
  rss=$(rss_kib)
  if [ -z "$base_rps" ]; then base_rps=$rps base_p50=$p50 base_p99=$p99; fi
  printf '%-22s | %9.0f %9.3f %9.3f %9s %6s | %9s %+9d | %8s %8s %8s\n' "$name" "$rps" "$p50" "$p99" \
    "$reqs" "$((bad + sock))" "$rss" "$((rss - prev))" "$(ratio "$rps" "$base_rps")" \
    "$(ratio "$p50" "$base_p50")" "$(ratio "$p99" "$base_p99")"
  prev=$rss
  if [ "$bad" != 0 ] || [ "$sock" != 0 ]; then
    echo "bench_load: $name: $bad answers were not 2xx, $sock socket errors" >&2
    status=1
  fi
done
echo "x = ratio to the baseline round; RSS +KiB = growth of rankqld's resident memory during the round"
kill -0 "$RQ" 2>/dev/null || { echo "bench_load: rankqld died under load" >&2; status=1; }
exit $status
