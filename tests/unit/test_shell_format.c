/* shell/format, shell/script and shell/stream: how the rankql shell prints results and errors,
 * how it cuts its input into statements and maps positions back to input lines, and how it
 * reads a streamed answer and draws a WAIT's progress. No
 * server is needed: results are the JSON objects the HTTP API sends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shell/format.h"
#include "shell/script.h"
#include "shell/stream.h"

/* ---- helpers ------------------------------------------------------------------------- */

static char *render(const char *result_json, sh_format format, bool expanded, const char *title)
{
    json_error_t jerr;
    json_t *result = json_loads(result_json, JSON_PRESERVE_ORDER, &jerr);
    if (!result)
        fail_msg("bad test JSON: %s", jerr.text);
    sh_print_opts opts = {.format = format, .expanded = expanded, .title = title};
    strbuf sb = {0};
    strbuf_puts(&sb, "");
    sh_print_result(&sb, result, &opts);
    json_decref(result);
    return strbuf_detach(&sb);
}

static void expect_render(const char *result_json, sh_format format, bool expanded,
                          const char *expected)
{
    char *got = render(result_json, format, expanded, NULL);
    if (strcmp(got, expected) != 0)
        fail_msg("expected:\n%s\ngot:\n%s", expected, got);
    free(got);
}

static const char *const models =
    "{\"statement\":\"SELECT\",\"columns\":[\"name\",\"n\"],"
    "\"rows\":[[\"café\",1],[\"日本\",22],[\"x\",null]],\"row_count\":3,\"notices\":[]}";

/* ---- tables -------------------------------------------------------------------------- */

static void test_table_utf8_alignment_and_nulls(void **state)
{
    (void)state;
    /* "café" and "日本" both take 4 columns; numbers right-aligned; NULL empty */
    expect_render(models, SH_FORMAT_TABLE, false,
                  " name | n\n"
                  "------+----\n"
                  " café |  1\n"
                  " 日本 | 22\n"
                  " x    |\n"
                  "(3 rows)\n\n");
}

static void test_table_header_centred_text_left(void **state)
{
    (void)state;
    expect_render("{\"columns\":[\"source\",\"up_acc\",\"k\"],"
                  "\"rows\":[[\"HuggingFace\",0.8125,null],[\"TF\",0.5,\"a\"]]}",
                  SH_FORMAT_TABLE, false,
                  "   source    | up_acc | k\n"
                  "-------------+--------+---\n"
                  " HuggingFace | 0.8125 |\n"
                  " TF          |    0.5 | a\n"
                  "(2 rows)\n\n");
}

static void test_table_mixed_column_is_left_aligned(void **state)
{
    (void)state;
    /* a column with a string among numbers is text: left-aligned */
    expect_render("{\"columns\":[\"v\"],\"rows\":[[10],[\"abc\"]]}", SH_FORMAT_TABLE, false,
                  "  v\n"
                  "-----\n"
                  " 10\n"
                  " abc\n"
                  "(2 rows)\n\n");
}

static void test_table_footer(void **state)
{
    (void)state;
    expect_render("{\"columns\":[\"a\"],\"rows\":[[1]]}", SH_FORMAT_TABLE, false,
                  " a\n---\n 1\n(1 row)\n\n");
    expect_render("{\"columns\":[\"abc\"],\"rows\":[]}", SH_FORMAT_TABLE, false,
                  " abc\n-----\n(0 rows)\n\n");
}

static void test_table_json_values_compact(void **state)
{
    (void)state;
    expect_render("{\"columns\":[\"spec\",\"ok\"],"
                  "\"rows\":[[{\"extractor\": \"pca\", \"k\": 32, \"tags\": [1, 2.5]}, true]]}",
                  SH_FORMAT_TABLE, false,
                  "                   spec                    |  ok\n"
                  "-------------------------------------------+------\n"
                  " {\"extractor\":\"pca\",\"k\":32,\"tags\":[1,2.5]} | true\n"
                  "(1 row)\n\n");
}

static void test_table_multiline_cell(void **state)
{
    (void)state;
    /* psql's '+' marks a cell that goes on on the next line */
    expect_render("{\"columns\":[\"a\",\"b\"],\"rows\":[[\"one\\ntwo\",\"x\"]]}", SH_FORMAT_TABLE,
                  false,
                  "  a  | b\n"
                  "-----+---\n"
                  " one+| x\n"
                  " two |\n"
                  "(1 row)\n\n");
}

