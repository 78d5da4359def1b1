#!/usr/bin/env bash
# Security end to end (docs/operations.md "Security", docs/http-api.md "Authentication"):
# catalog tokens made with `rankql token create` over loopback, their hash in api_tokens,
# roles (an analyst is refused REGISTER with 403 and a denied audit row, an admin is not),
# revocation (at once on this server, within the 5 s cache elsewhere), expiry, bad tokens,
# sessions bound to their token, CANCEL of one's own queries only, the job quota (429), the
# per-session query limit (429), query and result size limits (413), --max-wait, and the
# refusal to serve a non-loopback address without a live token; and model runners run in
# rankql-worker processes, never in rankqld.
#
# rankqld runs on its embedded PostgreSQL with --workers 0: jobs stay queued, so the job
# counts the quota sees do not move under the test. Every rankqld started here is stopped by
# the EXIT trap; every request is bounded.
# shellcheck disable=SC2016  # jq programs are single-quoted
set -u
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

RANKQLD=${RANKQLD:-$RANKQL_BIN/rankqld}
SHELL_BIN=$RANKQL_BIN/rankql
rq_need_tools curl jq psql sha256sum
rq_need_execs "$RANKQLD" "$SHELL_BIN" "$(rq_pg_bindir)/initdb"
rq_fashion_mnist train
rq_scratch

# start ERRFILE ARGS…: rankqld on $DATA with --workers 0 (rq_start); waits for "listening on".
start() { local err=$1; shift; rq_start "$err" --data-dir "$DATA" --pg-no-sync --workers 0 "$@"; }

