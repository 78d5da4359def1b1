#!/usr/bin/env bash
# bench_http: a catalog SELECT through the whole HTTP path (POST /v1/query: HTTP, JSON, parse,
# plan, session check, executor, result JSON) against the same SQL sent straight through libpq
# (pgbench, extended protocol, the same parameters), at 1, 8 and 64 concurrent clients, in the
# same run on the same embedded PostgreSQL. Prints throughput and p50/p99 latency per row and
# the rankql/libpq ratios (goal: p50 within 1.5x). Stops everything it started.
#
#   bench/bench_http.sh                 (bench/run-bench.sh runs it)
#   BENCH_HTTP_SECONDS=5 BENCH_HTTP_CLIENTS="1 8 64" RANKQLD=build/bin/rankqld
#
# The SQL for pgbench is the planner's own, read from EXPLAIN JSON of the same statement, so
# the two sides run the same query; its parameters are the statement's literals in order.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
RANKQLD=${RANKQLD:-$ROOT/build/bin/rankqld}
SECS=${BENCH_HTTP_SECONDS:-5}
CLIENTS=${BENCH_HTTP_CLIENTS:-"1 8 64"}
NCPU=$(nproc 2>/dev/null || echo 2)

for tool in wrk pgbench curl jq; do
  command -v "$tool" >/dev/null || { echo "bench_http: $tool is needed (scripts/install-deps.sh)" >&2; exit 1; }
done
[ -x "$RANKQLD" ] || { echo "bench_http: no $RANKQLD (run make build-all)" >&2; exit 1; }

bench_scratch http
SOCK=$DATA/pg-socket

bench_start bench_http

post() { curl -s --max-time 60 -X POST -H 'Content-Type: application/json' --data-binary "$1" "$BASE$2"; }

# A small catalog: 200 models over 4 sources, registered through the API.
stmts=""
for i in $(seq 1 200); do
  src=$(( i % 4 )); case $src in 0) src=bench ;; 1) src=TensorFlow ;; 2) src=torchvision ;; 3) src=other ;; esac
  stmts+="REGISTER MODEL \\\"m$i\\\" (modality, runner, spec, source, num_params, dimension) VALUES ('image', 'builtin', {extractor: 'pca', k: $((i % 64 + 1))}, '$src', $((i * 400000)), $((i % 64 + 1)));"
done
out=$(post "{\"query\": \"$stmts\"}" /v1/query)
[ "$(jq -r '.results | length' <<<"$out")" = 200 ] ||
  { echo "bench_http: registering the catalog failed: ${out:0:300}" >&2; exit 1; }
SESSION=$(post '{}' /v1/sessions | jq -r .session)

STMT="SELECT name, num_params FROM models WHERE source = 'bench' AND num_params < 50M ORDER BY num_params DESC LIMIT 10;"
PARAMS=(bench 50000000 10)
BODY=$(jq -cn --arg q "$STMT" --arg s "$SESSION" '{query: $q, session: $s}')
check=$(post "$BODY" /v1/query)
[ "$(jq -r .row_count <<<"$check")" = 10 ] || { echo "bench_http: the query does not answer 10 rows: ${check:0:300}" >&2; exit 1; }

# The planner's SQL, from EXPLAIN JSON; $n become pgbench variables :pn.
plan=$(post "$(jq -cn --arg q "EXPLAIN JSON $STMT" --arg s "$SESSION" '{query: $q, session: $s}')" /v1/query)
SQL=$(jq -r '.rows[0][0].sql' <<<"$plan")
NPARAMS=$(jq -r '.rows[0][0].parameter_count' <<<"$plan")
[ -n "$SQL" ] && [ "$SQL" != null ] || { echo "bench_http: no SQL in EXPLAIN JSON: ${plan:0:300}" >&2; exit 1; }
[ "$NPARAMS" = "${#PARAMS[@]}" ] ||
  { echo "bench_http: the plan has $NPARAMS parameters, the benchmark knows ${#PARAMS[@]}: $SQL" >&2; exit 1; }