static void test_table_title(void **state)
{
    (void)state;
    char *got = render("{\"columns\":[\"Name\",\"Type\"],\"rows\":[[\"models\",\"table\"]]}",
                       SH_FORMAT_TABLE, false, "List");
    assert_string_equal(got, "      List\n"
                             "  Name  | Type\n"
                             "--------+-------\n"
                             " models | table\n"
                             "(1 row)\n\n");
    free(got);
}

static void test_statement_without_columns(void **state)
{
    (void)state;
    const char *declare = "{\"statement\":\"DECLARE\",\"columns\":[],\"rows\":[],\"row_count\":0,"
                          "\"notices\":[\"small: 3 models\"],\"variable\":\"small\"}";
    expect_render(declare, SH_FORMAT_TABLE, false, "DECLARE\n");
    expect_render(declare, SH_FORMAT_CSV, false, "");
    expect_render(declare, SH_FORMAT_JSON, false,
                  "{\"statement\":\"DECLARE\",\"columns\":[],\"rows\":[],\"row_count\":0,"
                  "\"notices\":[\"small: 3 models\"],\"variable\":\"small\"}\n");
}

/* ---- expanded ------------------------------------------------------------------------ */

static void test_expanded(void **state)
{
    (void)state;
    expect_render("{\"columns\":[\"name\",\"num_params\"],"
                  "\"rows\":[[\"pca-32\",25120],[\"日本\",null]]}",
                  SH_FORMAT_TABLE, true,
                  "-[ RECORD 1 ]------\n"
                  "name       | pca-32\n"
                  "num_params | 25120\n"
                  "-[ RECORD 2 ]------\n"
                  "name       | 日本\n"
                  "num_params |\n"
                  "\n");
    /* a long name column: the rule has its '+' above the '|' */
    expect_render("{\"columns\":[\"a_very_long_column\"],\"rows\":[[1]]}", SH_FORMAT_TABLE, true,
                  "-[ RECORD 1 ]------+--\n"
                  "a_very_long_column | 1\n"
                  "\n");
    expect_render("{\"columns\":[\"a\"],\"rows\":[]}", SH_FORMAT_TABLE, true, "(0 rows)\n\n");
}

/* ---- CSV and JSON ---------------------------------------------------------------------- */

static void test_csv_quoting(void **state)
{
    (void)state;
    /* RFC 4180: quote fields with , " CR LF; double the quotes; NULL empty, '' as "" */
    expect_render("{\"columns\":[\"name\",\"a,b\",\"n\"],"
                  "\"rows\":[[\"plain\",\"x,y\",1],[\"say \\\"hi\\\"\",\"l1\\nl2\",null],"
                  "[\"\",{\"k\":[1,2]},2.5]]}",
                  SH_FORMAT_CSV, false,
                  "name,\"a,b\",n\n"
                  "plain,\"x,y\",1\n"
                  "\"say \"\"hi\"\"\",\"l1\nl2\",\n"
                  "\"\",\"{\"\"k\"\":[1,2]}\",2.5\n");
}

static void test_json_lines(void **state)
{
    (void)state;
    expect_render("{\"statement\":\"SELECT\",\"columns\":[\"name\",\"err\"],"
                  "\"rows\":[[\"café\\t\",0.1503],[\"b\",1.0]],\"row_count\":2}",
                  SH_FORMAT_JSON, false,
                  "{\"statement\":\"SELECT\",\"columns\":[\"name\",\"err\"],"
                  "\"rows\":[[\"café\\t\",0.1503],[\"b\",1.0]],\"row_count\":2}\n");
}