JSON=(-H 'Content-Type: application/json')
# req METHOD PATH [BODY [CURL-ARGS…]]: sets STATUS and RESP.
req() {
  local method=$1 path=$2 data=()
  shift 2
  if [ $# -gt 0 ]; then [ -n "$1" ] && data=(--data-binary "$1"); shift; fi
  STATUS=$(curl -s -o "$SCRATCH/resp" -w '%{http_code}' --max-time 30 -X "$method" \
    "${data[@]}" "$@" "$BASE$path" 2>/dev/null) || true
  [ -n "$STATUS" ] || STATUS=000
  RESP=$(cat "$SCRATCH/resp" 2>/dev/null)
}
# q TOKEN TEXT [SESSION]: POST /v1/query as TOKEN ("" = none).
q() {
  local auth=()
  [ -n "$1" ] && auth=(-H "Authorization: Bearer $1")
  jq -n --arg q "$2" --arg s "${3:-}" '{query: $q} + (if $s == "" then {} else {session: $s} end)' \
    >"$SCRATCH/body.json"
  req POST /v1/query "@$SCRATCH/body.json" "${JSON[@]}" "${auth[@]}"
}
jf() { printf '%s' "$RESP" | jq -cr "$1" 2>/dev/null; }
expect() {
  local got; got=$(jf '.error.code // "-"')
  if [ "$STATUS" = "$2" ] && [ "$got" = "${3:--}" ]; then ok "$1"; else
    not_ok "$1"; printf '#   expected: %s %s\n#   actual:   %s %s\n' "$2" "${3:--}" "$STATUS" "${RESP:0:500}"; fi
}
jcheck() {
  if [ "$(jf "$2")" = true ]; then ok "$1"; else
    not_ok "$1"; printf '#   failed: %s\n#   on: %s\n' "$2" "${RESP:0:500}"; fi
}
tok() { "$SHELL_BIN" -H "127.0.0.1:$PORT" "$@"; }

# ---- 1. a non-loopback address needs a token ------------------------------------------------
PORT=$(free_port); BASE=http://127.0.0.1:$PORT
out=$(timeout 20 "$RANKQLD" --data-dir "$SCRATCH/never" --listen "0.0.0.0:$PORT" 2>&1); rc=$?
check_eq "0.0.0.0 without tokens or a cluster: exits 2" 2 "$rc"
check_contains "0.0.0.0 refusal explains rankql token create" "token create --name NAME --role admin" "$out"
check "0.0.0.0 refusal creates no data directory" test ! -e "$SCRATCH/never"

# ---- 2. loopback, no token: the first tokens ------------------------------------------------
if start "$SCRATCH/a.err" --listen "127.0.0.1:$PORT" --quota-jobs 4 --max-query 12K \
     --max-result 16K --max-concurrent-queries 1 --max-wait 3; then
  ok "rankqld starts on loopback"; else not_ok "rankqld starts on loopback"; sed 's/^/#   /' "$SCRATCH/a.err"; finish; fi
check "the migration 007 is applied" test "$(rq_sql "SELECT count(*) FROM schema_migrations WHERE version = 7")" = 1

ADMIN=$(tok token create --name boss --role admin 2>"$SCRATCH/create.err"); rc=$?
check_eq "rankql token create (loopback, no token) exits 0" 0 "$rc"
check "the token has the rqt_ prefix and 43 base64url characters" \
  bash -c "[[ '$ADMIN' =~ ^rqt_[A-Za-z0-9_-]{43}$ ]]"
check_contains "create says the token is shown once" "shown once" "$(cat "$SCRATCH/create.err")"
hash=$(printf '%s' "$ADMIN" | sha256sum | cut -d' ' -f1)
check_eq "api_tokens stores the token's SHA-256, not the token" "boss|admin" \
  "$(rq_sql "SELECT name, role FROM api_tokens WHERE token_hash = '$hash'")"
check_eq "no column holds the token itself" 0 \
  "$(rq_sql "SELECT count(*) FROM api_tokens t WHERE row_to_json(t)::text LIKE '%${ADMIN:4:20}%'")"
ANA=$(tok token create --name ana --role analyst --expires 30d 2>/dev/null)
ANA2=$(tok token create --name ana2 --role analyst 2>/dev/null)
EXP=$(tok token create --name brief --role analyst --expires 4s 2>/dev/null); EXP_AT=$(date +%s.%N)
check "three more tokens" test -n "$ANA" -a -n "$ANA2" -a -n "$EXP"
out=$(tok token create --name ana --role analyst 2>&1); rc=$?
check_eq "a second live token named ana: exit 1" 1 "$rc"
check_contains "  … says the name is taken" "already has this name" "$out"
out=$(tok token create --name x --role root 2>&1); rc=$?
check_eq "an unknown role: exit 1" 1 "$rc"
RESP=$(tok token list --json)
jcheck "token list: 4 tokens, live, no hash, no token" \
  '(map(.name) == ["boss", "ana", "ana2", "brief"]) and (.[0:3] | map(.status) | all(. == "live")) and (map(keys) | flatten | index("token_hash") == null) and (map(keys) | flatten | index("token") == null)'
jcheck "token list: ana expires in 30 days, boss never" \
  '(.[0].expires_at == null) and (.[1].expires_at != null)'
check_contains "token list as a table" "analyst" "$(tok token list)"
ANA_ID=$(rq_sql "SELECT id FROM api_tokens WHERE name = 'ana'")
ADMIN_ID=$(rq_sql "SELECT id FROM api_tokens WHERE name = 'boss'")

# ---- 3. bad tokens ---------------------------------------------------------------------------
q "rqt_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" "SELECT name FROM models;"
expect "a well-formed unknown token: 401" 401 unauthorized
q "not-a-token-at-all-1234" "SELECT name FROM models;"
expect "a malformed token: 401 (also on loopback)" 401 unauthorized
req GET /v1/models '' -H "Authorization: Basic $ANA"
expect "another scheme: 401" 401 unauthorized
q "" "SELECT name FROM models;"
expect "loopback without a token: 200 (admin)" 200
sleep "$(awk -v a="$EXP_AT" -v b="$(date +%s.%N)" 'BEGIN { d = 4.5 - (b - a); print (d > 0 ? d : 0) }')"
q "$EXP" "SELECT name FROM models;"
expect "an expired token: 401" 401 unauthorized
check_contains "  … says it expired" "expired" "$(jf .error.message)"

# ---- 4. roles -------------------------------------------------------------------------------
REG_M="REGISTER MODEL \"s/raw\" (runner, modality, source, spec, image_size, dimension, batch_size) VALUES ('builtin', 'image', 'builtin', {extractor: \"raw\"}, 28, 784, 1024);"
q "$ANA" "$REG_M"
expect "analyst REGISTER MODEL: 403" 403 forbidden
check_contains "  … names the statement and the role" "REGISTER MODEL needs the admin role; token 'ana' has the role analyst" "$(jf .error.message)"
check_eq "  … a denied audit row with the token, action and statement" "register_model|denied|$ANA_ID|t" \
  "$(rq_sql "SELECT action, outcome, token_id, statement LIKE 'REGISTER MODEL \"s/raw\"%' FROM audit_log ORDER BY id DESC LIMIT 1")"
check_eq "  … nothing registered" 0 "$(rq_sql "SELECT count(*) FROM models WHERE name = 's/raw'")"
q "$ANA" "SHOW MODELS; DECLARE v AS SELECT name FROM models; PURGE;"
expect "a batch with PURGE third: 403" 403 forbidden
jcheck "  … the forbidden statement is named (index 2), nothing ran" '.statement == 2 and .results == []'
check_eq "  … DECLARE before it did not run" 0 "$(rq_sql "SELECT count(*) FROM session_variables WHERE name = 'v'")"
q "$ANA" "SELECT name FROM models LIMIT 1; SHOW JOBS;"
expect "analyst SELECT and SHOW: 200" 200
q "$ADMIN" "$REG_M"
expect "admin REGISTER MODEL: 200" 200
check_eq "  … an ok audit row with the admin's token" "register_model|ok|$ADMIN_ID" \
  "$(rq_sql "SELECT action, outcome, token_id FROM audit_log ORDER BY id DESC LIMIT 1")"
q "$ADMIN" "REGISTER MODEL \"s/bad\" (no_such_field) VALUES (1);"
check "admin REGISTER with an unknown field: 4xx" test "${STATUS:0:1}" = 4
check_eq "  … an error audit row with the error's code" "register_model|error|$(jf .error.code)" \
  "$(rq_sql "SELECT action, outcome, detail->'error'->>'code' FROM audit_log ORDER BY id DESC LIMIT 1")"
idx() { rq_idx_dataset "$1" "$TRI" "$TRL" "$2" "$3"; }
q "" "REGISTER MODEL \"s/pca\" (runner, modality, source, spec, image_size, dimension, batch_size) VALUES ('builtin', 'image', 'builtin', {extractor: \"pca\", k: 4}, 28, 4, 1024); $(idx tr 0 200) $(idx te 200 300)"
expect "loopback (no token) registers a model and two datasets" 200
check_eq "  … audited as loopback without a token id" "3|3" \
  "$(rq_sql "SELECT count(*), count(*) FILTER (WHERE token_id IS NULL AND detail->>'auth' = 'loopback') FROM audit_log WHERE action IN ('register_model', 'register_dataset') AND outcome = 'ok' AND id > (SELECT max(id) - 3 FROM audit_log)")"
req POST /v1/tokens '{"name": "sneaky", "role": "admin"}' "${JSON[@]}" -H "Authorization: Bearer $ANA"
expect "analyst POST /v1/tokens: 403" 403 forbidden
check_eq "  … a denied token_create audit row" "token_create|denied|$ANA_ID" \
  "$(rq_sql "SELECT action, outcome, token_id FROM audit_log ORDER BY id DESC LIMIT 1")"
req GET /v1/tokens '' -H "Authorization: Bearer $ANA"
expect "analyst GET /v1/tokens: 403" 403 forbidden
req PUT /v1/tokens '' -H "Authorization: Bearer $ADMIN"
expect "PUT /v1/tokens: 405" 405 method_not_allowed

# ---- 5. sessions belong to their token --------------------------------------------------------
q "$ANA" "DECLARE mine AS SELECT name FROM models;"
S_ANA=$(jf .session)
q "$ANA2" "PRINT mine;" "$S_ANA"
expect "another token cannot use ana's session: 404" 404 not_found
q "" "PRINT mine;" "$S_ANA"
expect "nor can loopback without a token: 404" 404 not_found
q "$ANA" "PRINT mine;" "$S_ANA"
expect "ana can" 200
check_eq "the session records its token" "$ANA_ID" "$(rq_sql "SELECT token_id FROM sessions WHERE id = '$S_ANA'")"

# ---- 6. limits: query size, result size, WAIT, queries per session ----------------------------
long="SELECT name FROM models WHERE name = '$(head -c 12400 /dev/zero | tr '\0' x)';"
q "$ANA" "$long"
expect "a query over --max-query 12K: 413" 413 query_too_large
q "$ANA" "SELECT name FROM models LIMIT 1;"
expect "a small result: 200" 200
pad=$(head -c 9000 /dev/zero | tr '\0' y)
q "$ANA" "SELECT name, '$pad' AS pad FROM models LIMIT 1;"
expect "one row of 9000 bytes: 200" 200
q "$ANA" "SELECT name, '$pad' AS pad FROM models;"
expect "two rows of 9000 bytes, over --max-result 16K: 413" 413 result_too_large
check_contains "  … says how large and the limit" "over the 16384 this server sends (--max-result)" "$(jf .error.message)"
RANK_TR='TRAINED ON "tr" TESTED ON TASK "te" CLASSIFIED BY ["Euclidean NN"]'
# No worker runs: a WAIT ranking waits --max-wait 3 s, then answers what is known.
t0=$(date +%s.%N)
q "" "SELECT name FROM models WHERE name = 's/pca' ORDER BY err $RANK_TR WAIT;"
t1=$(date +%s.%N)
expect "a WAIT with no worker answers after --max-wait" 200
check "  … in 3 to 10 s" awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a >= 2.9 && b - a < 10) }'
check_contains "  … saying WAIT stopped" "WAIT stopped after" "$(jf '.notices | join(" ")')"
# --max-concurrent-queries 1: a second query of a session while its WAIT runs.
q "" "SHOW JOBS;"
S_LOOP=$(jf .session)
jq -n --arg s "$S_LOOP" --arg q "SELECT name FROM models WHERE name = 's/pca' ORDER BY err $RANK_TR WAIT;" \
  '{query: $q, session: $s}' >"$SCRATCH/wait.json"
