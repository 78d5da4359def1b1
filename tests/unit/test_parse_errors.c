/* Error tests for the RankQL parser: each case names the input, the statement that fails,
 * the error kind, its exact line and column and its exact message. Further tests check
 * that the other statements of a script still parse, the formatted message (caret under
 * the right column, tabs kept), and that no input crashes or leaks (every prefix and
 * single-byte deletion of real statements, and pseudo-random bytes; run under ASan and
 * UBSan in build-san/).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "grammar/parse.h"

typedef struct error_case {
    const char *name;
    const char *src;
    size_t len;            /* 0: strlen(src) */
    size_t stmt;           /* index of the statement that fails */
    size_t nstmts;         /* statements in the script; 0: 1 */
    rq_error_kind kind;
    int line, col;
    const char *message;
} error_case;

#define SYN RQ_ERR_SYNTAX
#define LEX RQ_ERR_LEXICAL
#define SELECT_ORDER "(SELECT clauses go in the order WHERE, ORDER BY, TRAINED ON, TESTED ON, " \
                     "CLASSIFIED BY, LIMIT, OTHER THAN, CHUNK, BUDGET, ETA, WAIT)"

static const error_case cases[] = {
    /* ---- unexpected tokens ---------------------------------------------------------- */
    {.name = "bad_token_from_missing", .src = "select * frm t;", .kind = SYN, .line = 1, .col = 10,
     .message = "unexpected identifier \"frm\", expected ',' or FROM"},
    {.name = "bad_token_table_star", .src = "select * from *;", .kind = SYN, .line = 1, .col = 15,
     .message = "unexpected '*', expected identifier or string"},
    {.name = "bad_token_table_number", .src = "select * from 12;", .kind = SYN, .line = 1, .col = 15,
     .message = "unexpected number 12, expected identifier or string"},
    {.name = "bad_token_values_missing", .src = "register model \"m\" (a) (1);", .kind = SYN,
     .line = 1, .col = 24, .message = "unexpected '(', expected VALUES"},
    {.name = "bad_token_order_without_by", .src = "select * from t order err;", .kind = SYN,
     .line = 1, .col = 23, .message = "unexpected identifier \"err\", expected BY"},
    {.name = "bad_token_eof_in_where", .src = "select * from t where", .kind = SYN, .line = 1,
     .col = 22, .message = "unexpected end of input, expected an expression"},
    {.name = "bad_token_where_operand", .src = "select * from t where a = ;", .kind = SYN,
     .line = 1, .col = 27, .message = "unexpected ';', expected an expression"},
    {.name = "bad_token_use_target", .src = "use;", .kind = SYN, .line = 1, .col = 4,
     .message = "unexpected ';', expected identifier, string or host:port"},
    {.name = "bad_token_statement_start", .src = "frobnicate the models;", .kind = SYN, .line = 1,
     .col = 1,
     .message = "unexpected identifier \"frobnicate\", expected '(', SELECT, RANK, EXPLAIN, "
                "DECLARE, REGISTER, FINETUNE, USE, PRINT, PURGE, SHOW, CANCEL or CHECK"},
    {.name = "bad_token_show_what", .src = "show tables;", .kind = SYN, .line = 1, .col = 6,
     .message = "unexpected identifier \"tables\", expected JOBS, MODELS, DATASETS or EXTENSIONS"},
    {.name = "bad_token_cancel_what", .src = "cancel 12;", .kind = SYN, .line = 1, .col = 8,
     .message = "unexpected number 12, expected JOB or QUERY"},
    {.name = "bad_token_print_number", .src = "print 1;", .kind = SYN, .line = 1, .col = 7,
     .message = "unexpected number 1, expected identifier, string or '*'"},
    {.name = "bad_token_explain_show", .src = "explain show jobs;", .kind = SYN, .line = 1,
     .col = 9, .message = "unexpected SHOW, expected '(', ANALYZE, JSON, SELECT or RANK"},
    {.name = "bad_token_sql_quote_doubling", .src = "select * from t where a = 'it''s';",
     .kind = SYN, .line = 1, .col = 31,
     .message = "unexpected string \"s\", expected ORDER BY, TRAINED ON, TESTED ON, CLASSIFIED BY, "
                "LIMIT, OTHER THAN, CHUNK, BUDGET, ETA, WAIT, UNION, INTERSECT, EXCEPT, an operator "
                "or ';'"},
    {.name = "bad_token_change_target_slice", .src = "select * from t trained on (\"a\" change [1] to \"b\"[2:3]);",
     .kind = SYN, .line = 1, .col = 52, .message = "unexpected ':', expected ',' or ']'"},

    /* ---- missing ';' ------------------------------------------------------------------ */
    {.name = "missing_semicolon_at_end", .src = "select * from t", .kind = SYN, .line = 1,
     .col = 16, .message = "missing ';' at end of statement"},
    {.name = "missing_semicolon_later_line", .src = "select *\n  from t\n  where a = 1\n",
     .kind = SYN, .line = 3, .col = 14, .message = "missing ';' at end of statement"},
    {.name = "missing_semicolon_before_statement", .src = "select * from t\nselect * from u;",
     .nstmts = 2, .kind = SYN, .line = 1, .col = 16, .message = "missing ';' before SELECT"},
    {.name = "missing_semicolon_same_line", .src = "show jobs print x;", .nstmts = 2, .kind = SYN,
     .line = 1, .col = 10, .message = "missing ';' before PRINT"},
    {.name = "missing_semicolon_after_comment", .src = "purge -- all of it\n/* then */ use x;",
     .nstmts = 2, .kind = SYN, .line = 1, .col = 6, .message = "missing ';' before USE"},

    /* ---- unbalanced brackets ---------------------------------------------------------- */
    {.name = "unbalanced_open_paren", .src = "select * from t where (a = 1;", .kind = SYN,
     .line = 1, .col = 29,
     .message = "unexpected ';', expected ')' or an operator (the '(' at 1:23 is not closed)"},
    {.name = "unbalanced_close_paren", .src = "select * from t where a = 1);", .kind = SYN,
     .line = 1, .col = 28, .message = "unexpected ')' with no matching '('"},
    {.name = "unbalanced_open_bracket", .src = "select * from t trained on [\"a\", \"b\";",
     .kind = SYN, .line = 1, .col = 37,
     .message = "unexpected ';', expected ',', '[' or ']' (the '[' at 1:28 is not closed)"},
    {.name = "unbalanced_close_bracket", .src = "select a] from t;", .kind = SYN, .line = 1,
     .col = 9, .message = "unexpected ']' with no matching '['"},
    {.name = "unbalanced_open_brace", .src = "register model \"m\" (a) values ({k: 1);",
     .kind = SYN, .line = 1, .col = 37,
     .message = "unexpected ')', expected ',' or '}' (the '{' at 1:32 is not closed)"},
    {.name = "unbalanced_close_brace", .src = "register model \"m\" (a) values (1});", .kind = SYN,
     .line = 1, .col = 33, .message = "unexpected '}' with no matching '{'"},
    {.name = "unbalanced_mismatched", .src = "register model \"m\" (a) values ([1, 2);",
     .kind = SYN, .line = 1, .col = 37,
     .message = "unexpected ')', expected ',' or ']' (the '[' at 1:32 is not closed)"},
    {.name = "unbalanced_at_end_of_input", .src = "select * from t\nwhere a in (1,\n 2",
     .kind = SYN, .line = 3, .col = 3,
     .message = "unexpected end of input, expected ',', ')' or an operator (the '(' at 2:12 is not "
                "closed)"},

    /* ---- unterminated strings and comments -------------------------------------------- */
    {.name = "unterminated_single_quote", .src = "select * from t where a = 'abc;", .kind = LEX,
     .line = 1, .col = 27, .message = "unterminated string literal"},
    {.name = "unterminated_double_quote", .src = "select * from t where a = \"abc;", .kind = LEX,
     .line = 1, .col = 27, .message = "unterminated string literal"},
    {.name = "unterminated_backtick", .src = "select * from t where a = `abc;", .kind = LEX,
     .line = 1, .col = 27, .message = "unterminated string literal"},
    {.name = "unterminated_string_later_line", .src = "select * from t\nwhere a = \"abc\n;\n",
     .kind = LEX, .line = 2, .col = 11, .message = "unterminated string literal"},
    {.name = "unterminated_escaped_quote", .src = "select * from t where a = 'it\\';", .kind = LEX,
     .line = 1, .col = 27, .message = "unterminated string literal"},
    {.name = "unterminated_comment", .src = "select * from t /* abc;", .kind = LEX, .line = 1,
     .col = 17, .message = "unterminated /* comment"},
    {.name = "unterminated_comment_multiline", .src = "select *\n/* one\ntwo;", .kind = LEX,
     .line = 2, .col = 1, .message = "unterminated /* comment"},

    /* ---- numbers ---------------------------------------------------------------------- */
    {.name = "malformed_number_letters", .src = "select * from t where a = 12abc;", .kind = LEX,
     .line = 1, .col = 27, .message = "malformed number: 12abc"},
    {.name = "malformed_number_dots", .src = "select * from t where a = 1.2.3;", .kind = LEX,
     .line = 1, .col = 27, .message = "malformed number: 1.2.3"},
    {.name = "malformed_number_two_suffixes", .src = "select * from t limit 10MB;", .kind = LEX,
     .line = 1, .col = 23, .message = "malformed number: 10MB"},
    {.name = "number_out_of_range", .src = "select * from t where a = 99999999999999999999;",
     .kind = LEX, .line = 1, .col = 27, .message = "number out of range: 99999999999999999999"},
    {.name = "number_out_of_range_suffix", .src = "select * from t where a = 9999999999999999K;",
     .kind = LEX, .line = 1, .col = 27, .message = "number out of range: 9999999999999999K"},
    {.name = "number_out_of_range_exponent", .src = "select * from t where a = 1e999;", .kind = LEX,
     .line = 1, .col = 27, .message = "number out of range: 1e999"},

    /* ---- characters ------------------------------------------------------------------- */
    {.name = "bad_char_at", .src = "select * from t where a @ 1;", .kind = LEX, .line = 1,
     .col = 25, .message = "unexpected character '@'"},
    {.name = "bad_char_dollar", .src = "select $ from t;", .kind = LEX, .line = 1, .col = 8,
     .message = "unexpected character '$'"},
    {.name = "bad_char_utf8", .src = "select * from t where a = \xc3\xa9;", .kind = LEX,
     .line = 1, .col = 27, .message = "unexpected character '\xc3\xa9'"},
    {.name = "bad_char_after_utf8_string", .src = "select \"\xc3\xa9t\xc3\xa9\" from t where ?;",
     .kind = LEX, .line = 1, .col = 29, .message = "unexpected character '?'"},
    {.name = "bad_byte_nul", .src = "select * from t where a = 1\0 or b = 2;", .len = 38,
     .kind = LEX, .line = 1, .col = 28, .message = "unexpected byte 0x00"},
    {.name = "bad_byte_invalid_utf8", .src = "select \xfe from t;", .kind = LEX, .line = 1,
     .col = 8, .message = "unexpected byte 0xFE"},
    {.name = "bad_utf8_in_string", .src = "select * from t where a = \"x\xff;y\";\nselect * from u;",
     .nstmts = 2, .kind = LEX, .line = 1, .col = 29,
     .message = "invalid UTF-8 byte 0xFF in string literal"},

    /* ---- clause order ----------------------------------------------------------------- */
    {.name = "clause_limit_before_where", .src = "select * from t limit 5 where a = 1;",
     .kind = SYN, .line = 1, .col = 25, .message = "WHERE must come before LIMIT " SELECT_ORDER},
    {.name = "clause_wait_before_limit", .src = "select * from t wait limit 5;", .kind = SYN,
     .line = 1, .col = 22, .message = "LIMIT must come before WAIT " SELECT_ORDER},
    {.name = "clause_tested_before_trained",
     .src = "select * from t order by err tested on \"b\" trained on \"a\";", .kind = SYN,
     .line = 1, .col = 44, .message = "TRAINED ON must come before TESTED ON " SELECT_ORDER},
    {.name = "clause_order_after_trained", .src = "select * from t trained on \"a\" order by err;",
     .kind = SYN, .line = 1, .col = 32, .message = "ORDER BY must come before TRAINED ON " SELECT_ORDER},
    {.name = "clause_classified_after_limit",
     .src = "select * from t limit 1 classified by [\"x\"];", .kind = SYN, .line = 1, .col = 25,
     .message = "CLASSIFIED BY must come before LIMIT " SELECT_ORDER},
    {.name = "clause_limit_twice", .src = "select * from t limit 1 limit 2;", .kind = SYN,
     .line = 1, .col = 25, .message = "LIMIT given twice"},
    {.name = "clause_wait_as_column_then_where_after_wait",
     .src = "select wait from t where a = 1 wait where;", .kind = SYN, .line = 1, .col = 37,
     .message = "WHERE must come before WAIT " SELECT_ORDER},
    {.name = "clause_rank_where_after_limit", .src = "rank * from t order by x by \"s\" limit 1 where a;",
     .kind = SYN, .line = 1, .col = 41,
     .message = "WHERE must come before LIMIT (RANK clauses go in the order WHERE, ORDER BY, "
                "TRAINED ON, TESTED ON, BY, LIMIT, WAIT)"},
    {.name = "clause_rank_missing_by", .src = "rank * from t trained on \"a\" tested on \"b\" \"leep\";",
     .kind = SYN, .line = 1, .col = 44,
     .message = "unexpected string \"leep\", expected ',', '[' or BY"},
    {.name = "clause_rank_without_by", .src = "rank * from t;", .kind = SYN, .line = 1, .col = 14,
     .message = "unexpected ';', expected WHERE, ORDER BY, TRAINED ON, TESTED ON or BY"},
    {.name = "clause_rank_classified", .src = "rank * from t by \"x\" classified by y;",
     .kind = SYN, .line = 1, .col = 22,
     .message = "unexpected CLASSIFIED BY, expected '(', LIMIT, WAIT, UNION, INTERSECT, EXCEPT or ';'"},

    /* ---- REGISTER --------------------------------------------------------------------- */
    {.name = "register_fewer_values", .src = "register dataset \"d\" (\"a\", \"b\") values (\"x\");",
     .kind = SYN, .line = 1, .col = 33, .message = "REGISTER lists 2 columns but 1 value"},
    {.name = "register_more_values", .src = "register dataset \"d\" (\"a\") values (\"x\", 1, 2);",
     .kind = SYN, .line = 1, .col = 28, .message = "REGISTER lists 1 column but 3 values"},
    {.name = "register_unknown_kind", .src = "register table \"d\" (\"a\") values (\"x\");",
     .kind = SYN, .line = 1, .col = 10,
     .message = "cannot register \"table\": expected DATASET or MODEL"},

    /* ---- integers: slices, LIMIT, CHUNK, BUDGET, indices --------------------------------- */
    {.name = "slice_start_after_stop", .src = "select * from t trained on \"d\"[5:2];", .kind = SYN,
     .line = 1, .col = 31, .message = "slice start 5 is after its stop 2"},
    {.name = "slice_negative", .src = "select * from t trained on \"d\"[-1:2];", .kind = SYN,
     .line = 1, .col = 32, .message = "a slice bound must be a non-negative integer, not -1"},
    {.name = "slice_not_integer", .src = "select * from t trained on \"d\"[0:2.5];", .kind = SYN,
     .line = 1, .col = 34, .message = "a slice bound must be a non-negative integer, not 2.5"},
    {.name = "limit_not_integer", .src = "select * from t limit 1.5;", .kind = SYN, .line = 1,
     .col = 23, .message = "LIMIT must be a non-negative integer, not 1.5"},
    {.name = "limit_negative", .src = "select * from t limit -1;", .kind = SYN, .line = 1,
     .col = 23, .message = "LIMIT must be a non-negative integer, not -1"},
    {.name = "limit_string", .src = "select * from t limit \"5\";", .kind = SYN, .line = 1,
     .col = 23, .message = "unexpected string \"5\", expected number or '-'"},
    {.name = "chunk_not_integer", .src = "select * from t chunk 2.5;", .kind = SYN, .line = 1,
     .col = 23, .message = "CHUNK must be a non-negative integer, not 2.5"},
    {.name = "budget_negative", .src = "select * from t budget -4;", .kind = SYN, .line = 1,
     .col = 24, .message = "BUDGET must be a non-negative integer, not -4"},
    {.name = "eta_one", .src = "select * from t chunk 8 eta 1;", .kind = SYN, .line = 1,
     .col = 29, .message = "ETA must be an integer of at least 2, not 1"},
    {.name = "eta_not_integer", .src = "select * from t chunk 8 eta 2.5;", .kind = SYN, .line = 1,
     .col = 29, .message = "ETA must be a non-negative integer, not 2.5"},
    {.name = "eta_auto", .src = "select * from t chunk 8 eta auto;", .kind = SYN, .line = 1,
     .col = 29, .message = "unexpected AUTO, expected number or '-'"},
    {.name = "eta_after_wait", .src = "select * from t chunk 8 wait eta 3;", .kind = SYN,
     .line = 1, .col = 30, .message = "ETA must come before WAIT " SELECT_ORDER},
    {.name = "index_not_integer", .src = "select * from t trained on (\"a\" change [1.5] to \"b\");",
     .kind = SYN, .line = 1, .col = 41, .message = "an index must be a non-negative integer, not 1.5"},
    {.name = "index_negative", .src = "select * from t trained on (\"a\" change [0, -2] to \"b\");",
     .kind = SYN, .line = 1, .col = 44, .message = "an index must be a non-negative integer, not -2"},
    {.name = "change_index_count_mismatch",
     .src = "select * from t trained on (\"a\" change [1, 2] to \"b\" [3]);", .kind = SYN,
     .line = 1, .col = 55, .message = "CHANGE lists 2 base indices but 1 target index"},

    /* ---- set operations --------------------------------------------------------------- */
    {.name = "set_order_by_on_earlier_member", .src = "select * from a order by x union select * from b;",
     .kind = SYN, .line = 1, .col = 26,
     .message = "ORDER BY must come after the last query of a set operation (put this query in "
                "parentheses to order it on its own)"},
    {.name = "set_limit_on_earlier_member", .src = "select * from a limit 3 union select * from b;",
     .kind = SYN, .line = 1, .col = 23,
     .message = "LIMIT must come after the last query of a set operation (put this query in "
                "parentheses to limit it on its own)"},
    {.name = "set_order_by_inside_chain",
     .src = "select * from a union select * from b order by x except select * from c;",
     .kind = SYN, .line = 1, .col = 48,
     .message = "ORDER BY must come after the last query of a set operation (put the queries it "
                "orders in parentheses)"},

    /* ---- strategy strings ------------------------------------------------------------- */
    {.name = "strategy_missing_value", .src = "rank * from t by \"random(seed=)\";", .kind = SYN,
     .line = 1, .col = 31, .message = "in strategy parameters: unexpected ')', expected a value"},
    {.name = "strategy_missing_equals", .src = "rank * from t by \"random(seed 1)\";", .kind = SYN,
     .line = 1, .col = 31, .message = "in strategy parameters: unexpected number 1, expected '='"},
    {.name = "strategy_without_name", .src = "rank * from t by \"(x=1)\";", .kind = SYN, .line = 1,
     .col = 19, .message = "strategy \"(x=1)\" has no name before '('"},
    {.name = "strategy_text_after_parens", .src = "rank * from t by \"random(seed=1) extra\";",
     .kind = SYN, .line = 1, .col = 34,
     .message = "in strategy parameters: unexpected identifier \"extra\", expected the end of the "
                "string after ')'"},
    {.name = "strategy_unclosed", .src = "rank * from t by \"random(seed=1\";", .kind = SYN,
     .line = 1, .col = 32,
     .message = "in strategy parameters: unexpected end of the string, expected ',' or ')'"},
    {.name = "strategy_bad_character", .src = "rank * from t by \"random(seed=@)\";", .kind = SYN,
     .line = 1, .col = 31, .message = "in strategy parameters: unexpected character '@'"},
    {.name = "strategy_after_escape", .src = "rank * from t by \"s(a=\\\"x\\\", b 2)\";", .kind = SYN,
     .line = 1, .col = 32, .message = "in strategy parameters: unexpected number 2, expected '='"},
    {.name = "classifier_string_params", .src = "select * from t classified by [\"Linear(lr=)\"];",
     .kind = SYN, .line = 1, .col = 43,
     .message = "in strategy parameters: unexpected ')', expected a value"},

    /* ---- EXPLAIN options -------------------------------------------------------------- */
    {.name = "explain_json_twice", .src = "explain json json select * from t;", .kind = SYN,
     .line = 1, .col = 14, .message = "JSON given twice"},
    {.name = "explain_analyze_twice", .src = "explain analyze json analyze select * from t;",
     .kind = SYN, .line = 1, .col = 22, .message = "ANALYZE given twice"},
};