static void test_value_text(void **state)
{
    (void)state;
    struct {
        json_t *v;
        const char *text;
    } cases[] = {
        {json_real(0.1503), "0.1503"}, {json_real(1.0), "1.0"},   {json_real(1e20), "1e+20"},
        {json_real(-2.5e-7), "-2.5e-07"}, {json_integer(-42), "-42"}, {json_true(), "true"},
        {json_false(), "false"},       {json_string("a\"b"), "a\"b"},
        {json_pack("{s:[i,s]}", "k", 1, "x"), "{\"k\":[1,\"x\"]}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *t = sh_value_text(cases[i].v);
        assert_string_equal(t, cases[i].text);
        free(t);
        json_decref(cases[i].v);
    }
    json_t *null = json_null();
    assert_null(sh_value_text(null));
    json_decref(null);
}

static void test_display_width(void **state)
{
    (void)state;
    assert_int_equal(sh_display_width("abc", 3), 3);
    assert_int_equal(sh_display_width("café", strlen("café")), 4);
    assert_int_equal(sh_display_width("日本", strlen("日本")), 4);
    assert_int_equal(sh_display_width("e\xCC\x81", 3), 1);  /* e + combining acute */
    assert_int_equal(sh_display_width("\xFF" "a", 2), 2);   /* an invalid byte counts 1 */
    assert_int_equal(sh_display_width("\xE6\x97", 2), 2);   /* a cut sequence: bytes */
}

static void test_format_names(void **state)
{
    (void)state;
    sh_format f;
    assert_true(sh_format_parse("CSV", &f));
    assert_int_equal(f, SH_FORMAT_CSV);
    assert_true(sh_format_parse("json", &f));
    assert_int_equal(f, SH_FORMAT_JSON);
    assert_true(sh_format_parse("table", &f));
    assert_int_equal(f, SH_FORMAT_TABLE);
    assert_false(sh_format_parse("xml", &f));
    assert_string_equal(sh_format_name(SH_FORMAT_CSV), "csv");
}

/* ---- errors ---------------------------------------------------------------------------- */

static void expect_error(const char *prefix, const char *msg, int line, const char *src,
                         size_t col, size_t underline, const char *expected)
{
    strbuf sb = {0};
    strbuf_puts(&sb, "");
    sh_format_error(&sb, prefix, msg, line, src, src ? strlen(src) : 0, col, underline);
    if (strcmp(sb.data, expected) != 0)
        fail_msg("expected:\n%s\ngot:\n%s", expected, sb.data);
    strbuf_free(&sb);
}

static void test_error_caret(void **state)
{
    (void)state;
    expect_error(NULL, "unknown table nosuch", 3, "  FROM nosuch;", 8, 6,
                 "ERROR: unknown table nosuch\n"
                 "LINE 3:   FROM nosuch;\n"
                 "               ^~~~~~\n");
    /* UTF-8 before the column: the caret counts characters (and wide ones twice) */
    expect_error(NULL, "m", 1, "'café' '日本' x", 18, 1,
                 "ERROR: m\n"
                 "LINE 1: 'café' '日本' x\n"
                 "                      ^\n");
    /* tabs stay tabs so the caret lines up; the mark stops at the end of the line */
    expect_error("rankql:f.rql:12: ", "m", 12, "\tab", 2, 99,
                 "rankql:f.rql:12: ERROR: m\n"
                 "LINE 12: \tab\n"
                 "         \t^~\n");
    expect_error(NULL, "no position", 0, NULL, 0, 0, "ERROR: no position\n");
}

/* ---- statements and positions ---------------------------------------------------------- */

static void feed(sh_script *s, const char *text)
{
    sh_script_add(s, text, strlen(text));
}

static void expect_stmt(const sh_stmt *st, const char *text)
{
    if (st->len != strlen(text) || memcmp(st->text, text, st->len) != 0)
        fail_msg("statement '%.*s', expected '%s'", (int)st->len, st->text, text);
}

static void test_split_statements(void **state)
{
    (void)state;
    sh_script s;
    sh_script_init(&s, "q.rql", false);
    sh_batch b;
    feed(&s, "DECLARE small AS SELECT * FROM models; PRINT\n");
    assert_true(sh_script_pending(&s) == true);
    assert_int_equal(sh_script_take(&s, false, &b), 1);
    expect_stmt(&b.stmts[0], "DECLARE small AS SELECT * FROM models;");
    assert_non_null(b.stmts[0].ast);
    sh_batch_free(&b);
    assert_true(sh_script_pending(&s)); /* "PRINT" waits for its ';' */
    assert_int_equal(sh_script_take(&s, false, &b), 0);
    feed(&s, "  small; -- done\n");
    assert_int_equal(sh_script_take(&s, false, &b), 1);
    expect_stmt(&b.stmts[0], "PRINT\n  small;");
    sh_where w = sh_script_where(&s, b.stmts[0].offset);
    assert_int_equal(w.line, 1);
    assert_int_equal(w.col, 40);
    sh_batch_free(&b);
    assert_false(sh_script_pending(&s)); /* a comment is not a statement */
    sh_script_free(&s);
}

static void test_semicolons_in_strings_and_comments(void **state)
{
    (void)state;
    sh_script s;
    sh_script_init(&s, NULL, false);
    sh_batch b;
    feed(&s, "SELECT * FROM models WHERE name = 'a;\n");
    assert_true(sh_script_in_literal(&s));
    assert_int_equal(sh_script_take(&s, false, &b), 0);
    feed(&s, "b' /* ; */ -- ;\n");
    assert_false(sh_script_in_literal(&s));
    assert_int_equal(sh_script_take(&s, false, &b), 0);
    feed(&s, "LIMIT 1;\n");
    assert_int_equal(sh_script_take(&s, false, &b), 1);
    expect_stmt(&b.stmts[0], "SELECT * FROM models WHERE name = 'a;\nb' /* ; */ -- ;\nLIMIT 1;");
    sh_batch_free(&b);
    sh_script_free(&s);
}

static void test_end_of_input_adds_semicolon(void **state)
{
    (void)state;
    sh_script s;
    sh_script_init(&s, NULL, false);
    sh_batch b;
    feed(&s, "SHOW MODELS");
    assert_int_equal(sh_script_take(&s, false, &b), 0);
    assert_int_equal(sh_script_take(&s, true, &b), 1);
    expect_stmt(&b.stmts[0], "SHOW MODELS;");
    assert_non_null(b.stmts[0].ast);
    sh_batch_free(&b);
    sh_script_free(&s);

    /* ending in a '--' comment: the ';' goes on a line of its own */
    sh_script_init(&s, NULL, false);
    feed(&s, "SHOW JOBS -- all");
    assert_int_equal(sh_script_take(&s, true, &b), 1);
    expect_stmt(&b.stmts[0], "SHOW JOBS -- all\n;");
    assert_non_null(b.stmts[0].ast);
    sh_batch_free(&b);
    sh_script_free(&s);

    /* nothing but a comment: nothing to run */
    sh_script_init(&s, NULL, false);
    feed(&s, "-- nothing\n");
    assert_int_equal(sh_script_take(&s, true, &b), 0);
    sh_script_free(&s);
}

static void test_syntax_error_position(void **state)
{
    (void)state;
    sh_script s;
    sh_script_init(&s, "f.rql", false);
    sh_batch b;
    feed(&s, "PRINT *;\n");
    assert_int_equal(sh_script_take(&s, false, &b), 1);
    sh_batch_free(&b);
    feed(&s, "SELECT name\n");
    feed(&s, "  FROM models LIMIT 5 WHERE x = 1;\n");
    assert_int_equal(sh_script_take(&s, false, &b), 1);
    assert_null(b.stmts[0].ast);
    assert_non_null(b.stmts[0].error);
    sh_where w = sh_script_where(&s, b.stmts[0].error_offset);
    assert_int_equal(w.line, 3);  /* lines count from the start of the file */
    assert_int_equal(w.col, 23);
    assert_int_equal(w.line_len, strlen("  FROM models LIMIT 5 WHERE x = 1;"));
    assert_memory_equal(w.line_text, "  FROM models LIMIT 5 WHERE", 27);
    sh_batch_free(&b);
    sh_script_free(&s);
}

static void test_server_position_mapping(void **state)
{
    (void)state;
    /* the server counts from the start of the statement it got, which here starts in
     * the middle of line 2 of the file; its line 2 is line 3 of the file */
    sh_script s;
    sh_script_init(&s, "f.rql", false);
    sh_batch b;
    feed(&s, "-- header\n");
    feed(&s, "PRINT *; SELECT *\n");
    feed(&s, "  FROM nosuch;\n");
    assert_int_equal(sh_script_take(&s, false, &b), 2);
    const sh_stmt *st = &b.stmts[1];
    expect_stmt(st, "SELECT *\n  FROM nosuch;");
    sh_where w = sh_script_where(&s, sh_stmt_offset(st, 1, 1));
    assert_int_equal(w.line, 2);
    assert_int_equal(w.col, 10);
    w = sh_script_where(&s, sh_stmt_offset(st, 2, 8));
    assert_int_equal(w.line, 3);
    assert_int_equal(w.col, 8);
    assert_memory_equal(w.line_text + w.col - 1, "nosuch", 6);
    /* positions past the statement or its line are clamped */
    w = sh_script_where(&s, sh_stmt_offset(st, 1, 99));
    assert_int_equal(w.line, 2);
    assert_int_equal(w.col, 18);
    w = sh_script_where(&s, sh_stmt_offset(st, 9, 1));
    assert_int_equal(w.line, 3);
    sh_batch_free(&b);
    sh_script_free(&s);
}

static void test_line_numbers_after_reset(void **state)
{
    (void)state;
    /* a file: numbering goes on when finished input is dropped */
    sh_script s;
    sh_script_init(&s, "f.rql", false);
    sh_batch b;
    feed(&s, "PRINT *;\n");
    assert_int_equal(sh_script_take(&s, false, &b), 1);
    sh_batch_free(&b);
    feed(&s, "\n");
    feed(&s, "PRINT x;\n");
    assert_int_equal(sh_script_take(&s, false, &b), 1);
    assert_int_equal(sh_script_where(&s, b.stmts[0].offset).line, 3);
    sh_batch_free(&b);
    sh_script_free(&s);

    /* the prompt: each new statement is line 1 again; Ctrl-C drops what is pending */
    sh_script_init(&s, NULL, true);
    feed(&s, "PRINT *;\n");
    assert_int_equal(sh_script_take(&s, false, &b), 1);
    sh_batch_free(&b);
    feed(&s, "SELECT *\n");
    assert_true(sh_script_pending(&s));
    sh_script_discard(&s);
    assert_false(sh_script_pending(&s));
    feed(&s, "PRINT y;\n");
    assert_int_equal(sh_script_take(&s, false, &b), 1);
    expect_stmt(&b.stmts[0], "PRINT y;");
    assert_int_equal(sh_script_where(&s, b.stmts[0].offset).line, 1);
    sh_batch_free(&b);
    sh_script_free(&s);
}

static void test_prompt_blank_lines(void **state)
{
    (void)state;
    /* Enter on empty lines at the prompt does not push the next statement's lines down */
    sh_script s;
    sh_script_init(&s, NULL, true);
    sh_batch b;
    feed(&s, "\n");
    feed(&s, "  \n");
    assert_false(sh_script_pending(&s));
    feed(&s, "PRINT\n");
    feed(&s, "  nope;\n");
    assert_int_equal(sh_script_take(&s, false, &b), 1);
    sh_where w = sh_script_where(&s, sh_stmt_offset(&b.stmts[0], 2, 3));
    assert_int_equal(w.line, 2);
    assert_int_equal(w.col, 3);
    sh_batch_free(&b);
    sh_script_free(&s);
}

static void test_long_statement(void **state)
{
    (void)state;
    /* 50000 lines of one statement: each line is not lexed again (this would take
     * minutes if it were) */
    sh_script s;
    sh_script_init(&s, NULL, false);
    sh_batch b;
    feed(&s, "SELECT name FROM models WHERE name IN (\n");
    for (int i = 0; i < 50000; i++) {
        feed(&s, "  'model-a', 'model;b', -- a comment; with a semicolon\n");
        assert_true(sh_script_pending(&s));
        assert_int_equal(sh_script_take(&s, false, &b), 0);
    }
    feed(&s, "  'last');\n");
    assert_int_equal(sh_script_take(&s, false, &b), 1);
    assert_non_null(b.stmts[0].ast);
    sh_batch_free(&b);
    sh_script_free(&s);
}

static void test_missing_semicolon_between_statements(void **state)
{
    (void)state;
    /* "… FROM t⏎SELECT …": the first is an error, the second runs */
    sh_script s;
    sh_script_init(&s, NULL, false);
    sh_batch b;
    feed(&s, "SELECT * FROM models\n");
    feed(&s, "SELECT * FROM jobs;\n");
    assert_int_equal(sh_script_take(&s, false, &b), 2);
    assert_non_null(b.stmts[0].error);
    assert_non_null(b.stmts[1].ast);
    expect_stmt(&b.stmts[1], "SELECT * FROM jobs;");
    sh_batch_free(&b);
    sh_script_free(&s);
}

/* ---- shell/stream: streamed answers (NDJSON) ------------------------------------------- */

typedef struct collected {
    char lines[16][256];
    int n;
} collected;

static void collect(const char *line, size_t len, void *arg)
{
    collected *c = arg;
    assert_true(c->n < 16 && len < 256);
    memcpy(c->lines[c->n], line, len);
    c->lines[c->n][len] = '\0';
    c->n++;
}

static void test_lines_split_across_chunks(void **state)
{
    (void)state;
    const char *text = "{\"type\":\"a\"}\n{\"type\":\"bb\"}\r\n\n{\"type\":\"end\"}";
    /* every way of cutting the text in two gives the same lines */
    for (size_t cut = 0; cut <= strlen(text); cut++) {
        sh_lines l = {0};
        collected c = {0};
        sh_lines_feed(&l, text, cut, collect, &c);
        sh_lines_feed(&l, text + cut, strlen(text) - cut, collect, &c);
        sh_lines_finish(&l, collect, &c);
        assert_int_equal(c.n, 4);
        assert_string_equal(c.lines[0], "{\"type\":\"a\"}");
        assert_string_equal(c.lines[1], "{\"type\":\"bb\"}");
        assert_string_equal(c.lines[2], "");
        assert_string_equal(c.lines[3], "{\"type\":\"end\"}");
        sh_lines_free(&l);
    }
    /* one byte at a time */
    sh_lines l = {0};
    collected c = {0};
    for (size_t i = 0; text[i]; i++)
        sh_lines_feed(&l, text + i, 1, collect, &c);
    assert_int_equal(c.n, 3); /* the last line waits for its end */
    sh_lines_finish(&l, collect, &c);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.lines[1], "{\"type\":\"bb\"}");
    sh_lines_free(&l);
}

