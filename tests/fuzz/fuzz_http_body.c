/* libFuzzer target for the HTTP request path's parsing: request bodies, query parameters and
 * the header values rankqld looks at. These are the pure parts of the handlers, exposed by
 * server/request.h (server/request.c) with the answers of server/response.c; the
 * libmicrohttpd glue around them (server/http.c: headers looked up on the connection, the
 * body collected in pieces, the route, the size limit) is not linked, so this target drives
 * the layer just below it with the values it would hand on.
 *
 * Byte 0 picks what the rest of the input is (mode = byte 0 % 6):
 *   0  a POST /v1/query body    → api_query_read_request (api_json_body), and the query
 *                                  text through the parser, as api_query does next;
 *   1  a POST /v1/sessions body  → api_sessions_read_body; a Content-Type value comes first,
 *                                  up to the first '\n';
 *   2  an Authorization value    → auth_check against the tokens of a fixed token file,
 *                                  compared with a reference of "Bearer TOKEN" matching;
 *   3  a --token-file's content  → auth_load, then auth_check with each line;
 *   4  header values             → http_json_content_type (Content-Type),
 *                                  api_accepts_ndjson (Accept), session_client_label
 *                                  (User-Agent);
 *   5  a query string            → api_list_args with the /v1/models filters ("&"-separated
 *                                  "key=value" or "key", at most HTTP_MAX_ARGS).
 * Header values end at the first NUL (as on the wire).
 *
 * Invariants: a check that fails answers a 4xx (400, 415 or 422 as documented) whose body is
 * one line of JSON {"error": {"code", "message"}} with the code also in resp.code; one that
 * passes answers nothing and gives a consistent result (a query text of the right length, a
 * stream flag of -1/0/1, a limit in [0, 1000], …). ASan reports leaks and memory errors,
 * UBSan undefined behaviour; a broken invariant aborts.
 *
 * Built by `make fuzz-build` and run by tests/fuzz/run-fuzz.sh.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "grammar/parse.h"
#include "server/api.h"
#include "server/auth.h"
#include "server/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...)                                                                \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz_http_body: invariant broken at %s:%d: %s\n  ",        \
                    __FILE__, __LINE__, #cond);                                         \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* The tokens every mode-2 input is checked against (all valid: 16 to 512 printable
 * characters without spaces). */
static const char *const tokens[] = {
    "0123456789abcdef",
    "s3cr3t-T0ken-for-fuzzing_0123456789",
    "Bearer-looking-token-xyz",
};
#define NTOKENS (sizeof tokens / sizeof tokens[0])

static auth_tokens *fixed_tokens;
static char token_file[64];

static void remove_token_file(void)
{
    auth_free(fixed_tokens);
    unlink(token_file);
}

/* A file to write token-file contents to, made once. */
static void setup(void)
{
    if (token_file[0])
        return;
    snprintf(token_file, sizeof token_file, "/tmp/fuzz-http-tokens.XXXXXX");
    int fd = mkstemp(token_file);
    CHECK(fd >= 0, "mkstemp");
    FILE *f = fdopen(fd, "w");
    CHECK(f != NULL, "fdopen");
    fprintf(f, "# tokens\n\n");
    for (size_t i = 0; i < NTOKENS; i++)
        fprintf(f, "  %s \r\n", tokens[i]);
    CHECK(fclose(f) == 0, "fclose");
    char why[256];
    fixed_tokens = auth_load(token_file, why, sizeof why);
    CHECK(fixed_tokens != NULL, "auth_load: %s", why);
    CHECK(auth_count(fixed_tokens) == NTOKENS, "%zu tokens", auth_count(fixed_tokens));
    atexit(remove_token_file);
}

/* An error answer: status among the allowed ones, one line of JSON with the error. */
static void check_error_answer(http_response *resp, const int *allowed)
{
    bool ok = false;
    for (const int *a = allowed; *a; a++)
        ok |= resp->status == *a;
    CHECK(ok, "status %d", resp->status);
    CHECK(resp->body != NULL && resp->body_len == strlen(resp->body), "body length");
    CHECK(resp->body_len >= 2 && resp->body[resp->body_len - 1] == '\n' &&
              strchr(resp->body, '\n') == resp->body + resp->body_len - 1,
          "not one line: %s", resp->body);
    CHECK(resp->content_type && strcmp(resp->content_type, "application/json") == 0,
          "content type %s", resp->content_type ? resp->content_type : "(none)");
    json_error_t je;
    json_t *j = json_loadb(resp->body, resp->body_len, 0, &je);
    CHECK(j != NULL, "answer is not JSON: %s: %s", je.text, resp->body);
    json_t *err = json_object_get(j, "error");
    CHECK(json_is_object(err), "no error object: %s", resp->body);
    const char *code = json_string_value(json_object_get(err, "code"));
    const char *message = json_string_value(json_object_get(err, "message"));
    CHECK(code && message && message[0], "error without code or message: %s", resp->body);
    CHECK(strcmp(code, resp->code) == 0, "code %s, resp.code %s", code, resp->code);
    json_decref(j);
    free(resp->body);
    resp->body = NULL;
}