static void run_error_case(void **state)
{
    const error_case *c = *state;
    size_t len = c->len ? c->len : strlen(c->src);
    rq_script *s = rq_parse_script(c->src, len);
    size_t nstmts = c->nstmts ? c->nstmts : 1;
    if (s->n != nstmts)
        fail_msg("%s: %zu statements, expected %zu", c->name, s->n, nstmts);
    assert_int_equal(s->nerrors, 1);
    for (size_t i = 0; i < s->n; i++) {
        if (i == c->stmt)
            continue;
        if (s->stmts[i].error)
            fail_msg("%s: statement %zu failed too: %s", c->name, i + 1, s->stmts[i].error->message);
        assert_non_null(s->stmts[i].ast);
    }
    const rq_statement *st = &s->stmts[c->stmt];
    assert_null(st->ast);
    assert_non_null(st->error);
    const rq_error *e = st->error;
    if (strcmp(e->message, c->message) != 0 || e->kind != c->kind || e->pos.line != c->line ||
        e->pos.col != c->col) {
        char *f = rq_error_format(s, e, "<test>");
        print_error("%s\n  expected %s at %d:%d: %s\n  actual   %s at %d:%d: %s\n%s", c->name,
                    c->kind == RQ_ERR_LEXICAL ? "lexical" : "syntax", c->line, c->col, c->message,
                    e->kind == RQ_ERR_LEXICAL ? "lexical" : "syntax", e->pos.line, e->pos.col,
                    e->message, f);
        free(f);
    }
    assert_string_equal(e->message, c->message);
    assert_int_equal(e->kind, c->kind);
    assert_int_equal(e->pos.line, c->line);
    assert_int_equal(e->pos.col, c->col);
    /* the offset agrees with line:col */
    size_t bol = e->pos.offset;
    while (bol > 0 && s->src[bol - 1] != '\n')
        bol--;
    assert_int_equal(e->pos.offset - bol + 1, (size_t)c->col);
    rq_script_free(s);
}