static sh_line_kind feed_line(sh_stream *s, const char *line, const json_t **event)
{
    return sh_stream_line(s, line, strlen(line), event);
}

static void test_stream_results_become_the_plain_body(void **state)
{
    (void)state;
    sh_stream s = {0};
    const json_t *event;
    assert_int_equal(feed_line(&s, "{\"type\":\"progress\",\"statement\":0,\"jobs_total\":4,"
                              "\"jobs_done\":1,\"fraction\":0.25,\"eta_seconds\":9}", &event),
                     SH_LINE_PROGRESS);
    assert_non_null(event);
    assert_int_equal(json_integer_value(json_object_get(event, "jobs_total")), 4);
    assert_int_equal(feed_line(&s, "{\"type\":\"heartbeat\"}", NULL), SH_LINE_HEARTBEAT);
    assert_int_equal(feed_line(&s, "{\"type\":\"result\",\"statement\":0,\"result\":{\"statement\":"
                              "\"SELECT\",\"columns\":[\"name\"],\"rows\":[[\"a\"]],\"row_count\":1,"
                              "\"notices\":[]}}", NULL),
                     SH_LINE_RESULT);
    assert_int_equal(feed_line(&s, "{\"type\":\"future\",\"x\":1}", NULL), SH_LINE_OTHER);
    assert_int_equal(feed_line(&s, "", NULL), SH_LINE_OTHER);
    assert_false(s.ended);
    assert_int_equal(feed_line(&s, "{\"type\":\"end\",\"session\":\"s-1\"}", NULL), SH_LINE_END);
    assert_true(s.ended);
    assert_false(s.bad);
    json_t *body = sh_stream_body(&s);
    char *text = json_dumps(body, JSON_COMPACT);
    assert_string_equal(text, "{\"session\":\"s-1\",\"results\":[{\"statement\":\"SELECT\","
                              "\"columns\":[\"name\"],\"rows\":[[\"a\"]],\"row_count\":1,"
                              "\"notices\":[]}],\"statement\":\"SELECT\",\"columns\":[\"name\"],"
                              "\"rows\":[[\"a\"]],\"row_count\":1,\"notices\":[]}");
    free(text);
    json_decref(body);
    sh_stream_free(&s);
}