curl -s -o /dev/null --max-time 20 "${JSON[@]}" --data-binary "@$SCRATCH/wait.json" "$BASE/v1/query" &
RQ_BG+=($!)
sleep 1
q "" "SHOW JOBS;" "$S_LOOP"
expect "a second query of the session while one runs: 429" 429 too_many_queries
wait "${RQ_BG[-1]}"
q "" "SHOW JOBS;" "$S_LOOP"
expect "after it: 200" 200

# ---- 7. the job quota and CANCEL of one's own ---------------------------------------------------
# The loopback rankings above queued s/pca's 3 jobs (2 embed, 1 proxy); loopback has no quota.
q "$ANA" "SELECT name FROM models WHERE name = 's/raw' ORDER BY err $RANK_TR;"
expect "analyst ranking of 3 jobs under a quota of 4: 200" 200
jcheck "  … 3 jobs submitted" '.jobs.submitted == 3'
QA=$(jf .query_id)
check_eq "  … its query records ana's token" "$ANA_ID" "$(rq_sql "SELECT token_id FROM queries WHERE id = '$QA'")"
q "$ANA" "SELECT name FROM models WHERE name = 's/pca' ORDER BY err $RANK_TR;"
expect "a ranking sharing 3 more queued jobs (3 + 3 > 4): 429" 429 quota_exceeded
check_contains "  … says why" "would submit 3 jobs; token 'ana' has 3 queued or running and a quota of 4" "$(jf .error.message)"
q "$ANA2" "SELECT name FROM models WHERE name = 's/pca' ORDER BY err $RANK_TR;"
expect "another token has its own quota: 200" 200
q "" "SELECT name FROM models WHERE name = 's/raw' ORDER BY err TRAINED ON \"tr\" TESTED ON TASK \"te\" CLASSIFIED BY [\"logme\"];"
QL=$(jf .query_id)
check "loopback ranks with another proxy (a query of no token)" test -n "$QL"
q "$ANA" "CANCEL QUERY '$QL';"
expect "analyst CANCEL QUERY of another's query: 403" 403 forbidden
check_eq "  … a denied cancel_query row" "cancel_query|denied" "$(rq_sql "SELECT action, outcome FROM audit_log ORDER BY id DESC LIMIT 1")"
JL=$(rq_sql "SELECT max(job_id) FROM query_jobs WHERE query_id = '$QL'")
JA=$(rq_sql "SELECT min(job_id) FROM query_jobs WHERE query_id = '$QA'")
q "$ANA2" "CANCEL JOB $JA;"
expect "analyst CANCEL JOB of another token's job: 403" 403 forbidden
q "$ANA" "CANCEL QUERY '$QA';"
expect "analyst CANCEL QUERY of its own: 200" 200
check_eq "  … an ok cancel_query row" "cancel_query|ok|$ANA_ID" "$(rq_sql "SELECT action, outcome, token_id FROM audit_log ORDER BY id DESC LIMIT 1")"
q "$ANA" "SELECT name FROM models WHERE name = 's/pca' ORDER BY err $RANK_TR;"
expect "after its cancel, the quota has room again: 200" 200
q "$ADMIN" "CANCEL JOB $JL;"
expect "admin CANCEL JOB of anyone's: 200" 200
q "$ANA" "SELECT name FROM models WHERE name = 's/raw' ORDER BY err $RANK_TR;"
expect "with 3 queued again, 3 more are refused: 429" 429 quota_exceeded
jq -n --arg q "SELECT name FROM models WHERE name = 's/raw' ORDER BY err $RANK_TR;" '{query: $q, dry: true}' >"$SCRATCH/dry.json"
req POST /v1/query "@$SCRATCH/dry.json" "${JSON[@]}" -H "Authorization: Bearer $ANA"
expect "a dry run is not held to the quota" 200
jcheck "  … and says what would run" '.status == "dry" and .remaining_jobs == 3' 