/* ---- scripts with several statements ------------------------------------------------- */

static void test_error_in_statement_2_of_3(void **state)
{
    (void)state;
    const char *src = "select * from a;\nselect * frm b;\nselect * from c;\n";
    rq_script *s = rq_parse_script(src, strlen(src));
    assert_int_equal(s->n, 3);
    assert_int_equal(s->nerrors, 1);
    assert_non_null(s->stmts[0].ast);
    assert_null(s->stmts[0].error);
    assert_null(s->stmts[1].ast);
    assert_non_null(s->stmts[1].error);
    assert_non_null(s->stmts[2].ast);
    assert_string_equal(s->stmts[1].error->message, "unexpected identifier \"frm\", expected ',' or FROM");
    assert_int_equal(s->stmts[1].error->pos.line, 2);
    assert_int_equal(s->stmts[1].error->pos.col, 10);
    /* byte ranges: each statement's text, ';' included */
    assert_int_equal(s->stmts[0].start, 0);
    assert_int_equal(s->stmts[0].end, 16);
    assert_int_equal(s->stmts[1].start, 17);
    assert_int_equal(s->stmts[1].end, 32);
    assert_int_equal(s->stmts[2].start, 33);
    assert_int_equal(s->stmts[2].pos.line, 3);
    assert_int_equal(((const ast_select *)s->stmts[2].ast)->from.text[0], 'c');
    rq_script_free(s);
}