static void test_stream_error_and_bad_lines(void **state)
{
    (void)state;
    sh_stream s = {0};
    assert_int_equal(feed_line(&s, "{\"type\":\"result\",\"statement\":0,\"result\":{\"statement\":\"SHOW\"}}",
                          NULL),
                     SH_LINE_RESULT);
    assert_int_equal(feed_line(&s, "{\"type\":\"error\",\"statement\":1,\"status\":404,\"error\":"
                              "{\"code\":\"not_found\",\"message\":\"no such\",\"line\":2,"
                              "\"column\":3}}", NULL),
                     SH_LINE_ERROR);
    assert_int_equal(s.status, 404);
    feed_line(&s, "{\"type\":\"end\",\"session\":\"s\"}", NULL);
    json_t *body = sh_stream_body(&s);
    assert_string_equal(json_string_value(json_object_get(json_object_get(body, "error"), "code")),
                        "not_found");
    assert_int_equal(json_array_size(json_object_get(body, "results")), 1);
    assert_null(json_object_get(body, "statement")); /* an error answer has no top-level result */
    json_decref(body);
    assert_false(s.bad);
    assert_int_equal(feed_line(&s, "not json", NULL), SH_LINE_BAD);
    assert_true(s.bad);
    sh_stream_free(&s);
    assert_int_equal(feed_line(&s, "[1,2]", NULL), SH_LINE_BAD);
    sh_stream_free(&s);
    assert_int_equal(feed_line(&s, "{\"type\":\"result\",\"statement\":0}", NULL), SH_LINE_BAD);
    sh_stream_free(&s);
}

