#!/usr/bin/env bash
# The documentation's examples, run as written, so they stay true:
#   - every ```sql block of README.md and docs/*.md parses (rankql --parse);
#   - every ```rql block runs without error against a rankqld loaded with the demo catalog
#     (scripts/demo-catalog.rql), the blocks of one document in order, in one session;
#   - the blocks marked <!-- doc-test: backup --> and <!-- doc-test: restore --> in
#     docs/operations.md back up one rankqld and restore it into another, which then answers
#     with the same catalog;
#   - examples/deploy/: the Slurm script parses, the Kubernetes YAML parses, and every flag
#     they pass to rankql-worker is one it knows;
#   - /metrics has the job-queue gauges docs/operations.md describes.
# Prints one "ok - …" / "not ok - …" line per check.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

RANKQL=${RANKQL:-$RANKQL_BIN/rankql}
RANKQLD=${RANKQLD:-$RANKQL_BIN/rankqld}
WORKER=${WORKER:-$RANKQL_BIN/rankql-worker}
export LANG=C.UTF-8 LC_ALL=C.UTF-8
unset RANKQL_HOST RANKQL_TOKEN
cd "$RANKQL_ROOT" || exit 1

SCRATCH=$(make_scratch)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop_rankqld "$pid" >/dev/null 2>&1; done
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