static void test_errors_do_not_stop_the_script(void **state)
{
    (void)state;
    /* a lexical error, a syntax error, an action error and a missing ';' among good ones */
    const char *src = "select 'open from t;\n"       /* unterminated: swallows the rest */
                      "";
    rq_script *s = rq_parse_script(src, strlen(src));
    assert_int_equal(s->n, 1);
    assert_int_equal(s->nerrors, 1);
    rq_script_free(s);

    src = "select @ from a; select * from b;\n"
          "select * from c limit 1.5; select * from d;\n"
          "select * from e\n"
          "select * from f;\n"
          "show what; show jobs;";
    s = rq_parse_script(src, strlen(src));
    assert_int_equal(s->n, 8);
    assert_int_equal(s->nerrors, 4);
    const char *from[] = {NULL, "b", NULL, "d", NULL, "f", NULL};
    for (size_t i = 0; i < 7; i++) {
        if (from[i]) {
            assert_non_null(s->stmts[i].ast);
            assert_string_equal(((const ast_select *)s->stmts[i].ast)->from.text, from[i]);
        } else {
            assert_non_null(s->stmts[i].error);
        }
    }
    assert_int_equal(s->stmts[0].error->kind, RQ_ERR_LEXICAL);
    assert_string_equal(s->stmts[2].error->message, "LIMIT must be a non-negative integer, not 1.5");
    assert_string_equal(s->stmts[4].error->message, "missing ';' before SELECT");
    assert_int_equal(s->stmts[4].error->pos.line, 3);
    assert_int_equal(s->stmts[4].error->pos.col, 16);
    assert_int_equal(s->stmts[5].pos.line, 4); /* the next statement starts at its SELECT */
    assert_string_equal(s->stmts[6].error->message,
                        "unexpected identifier \"what\", expected JOBS, MODELS, DATASETS or EXTENSIONS");
    assert_non_null(s->stmts[7].ast);
    assert_int_equal(s->stmts[7].ast->kind, AST_SHOW);
    rq_script_free(s);
}