static void check_no_answer(const http_response *resp)
{
    CHECK(resp->status == 0 && resp->body == NULL, "answered %d: %s", resp->status,
          resp->body ? resp->body : "");
}

/* ---- 0: POST /v1/query ------------------------------------------------------------------ */

static void fuzz_query_body(const char *body, size_t len)
{
    http_request req = {.method = "POST", .path = "/v1/query", .body = body, .body_len = len,
                        .remote = ""};
    http_response resp = {0};
    json_t *obj = NULL;
    query_request q;
    if (!api_query_read_request(&req, &obj, &q, &resp)) {
        static const int allowed[] = {400, 422, 0};
        check_error_answer(&resp, allowed);
        json_decref(obj);
        return;
    }
    check_no_answer(&resp);
    CHECK(json_is_object(obj), "no body object");
    CHECK(q.text != NULL, "no query text");
    CHECK(q.text == json_string_value(json_object_get(obj, "query")), "query text");
    CHECK(q.len == json_string_length(json_object_get(obj, "query")), "query length");
    CHECK(q.stream >= -1 && q.stream <= 1, "stream %d", q.stream);
    CHECK(!q.session || json_is_string(json_object_get(obj, "session")), "session");
    CHECK(json_object_size(obj) <= 4, "%zu fields", json_object_size(obj));
    /* what api_query does next */
    rq_script *s = rq_parse_script(q.text, q.len);
    CHECK(s != NULL, "rq_parse_script returned NULL");
    rq_script_free(s);
    json_decref(obj);
}

/* ---- 1: POST /v1/sessions ----------------------------------------------------------------- */

static void fuzz_sessions_body(const char *in, size_t len)
{
    const char *nl = memchr(in, '\n', len);
    char *ct = NULL;
    const char *body = in;
    size_t blen = len;
    if (nl) {
        ct = strndup(in, (size_t)(nl - in)); /* up to a NUL, as a header value */
        body = nl + 1;
        blen = len - (size_t)(nl + 1 - in);
    }
    char *copy = malloc(blen + 1);
    memcpy(copy, body, blen);
    copy[blen] = '\0';
    http_request req = {.method = "POST", .path = "/v1/sessions", .body = copy,
                        .body_len = blen, .remote = ""};
    http_response resp = {0};
    if (api_sessions_read_body(&req, ct, &resp)) {
        check_no_answer(&resp);
    } else {
        static const int allowed[] = {400, 415, 422, 0};
        check_error_answer(&resp, allowed);
        CHECK(blen > 0, "an empty body refused");
    }
    free(copy);
    free(ct);
}

/* ---- 2, 3: Authorization and the token file ------------------------------------------------- */

/* What auth_check should answer: "Bearer" (any case) after optional spaces, then spaces or
 * tabs, then exactly one of the tokens, then optional spaces or tabs. */
static bool reference_check(const char *const *toks, size_t n, const char *h)
{
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return false;
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    size_t len = strlen(h);
    while (len > 0 && (h[len - 1] == ' ' || h[len - 1] == '\t'))
        len--;
    for (size_t i = 0; i < n; i++)
        if (strlen(toks[i]) == len && memcmp(toks[i], h, len) == 0)
            return true;
    return false;
}

static void fuzz_authorization(const char *header)
{
    bool got = auth_check(fixed_tokens, header);
    CHECK(got == reference_check(tokens, NTOKENS, header), "auth_check(\"%s\") = %d", header,
          (int)got);
    CHECK(!auth_check(NULL, header), "no tokens, yet accepted");
    /* each token, in a header built around the input */
    char buf[700];
    snprintf(buf, sizeof buf, "Bearer %s", tokens[strlen(header) % NTOKENS]);
    CHECK(auth_check(fixed_tokens, buf), "the token is refused: %s", buf);
}

