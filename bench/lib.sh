# Shared by the bench scripts that run a rankqld of their own (bench_http.sh, bench_load.sh):
# a scratch directory removed on exit together with the server, and starting it on a free
# loopback port.
# shellcheck shell=bash

# bench_scratch NAME: SCRATCH (a new directory the PostgreSQL user can enter) and DATA (the
# data directory in it); on exit, bench_cleanup stops the server and removes them.
bench_scratch() {
  SCRATCH=$(mktemp -d "/tmp/rankql-bench-$1.XXXXXX")
  chmod 755 "$SCRATCH"
  DATA=$SCRATCH/data
  RQ=
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# shellcheck disable=SC2317  # run by the EXIT trap
bench_cleanup() {
  if [ -n "$RQ" ] && kill -0 "$RQ" 2>/dev/null; then
    kill -TERM "$RQ" 2>/dev/null
    for _ in $(seq 1 300); do kill -0 "$RQ" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$RQ" 2>/dev/null
  fi
  if [ -f "$DATA/pg/postmaster.pid" ]; then   # only if rankqld could not stop it
    pgbin=$(pg_config --bindir 2>/dev/null || printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$pgbin/pg_ctl" -D "$DATA/pg" -m immediate -w stop
    else "$pgbin/pg_ctl" -D "$DATA/pg" -m immediate -w stop; fi >/dev/null 2>&1
  fi
  rm -rf "$SCRATCH"
}

# bench_start NAME ARGS…: $RANKQLD on $DATA at a free loopback port with ARGS, its stderr in
# $SCRATCH/rankqld.err; sets RQ (its pid), port and BASE. Exits the script (naming NAME) when
# it does not listen within 60 s.
bench_start() {
  local name=$1 p _
  shift
  port=
  for _ in $(seq 1 100); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ] && { port=$p; break; }
  done
  BASE=http://127.0.0.1:$port
  "$RANKQLD" --data-dir "$DATA" --pg-no-sync --listen "127.0.0.1:$port" "$@" 2>"$SCRATCH/rankqld.err" &
  RQ=$!
  for _ in $(seq 1 600); do
    grep -qs '^rankqld: listening on ' "$SCRATCH/rankqld.err" && return 0
    kill -0 "$RQ" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name: rankqld did not start:" >&2
  cat "$SCRATCH/rankqld.err" >&2
  exit 1
}
