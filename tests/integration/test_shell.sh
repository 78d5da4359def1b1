#!/usr/bin/env bash
# rankql, the shell, against a real rankqld on its embedded PostgreSQL: -c, -f (DECLARE
# and PRINT across statements, an error in the middle with and without ON_ERROR_STOP),
# standard input, --format csv|json, expanded output, USE, exit codes, connection errors,
# and an interactive session under a pseudo-terminal (tmux): prompts, a multi-line
# statement, \timing, \x, \d, tab completion, Ctrl-C, \q, the history file.
#
# Prints one "ok - …" / "not ok - …" line per check. Everything started here (rankqld,
# its PostgreSQL, the tmux server) is stopped by the EXIT trap; every wait is bounded.
# RANKQL_SHELL_TEST_SERVER=HOST:PORT runs the checks against a server already running.
set -u
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

RANKQL=${RANKQL:-$RANKQL_BIN/rankql}
RANKQLD=${RANKQLD:-$RANKQL_BIN/rankqld}
export LANG=C.UTF-8 LC_ALL=C.UTF-8
unset RANKQL_HOST RANKQL_TOKEN

SCRATCH=$(make_scratch)
TMUX_SOCK=$SCRATCH/tmux.sock
RQ_PID=
PGBIN=${RANKQL_PG_BINDIR:-$(pg_config --bindir 2>/dev/null)}
[ -x "$PGBIN/pg_ctl" ] || PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cleanup() {
  tmux -S "$TMUX_SOCK" kill-server >/dev/null 2>&1
  if [ -n "$RQ_PID" ]; then
    kill -TERM "$RQ_PID" 2>/dev/null
    for _ in $(seq 1 300); do kill -0 "$RQ_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$RQ_PID" 2>/dev/null
    if [ -f "$SCRATCH/data/pg/postmaster.pid" ] && [ -x "$PGBIN/pg_ctl" ]; then
      as_pg "$PGBIN/pg_ctl" -D "$SCRATCH/data/pg" -m immediate -w -t 20 stop >/dev/null 2>&1
    fi
  fi
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

# A TCP port nothing listens on.
free_port() {
  local p
  for p in $(shuf -i 20000-60000 -n 100); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

healthy() { [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://$1/healthz")" = 200 ]; }

# ---- the server -------------------------------------------------------------------------
if [ ! -x "$RANKQL" ]; then
  not_ok "setup: $RANKQL is built (run make build-all)"
  finish
fi
if [ -n "${RANKQL_SHELL_TEST_SERVER:-}" ]; then
  SERVER=$RANKQL_SHELL_TEST_SERVER
else
  PORT=$(free_port) || { not_ok "setup: a free TCP port"; finish; }
  SERVER=127.0.0.1:$PORT
  TOKEN=shell-test-token-0123456789
  printf '# rankql shell test\n\n%s\n' "$TOKEN" >"$SCRATCH/token"
  "$RANKQLD" --data-dir "$SCRATCH/data" --listen "$SERVER" --pg-no-sync --token-file "$SCRATCH/token" \
    >"$SCRATCH/rankqld.out" 2>"$SCRATCH/rankqld.err" &
  RQ_PID=$!
  for _ in $(seq 1 1200); do               # initdb on first start: up to 120 s
    healthy "$SERVER" && break
    kill -0 "$RQ_PID" 2>/dev/null || break
    sleep 0.1
  done
fi
if ! healthy "$SERVER"; then
  not_ok "setup: rankqld answers GET /healthz on $SERVER"
  sed 's/^/#   rankqld: /' "$SCRATCH/rankqld.err" 2>/dev/null | tail -20
  finish
fi
ok "setup: rankqld answers GET /healthz on $SERVER"

# The server started here wants a bearer token (--token-file), so every run sends one.
TOKEN_ARGS=()
[ -f "$SCRATCH/token" ] && TOKEN_ARGS=(--token "$SCRATCH/token")

# rq NAME ARGS...: runs rankql on the server, stdin from /dev/null unless RQ_IN is set;
# keeps NAME.out, NAME.err, NAME.rc.
rq() {
  local name=$1; shift
  timeout 60 "$RANKQL" -H "$SERVER" "${TOKEN_ARGS[@]}" "$@" <"${RQ_IN:-/dev/null}" \
    >"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err"
  echo $? >"$SCRATCH/$name.rc"
}
out() { cat "$SCRATCH/$1.out"; }
err() { cat "$SCRATCH/$1.err"; }
rc()  { cat "$SCRATCH/$1.rc"; }
# check_rc NAME EXPECTED: with the output shown when it is wrong
check_rc() {
  if [ "$(rc "$1")" = "$2" ]; then ok "$1: exit $2"; else
    not_ok "$1: exit $2 (got $(rc "$1"))"
    sed 's/^/#   stdout: /' "$SCRATCH/$1.out" | head -20
    sed 's/^/#   stderr: /' "$SCRATCH/$1.err" | head -20
  fi
}
check_lacks() {  # NAME NEEDLE HAYSTACK
  case "$3" in *"$2"*) not_ok "$1"; printf '#   should not contain: %s\n' "$2" ;; *) ok "$1" ;; esac
}

# ---- connection errors --------------------------------------------------------------------
DEAD=$(free_port)
timeout 30 "$RANKQL" -H "127.0.0.1:$DEAD" -c "SHOW MODELS;" >"$SCRATCH/dead.out" 2>"$SCRATCH/dead.err" </dev/null
echo $? >"$SCRATCH/dead.rc"
check_rc dead 2
check_eq "no server: one clear line" "rankql: cannot connect to 127.0.0.1:$DEAD: Connection refused" "$(err dead)"
check_eq "no server: nothing on stdout" "" "$(out dead)"
RANKQL_HOST=$SERVER timeout 60 "$RANKQL" "${TOKEN_ARGS[@]}" -c "SHOW MODELS;" >/dev/null 2>"$SCRATCH/envhost.err" </dev/null
check_eq "RANKQL_HOST names the server" "0" "$?"
if [ -f "$SCRATCH/token" ]; then
  timeout 60 "$RANKQL" -H "$SERVER" -c "SHOW MODELS;" >"$SCRATCH/notoken.out" 2>"$SCRATCH/notoken.err" </dev/null
  echo $? >"$SCRATCH/notoken.rc"
  check_rc notoken 2
  check_contains "no token: one line saying why" "rankql: cannot open a session on $SERVER: " "$(err notoken)"
  RANKQL_TOKEN=$TOKEN timeout 60 "$RANKQL" -H "$SERVER" -c "SHOW MODELS;" >/dev/null 2>&1 </dev/null
  check_eq "RANKQL_TOKEN holds the token" "0" "$?"
  RANKQL_TOKEN=wrong-token-0123456789 timeout 60 "$RANKQL" -H "$SERVER" -c "SHOW MODELS;" >/dev/null 2>&1 </dev/null
  check_eq "a wrong token: exit 2" "2" "$?"
  rq tokfile -c "SHOW MODELS;"
  check_rc tokfile 0
  rq badtok --token "$SCRATCH/nonexistent" -c "SHOW MODELS;"
  check_rc badtok 2
fi
rq badformat --format xml -c "SHOW MODELS;"
check_rc badformat 2

# ---- data ---------------------------------------------------------------------------------
rq register -c "REGISTER MODEL 'shelltest-pca32' (runner, modality, spec, num_params, up_acc)
    VALUES ('builtin', 'image', {extractor: \"pca\", k: 32}, 25120, 0.81);
  REGISTER MODEL 'shelltest-café' (runner, modality, spec, num_params)
    VALUES ('builtin', 'image', {extractor: \"raw\"}, 784);
  REGISTER MODEL 'shelltest-hog' (runner, modality, spec, num_params, up_acc)
    VALUES ('builtin', 'image', {extractor: \"hog\"}, 1500000, 0.5);
  REGISTER MODEL 'shelltest-q,\"x\"' (runner, modality, spec, num_params)
    VALUES ('builtin', 'image', {extractor: \"raw\"}, 99);"
check_rc register 0
check_eq "register: four models inserted" "4" "$(out register | grep -c "| model | inserted")"

# ---- -c: tables --------------------------------------------------------------------------
Q="SELECT name, num_params, up_acc FROM models WHERE name LIKE 'shelltest-%' ORDER BY num_params;"
rq table -c "$Q"
check_rc table 0
check_eq "table: aligned (UTF-8 counted by characters), numbers right, NULL empty, footer" \
"      name       | num_params | up_acc
-----------------+------------+--------
 shelltest-q,\"x\" |         99 |
 shelltest-café  |        784 |
 shelltest-pca32 |      25120 |   0.81
 shelltest-hog   |    1500000 |    0.5
(4 rows)" "$(out table)"
check_eq "table: nothing on stderr" "" "$(err table)"

rq one -c "SELECT name FROM models WHERE name = 'shelltest-hog'"
check_rc one 0
check_contains "-c: a last statement without ';' runs; '(1 row)'" "(1 row)" "$(out one)"

rq expanded -x -c "SELECT name, num_params FROM models WHERE name = 'shelltest-café';"
check_rc expanded 0
check_eq "-x: one block per row" \
"-[ RECORD 1 ]--------------
name       | shelltest-café
num_params | 784" "$(out expanded)"

# ---- --format csv / json -------------------------------------------------------------------
rq csv --format csv -c "$Q"
check_rc csv 0
check_eq "csv: header, RFC 4180 quoting, NULL empty" \
'name,num_params,up_acc
"shelltest-q,""x""",99,
shelltest-café,784,
shelltest-pca32,25120,0.81
shelltest-hog,1500000,0.5' "$(out csv)"

rq json --format json -c "SELECT name FROM models WHERE name = 'shelltest-hog';
  SELECT name, num_params FROM models WHERE name = 'shelltest-pca32';"
check_rc json 0
check_eq "json: one line per result" "2" "$(out json | wc -l | tr -d ' ')"
check_contains "json: first result" '"rows":[["shelltest-hog"]]' "$(out json | sed -n 1p)"
check_contains "json: second result, compact" '"rows":[["shelltest-pca32",25120]]' "$(out json | sed -n 2p)"

# ---- -f: a script with variables and an error in the middle ------------------------------------
cat >"$SCRATCH/vars.rql" <<'EOF'
-- DECLARE and PRINT across statements, an unknown table on line 4
DECLARE small AS SELECT * FROM models WHERE name LIKE 'shelltest-%' AND num_params < 1000;
SELECT name
  FROM nosuch_table;
PRINT small;
EOF
rq script -f "$SCRATCH/vars.rql"
check_rc script 1
check_contains "-f: DECLARE ran" "DECLARE" "$(out script)"
check_contains "-f: its notice on stderr" "NOTICE: small: 2 models" "$(err script)"
check_contains "-f: the error names the file and its line" "rankql:$SCRATCH/vars.rql:4: ERROR: " "$(err script)"
check_contains "-f: LINE n is the line of the file" "LINE 4:   FROM nosuch_table;" "$(err script)"
check_contains "-f: caret under the table name" "$(printf 'LINE 4:   FROM nosuch_table;\n               ^')" "$(err script)"
check_contains "-f: PRINT after the error ran (variable kept in the session)" "shelltest-café" "$(out script)"
check_contains "-f: PRINT printed both rows" "(2 rows)" "$(out script)"

for how in "-v ON_ERROR_STOP=1" "--on-error-stop"; do
  # shellcheck disable=SC2086
  rq stop -f "$SCRATCH/vars.rql" $how -c "SELECT name FROM models LIMIT 1;"
  check_rc stop 1
  check_contains "$how: ran up to the error" "DECLARE" "$(out stop)"
  check_lacks "$how: nothing after it (nor the next -c)" "row" "$(out stop)"
done
{ echo '\set ON_ERROR_STOP on'; cat "$SCRATCH/vars.rql"; } >"$SCRATCH/vars-stop.rql"
rq setstop -f "$SCRATCH/vars-stop.rql"
check_rc setstop 1
check_lacks "\\set ON_ERROR_STOP on in the script stops it" "(2 rows)" "$(out setstop)"
check_contains "... and line numbers count the \\set line" "LINE 5:   FROM nosuch_table;" "$(err setstop)"

cat >"$SCRATCH/syntax.rql" <<'EOF'
SELECT name FROM models WHERE name = 'shelltest-hog';
SELECT name FROM models
  LIMIT 5 WHERE name = 'x';
SELECT name FROM models WHERE name = 'shelltest-pca32';
EOF
rq syntax -f "$SCRATCH/syntax.rql"
check_rc syntax 1
check_contains "syntax error: shown with its line" "LINE 3:   LIMIT 5 WHERE name = 'x';" "$(err syntax)"
check_contains "syntax error: caret under WHERE" "$(printf "LINE 3:   LIMIT 5 WHERE name = 'x';\n                  ^~~~~")" "$(err syntax)"
check_contains "syntax error: the parser's message" "ERROR: syntax error: " "$(err syntax)"
check_contains "syntax error: the statements around it ran (before)" "shelltest-hog" "$(out syntax)"
check_contains "syntax error: the statements around it ran (after)" "shelltest-pca32" "$(out syntax)"
rq syntaxstop --on-error-stop -f "$SCRATCH/syntax.rql"
check_rc syntaxstop 1
check_lacks "syntax error + ON_ERROR_STOP: stops there" "shelltest-pca32" "$(out syntaxstop)"

printf 'PRINT *;\nSELECT name FROM models WHERE name = %s;\n' "'shelltest-hog'" >"$SCRATCH/good.rql"
rq good -f "$SCRATCH/good.rql" -f "$SCRATCH/good.rql"
check_rc good 0
check_eq "several -f run in order" "2" "$(out good | grep -c 'shelltest-hog')"
rq missing -f "$SCRATCH/nonexistent.rql" -c "SELECT name FROM models WHERE name = 'shelltest-hog';"
check_rc missing 1
check_contains "a missing -f file: one line" "rankql: cannot read $SCRATCH/nonexistent.rql: No such file or directory" "$(err missing)"

# ---- standard input -----------------------------------------------------------------------
printf "SELECT name\n  FROM models\n  WHERE name = 'shelltest-hog';\nSELECT name FROM models WHERE name = 'shelltest-pca32'" >"$SCRATCH/stdin.rql"
RQ_IN=$SCRATCH/stdin.rql rq stdin
check_rc stdin 0
check_contains "stdin: multi-line statement" "shelltest-hog" "$(out stdin)"
check_contains "stdin: last statement without ';'" "shelltest-pca32" "$(out stdin)"
printf "SELECT name FROM nosuch;\n" >"$SCRATCH/stdin-bad.rql"
RQ_IN=$SCRATCH/stdin-bad.rql rq stdinbad
check_rc stdinbad 1

# ---- USE -----------------------------------------------------------------------------------
cat >"$SCRATCH/use.rql" <<EOF
DECLARE v1 AS SELECT * FROM models WHERE name = 'shelltest-hog';
USE "http://$SERVER";
PRINT v1;
USE $SERVER;
SELECT name FROM models WHERE name = 'shelltest-hog';
EOF
rq use -f "$SCRATCH/use.rql"
check_rc use 1
check_contains "USE: switches (and says so)" "You are now connected to rankqld at $SERVER." "$(out use)"
check_contains "USE: a new session there (v1 is gone)" "v1" "$(err use)"
check_contains "USE host:port unquoted: statements go on" "shelltest-hog" "$(out use)"
rq usedead -c "USE 127.0.0.1:$DEAD; SELECT name FROM models LIMIT 1;"
check_rc usedead 2
check_contains "USE of a dead server: one clear line" "rankql: cannot connect to 127.0.0.1:$DEAD: Connection refused" "$(err usedead)"
check_eq "USE of a dead server: the batch stops" "" "$(out usedead)"

# ---- backslash commands in batch -----------------------------------------------------------------
rq bs -c '\d' -c '\d models' -c '\format csv' -c "SELECT name FROM models WHERE name = 'shelltest-hog';"
check_rc bs 0
check_contains "\\d lists the tables" " image_models | table" "$(out bs)"
check "\\d models describes columns" grep -Eq '^ num_params +\| integer$' "$SCRATCH/bs.out"
check_contains "\\format csv in a script" "$(printf 'name\nshelltest-hog')" "$(out bs)"
rq redirect -c "\\o $SCRATCH/o.txt" -c "SELECT name FROM models WHERE name = 'shelltest-hog';" \
  -c '\o' -c "\\i $SCRATCH/good.rql"
check_rc redirect 0
check_contains "\\o FILE: results go to the file" " shelltest-hog" "$(cat "$SCRATCH/o.txt" 2>/dev/null)"
check_eq "\\o alone: back to stdout; \\i FILE runs a file" "1" "$(out redirect | grep -c 'shelltest-hog')"
rq badcmd -c '\nosuch'
check_rc badcmd 1
check_contains "unknown backslash command" 'invalid command \nosuch' "$(err badcmd)"

# ---- the prompt (tmux) ------------------------------------------------------------------------
HIST=$SCRATCH/history
T="tmux -S $TMUX_SOCK"
SESSION=rq
pane() { $T capture-pane -p -N -t "$SESSION" -S -200 2>/dev/null; }   # -N: keep trailing spaces
# wait_pane PATTERN: until the pane shows PATTERN (grep -E), at most 15 s
wait_pane() {
  local i
  for i in $(seq 1 150); do pane | grep -Eq -- "$1" && return 0; sleep 0.1; done
  return 1
}
check_pane() { if wait_pane "$2"; then ok "$1"; else not_ok "$1"; pane | tail -15 | sed 's/^/#   pane: /'; fi; }
# type TEXT: types it literally and presses Enter (tmux would take a final ';' as its own)
type_line() {
  local t=$1
  case $t in *';') t="${t%;}\\;" ;; esac
  $T send-keys -t "$SESSION" -l -- "$t"
  $T send-keys -t "$SESSION" Enter
}
last_line() { pane | grep -v '^ *$' | tail -1; }

if ! command -v tmux >/dev/null; then
  not_ok "interactive: tmux is installed"
  finish
fi
$T new-session -d -s rq -x 200 -y 50 \
  "env LANG=C.UTF-8 TERM=xterm RANKQL_HISTFILE=$HIST $RANKQL -H $SERVER ${TOKEN_ARGS[*]}; echo rankql-exit=\$?; sleep 30"
check_pane "interactive: banner and prompt" '^rankql=> $'
type_line "SELECT name, num_params"
check_pane "interactive: continuation prompt" '^rankql-> $'
type_line "FROM models WHERE name = 'shelltest-hog';"
check_pane "interactive: the multi-line statement ran" '^ shelltest-hog \| +1500000$'
check_pane "interactive: footer" '^\(1 row\)$'
type_line '\timing'
check_pane "\\timing: on" '^Timing is on\.$'
type_line "SELECT name FROM models WHERE name = 'shelltest-pca32';"
check_pane "\\timing: Time: … ms" '^Time: [0-9]+\.[0-9]{3} ms$'
type_line '\timing'
type_line '\x'
check_pane "\\x: on" '^Expanded display is on\.$'
type_line "SELECT name, num_params FROM models WHERE name = 'shelltest-pca32';"
check_pane "\\x: a record block" '^-\[ RECORD 1 \]-+$'
check_pane "\\x: name | value lines" '^num_params \| 25120$'
type_line '\x'
type_line '\d'
check_pane "\\d: list of tables" '^ image_models \| table$'
type_line '\d models'
check_pane "\\d models: its columns" '^ +Table "models"$'
$T send-keys -t rq C-l
$T send-keys -t rq -l -- "sel"
$T send-keys -t rq Tab
check_pane "tab completes a keyword (in the case typed)" '^rankql=> select $'
$T send-keys -t rq -l -- "name FROM image_mo"
$T send-keys -t rq Tab
check_pane "tab completes a table name" '^rankql=> select name FROM image_models $'
$T send-keys -t rq -l -- "WHERE num_par"
$T send-keys -t rq Tab
check_pane "tab completes a column name (asked of the server)" 'FROM image_models WHERE num_params $'
type_line "= 784;"
check_pane "the completed statement ran" '^ shelltest-café$'
type_line "SELECT nothing"
wait_pane '^rankql-> $' >/dev/null
$T send-keys -t rq C-c
for _ in $(seq 1 50); do [ "$(last_line)" = "rankql=> " ] && break; sleep 0.1; done
check_eq "Ctrl-C drops the statement being typed" "rankql=> " "$(last_line)"
type_line '\q'
check_pane "\\q leaves with status 0" '^rankql-exit=0$'
check "history file written" test -s "$HIST"
check_contains "history holds the statements" "shelltest-hog" "$(cat "$HIST" 2>/dev/null)"

# a second session (the first stays, so the tmux server does too): the history is read
# back (Up), and Ctrl-D leaves
SESSION=rq2
$T new-session -d -s rq2 -x 200 -y 50 \
  "env LANG=C.UTF-8 TERM=xterm RANKQL_HISTFILE=$HIST $RANKQL -H $SERVER ${TOKEN_ARGS[*]}; echo rankql-exit=\$?; sleep 30"
wait_pane '^rankql=> $' >/dev/null
$T send-keys -t rq2 Up
check_pane "history: Up recalls the last line of the previous session" '^rankql=> \\q$'
$T send-keys -t rq2 C-u C-d
check_pane "Ctrl-D leaves with status 0" '^rankql-exit=0$'

finish
