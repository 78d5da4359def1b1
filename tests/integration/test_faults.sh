#!/usr/bin/env bash
# Fault tolerance (issue 7 item 5; docs/operations.md "Failure behaviour"): rankqld on its
# embedded PostgreSQL, builtin models on Fashion-MNIST slices, and
#   1. kill -9 of the worker at >= 20 random points during WAIT rankings (embed and proxy jobs):
#      every job ends exactly once (done, one row each in jobs / feature_cache / proxy_results,
#      its attempts cover the claims the worker logs show), the errs equal an undisturbed run's;
#      and at up to 2 random points during each of three head fine-tunes (FINETUNE): they resume
#      from their checkpoints with the undisturbed accuracies and bit-identical weights;
#   2. kill -9 of rankqld during a WAIT query (its worker stops with it: parent-death signal),
#      restarted on the same data directory: it adopts its PostgreSQL, the re-issued query
#      completes, finished jobs are not run again (ids, attempts, created_at, finished_at
#      unchanged) and only the unfinished ones run after the restart;
#   3. PostgreSQL stopped (pg_ctl -m fast) and killed (-9) under client load: every answer during
#      the outage is a clean 5xx with a JSON error (never a dropped connection or a hang), rankqld
#      restarts its postmaster, and clients and the worker succeed afterwards;
#   4. a full (tmpfs, ENOSPC) and a read-only (EROFS) features directory while writing features
#      (RLIMIT_FSIZE on the worker where mount is not allowed): the job fails naming the path
#      and the cause, no feature_cache row without its complete file, no temporary file left,
#      and the same query succeeds once space returns.
#
# Random points come from bash's RANDOM seeded with RANKQL_FAULTS_SEED (default 7, printed
# first): rerun with the same seed to replay a failure's kill schedule (the timings still vary).
# RANKQL_FAULTS_NO_MOUNT=1 takes case 4's RLIMIT_FSIZE path even where mount works.
# Workers are started by this script (rankqld --workers 0, except in case 2, where rankqld's own
# supervised worker runs) with --lease 2, so a killed worker's jobs return after ~2 s.
#
# Every process started here is stopped by the EXIT trap; every request and wait is bounded.
# jq programs are single-quoted: their $names are jq's.
# shellcheck disable=SC2016
set -u
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
T_START=$(date +%s.%N)
section() { echo "# $1 at $(awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"; }

SEED=${RANKQL_FAULTS_SEED:-7}
RANDOM=$SEED
echo "# random seed $SEED (RANKQL_FAULTS_SEED=$SEED replays this kill schedule)"
NKILLS=${RANKQL_FAULTS_KILLS:-20}