static void fuzz_token_file(const char *in, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "%s.load", token_file);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "fopen %s", path);
    CHECK(len == 0 || fwrite(in, 1, len, f) == len, "fwrite");
    CHECK(fclose(f) == 0, "fclose");
    char why[512];
    why[0] = '\0';
    auth_tokens *t = auth_load(path, why, sizeof why);
    unlink(path);
    if (!t) {
        CHECK(why[0] != '\0' && strchr(why, '\n') == NULL, "auth_load: reason \"%s\"", why);
        return;
    }
    CHECK(auth_count(t) > 0, "auth_load gave no tokens");
    /* every token line is accepted as a bearer token */
    size_t accepted = 0;
    const char *p = in, *end = in + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char *line = strndup(p, n);
        char *s = line;
        size_t m = strlen(s);
        while (m > 0 && (s[m - 1] == '\r' || s[m - 1] == ' ' || s[m - 1] == '\t'))
            s[--m] = '\0';
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s && *s != '#' && m == strlen(line) /* no NUL inside */) {
            char hdr[600];
            snprintf(hdr, sizeof hdr, "Bearer %s", s);
            CHECK(auth_check(t, hdr), "token \"%s\" of the file is refused", s);
            accepted++;
        }
        free(line);
        p = nl ? nl + 1 : end;
    }
    (void)accepted;
    auth_free(t);
}

/* ---- 4: header values --------------------------------------------------------------------- */

static void fuzz_headers(const char *h)
{
    bool json = http_json_content_type(h);
    if (json) {
        const char *p = h;
        while (*p == ' ')
            p++;
        CHECK(strncasecmp(p, "application/json", 16) == 0, "Content-Type %s taken as JSON", h);
    }
    (void)api_accepts_ndjson(h);
    char *label = session_client_label(h);
    if (!h[0]) {
        CHECK(label == NULL, "a label for an empty User-Agent");
    } else {
        CHECK(label != NULL, "no label");
        size_t n = strlen(label);
        CHECK(n == (strlen(h) < 200 ? strlen(h) : 200), "label of %zu bytes", n);
        for (size_t i = 0; i < n; i++)
            CHECK(label[i] >= 0x20 && label[i] <= 0x7e, "label byte 0x%02x",
                  (unsigned char)label[i]);
    }
    free(label);
}

/* ---- 5: listing parameters ---------------------------------------------------------------- */

static void fuzz_list_args(char *qs)
{
    static const char *const filters[] = {"name", "source", "modality", "runner", NULL};
    http_request req = {.method = "GET", .path = "/v1/models", .body = "", .remote = ""};
    char *save = NULL;
    for (char *part = strtok_r(qs, "&", &save); part; part = strtok_r(NULL, "&", &save)) {
        if (req.nargs == HTTP_MAX_ARGS) {
            req.too_many_args = true;
            break;
        }
        char *eq = strchr(part, '=');
        if (eq)
            *eq = '\0';
        req.args[req.nargs].key = part;
        req.args[req.nargs].value = eq ? eq + 1 : NULL;
        req.nargs++;
    }
    const char *values[6] = {0};
    long long limit = -7, offset = -7;
    http_response resp = {0};
    if (api_list_args("models", filters, &req, values, &limit, &offset, &resp)) {
        check_no_answer(&resp);
        CHECK(limit >= 0 && limit <= API_LIST_MAX_LIMIT, "limit %lld", limit);
        CHECK(offset >= 0 && offset <= API_LIST_MAX_OFFSET, "offset %lld", offset);
        CHECK(values[4] == NULL && values[5] == NULL, "values past the filters");
        for (size_t f = 0; f < 4; f++) {
            if (!values[f])
                continue;
            bool from_arg = false;
            for (size_t i = 0; i < req.nargs; i++)
                from_arg |= values[f] == req.args[i].value &&
                            strcmp(req.args[i].key, filters[f]) == 0;
            CHECK(from_arg, "filter %s from nowhere", filters[f]);
        }
    } else {
        static const int allowed[] = {400, 0};
        check_error_answer(&resp, allowed);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    setup();
    int mode = data[0] % 6;
    size_t len = size - 1;
    /* a NUL-terminated copy, as the server hands bodies and header values on */
    char *in = malloc(len + 1);
    memcpy(in, data + 1, len);
    in[len] = '\0';
    switch (mode) {
    case 0: fuzz_query_body(in, len); break;
    case 1: fuzz_sessions_body(in, len); break;
    case 2: fuzz_authorization(in); break;
    case 3: fuzz_token_file(in, len); break;
    case 4: fuzz_headers(in); break;
    case 5: fuzz_list_args(in); break;
    }
    free(in);
    return 0;
}
