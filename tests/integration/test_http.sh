#!/usr/bin/env bash
# rankqld's HTTP API end to end (docs/http-api.md): every endpoint and error status, sessions
# and multi-statement queries, the catalog listings, limits, metrics, bearer tokens, a
# database that goes away and comes back, the WHERE cases of where_cases.txt replayed over
# HTTP, and values that try to escape their string slot.
#
# Tokens: every address in 127.0.0.0/8 is loopback, so no loopback address can stand in for an
# exposed one. The test binds 0.0.0.0 (a real non-loopback address: rankqld refuses it without
# --token-file) with --token-file and talks to it through 127.0.0.1; --token-file also turns
# tokens on for a loopback address, which is checked too.
#
# Every rankqld and postgres started here is stopped by the EXIT trap; every request and wait
# is bounded, so a hang fails a check instead of the whole run.
set -u
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

RANKQLD=${RANKQLD:-$RANKQL_BIN/rankqld}
PGBIN=${RANKQL_PG_BINDIR:-$(pg_config --bindir 2>/dev/null)}
[ -x "$PGBIN/initdb" ] ||
  PGBIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)
for tool in curl jq psql; do
  command -v "$tool" >/dev/null || { not_ok "setup: $tool is needed (scripts/install-deps.sh)"; finish; }
done
if [ ! -x "$RANKQLD" ] || [ ! -x "$PGBIN/initdb" ]; then
  not_ok "setup: need $RANKQLD (make) and PostgreSQL's initdb (postgresql-15)"
  finish
fi