static char *progress(const char *event_json, int width)
{
    json_error_t jerr;
    json_t *event = json_loads(event_json, 0, &jerr);
    if (!event)
        fail_msg("bad test JSON: %s", jerr.text);
    strbuf sb = {0};
    sh_format_progress(&sb, event, width);
    json_decref(event);
    return strbuf_detach(&sb);
}

static void test_progress_bar(void **state)
{
    (void)state;
    char *s = progress("{\"type\":\"progress\",\"jobs_total\":40,\"jobs_done\":12,\"jobs_running\":4,"
                       "\"jobs_failed\":0,\"fraction\":0.3,\"elapsed_seconds\":18,"
                       "\"eta_seconds\":42}", 20);
    assert_string_equal(s, "[######--------------] 12/40 jobs  30%  ETA 0:42");
    free(s);
    s = progress("{\"jobs_total\":3,\"jobs_done\":1,\"jobs_failed\":1,\"eta_seconds\":null}", 12);
    assert_string_equal(s, "[####--------] 1/3 jobs, 1 failed  33%  ETA -:--");
    free(s);
    s = progress("{\"jobs_total\":10,\"jobs_done\":10,\"fraction\":1,\"eta_seconds\":0}", 10);
    assert_string_equal(s, "[##########] 10/10 jobs  100%  ETA 0:00");
    free(s);
    s = progress("{\"jobs_total\":0,\"jobs_done\":0,\"fraction\":0,\"eta_seconds\":3725.4}", 4);
    assert_string_equal(s, "[----] 0/0 jobs  0%  ETA 1:02:05");
    free(s);
    s = progress("{\"jobs_total\":5,\"jobs_done\":7,\"fraction\":1.5}", 4); /* clamped */
    assert_string_equal(s, "[####] 7/5 jobs  100%  ETA -:--");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_utf8_alignment_and_nulls),
        cmocka_unit_test(test_table_header_centred_text_left),
        cmocka_unit_test(test_table_mixed_column_is_left_aligned),
        cmocka_unit_test(test_table_footer),
        cmocka_unit_test(test_table_json_values_compact),
        cmocka_unit_test(test_table_multiline_cell),
        cmocka_unit_test(test_table_title),
        cmocka_unit_test(test_statement_without_columns),
        cmocka_unit_test(test_expanded),
        cmocka_unit_test(test_csv_quoting),
        cmocka_unit_test(test_json_lines),
        cmocka_unit_test(test_value_text),
        cmocka_unit_test(test_display_width),
        cmocka_unit_test(test_format_names),
        cmocka_unit_test(test_error_caret),
        cmocka_unit_test(test_split_statements),
        cmocka_unit_test(test_semicolons_in_strings_and_comments),
        cmocka_unit_test(test_end_of_input_adds_semicolon),
        cmocka_unit_test(test_syntax_error_position),
        cmocka_unit_test(test_server_position_mapping),
        cmocka_unit_test(test_line_numbers_after_reset),
        cmocka_unit_test(test_prompt_blank_lines),
        cmocka_unit_test(test_long_statement),
        cmocka_unit_test(test_missing_semicolon_between_statements),
        cmocka_unit_test(test_lines_split_across_chunks),
        cmocka_unit_test(test_stream_results_become_the_plain_body),
        cmocka_unit_test(test_stream_error_and_bad_lines),
        cmocka_unit_test(test_progress_bar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