RANKQLD=${RANKQLD:-$RANKQL_BIN/rankqld}
WORKER=${RANKQL_WORKER_BIN:-$RANKQL_BIN/rankql-worker}
FM=${RANKQL_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
TRI=$FM/train-images-idx3-ubyte.gz TRL=$FM/train-labels-idx1-ubyte.gz
TEI=$FM/t10k-images-idx3-ubyte.gz TEL=$FM/t10k-labels-idx1-ubyte.gz
PGBIN=$(rq_pg_bindir)
for tool in curl jq; do
  command -v "$tool" >/dev/null || { not_ok "setup: $tool is needed (scripts/install-deps.sh)"; finish; }
done
for f in "$RANKQLD" "$WORKER" "$PGBIN/initdb" "$PGBIN/psql"; do
  [ -x "$f" ] || { not_ok "setup: need $f (make build-all; PostgreSQL)"; finish; }
done
for f in "$TRI" "$TRL" "$TEI" "$TEL"; do
  [ -r "$f" ] || { not_ok "setup: need $f (apt-get install dataset-fashion-mnist)"; finish; }
done

SCRATCH=$(make_scratch)
RQ_TMP=$SCRATCH
DATA=$SCRATCH/data
FEAT=$DATA/features
LOG=$SCRATCH/rankqld.err
WLOG=$SCRATCH/worker.log
RQ_PID='' WPID='' MOUNTED=0 BG=()
CI="host=$DATA/pg-socket port=5432 user=rankql dbname=rankql"
export PGCONNECT_TIMEOUT=5
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local p
  [ "$BASHPID" = "$$" ] || return 0
  for p in "${BG[@]}"; do kill "$p" 2>/dev/null; done
  [ -n "$WPID" ] && { kill -CONT "$WPID"; kill -KILL "$WPID"; } 2>/dev/null
  if [ -n "$RQ_PID" ]; then
    kill -TERM "$RQ_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$RQ_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$RQ_PID" 2>/dev/null
  fi
  [ -f "$DATA/pg/postmaster.pid" ] &&
    rq_as_pg "$PGBIN/pg_ctl" -D "$DATA/pg" -m immediate -w -t 20 stop >/dev/null 2>&1
  [ "$MOUNTED" = 1 ] && umount "$FEAT" 2>/dev/null
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

# ---- helpers -------------------------------------------------------------------------------
# sql TEXT: one psql query on the embedded database (unaligned, tuples only).
sql() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$CI" -c "$1" 2>&1; }
# start_worker: a worker of this script's (--lease 2), logging to $WLOG with its own id prefix.
NW=0
start_worker() {
  NW=$((NW + 1))
  "$WORKER" --db "$CI" --data-dir "$DATA" --lease 2 --slots 2 --worker-id "w$NW" \
    2>>"$WLOG" &
  WPID=$!
}
stop_worker() {
  [ -n "$WPID" ] || return 0
  kill -CONT "$WPID" 2>/dev/null
  stop_rankqld "$WPID"   # SIGTERM, then -9 after 60 s: the worker gives its jobs back
  WPID=
}
# rand_ms LO HI: a random number of milliseconds in [LO, HI].
rand_ms() { echo $(( $1 + RANDOM % ($2 - $1 + 1) )); }
msleep() { sleep "$(awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }')"; }
# The models a ranking ranks (case 4: two of them); not "t/%", which the fine-tuned models
# of case 1b ("t/pca-8@ft-…") match too.
MODELS="name IN ('t/raw', 't/pca-8', 't/rp-16', 't/hog')"
rank_q() {  # rank_q TRAIN TEST PROXIES [TAIL]
  printf 'SELECT name FROM image_models WHERE %s ORDER BY err TRAINED ON %s TESTED ON TASK %s CLASSIFIED BY [%s] %s;' \
    "$MODELS" "$1" "$2" "$3" "${4-WAIT}"
}
# errs: the (model, proxy, err) triples of the last answer, sorted: what "the same results" means.
errs() { rq_jf '[.rows[] | [.[1], .[2], .[3]]] | sort'; }
# post_bg FILE TEXT MAX: POST a query in the background, its answer to FILE; sets BGPID.
post_bg() {
  jq -n --arg q "$2" '{query: $q}' >"$1.body"
  curl -s -o "$1" -w '%{http_code}' --max-time "$3" -H 'Content-Type: application/json' \
    --data-binary "@$1.body" "$RQ_BASE/v1/query" >"$1.status" 2>/dev/null &
  BGPID=$!; BG+=("$BGPID")
}
# RJOBS: a ranking's jobs (model checks and fine-tunes submit jobs of other kinds meanwhile).
RJOBS="kind IN ('embed', 'proxy')"
# jobs_since ID: the embed and proxy jobs with id > ID as "id|hash|status|attempts|max_attempts".
jobs_since() { sql "SELECT id, hash, status, attempts, max_attempts FROM jobs WHERE $RJOBS AND id > $1 ORDER BY id;"; }

# files_ok: every feature_cache row has its complete file (size = the row's bytes = the header
# + rows x dim floats + labels); no temporary file anywhere under features/.
files_ok() {
  local bad=0 path rows dim bytes size
  while IFS='|' read -r path rows dim bytes; do
    size=$(stat -c %s "$DATA/$path" 2>/dev/null || echo missing)
    if [ "$size" != "$bytes" ] || [ "$bytes" != $((24 + rows * dim * 4 + rows * 4)) ]; then
      bad=$((bad + 1)); echo "#   $path: $size bytes, row says $bytes ($rows x $dim)"
    fi
  done < <(sql "SELECT path, rows, dim, bytes FROM feature_cache;")
  [ "$bad" = 0 ] && [ -z "$(find "$FEAT" -name '*.tmp*' | head -1)" ]
}

# ---- start ---------------------------------------------------------------------------------
section start
mkdir -p "$DATA" "$FEAT"; chmod 755 "$DATA"
# The features directory on its own small filesystem (case 4), when this machine lets us mount.
if [ -z "${RANKQL_FAULTS_NO_MOUNT:-}" ] && [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=256m,mode=0755 rankql-test "$FEAT" 2>/dev/null; then
  MOUNTED=1
  echo "# features directory on a 256 MiB tmpfs"
else
  echo "# cannot mount a tmpfs here: case 4 uses RLIMIT_FSIZE on the worker instead"
fi
PORT=$(free_port); RQ_BASE=http://127.0.0.1:$PORT
if rq_start "$LOG" --data-dir "$DATA" --pg-no-sync --workers 0 --listen "127.0.0.1:$PORT"; then
  ok "rankqld starts with its embedded PostgreSQL"
else
  not_ok "rankqld starts with its embedded PostgreSQL"; sed 's/^/#   /' "$LOG"; finish
fi
check_eq "psql reaches the embedded database" 1 "$(sql 'SELECT 1')"
start_worker

# The models (4 builtin extractors) and the data: "k0".."k5" are the same rows under different
# names, so each has its own jobs and the same errs; "e0".."e5" are the matching test sets.
{
  echo "REGISTER MODEL \"t/raw\" (runner, modality, source, spec, image_size, dimension, batch_size) VALUES ('builtin', 'image', 'builtin', {extractor: \"raw\"}, 28, 784, 1024);"
  echo "REGISTER MODEL \"t/pca-8\" (runner, modality, source, spec, image_size, dimension, batch_size) VALUES ('builtin', 'image', 'builtin', {extractor: \"pca\", k: 8}, 28, 8, 1024);"
  echo "REGISTER MODEL \"t/rp-16\" (runner, modality, source, spec, image_size, dimension, batch_size) VALUES ('builtin', 'image', 'builtin', {extractor: \"random_projection\", k: 16, seed: 1}, 28, 16, 1024);"
  echo "REGISTER MODEL \"t/hog\" (runner, modality, source, spec, image_size, dimension, batch_size) VALUES ('builtin', 'image', 'builtin', {extractor: \"hog\", cell: 7, block: 2, bins: 9}, 28, 324, 1024);"
  for k in 0 1 2 3 4 5; do
    echo "REGISTER DATASET \"k$k\" (format, modality, location, spec, slice) VALUES $(rq_idx "$TRI" "$TRL" 0 6000);"
    echo "REGISTER DATASET \"e$k\" (format, modality, location, spec, slice) VALUES $(rq_idx "$TEI" "$TEL" 0 1000);"
  done
  echo "REGISTER DATASET \"df\" (format, modality, location, spec, slice) VALUES $(rq_idx "$TRI" "$TRL" 6000 9000);"
  echo "REGISTER DATASET \"dt\" (format, modality, location, spec, slice) VALUES $(rq_idx "$TEI" "$TEL" 1000 1500);"
} >"$SCRATCH/catalog.rql"
rq_query "$(cat "$SCRATCH/catalog.rql")" 60
rq_jcheck "the catalog registers (4 models, 14 datasets)" '(.results | length) == 18 and ([.results[] | .error == null] | all)'

# ---- 1. kill -9 of the worker at random points ---------------------------------------------
section "case 1"
PROXIES='"Euclidean NN", "logme", "linear"'
rq_query "$(rank_q '"k0"' '"e0"' "$PROXIES")" 120
R1=$(errs)
rq_jcheck "1: the undisturbed ranking completes (8 embed + 12 proxy jobs)" \
  '.status == "complete" and .jobs.submitted == 20 and (.rows | length) == 12'
LAST=$(sql 'SELECT coalesce(max(id), 0) FROM jobs;')
WLOG_MARK=$(wc -l <"$WLOG")

# Rounds of the same ranking on "k1"/"e1", "k2"/"e2", … (one after the other, up to 4) while
# the worker is killed, until NKILLS kills. A kill point: after a random delay (mostly into a
# job) the worker is stopped (SIGSTOP, so it claims nothing more) and killed unless one of its
# jobs is on its last attempt (killing that one fails the job for good: the documented
# max_attempts rule, not what this case tests); then it is resumed and another point drawn.
round=0
next_round() {
  round=$((round + 1))
  post_bg "$SCRATCH/d$round" "$(rank_q "\"k$round\"" "\"e$round\"" "$PROXIES")" 280
  DIST=$BGPID
}
next_round
running_jobs() { sql "SELECT count(*) FROM jobs WHERE status = 'running' AND lease_owner LIKE 'w$NW:%' ${1-};"; }
kills=0 spared=0 hit=0 points=""
while [ "$kills" -lt "$NKILLS" ]; do
  if ! kill -0 "$DIST" 2>/dev/null; then
    [ "$round" -lt 4 ] || break
    next_round
  fi
  for _ in $(seq 1 30); do [ "$(running_jobs)" != 0 ] && break; sleep 0.1; done
  d=$(rand_ms 0 800)
  msleep "$d"
  kill -STOP "$WPID"
  if [ "$(running_jobs 'AND attempts >= max_attempts')" != 0 ]; then
    kill -CONT "$WPID"; spared=$((spared + 1)); continue
  fi
  n=$(running_jobs)
  kill -KILL "$WPID"; wait "$WPID" 2>/dev/null
  kills=$((kills + 1)); hit=$((hit + n)); points+=" ${d}ms/$n"
  start_worker
done
echo "# $kills kills in $round rounds (delay/running jobs hit:$points); $spared points spared a last attempt"
t0=$(date +%s)
wait "$DIST"
echo "# the last round returned $(( $(date +%s) - t0 )) s after the last kill"
check "1: the worker was killed with -9 at least 20 times during the rankings ($kills)" test "$kills" -ge 20
check "1: ... and the kills hit running jobs ($hit)" test "$hit" -ge 15
for r in $(seq 1 "$round"); do
  RQ_RESP=$(cat "$SCRATCH/d$r")
  rq_jcheck "1: disturbed round $r completes with every row" \
    '.status == "complete" and .remaining_jobs == 0 and (.rows | length) == 12 and .jobs.failed == 0'
  check_eq "1: ... its errs equal the undisturbed run's" "$R1" "$(errs)"
done

NJ=$((20 * round))
jobs_since "$LAST" >"$SCRATCH/jobs1"
check_eq "1: $NJ jobs, all done" "$NJ $NJ" "$(wc -l <"$SCRATCH/jobs1") $(grep -c '|done|' "$SCRATCH/jobs1")"
check_eq "1: one job per hash" "$NJ" "$(cut -d'|' -f2 "$SCRATCH/jobs1" | sort -u | wc -l)"
check_eq "1: one feature_cache row per embed job" "$((NJ * 2 / 5)) $((NJ * 2 / 5))" \
  "$(sql "SELECT count(*), count(DISTINCT f.hash) FROM feature_cache f JOIN jobs j ON j.hash = f.hash WHERE j.id > $LAST;" | tr '|' ' ')"
check_eq "1: one proxy_results row per proxy job" "$((NJ * 3 / 5)) $((NJ * 3 / 5))" \
  "$(sql "SELECT count(*), count(DISTINCT p.hash) FROM proxy_results p JOIN jobs j ON j.hash = p.hash WHERE j.id > $LAST;" | tr '|' ' ')"
check "1: every feature file is complete (the size its row and header say), no temporary file left" files_ok
# attempts: each job's attempts count the claims the workers logged for it, plus claims whose
# worker was stopped and killed before it read the claim's answer (the claim committed, the log
# line never written): at most one per kill. Each job was completed once (one "done" log line
# at most: a kill between the commit and the log line loses the line, never adds one).
tail -n +"$((WLOG_MARK + 1))" "$WLOG" >"$WLOG.1"
bad=0 again=0 total=0 unlogged=0
while IFS='|' read -r id _ _ attempts max; do
  claims=$(grep -c ": claimed job $id (" "$WLOG.1")
  dones=$(grep -c ": job $id done in" "$WLOG.1")
  total=$((total + attempts)); unlogged=$((unlogged + attempts - claims))
  [ "$attempts" -gt 1 ] && again=$((again + 1))
  if [ "$claims" -gt "$attempts" ] || [ "$attempts" -gt "$max" ] || [ "$dones" -gt 1 ]; then
    bad=$((bad + 1)); echo "#   job $id: attempts $attempts of $max, $claims claims and $dones completions logged"
  fi
done <"$SCRATCH/jobs1"
check_eq "1: each job's attempts cover its logged claims (within max_attempts), completed at most once" 0 "$bad"
echo "# $total attempts for $NJ jobs; $again jobs ran more than once; $unlogged claims cut off by a kill before their log line"
check "1: ... the claims not logged are at most one per kill ($unlogged <= $kills)" test "$unlogged" -le "$kills"
check "1: the killed runs were retried (jobs with attempts > 1: $again)" test "$again" -ge 10
# A heartbeat late past the 2 s lease (a loaded machine) may lose a job to another claim: its
# late result is then discarded, never stored twice. Counted, not failed.
echo "# results discarded (lease lost to a late heartbeat): $(grep -c 'result discarded' "$WLOG.1")"

# ---- 1b. kill -9 of the worker during fine-tunes ---------------------------------------------
section "case 1b"
# A head fine-tune (FINETUNE, docs/language.md) checkpoints while it trains; a killed attempt
# resumes from its last checkpoint. "k1".."k3" hold the rows of "k0": the same weights (digest)
# and accuracies are expected. Each fine-tune is killed at up to 2 random points (its third
# attempt is its last: max_attempts).
ft_q() { printf 'FINETUNE "t/pca-8" WITH "k%s" USING "head(head=mlp, hidden=32, epochs=300, batch_size=32, test='"'"'e%s'"'"')" WAIT;' "$1" "$1"; }
ft_digest() { rq_query "SELECT spec FROM models WHERE name = '$1';"; rq_jf '.rows[0][0].head.digest'; }
rq_query "$(ft_q 0)" 120
rq_jcheck "1b: the undisturbed fine-tune completes" '.status == "complete" and .rows[0][9] == "done" and .rows[0][10] == 1'
FT_ACC=$(rq_jf '[.rows[0][3,4]]')
FT_DIG=$(ft_digest "$(rq_jf '.rows[0][7]')")
ft_running() { sql "SELECT count(*) FROM jobs WHERE kind = 'finetune' AND status = 'running' AND lease_owner LIKE 'w$NW:%' ${1-};"; }
# Its training progress (0.05 + 0.9 x epochs done / epochs, from the heartbeats), -1 when none runs.
ft_progress() { sql "SELECT coalesce(max(progress), -1) FROM jobs WHERE kind = 'finetune' AND status = 'running' AND lease_owner LIKE 'w$NW:%';"; }
ftkills_all=0
for r in 1 2 3; do
  post_bg "$SCRATCH/f$r" "$(ft_q "$r")" 200
  ftkills=0 ftpoints=""
  while [ "$ftkills" -lt 2 ] && kill -0 "$BGPID" 2>/dev/null; do
    for _ in $(seq 1 50); do [ "$(ft_running)" != 0 ] && break; sleep 0.1; done
    # A random point of the training, whatever the machine's speed: 5 to 35 points of progress
    # past where this attempt started (it resumes from its checkpoint).
    p0=$(ft_progress)
    target=$(awk -v p="$p0" -v d="$(rand_ms 5 35)" 'BEGIN { t = (p < 0.05 ? 0.05 : p) + d / 100; print (t > 0.9 ? 0.9 : t) }')
    for _ in $(seq 1 600); do
      awk -v p="$(ft_progress)" -v t="$target" 'BEGIN { exit !(p < 0 || p >= t) }' && break
      sleep 0.05
    done
    kill -STOP "$WPID"
    p=$(ft_progress)
    if [ "$p" = -1 ] || [ "$(ft_running 'AND attempts >= max_attempts')" != 0 ]; then
      kill -CONT "$WPID"; continue
    fi
    kill -KILL "$WPID"; wait "$WPID" 2>/dev/null
    ftkills=$((ftkills + 1)); ftpoints+=" $p"
    start_worker
  done
  wait "$BGPID"
  ftkills_all=$((ftkills_all + ftkills))
  RQ_RESP=$(cat "$SCRATCH/f$r")
  echo "# fine-tune $r: killed $ftkills times (at progress$ftpoints), resumed from epoch $(rq_jf '.rows[0][11]')"
  rq_jcheck "1b: fine-tune $r completes, its attempts = 1 + its $ftkills kills" \
    ".status == \"complete\" and .rows[0][9] == \"done\" and .rows[0][10] == $((ftkills + 1))"
  check_eq "1b: ... with the undisturbed accuracies" "$FT_ACC" "$(rq_jf '[.rows[0][3,4]]')"
  check_eq "1b: ... and bit-identical weights (digest)" "$FT_DIG" "$(ft_digest "$(rq_jf '.rows[0][7]')")"
done
check "1b: the fine-tunes were killed at 3 or more points ($ftkills_all)" test "$ftkills_all" -ge 3
check_eq "1b: no checkpoint is left behind" "" "$(find "$DATA/finetune" -name '*.ckpt' 2>/dev/null | head -3)"

# ---- 2. kill -9 of rankqld during a WAIT query -----------------------------------------------
section "case 2"
# rankqld again, now with its own supervised worker (--lease 2 through RANKQL_WORKER).
stop_worker
if stop_rankqld "$RQ_PID"; then ok "2: rankqld stops cleanly before the case"; else not_ok "2: rankqld stops cleanly before the case"; fi
printf '#!/bin/sh\nexec %q "$@" --lease 2\n' "$WORKER" >"$SCRATCH/worker"
chmod 755 "$SCRATCH/worker"
export RANKQL_WORKER=$SCRATCH/worker
rq_start "$LOG" --data-dir "$DATA" --pg-no-sync --workers 2 --listen "127.0.0.1:$PORT"
check "2: rankqld starts with a local worker" test -n "$RQ_PID"
LAST=$(sql 'SELECT coalesce(max(id), 0) FROM jobs;')
post_bg "$SCRATCH/r2" "$(rank_q '"k5"' '"e5"' "$PROXIES")" 120
CURL2=$BGPID
# Kill it once some of the query's jobs are done and some are not.
ndone=0
for _ in $(seq 1 300); do
  ndone=$(sql "SELECT count(*) FROM jobs WHERE $RJOBS AND id > $LAST AND status = 'done';")
  [ "$ndone" -ge 6 ] && break
  sleep 0.1
done
W2=$(pgrep -P "$RQ_PID" -x rankql-worker | head -1)
PM=$(head -1 "$DATA/pg/postmaster.pid")
kill -KILL "$RQ_PID"; wait "$RQ_PID" 2>/dev/null; KILLED=$RQ_PID; RQ_PID=
t0=$(date +%s.%N)
wait "$CURL2"
t1=$(date +%s.%N)
check "2: the client's WAIT ends at once with a dropped connection ($(cat "$SCRATCH/r2.status"))" \
  awk -v a="$t0" -v b="$t1" -v s="$(cat "$SCRATCH/r2.status")" 'BEGIN { exit !(b - a < 5 && s == "000") }'
# The worker dies with rankqld (parent-death signal: it gives its running jobs back).
gone=0
for _ in $(seq 1 100); do kill -0 "${W2:-0}" 2>/dev/null || { gone=1; break; }; sleep 0.1; done
check "2: rankqld $KILLED killed with -9 after $ndone jobs; its worker ${W2:-?} stopped with it" test "$gone" = 1 -a -n "$W2"
check "2: its PostgreSQL (pid $PM) keeps running" kill -0 "$PM"
snap="SELECT id, hash, status, attempts, created_at, finished_at FROM jobs WHERE $RJOBS AND id > $LAST ORDER BY id;"
sql "$snap" >"$SCRATCH/snap2"
DONE2=$(grep -c '|done|' "$SCRATCH/snap2")
echo "# at the kill: $DONE2 of $(wc -l <"$SCRATCH/snap2") jobs done"
check "2: ... some jobs done and some not ($DONE2 of 20)" test "$DONE2" -ge 6 -a "$DONE2" -lt 20
T_RESTART=$(sql 'SELECT now();')
rq_start "$LOG" --data-dir "$DATA" --pg-no-sync --workers 0 --listen "127.0.0.1:$PORT"
check "2: rankqld starts again on the same data directory" test -n "$RQ_PID"
check_contains "2: ... adopting the PostgreSQL left running" "adopted the PostgreSQL server (pid $PM)" "$(cat "$LOG")"
start_worker
rq_query "$(rank_q '"k5"' '"e5"' "$PROXIES" '')" 30
rq_jcheck "2: the re-issued query finds the finished jobs in the cache ($DONE2)" ".jobs.cached == $DONE2 and .jobs.submitted == $((20 - DONE2))"
rq_query "$(rank_q '"k5"' '"e5"' "$PROXIES")" 120
rq_jcheck "2: ... and with WAIT completes" '.status == "complete" and (.rows | length) == 12 and .jobs.failed == 0'
check_eq "2: ... with the undisturbed errs" "$R1" "$(errs)"
sql "$snap" >"$SCRATCH/snap2b"
check_eq "2: the jobs finished before the kill are unchanged (id, attempts, created_at, finished_at)" \
  "$(grep '|done|' "$SCRATCH/snap2")" "$(grep -F -x -f <(grep '|done|' "$SCRATCH/snap2") "$SCRATCH/snap2b")"
check_eq "2: 20 jobs, no new row for a re-issued job" "20" "$(wc -l <"$SCRATCH/snap2b")"
check_eq "2: the jobs run after the restart are exactly the unfinished ones" \
  "$(grep -v '|done|' "$SCRATCH/snap2" | cut -d'|' -f1 | tr '\n' ' ')" \
  "$(sql "SELECT id FROM jobs WHERE $RJOBS AND id > $LAST AND started_at > '$T_RESTART' ORDER BY id;" | tr '\n' ' ')"

# ---- 3. PostgreSQL restarted under load --------------------------------------------------------
section "case 3"
# Four clients send catalog queries in a loop (each bounded by 15 s) until told to stop, one
# "status error-code rows" line per answer.
CATQ="SELECT name, dimension FROM models WHERE dimension > 10 AND NOT FINETUNED ORDER BY name;"
client() {
  local out=$1 code
  jq -n --arg q "$CATQ" '{query: $q}' >"$out.body"
  while [ ! -f "$SCRATCH/stop-clients" ]; do
    code=$(curl -s -o "$out.resp" -w '%{http_code}' --max-time 15 -H 'Content-Type: application/json' \
      --data-binary "@$out.body" "$RQ_BASE/v1/query" 2>/dev/null) || true
    echo "${code:-000} $(jq -r '[(.error.code // "-"), (.rows // [] | map(.[0]) | join(","))] | join(" ")' "$out.resp" 2>/dev/null || echo unparsable)" >>"$out"
    sleep 0.05
  done
}
rm -f "$SCRATCH/stop-clients"
CLIENTS=()
for c in 1 2 3 4; do client "$SCRATCH/client$c" & CLIENTS+=("$!"); BG+=("$!"); done
sleep 1.5
restarts() { grep -c 'exited unexpectedly; starting it again' "$LOG"; }
pg_pid() { head -1 "$DATA/pg/postmaster.pid" 2>/dev/null; }
# back_up N: waits (30 s at most) until rankqld restarted its postmaster N times and it answers.
back_up() {
  local _
  for _ in $(seq 1 300); do
    [ "$(restarts)" -ge "$1" ] && [ "$(sql 'SELECT 1' 2>/dev/null)" = 1 ] && return 0
    sleep 0.1
  done
  return 1
}
PM=$(pg_pid)
rq_as_pg "$PGBIN/pg_ctl" -D "$DATA/pg" -m fast -w -t 30 stop >/dev/null 2>&1
check "3: pg_ctl stop -m fast under load, rankqld starts PostgreSQL again" back_up 1
sleep 2
PM2=$(pg_pid)
kill -KILL "$PM2"
check "3: the postmaster ($PM2) killed with -9, rankqld starts PostgreSQL again" back_up 2
# Then until every client had 3 right answers in a row (30 s at most).
recovered() {
  local c
  for c in 1 2 3 4; do
    [ "$(tail -3 "$SCRATCH/client$c" | grep -c '^200 - t/hog,t/raw,t/rp-16$')" = 3 ] || return 1
  done
}
t0=$(date +%s.%N)
for _ in $(seq 1 300); do recovered && break; sleep 0.1; done
echo "# clients all answered again $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s after PostgreSQL was back"
touch "$SCRATCH/stop-clients"
for p in "${CLIENTS[@]}"; do wait "$p"; done
cat "$SCRATCH"/client? >"$SCRATCH/answers"
n=$(wc -l <"$SCRATCH/answers")
good=$(grep -c '^200 - t/hog,t/raw,t/rp-16$' "$SCRATCH/answers")
clean=$(grep -Ec '^5[0-9][0-9] [a-z_]+ ' "$SCRATCH/answers")
echo "# $n answers: $good correct 200s, $clean clean 5xx errors ($(grep -E '^5' "$SCRATCH/answers" | cut -d' ' -f1,2 | sort | uniq -c | tr -s ' ' | tr '\n' ';'))"
check_eq "3: every answer is the right 200 or a 5xx with a JSON error (no dropped connection, no hang)" \
  "$n" "$((good + clean))"
grep -Ev '^200 - t/hog,t/raw,t/rp-16$|^5[0-9][0-9] [a-z_]+ ' "$SCRATCH/answers" | sort | uniq -c | head -5 | sed 's/^/#   /'
check "3: the outages were seen by the clients ($clean errors)" test "$clean" -ge 1
check "3: each client's last 3 answers succeed" recovered
recovered || for c in 1 2 3 4; do tail -3 "$SCRATCH/client$c" | sed "s/^/#   client $c: /"; done
check "3: rankqld kept running (pid $RQ_PID)" kill -0 "$RQ_PID"
echo "# postmaster pids: $PM, then $PM2, now $(pg_pid)"
rq_query "$(rank_q '"k0"[0:3000]' '"e0"' '"Euclidean NN"')" 120
rq_jcheck "3: the worker reconnected: a new ranking completes" '.status == "complete" and (.rows | length) == 4 and .jobs.submitted >= 8'

# ---- 4. a full or read-only features directory ------------------------------------------------
section "case 4"
feat_rows() { sql "SELECT count(*) FROM feature_cache;"; }
# disk_case NAME SLICE PATTERN: a ranking on "df"SLICE/"dt" while features cannot be written;
# expects every model to fail with PATTERN naming a path under features/.
disk_case() {
  local before; before=$(feat_rows)
  section "case 4: $1"
  rq_query "$(rank_q "\"df\"$2" '"dt"' '"Euclidean NN"')" 120
  rq_jcheck "4: $1: the ranking answers partial, every model failed" \
    '.status == "partial" and (.rows | length) == 0 and (.failures | length) == 2'
  rq_jcheck "4: $1: ... each error names the cause and the path" \
    "[.failures[].error | test(\"cannot (create|write) $FEAT/[0-9a-f]{2}.*: $3\")] | all"
  printf '%s' "$RQ_RESP" | jq -r '.failures[0].error' | sed 's/^/#   /'
  check_eq "4: $1: no feature_cache row was added" "$before" "$(feat_rows)"
  check "4: $1: every cached feature file is complete, no temporary file left" files_ok
}
# Two cheap models: a failing embed job is tried 3 times (backing off 2 and 4 s) before the
# ranking answers, which is most of this case's time.
MODELS="name IN ('t/pca-8', 't/rp-16')"
if [ "$MOUNTED" = 1 ]; then
  # Full: the tmpfs shrunk to what it holds (tmpfs counts whole pages, so nothing more fits).
  used=$(df -B1 --output=used "$FEAT" | tail -1 | tr -d ' ')
  mount -o remount,size="$used" "$FEAT"
  disk_case "full disk (ENOSPC)" '' 'No space left on device'
  mount -o remount,size=256m "$FEAT"
  section "case 4: space returned"
  rq_query "$(rank_q '"df"' '"dt"' '"Euclidean NN"')" 120
  rq_jcheck "4: once space returns the same ranking completes" '.status == "complete" and (.rows | length) == 2'
  check "4: ... with complete files" files_ok
  # Unwritable: the tmpfs remounted read-only (root ignores file modes, not a read-only mount).
  mount -o remount,ro "$FEAT"
  disk_case "read-only directory (EROFS)" '[0:1000]' 'Read-only file system'
  mount -o remount,rw "$FEAT"
  rq_query "$(rank_q '"df"[0:1000]' '"dt"' '"Euclidean NN"')" 120
  rq_jcheck "4: once writable again the ranking completes" '.status == "complete" and (.rows | length) == 2'
else
  # No mount: the worker runs under RLIMIT_FSIZE (4 KiB: below the smallest feature file here), SIGXFSZ ignored, so writes fail.
  stop_worker
  ( trap '' XFSZ; ulimit -f 4; exec "$WORKER" --db "$CI" --data-dir "$DATA" --lease 2 --slots 2 --worker-id wf ) 2>>"$WLOG" &
  WPID=$!
  disk_case "file size limit (EFBIG)" '' 'File too large'
  stop_worker; start_worker
  rq_query "$(rank_q '"df"' '"dt"' '"Euclidean NN"')" 120
  rq_jcheck "4: without the limit the same ranking completes" '.status == "complete" and (.rows | length) == 2'
  echo "ok - 4: read-only directory # SKIP cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)"
fi

# ---- shutdown ------------------------------------------------------------------------------------
section shutdown
stop_worker
if stop_rankqld "$RQ_PID"; then ok "rankqld stops cleanly"; else not_ok "rankqld stops cleanly"; fi
RQ_PID=
section end
finish