SCRATCH=$(make_scratch)
DATA=$SCRATCH/data
SOCK=$DATA/pg-socket
EXT=$SCRATCH/ext          # a throwaway PostgreSQL for --db, stopped and started at will
STARTED=()                # rankqld pids
export PGCONNECT_TIMEOUT=5
# Sanitizer builds (RANKQL_BIN=build-san/bin) report leaks at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local p d
  # Only the test's own shell cleans up, never a subshell that inherited the trap.
  [ "$BASHPID" = "$$" ] || { echo "# (cleanup skipped in subshell $BASHPID)" >&2; return 0; }
  for p in "${STARTED[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 1 50); do
    local alive=0
    for p in "${STARTED[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  for p in "${STARTED[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for d in "$DATA/pg" "$EXT/data"; do
    [ -f "$d/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate -w -t 20 stop >/dev/null 2>&1
  done
  [ -n "${LOCKER:-}" ] && kill "$LOCKER" 2>/dev/null
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

# start_server ERRFILE ARGS...: rankqld in the background; sets SRV (pid). Waits (60 s at most)
# for the "listening on" line; returns 1 when it exits or never gets there.
start_server() {
  local err=$1 i; shift
  "$RANKQLD" "$@" 2>"$err" &
  SRV=$!
  STARTED+=("$SRV")
  for i in $(seq 1 600); do
    grep -qs '^rankqld: listening on ' "$err" && return 0
    kill -0 "$SRV" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# req METHOD PATH [BODY [CURL-ARGS…]]: one request to $BASE; sets STATUS, RESP and HDRS.
# A BODY starting with @ names a file; an empty BODY sends none.
req() {
  local method=$1 path=$2 data=()
  shift 2
  if [ $# -gt 0 ]; then [ -n "$1" ] && data=(--data-binary "$1"); shift; fi
  STATUS=$(curl -s -o "$SCRATCH/resp" -D "$SCRATCH/hdrs" -w '%{http_code}' --max-time 30 \
    -X "$method" "${data[@]}" "$@" "$BASE$path" 2>/dev/null) || true
  [ -n "$STATUS" ] || STATUS=000
  RESP=$(cat "$SCRATCH/resp" 2>/dev/null)
  HDRS=$(tr -d '\r' <"$SCRATCH/hdrs" 2>/dev/null)
}
JSON=(-H 'Content-Type: application/json')
# json_str TEXT: TEXT as a JSON string (the texts here hold no control characters but \n \t \r).
json_str() {
  local v=$1
  v=${v//\\/\\\\}; v=${v//\"/\\\"}
  v=${v//$'\n'/\\n}; v=${v//$'\t'/\\t}; v=${v//$'\r'/\\r}
  printf '"%s"' "$v"
}
# query TEXT [SESSION [CURL-ARGS…]]: POST /v1/query with the text (and session) as JSON.
query() {
  local text=$1 session=${2:-}
  shift; [ $# -gt 0 ] && shift
  if [ -n "$session" ]; then
    printf '{"query": %s, "session": %s}' "$(json_str "$text")" "$(json_str "$session")"
  else
    printf '{"query": %s}' "$(json_str "$text")"
  fi >"$SCRATCH/body.json"
  req POST /v1/query "@$SCRATCH/body.json" "${JSON[@]}" "$@"
}
# jf FILTER: a jq filter over the last response (raw output).
jf() { printf '%s' "$RESP" | jq -r "$1" 2>/dev/null; }
# expect NAME STATUS CODE: the last answer had that status and error code (CODE "-": no error).
expect() {
  local name=$1 status=$2 code=$3 got
  got=$(jf '.error.code // "-"')
  if [ "$STATUS" = "$status" ] && [ "$got" = "$code" ]; then ok "$name"; else
    not_ok "$name"; printf '#   expected: %s %s\n#   actual:   %s %s\n' "$status" "$code" "$STATUS" "${RESP:0:400}"; fi
}
psql_q() { psql -X -qAt -h "$SOCK" -U rankql -d rankql -c "$1" 2>&1; }
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
is_uuid() { [[ $1 =~ $UUID_RE ]]; }

# ---- command line: exposure needs tokens ------------------------------------------------
PORT=$(free_port); BASE=http://127.0.0.1:$PORT
for args in "--listen 0.0.0.0:$PORT" "--listen [::]:$PORT"; do
  # shellcheck disable=SC2086
  out=$(timeout 10 "$RANKQLD" --data-dir "$SCRATCH/never" $args 2>&1 >/dev/null); rc=$?
  check_eq "non-loopback without --token-file exits 2: $args" 2 "$rc"
  check_contains "non-loopback without --token-file says why: $args" "needs --token-file" "$out"
  check_eq "non-loopback without --token-file is one line: $args" 1 "$(printf '%s\n' "$out" | wc -l)"
done
check "refused exposure creates no data directory" test ! -e "$SCRATCH/never"
printf 'short\n' >"$SCRATCH/short.tokens"
printf '# nothing but a comment\n\n' >"$SCRATCH/empty.tokens"
for tf in "$SCRATCH/missing.tokens" "$SCRATCH/short.tokens" "$SCRATCH/empty.tokens"; do
  out=$(timeout 10 "$RANKQLD" --data-dir "$SCRATCH/never" --listen "0.0.0.0:$PORT" --token-file "$tf" 2>&1); rc=$?
  check_eq "unusable token file exits 2: $(basename "$tf")" 2 "$rc"
  check_contains "unusable token file is named: $(basename "$tf")" "$tf" "$out"
done
for args in "--threads 0" "--threads x" "--db-pool 0" "--max-body 10" "--max-body 2T" \
            "--query-timeout 0" "--idle-timeout -1" "--max-wait -1" "--max-wait 1h"; do
  # shellcheck disable=SC2086
  out=$(timeout 10 "$RANKQLD" $args 2>&1 >/dev/null); rc=$?
  check_eq "bad server flag exits 2: $args" 2 "$rc"
done
out=$(timeout 10 "$RANKQLD" --help)
for flag in --token-file --threads --db-pool --max-body --query-timeout --idle-timeout --max-wait \
            --verbose; do
  check_contains "--help describes $flag" "$flag" "$out"
done

# ---- server A: embedded PostgreSQL, loopback, no token ------------------------------------
# --db-pool 4: the streaming checks keep two connections busy (whatever the cores) and still
# expect a third request to be answered at once.
if start_server "$SCRATCH/a.err" --data-dir "$DATA" --pg-no-sync --listen "127.0.0.1:$PORT" \
     --max-body 64K --verbose --db-pool 4; then ok "rankqld starts and listens"; else
  not_ok "rankqld starts and listens"; sed 's/^/#   /' "$SCRATCH/a.err"; finish; fi
A=$SRV
check_contains "it prints where it listens" "rankqld: listening on http://127.0.0.1:$PORT" "$(cat "$SCRATCH/a.err")"

# Two rankqlds cannot share an address: the second fails before starting any database.
out=$(timeout 30 "$RANKQLD" --data-dir "$SCRATCH/other" --pg-no-sync --listen "127.0.0.1:$PORT" 2>&1); rc=$?
check_eq "a taken address: exit 1" 1 "$rc"
check_contains "a taken address: says so" "cannot listen on 127.0.0.1:$PORT" "$out"
check "a taken address: no database started" test ! -e "$SCRATCH/other/pg"

# ---- /healthz, /v1/sessions ----------------------------------------------------------------
req GET /healthz
expect "GET /healthz: 200" 200 -
check_eq "GET /healthz: status and database ok" "ok ok" "$(jf '"\(.status) \(.database)"')"
check_contains "answers are application/json" "Content-Type: application/json" "$HDRS"
req HEAD /healthz
check_eq "HEAD /healthz: 200" 200 "$STATUS"

req POST /v1/sessions
expect "POST /v1/sessions without a body: 201" 201 -
S1=$(jf .session)
check "POST /v1/sessions returns a uuid" is_uuid "$S1"
req POST /v1/sessions '{}' "${JSON[@]}"
expect "POST /v1/sessions with {}: 201" 201 -
S2=$(jf .session)
check "two sessions are different" test "$S1" != "$S2"
req POST /v1/sessions '{"client": "x"}' "${JSON[@]}"
expect "POST /v1/sessions with a field: 422" 422 invalid_request
req POST /v1/sessions '{}' -H 'Content-Type: text/plain'
expect "POST /v1/sessions with a text body: 415" 415 unsupported_media_type
req POST /v1/sessions '{' "${JSON[@]}"
expect "POST /v1/sessions with bad JSON: 400" 400 invalid_json

# ---- POST /v1/query: statements and sessions ----------------------------------------------
query "SELECT name FROM models;"
expect "a query without session: 200" 200 -
S0=$(jf .session)
check "a query without session gets a new session id" is_uuid "$S0"
check_eq "the new session exists" 1 "$(psql_q "SELECT count(*) FROM sessions WHERE id = '$S0'")"
check_eq "a single statement: one result" 1 "$(jf '.results | length')"
check_eq "the last result's fields are at the top level" "SELECT [\"name\"] 0" \
  "$(jf '"\(.statement) \(.columns | tojson) \(.row_count)"')"

# A small catalog, written straight into the database so these checks need no REGISTER.
psql_q "INSERT INTO models (name, modality, source, runner, num_params, spec) VALUES
  ('alpha', 'image', 'TensorFlow', 'builtin', 1000000, '{\"extractor\": \"raw\"}'),
  ('beta', 'image', 'torchvision', 'onnx', 25000000, '{}'),
  ('gamma', 'text', 'HuggingFace Transformers', 'huggingface', 110000000, '{}'),
  ('delta', 'image', 'TensorFlow', 'tfhub', 5000000, '{}'),
  ('epsilon', 'text', 'TensorFlow', 'tfhub', 300000000, '{}');
  INSERT INTO datasets (name, modality, format, location) VALUES
  ('ds-one', 'image', 'vtab', NULL), ('ds-two', 'image', 'hf', NULL), ('ds-three', 'text', 'hf', NULL);" >/dev/null

query "DECLARE small AS SELECT * FROM models WHERE num_params < 10M; PRINT small;" "$S1"
expect "DECLARE then PRINT in one request: 200" 200 -
check_eq "DECLARE then PRINT: two results" "DECLARE PRINT" "$(jf '[.results[].statement] | join(" ")')"
check_eq "DECLARE then PRINT: the top level is PRINT's" "PRINT 2" "$(jf '"\(.statement) \(.row_count)"')"
check_eq "DECLARE then PRINT: PRINT shows the declared models" "alpha,delta" \
  "$(jf '(.columns | index("name")) as $i | [.rows[][$i]] | sort | join(",")')"
check_eq "the session id comes back" "$S1" "$(jf .session)"
query "PRINT small;" "$S1"
expect "PRINT in a later request of the same session: 200" 200 -
check_eq "the variable lives across requests" 2 "$(jf .row_count)"
query "PRINT small;" "$(printf '%s' "$S1" | tr 'a-f' 'A-F')"
expect "a session id in capitals is the same session" 200 -
query "PRINT small;" "$S2"
expect "another session does not see the variable" 400 semantic_error
query "PRINT *;" "$S2"
check_eq "PRINT * in another session lists nothing" 0 "$(jf .row_count)"
query "DECLARE small AS SELECT * FROM models WHERE modality = 'text';" "$S2"
query "PRINT small;" "$S1"
check_eq "the same name in two sessions stays apart" 2 "$(jf .row_count)"
query "PRINT small;" "00000000-0000-4000-8000-000000000000"
expect "an unknown session: 404" 404 not_found
query "PRINT small;" "not-a-session"
expect "a malformed session id: 404" 404 not_found

# Parse everything first: an error in a later statement runs nothing.
query "REGISTER MODEL 'never-registered' (modality, runner, spec) VALUES ('image', 'builtin', {extractor: 'raw'});
SELECT name FROM models WHERE;"
expect "a syntax error in the second statement: 400" 400 syntax_error
check_eq "the syntax error's position is in the whole query" "2 30" "$(jf '"\(.error.line) \(.error.column)"')"
check_eq "nothing ran: the first statement registered nothing" 0 \
  "$(psql_q "SELECT count(*) FROM models WHERE name = 'never-registered'")"
check_eq "a syntax error makes no session" null "$(jf .session)"
query "SELECT name FROM models WHERE name = 'unterminated;"
expect "an unterminated string: 400 lexical_error" 400 lexical_error
query "SELECT name FROM models"
expect "a statement without ';': 400" 400 syntax_error

# The executor's errors: positions relative to the whole query, earlier results kept.
query "SELECT name FROM models;
  SELECT bogus FROM models;"
expect "an unknown column in the second statement: 400" 400 semantic_error
check_eq "its position is line 2, column 10" "2 10" "$(jf '"\(.error.line) \(.error.column)"')"
check_eq "the first statement's result comes with the error" "1 SELECT" "$(jf '"\(.results | length) \(.results[0].statement)"')"
query "SELECT name FROM nowhere;"
expect "an unknown table: 400" 400 semantic_error
query "REGISTER MODEL 'bad-model' (modality, runner) VALUES ('image', 'no-such-runner');"
expect "REGISTER with a bad value: 422" 422 validation_error
check_eq "the validation error names the field" runner "$(jf .error.field)"
query "FINETUNE small WITH \"ds-one\";" "$S1"
# ds-one is a catalogue entry (vtab) that cannot be read here: a 4xx, not a 500.
if [ "$STATUS" -ge 400 ] && [ "$STATUS" -lt 500 ]; then ok "a statement that cannot run here is not a 500 ($STATUS)"; else
  not_ok "a statement that cannot run here is not a 500"; echo "#   $STATUS ${RESP:0:300}"; fi
query "-- only a comment"
expect "a query with no statement: 200" 200 -
check_eq "no statement: empty results" 0 "$(jf '.results | length')"

# ---- POST /v1/query: bad requests -----------------------------------------------------------
req POST /v1/query '{"query": "SELECT name FROM models;"' "${JSON[@]}"
expect "invalid JSON: 400" 400 invalid_json
printf '{"query": "SELECT name FROM models WHERE name = \xff\xfe;"}' >"$SCRATCH/bad-utf8.json"
req POST /v1/query "@$SCRATCH/bad-utf8.json" "${JSON[@]}"
expect "invalid UTF-8 bytes in the body: 400" 400 invalid_json
check_contains "invalid UTF-8: says so" "UTF-8" "$(jf .error.message)"
printf '{"query": "SELECT name FROM models WHERE name = \xed\xa0\x80;"}' >"$SCRATCH/surrogate.json"
req POST /v1/query "@$SCRATCH/surrogate.json" "${JSON[@]}"
expect "an encoded surrogate in the body: 400" 400 invalid_json
req POST /v1/query '{"query": "SELECT \u0000;"}' "${JSON[@]}"
expect "a NUL character in the query: 400" 400 invalid_json
req POST /v1/query '' "${JSON[@]}"
expect "an empty body: 400" 400 invalid_json
req POST /v1/query '["SELECT name FROM models;"]' "${JSON[@]}"
expect "a JSON array: 422" 422 invalid_request
req POST /v1/query '{"session": null}' "${JSON[@]}"
expect "no query: 422" 422 invalid_request
req POST /v1/query '{"query": 42}' "${JSON[@]}"
expect "a query that is not a string: 422" 422 invalid_request
req POST /v1/query '{"query": "PRINT *;", "session": 7}' "${JSON[@]}"
expect "a session that is not a string: 422" 422 invalid_request
req POST /v1/query '{"query": "PRINT *;", "sesion": "x"}' "${JSON[@]}"
expect "an unknown field: 422" 422 invalid_request
req POST /v1/query '{"query": "PRINT *;", "query": "PRINT *;"}' "${JSON[@]}"
expect "a repeated field: 400" 400 invalid_json
req POST /v1/query '{"query": "PRINT *;"}' -H 'Content-Type: text/plain'
expect "Content-Type text/plain: 415" 415 unsupported_media_type
req POST /v1/query '{"query": "PRINT *;"}' -H 'Content-Type:'
expect "no Content-Type: 415" 415 unsupported_media_type
req POST /v1/query '{"query": "PRINT *;"}' -H 'Content-Type: application/json; charset=UTF-8'
expect "application/json with charset=UTF-8 is accepted" 200 -

# Body limit (this server runs with --max-body 64K).
head -c 70000 /dev/zero | tr '\0' ' ' >"$SCRATCH/pad"
{ printf '{"query": "SELECT name FROM models;", "x": "'; cat "$SCRATCH/pad"; printf '"}'; } >"$SCRATCH/big.json"
req POST /v1/query "@$SCRATCH/big.json" "${JSON[@]}"
expect "a body over --max-body: 413" 413 body_too_large
req POST /v1/query "@$SCRATCH/big.json" "${JSON[@]}" -H 'Transfer-Encoding: chunked'
expect "a chunked body over --max-body: 413" 413 body_too_large
{ printf '{"query": "SELECT name FROM models; -- '; head -c 60000 "$SCRATCH/pad"; printf '"}'; } >"$SCRATCH/fits.json"
req POST /v1/query "@$SCRATCH/fits.json" "${JSON[@]}"
expect "a body just under --max-body is served" 200 -

# ---- paths and methods ------------------------------------------------------------------------
req GET /v1/nothing
expect "an unknown path: 404" 404 not_found
req GET /
expect "/: 404" 404 not_found
req GET /v1/query
expect "GET /v1/query: 405" 405 method_not_allowed
check_contains "405 names the allowed method" "Allow: POST" "$HDRS"
req DELETE /v1/models
expect "DELETE /v1/models: 405" 405 method_not_allowed
check_contains "405 on a GET endpoint allows GET and HEAD" "Allow: GET, HEAD" "$HDRS"
req PUT /v1/sessions '{}' "${JSON[@]}"
expect "PUT /v1/sessions: 405" 405 method_not_allowed
req POST /healthz
expect "POST /healthz: 405" 405 method_not_allowed

# ---- GET /v1/models, /v1/datasets -------------------------------------------------------------
req GET /v1/models
expect "GET /v1/models: 200" 200 -
check_eq "models: total, row_count, default limit and offset" "5 5 100 0" \
  "$(jf '"\(.total) \(.row_count) \(.limit) \(.offset)"')"
check_eq "models: sorted by name" "alpha,beta,delta,epsilon,gamma" "$(jf '[.rows[][0]] | join(",")')"
check_eq "models: columns" "name,modality,source,runner,num_params" "$(jf '.columns[0:5] | join(",")')"
check_eq "models: values keep their JSON types" '[1000000,{"extractor":"raw"},false]' \
  "$(jf '(.columns | index("num_params")) as $n | (.columns | index("spec")) as $s | (.columns | index("finetuned")) as $f | [.rows[0][$n], .rows[0][$s], .rows[0][$f]] | tojson')"
req GET '/v1/models?limit=2&offset=1'
check_eq "models: limit and offset page" "beta,delta 2 5 2 1" \
  "$(jf '"\([.rows[][0]] | join(",")) \(.row_count) \(.total) \(.limit) \(.offset)"')"
req GET '/v1/models?offset=10'
check_eq "models: an offset past the end" "0 5" "$(jf '"\(.row_count) \(.total)"')"
req GET '/v1/models?limit=0'
check_eq "models: limit=0 gives just the total" "0 5" "$(jf '"\(.row_count) \(.total)"')"
req GET '/v1/models?source=TensorFlow'
check_eq "models: filter on source" "alpha,delta,epsilon 3" "$(jf '"\([.rows[][0]] | join(",")) \(.total)"')"
req GET '/v1/models?source=TensorFlow&modality=text'
check_eq "models: two filters" "epsilon" "$(jf '[.rows[][0]] | join(",")')"
req GET '/v1/models?runner=tfhub&limit=1'
check_eq "models: filter on runner with paging" "delta 2" "$(jf '"\([.rows[][0]] | join(",")) \(.total)"')"
req GET '/v1/models?name=gamma'
check_eq "models: filter on name" "gamma" "$(jf '[.rows[][0]] | join(",")')"
req GET '/v1/models' '' -G --data-urlencode "source=HuggingFace Transformers"
check_eq "models: a filter value with a space" "gamma" "$(jf '[.rows[][0]] | join(",")')"
req GET '/v1/models' '' -G --data-urlencode "name=alpha' OR '1'='1"
check_eq "models: a filter value with quotes matches nothing" "0 0" "$(jf '"\(.row_count) \(.total)"')"
req GET '/v1/datasets?format=hf'
check_eq "datasets: filter on format" "ds-three,ds-two 2" "$(jf '"\([.rows[][0]] | join(",")) \(.total)"')"
req GET '/v1/datasets?modality=text&format=hf'
check_eq "datasets: two filters" "ds-three" "$(jf '[.rows[][0]] | join(",")')"
for bad in "limit=1001" "limit=-1" "limit=abc" "limit=" "offset=x" "limit" "bogus=1" \
           "name=a&name=b" "limit=1%20"; do
  req GET "/v1/models?$bad"
  expect "models: bad parameter $bad: 400" 400 invalid_parameter
done
req GET '/v1/datasets?runner=onnx'
expect "datasets: runner is not a dataset filter: 400" 400 invalid_parameter
req GET '/v1/models?name=%FF'
expect "models: a parameter that is not UTF-8: 400" 400 invalid_parameter

# ---- concurrency, a killed connection, metrics, the log ----------------------------------
body=$(jq -cn --arg q "SELECT name FROM models WHERE num_params > 1M ORDER BY name;" --arg s "$S1" '{query: $q, session: $s}')
printf '%s' "$body" >"$SCRATCH/par.json"
seq 1 40 | xargs -P 16 -I{} curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 -X POST \
  "${JSON[@]}" --data-binary "@$SCRATCH/par.json" "$BASE/v1/query" >"$SCRATCH/par.out" 2>/dev/null
check_eq "40 queries, 16 at a time: all 200" "40" "$(grep -c '^200$' "$SCRATCH/par.out")"

# The server closes every pooled connection: the next requests reconnect and succeed.
psql_q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'rankqld'" >/dev/null
sleep 0.3
query "PRINT small;" "$S1"
expect "after the database closed the pool's connections: 200" 200 -
query "SELECT name FROM models;"
expect "after the database closed the pool's connections, without session: 200" 200 -
req GET /healthz
expect "after the database closed the pool's connections, /healthz: 200" 200 -

req GET /metrics
check_eq "GET /metrics: 200" 200 "$STATUS"
check_contains "metrics are Prometheus text" "Content-Type: text/plain; version=0.0.4" "$HDRS"
check_contains "metrics: requests by method, path and status" \
  'rankql_http_requests_total{method="POST",path="/v1/query",status="200"}' "$RESP"
check_contains "metrics: unknown paths are one label" 'path="other",status="404"' "$RESP"
check_contains "metrics: latency histogram" 'rankql_http_request_duration_seconds_bucket{path="/v1/query",le="+Inf"}' "$RESP"
check_contains "metrics: histogram count" 'rankql_http_request_duration_seconds_count{path="/v1/query"}' "$RESP"
check_contains "metrics: errors by code" 'rankql_http_errors_total{code="invalid_json"}' "$RESP"
check_contains "metrics: 413s are counted" 'rankql_http_errors_total{code="body_too_large"}' "$RESP"
check_contains "metrics: idle pool connections" 'rankql_db_pool_connections{state="idle"}' "$RESP"
check_contains "metrics: busy pool connections" 'rankql_db_pool_connections{state="busy"}' "$RESP"
check_contains "metrics: pool waits" 'rankql_db_pool_waits_total' "$RESP"
n=$(printf '%s\n' "$RESP" | sed -n 's/^rankql_http_requests_total{method="GET",path="\/healthz",status="200"} //p')
req GET /healthz
req GET /metrics
n2=$(printf '%s\n' "$RESP" | sed -n 's/^rankql_http_requests_total{method="GET",path="\/healthz",status="200"} //p')
check_eq "metrics: a request is counted once" "$((n + 1))" "$n2"
check_contains "--verbose logs one line per request" "rankqld: 127.0.0.1 POST /v1/query 200 " "$(cat "$SCRATCH/a.err")"
check_contains "--verbose logs the error code" "GET /v1/nothing 404 " "$(cat "$SCRATCH/a.err")"

# ---- POST /v1/query streamed (NDJSON) --------------------------------------------------------
# stream_req BODY [CURL-ARGS…]: POST /v1/query with BODY (a JSON text), the answer read as it
# comes (curl -N); sets STATUS, RESP (the lines) and HDRS.
stream_req() {
  local body=$1; shift
  printf '%s' "$body" >"$SCRATCH/sbody.json"
  req POST /v1/query "@$SCRATCH/sbody.json" "${JSON[@]}" -N "$@"
}
# ndjson_ok: every line of RESP is one JSON object with a "type".
ndjson_ok() {
  local line
  [ -n "$RESP" ] || return 1
  while IFS= read -r line; do
    printf '%s' "$line" | jq -e 'type == "object" and (.type | type == "string")' >/dev/null 2>&1 || return 1
  done <<<"$RESP"
}
# lines_of TYPE: the lines of that type, one a line, compact.
lines_of() { printf '%s\n' "$RESP" | jq -c --arg t "$1" 'select(.type == $t)' 2>/dev/null; }
# progress_ok: progress lines, if any (only task-aware WAITs make them), carry the fields of
# the executor's event and the statement number, and come before the result of their statement.
progress_ok() {
  printf '%s\n' "$RESP" | jq -s -e '
    (to_entries | map(select(.value.type == "progress")) | all(
       (.value.statement | type == "number") and (.value.jobs_total | type == "number") and
       (.value.jobs_done | type == "number") and (.value.fraction | type == "number"))) and
    (. as $l | [range(0; length)] | all(. as $i | $l[$i].type != "progress" or
       ([range($i; $l | length)] | any($l[.].type == "result" and $l[.].statement == $l[$i].statement)
        or any($l[.].type == "error"))))' >/dev/null 2>&1
}

SELECT_BODY=$(jq -cn --arg s "$S1" '{query: "SELECT name FROM models WHERE num_params > 1M ORDER BY name;", session: $s}')
stream_req "$SELECT_BODY" -H 'Accept: application/x-ndjson'
check_eq "streamed (Accept: application/x-ndjson): 200" 200 "$STATUS"
check_contains "streamed: Content-Type application/x-ndjson" "Content-Type: application/x-ndjson" "$HDRS"
check "streamed: every line is a JSON object with a type" ndjson_ok
check_eq "streamed: one result line, statement 0, with the result object" \
  '0 SELECT ["name"]' "$(lines_of result | jq -r '"\(.statement) \(.result.statement) \(.result.columns | tojson)"' | tr '\n' ' ' | sed 's/ $//')"
check_eq "streamed: the rows are those of the plain answer" \
  "$(query "SELECT name FROM models WHERE num_params > 1M ORDER BY name;" "$S1"; jf '.rows | tojson')" \
  "$(stream_req "$SELECT_BODY" -H 'Accept: application/x-ndjson'; lines_of result | jq -c .result.rows)"
check_eq "streamed: the last line is the end, with the session" \
  "end $S1" "$(printf '%s\n' "$RESP" | tail -1 | jq -r '"\(.type) \(.session)"')"
check "streamed: progress lines, if any, are well formed and come before their result" progress_ok

stream_req "$(jq -cn --arg s "$S1" '{query: "SELECT name FROM models; SHOW DATASETS;", session: $s, stream: true}')"
check_eq '"stream": true: 200 NDJSON' "200 application/x-ndjson" \
  "$STATUS $(printf '%s\n' "$HDRS" | sed -n 's/^Content-Type: //p')"
check "\"stream\": true: every line is JSON" ndjson_ok
check_eq '"stream": true: two statements, two result lines, then the end' "result:0 result:1 end" \
  "$(printf '%s\n' "$RESP" | jq -r 'if .type == "result" then "result:\(.statement)" else .type end' | grep -v '^heartbeat$' | tr '\n' ' ' | sed 's/ $//')"
stream_req '{"query": "SELECT name FROM models;", "stream": false}' -H 'Accept: application/x-ndjson'
expect '"stream": false wins over Accept: one JSON answer' 200 -
check_contains '"stream": false: application/json' "Content-Type: application/json" "$HDRS"
stream_req '{"query": "SELECT name FROM models;", "stream": "yes"}'
expect '"stream" that is not a boolean: 422' 422 invalid_request

stream_req "$(jq -cn --arg s "$S1" '{query: "SELECT name FROM models;\nSELECT bogus FROM models;\nSELECT name FROM models;", session: $s}')" \
  -H 'Accept: application/x-ndjson'
check_eq "streamed error: 200" 200 "$STATUS"
check "streamed error: every line is JSON" ndjson_ok
check_eq "streamed error: the result before it, the error line, the end; nothing after the error runs" \
  "result:0 error:1 end" \
  "$(printf '%s\n' "$RESP" | jq -r 'if .type == "result" or .type == "error" then "\(.type):\(.statement)" else .type end' | grep -v '^heartbeat$' | tr '\n' ' ' | sed 's/ $//')"
check_eq "streamed error: the error object of the plain API, and its status" \
  "400 semantic_error 2 8" "$(lines_of error | jq -r '"\(.status) \(.error.code) \(.error.line) \(.error.column)"')"
stream_req '{"query": "SELECT name FROM models; SELECT name FROM;"}' -H 'Accept: application/x-ndjson'
check_eq "streamed syntax error: an error line for statement 1, then an end without session" \
  "error:1:400:syntax_error end:null" \
  "$(printf '%s\n' "$RESP" | jq -r 'if .type == "error" then "error:\(.statement):\(.status):\(.error.code)" else "\(.type):\(.session)" end' | tr '\n' ' ' | sed 's/ $//')"
stream_req '{"query": "SELECT name FROM models;", "session": "00000000-0000-4000-8000-000000000000"}' -H 'Accept: application/x-ndjson'
expect "streamed, unknown session: a plain 404, before any stream" 404 not_found
stream_req '{"query": "SELECT name FROM models;", "bogus": 1}' -H 'Accept: application/x-ndjson'
expect "streamed, bad request: a plain 422" 422 invalid_request

# A statement that waits (on a table lock here; a WAIT for jobs alike) must not hold up other
# clients; a streamed one sends heartbeats; a client that goes away mid-stream harms nothing.
psql -X -q -h "$SOCK" -U rankql -d rankql \
  -c "BEGIN; LOCK TABLE models IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(11.5); COMMIT;" >/dev/null 2>&1 &
LOCKER_PG=$!
sleep 0.5
printf '%s' "$SELECT_BODY" >"$SCRATCH/slow.json"
curl -s -N --max-time 30 -H 'Accept: application/x-ndjson' "${JSON[@]}" --data-binary "@$SCRATCH/slow.json" \
  "$BASE/v1/query" >"$SCRATCH/slow.out" 2>/dev/null &
SLOW=$!
curl -s -N --max-time 1 -H 'Accept: application/x-ndjson' "${JSON[@]}" --data-binary "@$SCRATCH/slow.json" \
  "$BASE/v1/query" >/dev/null 2>&1
check_eq "a client that gives up mid-stream: curl timed out" 28 "$?"
t0=$(date +%s%N)
req GET /healthz
query "SHOW DATASETS;" "$S1"
t1=$(date +%s%N)
expect "while two others wait: a query is answered" 200 -
check "while two others wait: at once (under 3 s)" test $(( (t1 - t0) / 1000000 )) -lt 3000
wait "$SLOW"
wait "$LOCKER_PG" 2>/dev/null
RESP=$(cat "$SCRATCH/slow.out")
check "a slow stream: every line is JSON" ndjson_ok
check_contains "a slow stream: a heartbeat after 10 s of silence" '{"type":"heartbeat"}' "$RESP"
check_eq "a slow stream: then its result and the end" "result end" \
  "$(printf '%s\n' "$RESP" | jq -r .type | grep -v '^heartbeat$' | tr '\n' ' ' | sed 's/ $//')"
check "the client that went away: the server lives on" kill -0 "$A"
req GET /healthz
expect "the client that went away: /healthz still 200" 200 -
check_contains "the client that went away: logged" "stream cut short" "$(cat "$SCRATCH/a.err")"
check_eq "the client that went away: its database connection is back in the pool" 0 \
  "$(req GET /metrics; printf '%s\n' "$RESP" | sed -n 's/^rankql_db_pool_connections{state="busy"} //p')"

# ---- values that try to leave their string slot ---------------------------------------------
# Every value below goes into every string slot of SELECT and REGISTER. It must reach the
# database only as a parameter: a SELECT finds nothing and changes nothing, a REGISTER stores
# exactly the value (or refuses it with a 4xx), and no rows other than those registered here
# change.
catalog_sum() {
  psql_q "SELECT md5(coalesce((SELECT string_agg(m::text, '|' ORDER BY id) FROM models m WHERE id <= $1), '')
            || coalesce((SELECT string_agg(d::text, '|' ORDER BY id) FROM datasets d WHERE id <= $2), '')
            || (SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'))"
}
max_model=$(psql_q "SELECT coalesce(max(id), 0) FROM models")
max_dataset=$(psql_q "SELECT coalesce(max(id), 0) FROM datasets")
before=$(catalog_sum "$max_model" "$max_dataset")
long=$(head -c 5000 /dev/zero | tr '\0' 'L')
huge=$(head -c 50000 /dev/zero | tr '\0' 'H')
payloads=("'" '"' '`' "it's" 'say "hi"' "x'; DROP TABLE models; --" 'x"; DELETE FROM models; --'
  "'); UPDATE models SET name = 'pwned'; --" '-- comment' '/* c */ x' ';' 'a;b' '$1' '$$ $1 $2::text $$'
  '\' '\\' "\\'" 'back\slash' '%_' "line1
line2" 'ünï'"'"'cødé ☃' "$long'" "$huge")
# rq_lit QUOTE VALUE: a RankQL string literal holding VALUE (\ escapes for \ and the quote).
rq_lit() {
  local q=$1 v=$2
  v=${v//\\/\\\\}
  v=${v//$q/\\$q}
  printf '%s%s%s' "$q" "$v" "$q"
}
# The literals, made once: single, double and back quotes.
LITS=(); LITD=(); LITB=()
for p in "${payloads[@]}"; do
  LITS+=("$(rq_lit "'" "$p")"); LITD+=("$(rq_lit '"' "$p")"); LITB+=("$(rq_lit '`' "$p")")
done
# select_slot NAME TEMPLATE [all]: TEMPLATE has @ where the literal goes; with "all", every
# quote style, else single quotes. A SELECT must find nothing (no "rows":[[ anywhere in the
# answer) or be refused with a 4xx and an error code; never a 5xx.
select_slot() {
  local name=$1 template=$2 styles=S bad=0 i st lit
  [ "${3:-}" = all ] && styles="S D B"
  for i in "${!payloads[@]}"; do
    for st in $styles; do
      case $st in S) lit=${LITS[$i]} ;; D) lit=${LITD[$i]} ;; B) lit=${LITB[$i]} ;; esac
      query "${template//@/"$lit"}"
      if [ "$STATUS" = 200 ] && [[ $RESP == *'"row_count":0'* && $RESP != *'"rows":[['* ]]; then continue; fi
      if [[ $STATUS == 4?? && $RESP == *'"error":{"code":"'* ]]; then continue; fi
      bad=$((bad + 1))
      [ "$bad" -le 3 ] && printf '#   %s: %s\n' "${payloads[$i]:0:60}" "$STATUS ${RESP:0:200}"
    done
  done
  if [ "$bad" = 0 ]; then ok "security: $name: ${#payloads[@]} values found nothing, no 5xx"
  else not_ok "security: $name: $bad answers were not 'nothing found' or a 4xx"; fi
}
select_slot "SELECT WHERE name = '…' (3 quote styles)" "SELECT name FROM models WHERE name = @;" all
select_slot "SELECT WHERE source LIKE '…'" "SELECT name FROM models WHERE source LIKE @ AND name = 'nobody';"
select_slot "SELECT WHERE name IN ('…')" "SELECT name FROM models WHERE name IN ('nobody', @);"
select_slot "SELECT WHERE name BETWEEN '…' AND '…'" "SELECT name FROM models WHERE name BETWEEN @ AND @ AND name = 'nobody';"
select_slot "SELECT WHERE spec.extractor = '…'" "SELECT name FROM models WHERE spec.extractor = @;"
select_slot "SELECT WHERE NOT (… <> name)" "SELECT name FROM image_models WHERE NOT (@ <> name);"
select_slot "SELECT datasets WHERE location = '…'" "SELECT name FROM datasets WHERE location = @;"
select_slot "DECLARE … WHERE name = '…'" "DECLARE v AS SELECT * FROM models WHERE name = @;"
check_eq "security: after every SELECT the catalog is unchanged" "$before" "$(catalog_sum "$max_model" "$max_dataset")"

# register_slot NAME MODEL|DATASET TEMPLATE CHECK: TEMPLATE has @ for the literal and NEWNAME for
# a fresh name;
# CHECK is a jq filter over the /v1/models or /v1/datasets row (an array) giving the value.
registered=0
register_slot() {
  local name=$1 what=$2 template=$3 check=$4 bad=0 i=0 p lit fresh stmt stored
  for p in "${payloads[@]}"; do
    i=$((i + 1))
    fresh="sec-$name-$i"; fresh=${fresh//[^a-z0-9-]/-}
    lit=${LITS[$((i - 1))]}
    stmt=${template//@/"$lit"}; stmt=${stmt//NEWNAME/"$fresh"}
    query "$stmt"
    case "$STATUS" in
      200)
        registered=$((registered + 1))
        if [[ $template == *"REGISTER $what @"* ]]; then
          req GET "/v1/${what,,}s" '' -G --data-urlencode "name=$p"
        else
          req GET "/v1/${what,,}s?name=$fresh"
        fi
        stored=$(printf '%s' "$RESP" | jq -r ".rows[0] | $check" 2>/dev/null)
        if [ "$stored" != "$p" ]; then
          bad=$((bad + 1)); [ "$bad" -le 3 ] && printf '#   %s: stored as %s\n' "${p:0:60}" "${stored:0:60}"
        fi ;;
      4??) [[ $RESP == *'"error":{"code":"'* ]] || { bad=$((bad + 1)); printf '#   %s: %s\n' "${p:0:60}" "${RESP:0:200}"; } ;;
      *) bad=$((bad + 1)); [ "$bad" -le 3 ] && printf '#   %s: %s\n' "${p:0:60}" "$STATUS ${RESP:0:200}" ;;
    esac
  done
  if [ "$bad" = 0 ]; then ok "security: $name: ${#payloads[@]} values stored exactly or refused with a 4xx"
  else not_ok "security: $name: $bad values were mangled or got a 5xx"; fi
}
register_slot "REGISTER MODEL name" MODEL \
  "REGISTER MODEL @ (modality, runner, spec) VALUES ('image', 'builtin', {extractor: 'raw'});" '.[0]'
register_slot "REGISTER MODEL source" MODEL \
  "REGISTER MODEL 'NEWNAME' (modality, runner, spec, source) VALUES ('image', 'builtin', {extractor: 'raw'}, @);" '.[2]'
register_slot "REGISTER MODEL spec.path" MODEL \
  "REGISTER MODEL 'NEWNAME' (modality, runner, spec) VALUES ('image', 'builtin', {extractor: 'raw', path: @});" '.[14].path'
register_slot "REGISTER MODEL spec.command" MODEL \
  "REGISTER MODEL 'NEWNAME' (modality, runner, spec) VALUES ('image', 'exec', {command: [@]});" '.[14].command[0]'
register_slot "REGISTER MODEL tags" MODEL \
  "REGISTER MODEL 'NEWNAME' (modality, runner, spec, tags) VALUES ('image', 'builtin', {extractor: 'raw'}, ['t', @]);" '.[11][1]'
register_slot "REGISTER MODEL hf_name" MODEL \
  "REGISTER MODEL 'NEWNAME' (modality, runner, hf_name) VALUES ('text', 'huggingface', @);" '.[14].hf_name'
register_slot "REGISTER DATASET name" DATASET \
  "REGISTER DATASET @ (format, hf_dataset_name) VALUES ('hf', 'x');" '.[0]'
register_slot "REGISTER DATASET location" DATASET \
  "REGISTER DATASET 'NEWNAME' (format, location) VALUES ('hf', @);" '.[3]'
register_slot "REGISTER DATASET split" DATASET \
  "REGISTER DATASET 'NEWNAME' (format, hf_dataset_name, split) VALUES ('hf', 'x', @);" '.[4]'
register_slot "REGISTER DATASET hf_dataset_name" DATASET \
  "REGISTER DATASET 'NEWNAME' (format, hf_dataset_name) VALUES ('hf', @);" '.[10].hf_dataset_name'
check_eq "security: after every REGISTER the rows that were there are unchanged, no table dropped" \
  "$before" "$(catalog_sum "$max_model" "$max_dataset")"
check_eq "security: no row was renamed to 'pwned'" 0 "$(psql_q "SELECT count(*) FROM models WHERE name = 'pwned'")"
check_eq "security: exactly the accepted REGISTERs added rows" "$registered" \
  "$(psql_q "SELECT (SELECT count(*) FROM models WHERE id > $max_model) + (SELECT count(*) FROM datasets WHERE id > $max_dataset)")"
req GET /healthz
expect "security: the server is still healthy" 200 -

# ---- server B: --db on a PostgreSQL that goes away; time limits ----------------------------
mkdir -p "$EXT"; [ "$(id -u)" = 0 ] && chown postgres: "$EXT"
as_pg "$PGBIN/initdb" -D "$EXT/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$EXT/initdb.log" 2>&1
ext_start() {
  as_pg "$PGBIN/pg_ctl" -D "$EXT/data" -l "$EXT/server.log" -w -t 30 \
    -o "-k $EXT -c listen_addresses='' -c fsync=off" start >/dev/null 2>&1
}
ext_start
PORTB=$(free_port); BASEB=http://127.0.0.1:$PORTB
if start_server "$SCRATCH/b.err" --db "host=$EXT user=postgres dbname=postgres" \
     --listen "127.0.0.1:$PORTB" --query-timeout 2 --db-pool 1 --threads 2; then
  ok "--db server starts"; else not_ok "--db server starts"; sed 's/^/#   /' "$SCRATCH/b.err"; fi
B=$SRV
BASE=$BASEB
req GET /healthz
expect "--db: /healthz 200" 200 -

# ---- the WHERE cases of the executor, over HTTP ---------------------------------------------
# where_cases.txt (the executor's): "statement | expected names", the names of the result
# sorted and joined by ", ", "(none)" for no rows, the statement everything before the last
# " | ". They run against the fixed catalog of itest_executor.c (load_catalog()), loaded here
# from that file into this server's fresh database.
CASES=$RANKQL_ROOT/tests/integration/where_cases.txt
ITEST_C=$RANKQL_ROOT/tests/integration/itest_executor.c
if [ -f "$CASES" ] && [ -f "$ITEST_C" ]; then
  catalog=$(sed -n '/^static const char catalog_sql\[\] =/,/";$/p' "$ITEST_C" | sed '1d' |
    sed -e 's/^[[:space:]]*"//' -e 's/";\{0,1\}[[:space:]]*$//' -e 's/\\"/"/g' | tr -d '\n')
  out=$(psql -X -q -v ON_ERROR_STOP=1 -h "$EXT" -U postgres -d postgres -c "$catalog" 2>&1)
  check_eq "where cases: the catalog of itest_executor.c loads" "" "$out"
  WS=$(curl -s --max-time 30 -X POST "$BASE/v1/sessions" | jq -r .session)
  n=0
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in ''|'#'*) continue ;; esac
    stmt=${line% | *}; want=${line##* | }
    [ "$want" = "(none)" ] && want=
    query "$stmt" "$WS"
    got=$(jf '(.columns | index("name")) as $i | if $i == null then "(no name column)" else [.rows[][$i]] | sort | join(", ") end')
    n=$((n + 1))
    if [ "$STATUS" = 200 ] && [ "$got" = "$want" ]; then
      ok "where case over HTTP: $stmt"
    else
      not_ok "where case over HTTP: $stmt"
      printf '#   expected: %s\n#   actual:   %s %s\n' "$want" "$STATUS" "${got:-${RESP:0:300}}"
    fi
  done <"$CASES"
  check "where cases: at least one case ran" test "$n" -gt 0
else
  not_ok "where cases over HTTP: $CASES or $ITEST_C is missing"
fi

# A table lock held elsewhere: the statement hits --query-timeout; a second request waits for
# the only pooled connection and runs out of time too.
psql -X -q -h "$EXT" -U postgres -d postgres \
  -c "BEGIN; LOCK TABLE models IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(8); COMMIT;" >/dev/null 2>&1 &
LOCKER=$!
for _ in $(seq 1 50); do
  [ "$(psql -X -qAt -h "$EXT" -U postgres -d postgres -c "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'models' AND l.mode = 'AccessExclusiveLock' AND l.granted")" = 1 ] && break
  sleep 0.1
done
curl -s -o "$SCRATCH/second.json" -w '%{http_code}' --max-time 30 -X POST "${JSON[@]}" \
  --data-binary '{"query": "SELECT name FROM models;"}' "$BASE/v1/query" >"$SCRATCH/second.status" 2>/dev/null &
second=$!
t0=$(date +%s%N)
query "SELECT name FROM models;"
t1=$(date +%s%N)
expect "a statement past --query-timeout: 503 timeout" 503 timeout
ms=$(( (t1 - t0) / 1000000 ))
if [ "$ms" -ge 1500 ] && [ "$ms" -lt 6000 ]; then ok "it took about --query-timeout (2 s): $ms ms"; else
  not_ok "it took about --query-timeout (2 s)"; echo "#   $ms ms"; fi
wait "$second"
check_eq "a request waiting for a busy pool past the time limit: 503" 503 "$(cat "$SCRATCH/second.status")"
check_eq "... with code timeout" timeout "$(jq -r .error.code "$SCRATCH/second.json" 2>/dev/null)"
wait "$LOCKER" 2>/dev/null; LOCKER=
req GET /metrics
waits=$(printf '%s\n' "$RESP" | sed -n 's/^rankql_db_pool_waits_total //p')
check "metrics: the pool wait was counted" test "${waits:-0}" -ge 1
query "SELECT name FROM models;"
expect "once the lock is gone: 200" 200 -

# The database stops: 503 and a reason; it comes back: served again, no restart of rankqld.
as_pg "$PGBIN/pg_ctl" -D "$EXT/data" -m immediate -w -t 20 stop >/dev/null 2>&1
req GET /healthz
check_eq "database down: /healthz 503" 503 "$STATUS"
check_eq "database down: /healthz says unavailable" unavailable "$(jf .status)"
check "database down: /healthz gives the reason" test -n "$(jf .database)"
query "SELECT name FROM models;"
expect "database down: a query gets 503" 503 database_unavailable
req POST /v1/sessions
expect "database down: POST /v1/sessions gets 503" 503 database_unavailable
req GET /v1/models
expect "database down: GET /v1/models gets 503" 503 database_unavailable
ext_start
req GET /healthz
expect "database back: /healthz 200" 200 -
query "SELECT name FROM models;"
expect "database back: queries are served again" 200 -
stop_rankqld "$B"; rc=$?
check_eq "--db server: SIGTERM exits 0" 0 "$rc"
check "--db server: no per-request log without --verbose (no request lines)" \
  bash -c "! grep -q 'POST /v1/query' '$SCRATCH/b.err'"

# ---- tokens ---------------------------------------------------------------------------------
TOKEN1=tok-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
TOKEN2=tok-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '# rankql tokens\n\n  %s  \n%s\n' "$TOKEN1" "$TOKEN2" >"$SCRATCH/tokens"
chmod 600 "$SCRATCH/tokens"
PORTC=$(free_port)
if start_server "$SCRATCH/c.err" --db "host=$SOCK user=rankql dbname=rankql" \
     --listen "0.0.0.0:$PORTC" --token-file "$SCRATCH/tokens"; then
  ok "0.0.0.0 with --token-file starts"; else not_ok "0.0.0.0 with --token-file starts"; sed 's/^/#   /' "$SCRATCH/c.err"; fi
C=$SRV
BASE=http://127.0.0.1:$PORTC
check_contains "it says tokens are needed" "needs a bearer token (2 in" "$(cat "$SCRATCH/c.err")"
req GET /healthz
expect "tokens: /healthz needs none" 200 -
req GET /v1/models
expect "tokens: no token: 401" 401 unauthorized
check_contains "tokens: 401 says how to authenticate" "WWW-Authenticate: Bearer" "$HDRS"
req GET /v1/models '' -H "Authorization: Bearer wrong-token-0000000000"
expect "tokens: a wrong token: 401" 401 unauthorized
req GET /v1/models '' -H "Authorization: Bearer ${TOKEN1}x"
expect "tokens: a token with an extra character: 401" 401 unauthorized
req GET /v1/models '' -H "Authorization: Bearer ${TOKEN1:0:20}"
expect "tokens: a prefix of a token: 401" 401 unauthorized
req GET /v1/models '' -H "Authorization: Basic $TOKEN1"
expect "tokens: another scheme: 401" 401 unauthorized
req GET /v1/models '' -H "Authorization: Bearer $TOKEN1"
expect "tokens: the first token (trimmed in the file): 200" 200 -
req GET /v1/models '' -H "Authorization: bearer $TOKEN2"
expect "tokens: the second token, scheme in any case: 200" 200 -
query "SELECT name FROM models;"
expect "tokens: a query without token: 401" 401 unauthorized
query "SELECT name FROM models;" "" -H "Authorization: Bearer $TOKEN2"
expect "tokens: a query with a token: 200" 200 -
req GET /metrics
expect "tokens: /metrics needs one: 401" 401 unauthorized
req GET /v1/nothing
expect "tokens: an unknown path without token is 401, not 404" 401 unauthorized
req POST /v1/query "@$SCRATCH/fits.json" "${JSON[@]}"
expect "tokens: a body without token is refused before it is read: 401" 401 unauthorized
stop_rankqld "$C"; rc=$?
check_eq "token server: SIGTERM exits 0" 0 "$rc"

chmod 644 "$SCRATCH/tokens"
PORTD=$(free_port)
if start_server "$SCRATCH/d.err" --db "host=$SOCK user=rankql dbname=rankql" \
     --listen "127.0.0.1:$PORTD" --token-file "$SCRATCH/tokens"; then
  ok "loopback with --token-file starts"; else not_ok "loopback with --token-file starts"; sed 's/^/#   /' "$SCRATCH/d.err"; fi
D=$SRV
BASE=http://127.0.0.1:$PORTD
check_contains "a token file others can read gets a warning" "can be read by other users" "$(cat "$SCRATCH/d.err")"
req GET /v1/models
expect "loopback with --token-file: no token is 401" 401 unauthorized
req GET /v1/models '' -H "Authorization: Bearer $TOKEN1"
expect "loopback with --token-file: a token is 200" 200 -
stop_rankqld "$D"

if ip -6 addr show lo 2>/dev/null | grep -q '::1'; then
  PORTE=$(free_port)
  if start_server "$SCRATCH/e.err" --db "host=$SOCK user=rankql dbname=rankql" --listen "[::1]:$PORTE"; then
    ok "[::1] starts without token"; else not_ok "[::1] starts without token"; sed 's/^/#   /' "$SCRATCH/e.err"; fi
  check_contains "[::1]: listening line" "listening on http://[::1]:$PORTE" "$(cat "$SCRATCH/e.err")"
  BASE="http://[::1]:$PORTE"
  req GET /healthz '' -g
  expect "[::1]: /healthz" 200 -
  stop_rankqld "$SRV"
else
  ok "IPv6 loopback # skip: no ::1 on lo"
fi

# ---- stopping ---------------------------------------------------------------------------------
BASE=http://127.0.0.1:$PORT
stop_rankqld "$A"; rc=$?
check_eq "SIGTERM: rankqld exits 0" 0 "$rc"
check_contains "SIGTERM: it says it stops" "SIGTERM received, stopping" "$(cat "$SCRATCH/a.err")"
check_contains "SIGTERM: the embedded PostgreSQL is stopped" "stopped PostgreSQL" "$(cat "$SCRATCH/a.err")"
check "SIGTERM: postmaster.pid removed" test ! -e "$DATA/pg/postmaster.pid"
req GET /healthz
check_eq "SIGTERM: the port is closed" 000 "$STATUS"
if grep -q 'ERROR: \(AddressSanitizer\|LeakSanitizer\)\|runtime error:' "$SCRATCH"/*.err; then
  not_ok "no sanitizer reports"; grep -h -A5 'Sanitizer\|runtime error' "$SCRATCH"/*.err | head -40 | sed 's/^/#   /'
else
  ok "no sanitizer reports"
fi

finish