/* ---- limits ----------------------------------------------------------------------------- */

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    strbuf sb = {0};
    strbuf_puts(&sb, head);
    for (size_t i = 0; i < n; i++)
        strbuf_puts(&sb, unit);
    strbuf_puts(&sb, tail);
    return strbuf_detach(&sb);
}

static void test_nesting_limits(void **state)
{
    (void)state;
    /* parentheses: the parser stack */
    strbuf sb = {0};
    strbuf_puts(&sb, "select * from t where ");
    for (int i = 0; i < 300; i++)
        strbuf_putc(&sb, '(');
    strbuf_putc(&sb, 'a');
    for (int i = 0; i < 300; i++)
        strbuf_putc(&sb, ')');
    strbuf_puts(&sb, ";\nselect * from u;");
    rq_script *s = rq_parse_script(sb.data, sb.len);
    assert_int_equal(s->n, 2);
    assert_non_null(s->stmts[0].error);
    assert_string_equal(s->stmts[0].error->message, "statement is nested too deeply");
    assert_int_equal(s->stmts[0].error->pos.line, 1);
    assert_non_null(s->stmts[1].ast);
    rq_script_free(s);
    strbuf_free(&sb);

    /* a long left-associative chain: the expression height cap */
    char *text = repeat("select * from t where a = 1", " + 1", 1000, ";");
    s = rq_parse_script(text, strlen(text));
    assert_int_equal(s->n, 1);
    assert_non_null(s->stmts[0].error);
    assert_string_equal(s->stmts[0].error->message,
                        "expression is nested too deeply (more than 1000 levels); write long lists "
                        "of alternatives as IN (\xe2\x80\xa6)");
    assert_int_equal(s->stmts[0].error->pos.col, 27);
    rq_script_free(s);
    free(text);

    /* just under the cap it parses, and prints */
    text = repeat("select * from t where a = 1", " + 1", 998, ";");
    s = rq_parse_script(text, strlen(text));
    assert_non_null(s->stmts[0].ast);
    char *json = ast_to_json(s->stmts[0].ast);
    assert_non_null(json);
    free(json);
    rq_script_free(s);
    free(text);

    /* IS NULL chains reduce at once and are capped the same way */
    text = repeat("select * from t where a", " is null", 5000, ";");
    s = rq_parse_script(text, strlen(text));
    assert_non_null(s->stmts[0].error);
    assert_int_equal(s->stmts[0].error->kind, RQ_ERR_SYNTAX);
    rq_script_free(s);
    free(text);

    /* long flat lists and paths are fine */
    text = repeat("select * from t where a in (0", ", 1", 100000, ");");
    s = rq_parse_script(text, strlen(text));
    assert_non_null(s->stmts[0].ast);
    rq_script_free(s);
    free(text);
    text = repeat("select * from t where a", ".b", 100000, " = 1;");
    s = rq_parse_script(text, strlen(text));
    assert_non_null(s->stmts[0].ast);
    const ast_binary *b = (const ast_binary *)((const ast_select *)s->stmts[0].ast)->where;
    assert_int_equal(((const ast_column_ref *)b->left)->nparts, 100001);
    rq_script_free(s);
    free(text);
}