# ---- 8. revocation ------------------------------------------------------------------------------
printf '%s\n' "$ADMIN" >"$SCRATCH/admin.tok"
q "$ANA2" "SELECT name FROM models LIMIT 1;"
expect "ana2 works before revocation" 200
out=$("$SHELL_BIN" -H "127.0.0.1:$PORT" --token "$SCRATCH/admin.tok" token revoke ana2 2>&1); rc=$?
check_eq "rankql token revoke NAME with an admin token: exit 0" 0 "$rc"
check_contains "  … says what it revoked" "revoked token" "$out"
q "$ANA2" "SELECT name FROM models LIMIT 1;"
expect "a revoked token is refused at once by the server that revoked it: 401" 401 unauthorized
check_contains "  … says it was revoked" "was revoked" "$(jf .error.message)"
check_eq "  … a token_revoke audit row" "token_revoke|ok|$ADMIN_ID" "$(rq_sql "SELECT action, outcome, token_id FROM audit_log WHERE action = 'token_revoke' ORDER BY id DESC LIMIT 1")"
# Another rankqld revoking (here: the table, directly): refused within the 5 s cache.
q "$ANA" "SELECT name FROM models LIMIT 1;"
expect "ana works (and is cached)" 200
rq_sql "UPDATE api_tokens SET revoked_at = now() WHERE name = 'ana'" >/dev/null
t0=$(date +%s.%N); refused=0
for _ in $(seq 1 80); do
  q "$ANA" "SELECT name FROM models LIMIT 1;"
  [ "$STATUS" = 401 ] && { refused=1; break; }
  sleep 0.1