PGB_SQL=$SQL
defs=()
for i in $(seq "$NPARAMS" -1 1); do   # from the highest: $1 must not eat the start of $10
  PGB_SQL=${PGB_SQL//\$$i/:p$i}
  defs+=(-D "p$i=${PARAMS[$((i - 1))]}")
done
printf '%s;\n' "$PGB_SQL" >"$SCRATCH/query.sql"
# The same query as the executor sends it (one transaction per statement): shows how much of
# the difference is the transaction's two extra round trips and how much is rankqld itself.
printf 'BEGIN;\n%s;\nCOMMIT;\n' "$PGB_SQL" >"$SCRATCH/query-tx.sql"
export PGHOST=$SOCK PGUSER=rankql PGDATABASE=rankql

cat >"$SCRATCH/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[$BODY]==]
EOF

# wrk's "50%  1.23ms" → milliseconds.
to_ms() { awk '{ v = $1; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
  f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : 1;
  printf "%.3f", v * f }' <<<"$1"; }

run_wrk() {  # clients → "rps p50 p99 non2xx"
  local c=$1 t out rps p50 p99 bad
  t=$(( c < NCPU ? c : NCPU ))
  out=$(wrk -t "$t" -c "$c" -d "${SECS}s" --timeout 10s --latency -s "$SCRATCH/post.lua" "$BASE/v1/query" 2>&1)
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' <<<"$out")
  echo "${rps:-0} ${p50:-0} ${p99:-0} ${bad:-0}"
}

run_pgbench() {  # clients script → "tps p50 p99 failed"
  local c=$1 script=$2 j dir out tps n
  j=$(( c < NCPU ? c : NCPU ))
  dir=$SCRATCH/pgb-$c-$(basename "$script" .sql); mkdir -p "$dir"
  out=$( cd "$dir" && pgbench -n -M extended -f "$script" "${defs[@]}" -c "$c" -j "$j" \
           -T "$SECS" -l --log-prefix=tx 2>&1 )
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)
  cat "$dir"/tx.* 2>/dev/null | awk '{ print $3 / 1000 }' | sort -n >"$dir/lat"
  n=$(wc -l <"$dir/lat")
  if [ "$n" -eq 0 ]; then echo "0 0 0 pgbench-failed"; echo "$out" >&2; return; fi
  echo "${tps:-0} $(sed -n "$(( (n * 50 + 99) / 100 ))p" "$dir/lat") $(sed -n "$(( (n * 99 + 99) / 100 ))p" "$dir/lat") 0"
}

echo "bench_http: rankqld $(basename "$RANKQLD") (threads = $NCPU cores, pool = threads), ${SECS} s per row, $NCPU CPUs shared by client and server"
echo "query:  $STMT"
echo "libpq:  $SQL  [$(IFS=,; echo "${PARAMS[*]}")]"
printf '%-7s | %12s %8s %8s | %10s %8s %8s | %8s %8s | %11s\n' clients "rankql req/s" "p50 ms" \
  "p99 ms" "libpq tx/s" "p50 ms" "p99 ms" "p50 x" "req/s x" "libpq+tx p50"
status=0
for c in $CLIENTS; do
  read -r rps hp50 hp99 bad <<<"$(run_wrk "$c")"
  read -r tps pp50 pp99 failed <<<"$(run_pgbench "$c" "$SCRATCH/query.sql")"
  read -r _ tp50 _ failed2 <<<"$(run_pgbench "$c" "$SCRATCH/query-tx.sql")"
  ratio=$(awk -v a="$hp50" -v b="$pp50" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
  tput=$(awk -v a="$tps" -v b="$rps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
  printf '%-7s | %12.0f %8.3f %8.3f | %10.0f %8.3f %8.3f | %8s %8s | %11.3f\n' "$c" "$rps" "$hp50" \
    "$hp99" "$tps" "$pp50" "$pp99" "$ratio" "$tput" "$tp50"
  [ "$bad" != 0 ] && { echo "bench_http: $bad answers of rankqld were not 2xx at $c clients" >&2; status=1; }
  [ "$failed" != 0 ] || [ "$failed2" != 0 ] && status=1
done
echo "p50 x = rankql p50 / libpq p50 (goal <= 1.5); req/s x = libpq throughput / rankql throughput;"
echo "libpq+tx = the same SQL inside BEGIN/COMMIT through libpq, as the executor runs it"
exit $status
