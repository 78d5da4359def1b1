#!/usr/bin/env bash
# `rankql --parse` as a command: files, standard input and '-', exit codes, one JSON
# object per line on stdout, positioned errors on stderr, and a valgrind run over the whole
# SHiFT corpus plus a file of bad statements (no memory errors, no leaks). Needs no server.
#
# Prints one "ok - …" / "not ok - …" line per check (tests/run-tests.sh counts them).
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

RANKQL=$RANKQL_BIN/rankql
CORPUS=${RANKQL_SHARED:-$RANKQL_ROOT/../shared}/queries/shift-examples
TMP=$(mktemp -d /tmp/rankql-parse-cli.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

if [ ! -x "$RANKQL" ]; then
  not_ok "rankql is built ($RANKQL missing: run make build-all)"
  finish
fi

# run NAME INPUT-FILE ARGS...: runs rankql with stdin from INPUT-FILE, keeps stdout, stderr, rc
run() {
  local name=$1 input=$2; shift 2
  "$RANKQL" "$@" <"$input" >"$TMP/$name.out" 2>"$TMP/$name.err"
  echo $? >"$TMP/$name.rc"
}
rc_of() { cat "$TMP/$1.rc"; }
lines_of() { wc -l <"$TMP/$1.out" | tr -d ' '; }

# every line of FILE is one JSON object with a "type"; prints the number of lines
json_lines() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c '
import json, sys
def sorted_keys(pairs):
    keys = [k for k, _ in pairs]
    if keys != sorted(keys):
        raise ValueError("keys not sorted: %s" % keys)
    return dict(pairs)
n = 0
for i, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    obj = json.loads(line, object_pairs_hook=sorted_keys)
    if not isinstance(obj, dict) or "type" not in obj or "line" not in obj:
        sys.exit("line %d is not a statement object" % i)
    n += 1
print(n)' "$1"
  elif command -v jq >/dev/null 2>&1; then
    jq -e -c 'if type == "object" and has("type") then . else error("not a statement") end' "$1" | wc -l | tr -d ' '
  else
    echo "neither python3 nor jq" >&2
    return 1
  fi
}

# ---- files -------------------------------------------------------------------------------
if [ -d "$CORPUS" ]; then
  ok "SHiFT corpus found at $CORPUS"
else
  not_ok "SHiFT corpus found at $CORPUS (set RANKQL_SHARED)"