/* ---- the formatted message -------------------------------------------------------------- */

/* The length comes from the literal, so inputs may hold NUL bytes. */
#define EXPECT_FORMAT(src, file, want) expect_format((src), sizeof(src) - 1, (file), (want))

static void expect_format(const char *src, size_t len, const char *file, const char *want)
{
    rq_script *s = rq_parse_script(src, len);
    assert_true(s->nerrors >= 1);
    const rq_error *e = NULL;
    for (size_t i = 0; i < s->n && !e; i++)
        e = s->stmts[i].error;
    char *got = rq_error_format(s, e, file);
    if (strcmp(got, want) != 0)
        print_error("expected:\n%s\nactual:\n%s\n", want, got);
    assert_string_equal(got, want);
    free(got);
    rq_script_free(s);
}

static void test_format_caret(void **state)
{
    (void)state;
    EXPECT_FORMAT("select * from t where where;", "q.rql",
                  "q.rql:1:23: syntax error: WHERE given twice\n"
                  "select * from t where where;\n"
                  "                      ^~~~~\n");
    /* no file name */
    EXPECT_FORMAT("select * frm t;", NULL,
                  "1:10: syntax error: unexpected identifier \"frm\", expected ',' or FROM\n"
                  "select * frm t;\n"
                  "         ^~~\n");
    /* the error's own line of a multi-line script; tabs are kept in the caret line */
    EXPECT_FORMAT("select *\n\tfrom t\n\twhere\ta @ 1;\n", "tabs.rql",
                  "tabs.rql:3:10: lexical error: unexpected character '@'\n"
                  "\twhere\ta @ 1;\n"
                  "\t     \t  ^\n");
    /* one blank per character before the caret, one '~' per character underlined */
    EXPECT_FORMAT("select \"\xc3\xa9\xc3\xa9\" from t where \xc3\xbc;", "u.rql",
                  "u.rql:1:28: lexical error: unexpected character '\xc3\xbc'\n"
                  "select \"\xc3\xa9\xc3\xa9\" from t where \xc3\xbc;\n"
                  "                         ^\n");
    /* missing ';' at the end: the caret just after the last token */
    EXPECT_FORMAT("select * from t", "m.rql",
                  "m.rql:1:16: syntax error: missing ';' at end of statement\n"
                  "select * from t\n"
                  "               ^\n");
    /* a NUL byte is shown, not a cut message; a CRLF's CR is left out */
    EXPECT_FORMAT("select \0 from t;\r\n", "nul.rql",
                  "nul.rql:1:8: lexical error: unexpected byte 0x00\n"
                  "select ? from t;\n"
                  "       ^\n");
    /* an unterminated string: at its opening quote */
    EXPECT_FORMAT("select * from t\nwhere a = 'x\n;\n", "s.rql",
                  "s.rql:2:11: lexical error: unterminated string literal\n"
                  "where a = 'x\n"
                  "          ^\n");
}