done
t1=$(date +%s.%N)
check_eq "a token revoked elsewhere is refused" 1 "$refused"
check "  … within the documented 5 s (+1 s)" awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a <= 6) }'
echo "# revoked elsewhere: refused after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
check "last_used_at is recorded for a used token" test "$(rq_sql "SELECT last_used_at IS NOT NULL FROM api_tokens WHERE name = 'boss'")" = t
out=$(tok token revoke nobody 2>&1); rc=$?
check_eq "revoking an unknown name: exit 1" 1 "$rc"
rq_stop; rc=$?
check_eq "loopback server: SIGTERM exits 0" 0 "$rc"

# ---- 9. exposed: 0.0.0.0 with catalog tokens, then with none --------------------------------------
if start "$SCRATCH/b.err" --listen "0.0.0.0:$PORT"; then
  ok "0.0.0.0 with a live catalog token starts"; else not_ok "0.0.0.0 with a live catalog token starts"; sed 's/^/#   /' "$SCRATCH/b.err"; fi
check_contains "  … says tokens are needed" "needs a bearer token (1 in the catalog)" "$(cat "$SCRATCH/b.err")"
q "" "SELECT name FROM models LIMIT 1;"
expect "  … no token (even from 127.0.0.1): 401" 401 unauthorized
q "$ADMIN" "SELECT name FROM models LIMIT 1;"
expect "  … the admin token: 200" 200
req GET /healthz
expect "  … /healthz needs none" 200
rq_sql "UPDATE api_tokens SET revoked_at = now() WHERE revoked_at IS NULL" >/dev/null
rq_stop
out=$(timeout 60 "$RANKQLD" --data-dir "$DATA" --pg-no-sync --workers 0 --listen "0.0.0.0:$PORT" 2>&1); rc=$?
check_eq "0.0.0.0 with every token revoked: exits 2" 2 "$rc"
check_contains "  … explains rankql token create" "rankql -H 127.0.0.1:PORT token create" "$out"
check "  … and leaves no PostgreSQL running" test ! -f "$DATA/pg/postmaster.pid"