fi
corpus_files=("$CORPUS"/*.shiftql)
run corpus /dev/null --parse "${corpus_files[@]}"
check_eq "corpus: exit 0" 0 "$(rc_of corpus)"
check_eq "corpus: nothing on stderr" "" "$(cat "$TMP/corpus.err")"
n=$(json_lines "$TMP/corpus.out" 2>"$TMP/json.err") || n="invalid: $(cat "$TMP/json.err")"
check_eq "corpus: one JSON object (sorted keys) per line" "$(lines_of corpus)" "$n"
if [ "$(lines_of corpus)" -ge 150 ]; then
  ok "corpus: $(lines_of corpus) statements from ${#corpus_files[@]} files"
else
  not_ok "corpus: only $(lines_of corpus) statements from ${#corpus_files[@]} files (>= 150 expected)"
fi

printf 'select * from t;\nSHOW JOBS; -- two on a line\n' >"$TMP/good.rql"
run file /dev/null --parse "$TMP/good.rql"
check_eq "file: exit 0" 0 "$(rc_of file)"
check_eq "file: one line per statement" 2 "$(lines_of file)"
check_contains "file: SHOW statement printed" '"type":"show","what":"jobs"' "$(cat "$TMP/file.out")"

# ---- standard input ------------------------------------------------------------------------
printf 'select a from t where b = 1;\nuse 127.0.0.1:8001;\n' >"$TMP/stdin.rql"
run stdin "$TMP/stdin.rql" --parse
check_eq "stdin (no FILE): exit 0" 0 "$(rc_of stdin)"
check_eq "stdin (no FILE): two statements" 2 "$(lines_of stdin)"
run dash "$TMP/stdin.rql" --parse -
check_eq "stdin ('-'): same output as without FILE" "$(cat "$TMP/stdin.out")" "$(cat "$TMP/dash.out")"
run dash_and_file "$TMP/stdin.rql" --parse "$TMP/good.rql" - "$TMP/good.rql"
check_eq "'-' between files: all three inputs, in order" 6 "$(lines_of dash_and_file)"
check_contains "'-' between files: stdin's statements in the middle" '"type":"use"' \
  "$(sed -n 4p "$TMP/dash_and_file.out")"
run empty /dev/null --parse
check_eq "empty input: exit 0" 0 "$(rc_of empty)"
check_eq "empty input: no output" 0 "$(lines_of empty)"

# ---- errors ----------------------------------------------------------------------------------
printf 'select * from a;\nselect * frm b;\nselect * from c;\n' >"$TMP/bad.rql"
run bad /dev/null --parse "$TMP/good.rql" "$TMP/bad.rql" "$TMP/good.rql"
check_eq "one bad file among good ones: exit 1" 1 "$(rc_of bad)"
check_eq "one bad file among good ones: every good statement printed" 6 "$(lines_of bad)"
expected="$TMP/bad.rql:2:10: syntax error: unexpected identifier \"frm\", expected ',' or FROM
select * frm b;
         ^~~"
check_eq "error on stderr: FILE:LINE:COL, message, source line, caret" "$expected" "$(cat "$TMP/bad.err")"

printf 'select * from t where a = 1\n' >"$TMP/nosemi.rql"
run nosemi "$TMP/nosemi.rql" --parse
check_eq "missing ';' on stdin: exit 1" 1 "$(rc_of nosemi)"
check_eq "missing ';' on stdin: named <stdin>" "<stdin>:1:28: syntax error: missing ';' at end of statement" \
  "$(head -1 "$TMP/nosemi.err")"

run missing /dev/null --parse "$TMP/good.rql" "$TMP/does-not-exist.rql"
check_eq "unreadable file: exit 1" 1 "$(rc_of missing)"
check_eq "unreadable file: message" "rankql: cannot read $TMP/does-not-exist.rql: No such file or directory" \
  "$(cat "$TMP/missing.err")"
check_eq "unreadable file: the readable one still printed" 2 "$(lines_of missing)"
mkdir "$TMP/dir.rql"
run dir /dev/null --parse "$TMP/dir.rql"
check_eq "directory as FILE: exit 1" 1 "$(rc_of dir)"
check_contains "directory as FILE: message" "rankql: cannot read $TMP/dir.rql: Is a directory" \
  "$(cat "$TMP/dir.err")"

# ---- options -------------------------------------------------------------------------------
run help /dev/null --help
check_eq "--help: exit 0" 0 "$(rc_of help)"
check_contains "--help: usage on stdout" "usage: rankql" "$(cat "$TMP/help.out")"
check_contains "--help: mentions --parse" "--parse" "$(cat "$TMP/help.out")"
run version /dev/null --version
check_eq "--version: exit 0" 0 "$(rc_of version)"
case "$(cat "$TMP/version.out")" in
  "rankql "[0-9]*) ok "--version: prints 'rankql VERSION'" ;;
  *) not_ok "--version: prints 'rankql VERSION' (got: $(cat "$TMP/version.out"))" ;;
esac
run badflag /dev/null --parse --frobnicate
check_eq "bad flag: exit 2" 2 "$(rc_of badflag)"
check_contains "bad flag: usage on stderr" "usage: rankql" "$(cat "$TMP/badflag.err")"
check_eq "bad flag: nothing on stdout" 0 "$(lines_of badflag)"

# ---- memory: valgrind over the corpus and bad statements ------------------------------------
cat >"$TMP/worst.rql" <<'EOF'
select * frm t;
select * from t where (a = 1;
select * from t where a = 1);
select * from t where a = 12abc;
select * from t limit 5 where a = 1;
register dataset "d" ("a", "b") values ("x");
rank * from t by "random(seed=)";
select * from a order by x union select * from b;
select * from t trained on ("a" change [1, 2] to "b" [3]) tested on "c"[5:2];
explain json json select * from t;
select * from t
select * from u where x @ 1;
select [a, b) from t;
EOF
printf 'select * from t where a = "x\xffy";\nselect\0 * from t;\nuse 127.0.0.1:8001;\n' >>"$TMP/worst.rql"
printf "select * from t where a = 'never closed;\nselect * from u;\n" >"$TMP/unterminated.rql"
printf 'select * from t; /* never closed;\nselect * from u;\n' >"$TMP/comment.rql"
if nm "$RANKQL" 2>/dev/null | grep -q ' __asan_init$'; then
  # Valgrind cannot run an AddressSanitizer binary; that build checks memory itself.
  ok "valgrind: skipped on the ASan/UBSan build # SKIP $RANKQL is built with -fsanitize=address"
elif command -v valgrind >/dev/null 2>&1; then
  valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
    "$RANKQL" --parse "${corpus_files[@]}" "$TMP/worst.rql" "$TMP/unterminated.rql" \
    "$TMP/comment.rql" - <"$TMP/stdin.rql" \
    >"$TMP/vg.out" 2>"$TMP/vg.err"
  vg_rc=$?
  check_eq "valgrind: rankql --parse over the corpus and bad statements exits 1 (not 9)" 1 "$vg_rc"
  if grep -q '^==[0-9]*==' "$TMP/vg.err"; then
    not_ok "valgrind: no memory errors or leaks"
    grep '^==[0-9]*==' "$TMP/vg.err" | head -20 | sed 's/^/#   /'
  else
    ok "valgrind: no memory errors or leaks"
  fi
  check_eq "valgrind: every good statement still printed" \
    "$(( $(lines_of corpus) + 2 + 2 ))" "$(lines_of vg)"
  nerr=$(grep -c ': \(syntax\|lexical\) error: ' "$TMP/vg.err")
  check_eq "valgrind: one error per bad statement" 17 "$nerr"
else
  not_ok "valgrind is installed (scripts/install-deps.sh installs it)"
fi

finish