/* ---- never crash, never leak ------------------------------------------------------------- */

/* Parses src and checks what any caller relies on: every statement has an AST or an error,
 * errors lie inside the input, every AST prints and every error formats. */
static void parse_and_check(const char *src, size_t len)
{
    rq_script *s = rq_parse_script(src, len);
    assert_non_null(s);
    size_t errors = 0;
    for (size_t i = 0; i < s->n; i++) {
        const rq_statement *st = &s->stmts[i];
        assert_true((st->ast == NULL) != (st->error == NULL));
        assert_true(st->start <= st->end && st->end <= len);
        if (st->error) {
            errors++;
            assert_true(st->error->pos.line >= 1 && st->error->pos.col >= 1);
            assert_true(st->error->pos.offset <= len);
            assert_true(st->error->message[0] != '\0');
            char *f = rq_error_format(s, st->error, "x");
            assert_non_null(f);
            free(f);
        } else {
            char *j = ast_to_json(st->ast);
            assert_non_null(j);
            free(j);
        }
    }
    assert_int_equal(errors, s->nerrors);
    (void)rq_text_has_statement_end(src, len);
    rq_script_free(s);
}

static const char *const seeds[] = {
    "select all from text_models where source=\"TensorFlow\" ORDER BY err ASC trained on "
    "[(\"glue/sst2:1.0.0-train\" change [2,4,6,8] to \"glue/sst2:1.0.0-test\" [0,1,2,5] )] tested "
    "on task \"glue/sst2:1.0.0-test\" classified by [Linear(learning_rate=0.01, num_epochs=400), "
    "\"Cosine NN\"] limit 8 other than x chunk 64 budget auto wait;",
    "explain analyze json rank * from image_models where source='HF' and n between 1M and 2.5e3 "
    "or not finetuned ORDER BY avg(err) desc trained on \"a\"[0:800] tested on benchmark r by "
    "\"random(seed=42, k=-1, s='x\\'y', b=true)\" limit 3 wait;",
    "register model \"m\" (a, b, c) values ([1, -2], {k: \"v\", n: {x: null}}, 1.5K);\n"
    "USE 127.0.0.1:8001; print *; /* c */ finetune m with d using \"sgd(lr=0.1)\" wait; "
    "(select * from a order by x limit 1) union select * from b except (select * from c) "
    "order by y limit 2; cancel query 'q'; show jobs; purge cache; # end\n",
};