# blocks TAG FILE…: each block of that info string as "FILE:LINE" NUL "text" NUL.
blocks() {
  python3 - "$@" <<'EOF'
import re, sys
tag = sys.argv[1]
for f in sys.argv[2:]:
    lines = open(f, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^\s*```(\S*)\s*$", lines[i])
        if m:
            j = i + 1
            while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
                j += 1
            if m.group(1) == tag:
                sys.stdout.write("%s:%d\0%s\n\0" % (f, i + 2, "\n".join(lines[i + 1:j])))
            i = j
        i += 1
EOF
}
# marked NAME FILE: the ```sh block right after <!-- doc-test: NAME --> in FILE.
marked() {
  python3 - "$1" "$2" <<'EOF'
import re, sys
name, f = sys.argv[1], sys.argv[2]
text = open(f, encoding="utf-8").read()
m = re.search(r"<!-- doc-test: %s -->\s*\n```sh\n(.*?)\n```" % re.escape(name), text, re.S)
sys.stdout.write(m.group(1) + "\n" if m else "")
EOF
}

healthy() { [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://$1/healthz")" = 200 ]; }
# start_server NAME WORKERS: a rankqld on $SCRATCH/NAME; sets SERVER and SERVER_PID.
start_server() {
  local port
  port=$(free_port) || return 1
  SERVER=127.0.0.1:$port
  "$RANKQLD" --data-dir "$SCRATCH/$1" --listen "$SERVER" --pg-no-sync --workers "$2" \
    >"$SCRATCH/$1.out" 2>"$SCRATCH/$1.err" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 1 1200); do
    healthy "$SERVER" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  sed 's/^/#   rankqld: /' "$SCRATCH/$1.err" | tail -20
  return 1
}

# ---- ```sql blocks parse -------------------------------------------------------------------
docs=(README.md docs/*.md)
nsql=0
while IFS= read -r -d '' where && IFS= read -r -d '' text; do
  nsql=$((nsql + 1))
  if out=$(printf '%s' "$text" | "$RANKQL" --parse 2>&1 >/dev/null); then
    ok "sql block parses: $where"
  else
    not_ok "sql block parses: $where"
    printf '%s\n' "$out" | sed 's/^/#   /' | head -10
  fi
done < <(blocks sql "${docs[@]}")
[ "$nsql" -gt 0 ] && ok "found $nsql sql blocks" || not_ok "found sql blocks in the docs"

# ---- examples/deploy -----------------------------------------------------------------------
SBATCH=examples/deploy/slurm/rankql-worker.sbatch
K8S=examples/deploy/kubernetes/rankql-workers.yaml
check "deploy: $SBATCH is valid bash" bash -n "$SBATCH"
if python3 -c 'import yaml' 2>/dev/null; then
  check "deploy: $K8S is valid YAML (3 documents)" \
    python3 -c 'import sys, yaml; d = list(yaml.safe_load_all(open(sys.argv[1]))); sys.exit(len(d) != 3)' "$K8S"
else
  ok "deploy: $K8S is valid YAML # SKIP python3-yaml is not installed"
fi
known=$("$WORKER" --help 2>&1 | grep -o -- '--[a-z-]*' | sort -u)
# Every option-looking word on the worker's command lines (the sbatch exec and the YAML args).
used=$( { sed -n '/^exec /,/^$/p' "$SBATCH"; grep -A8 'command: \["rankql-worker"\]' "$K8S"; } |
        grep -o -- '--[a-z][a-z-]*' | sort -u)
unknown=$(comm -23 <(printf '%s\n' "$used") <(printf '%s\n' "$known"))
check_eq "deploy: every rankql-worker flag of the examples exists ($(echo "$used" | wc -l) flags)" "" "$unknown"

# ---- ```rql blocks run on the demo catalog -------------------------------------------------
if ! start_server main 2; then
  not_ok "setup: rankqld answers on $SERVER"
  finish
fi
MAIN=$SERVER MAIN_PID=$SERVER_PID
ok "setup: rankqld answers on $MAIN"
RQ=(timeout 600 "$RANKQL" -H "$MAIN")
if "${RQ[@]}" --on-error-stop -f scripts/demo-catalog.rql >"$SCRATCH/catalog.out" 2>&1; then
  ok "setup: the demo catalog loads"
else
  not_ok "setup: the demo catalog loads"; tail -5 "$SCRATCH/catalog.out" | sed 's/^/#   /'
  finish
fi

nrql=0
for doc in "${docs[@]}"; do
  files=()
  while IFS= read -r -d '' where && IFS= read -r -d '' text; do
    nrql=$((nrql + 1))
    f="$SCRATCH/rql/${where//[\/:]/_}.rql"
    mkdir -p "$SCRATCH/rql"
    printf '%s' "$text" >"$f"
    files+=(-f "$f")
  done < <(blocks rql "$doc")
  [ ${#files[@]} -gt 0 ] || continue
  # One run per document: DECLAREd variables carry over from one block to the next.
  if "${RQ[@]}" --on-error-stop "${files[@]}" >"$SCRATCH/run.out" 2>&1; then
    ok "rql blocks of $doc run ($(( ${#files[@]} / 2 )) blocks)"
  else
    not_ok "rql blocks of $doc run"
    tail -15 "$SCRATCH/run.out" | sed 's/^/#   /'
  fi
done
[ "$nrql" -gt 0 ] && ok "found $nrql rql blocks" || not_ok "found rql blocks in the docs"

# ---- /metrics ------------------------------------------------------------------------------
metrics=$(curl -s -m 10 "http://$MAIN/metrics")
check "metrics: jobs by kind and status" grep -qF 'rankql_jobs{kind="embed",status="done"}' <<<"$metrics"
check "metrics: age of the oldest queued job" grep -qE '^rankql_jobs_oldest_queued_seconds [0-9.]+$' <<<"$metrics"

# ---- backup and restore, as docs/operations.md writes them ---------------------------------
backup=$(marked backup docs/operations.md)
restore=$(marked restore docs/operations.md)
check "docs: operations.md has the backup and restore blocks" test -n "$backup" -a -n "$restore"
catalog() { timeout 60 "$RANKQL" -H "$1" --format csv -c \
  "SELECT name, runner, dimension FROM models ORDER BY name; SELECT name, size FROM datasets ORDER BY name;"; }
catalog "$MAIN" >"$SCRATCH/catalog.main" 2>&1
mkdir -p "$SCRATCH/backup"
if DATA_DIR=$SCRATCH/main BACKUP=$SCRATCH/backup bash -euo pipefail -c "$backup" >"$SCRATCH/backup.out" 2>&1; then
  ok "backup: the block runs against a live rankqld"
else
  not_ok "backup: the block runs against a live rankqld"; sed 's/^/#   /' "$SCRATCH/backup.out" | tail -10
fi
if start_server restored 0; then
  RESTORED_PID=$SERVER_PID
  if NEW_DATA_DIR=$SCRATCH/restored BACKUP=$SCRATCH/backup bash -euo pipefail -c "$restore" \
       >"$SCRATCH/restore.out" 2>&1; then
    ok "restore: the block runs against a fresh rankqld"
  else
    not_ok "restore: the block runs against a fresh rankqld"; sed 's/^/#   /' "$SCRATCH/restore.out" | tail -10
  fi
  # "…and restart rankqld": the restored server, restarted, answers with the same catalog.
  stop_rankqld "$RESTORED_PID"
  if start_server restored 0; then
    catalog "$SERVER" >"$SCRATCH/catalog.restored" 2>&1
    check "restore: the restored catalog equals the original ($(wc -l <"$SCRATCH/catalog.main") lines)" \
      cmp -s "$SCRATCH/catalog.main" "$SCRATCH/catalog.restored"
    check "restore: the catalog is not empty" test "$(wc -l <"$SCRATCH/catalog.main")" -gt 10
  else
    not_ok "restore: the restored rankqld restarts"
  fi
else
  not_ok "restore: a fresh rankqld starts"
fi

finish