# ---- 10. model runners run in worker processes, never in rankqld ----------------------------------
# Statically: rankqld has no worker loop, and nothing rankqld runs outside executor/workers/
# claims a job or calls a runner or a strategy plugin's run.
check "rankqld is linked without the worker loop (worker_run)" \
  bash -c "! nm '$RANKQLD' | grep -q ' T worker_run$'"
callers=$(cd "$RANKQL_ROOT" && grep -rlE 'queue_claim|job_runner_find|exec_runner_embed|onnx_runner_embed|[^_]ext_run\(' \
  --include='*.c' server executor planner queue extensions | grep -vE '^(executor/workers/|queue/queue\.c|extensions/run\.c)')
check_eq "no rankqld code path claims jobs or runs a runner or plugin" "" "$callers"
# At run time: an exec model that records its parent process, ranked by a rankqld with a
# local worker. Every run of the command (its registration check, its embed jobs) must have
# rankql-worker as its parent.
REC=$SCRATCH/parents
cat >"$SCRATCH/model.sh" <<EOF
#!/bin/sh
echo "\$(cat /proc/\$PPID/comm) \$PPID" >>'$REC'
exec python3 '$RANKQL_ROOT/examples/exec/embed_mean.py'
EOF
chmod 755 "$SCRATCH/model.sh"
if command -v python3 >/dev/null && start "$SCRATCH/c.err" --listen "127.0.0.1:$PORT" --workers 1 --max-wait 60; then
  q "" "REGISTER MODEL \"s/exec\" (runner, modality, spec, batch_size) VALUES ('exec', 'image', {command: [\"$SCRATCH/model.sh\"], timeout_seconds: 60}, 256);"
  expect "an exec model registers" 200
  for _ in $(seq 1 8); do
    q "" "SELECT name FROM models WHERE name = 's/exec' ORDER BY err $RANK_TR WAIT;"
    [ "$(jf .status)" = complete ] && break
    sleep 2
  done
  check "the exec model ran (the command recorded its parent)" test -s "$REC"
  check_eq "every run's parent is rankql-worker, never rankqld" "" \
    "$(awk -v srv="$RQ_PID" '$1 != "rankql-worker" || $2 == srv' "$REC" 2>/dev/null)"
  echo "# exec runs: $(wc -l <"$REC" 2>/dev/null) ($(sort -u "$REC" 2>/dev/null | tr '\n' ' '))"
  rq_stop
else
  not_ok "rankqld with a local worker starts (and python3 is there)"
fi

finish