static void test_prefixes_and_deletions(void **state)
{
    (void)state;
    size_t runs = 0;
    for (size_t k = 0; k < sizeof(seeds) / sizeof(seeds[0]); k++) {
        const char *seed = seeds[k];
        size_t n = strlen(seed);
        char *buf = xmalloc(n + 1);
        for (size_t cut = 0; cut <= n; cut++, runs++) /* every prefix */
            parse_and_check(seed, cut);
        for (size_t del = 0; del < n; del++, runs++) { /* every single-byte deletion */
            memcpy(buf, seed, del);
            memcpy(buf + del, seed + del + 1, n - del - 1);
            parse_and_check(buf, n - 1);
        }
        free(buf);
    }
    print_message("[  ROBUST  ] %zu mutated scripts parsed\n", runs);
}

static void test_random_bytes(void **state)
{
    (void)state;
    /* a fixed xorshift sequence: the same inputs every run */
    uint64_t x = 0x9E3779B97F4A7C15ull;
    static const char alphabet[] = "selctfromwhrdnbyiuTS*;,.()[]{}:'\"`-+/=<>!#\n\t 0123456789eKMB\\@\xc3\xa9\xff";
    char buf[256];
    for (int run = 0; run < 3000; run++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t len = (size_t)(x % sizeof(buf));
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = (x & 0x100) ? (char)(x & 0xFF) : alphabet[(x >> 9) % (sizeof(alphabet) - 1)];
        }
        parse_and_check(buf, len);
    }
}

int main(void)
{
    size_t n = sizeof(cases) / sizeof(cases[0]);
    struct CMUnitTest extra[] = {
        cmocka_unit_test(test_error_in_statement_2_of_3),
        cmocka_unit_test(test_errors_do_not_stop_the_script),
        cmocka_unit_test(test_nesting_limits),
        cmocka_unit_test(test_format_caret),
        cmocka_unit_test(test_prefixes_and_deletions),
        cmocka_unit_test(test_random_bytes),
    };
    size_t nextra = sizeof(extra) / sizeof(extra[0]);
    struct CMUnitTest *tests = xcalloc(n + nextra, sizeof(*tests));
    for (size_t i = 0; i < n; i++)
        tests[i] = (struct CMUnitTest){cases[i].name, run_error_case, NULL, NULL, (void *)&cases[i]};
    memcpy(tests + n, extra, sizeof(extra));
    print_message("[  ERRORS  ] %zu error cases\n", n);
    int rc = _cmocka_run_group_tests("parse_errors", tests, n + nextra, NULL, NULL);
    free(tests);
    return rc;
}
