/* Keyword table and token names for messages. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grammar/lexer.h"
#include "parser.h"

typedef struct keyword {
    const char *word;
    int token;
} keyword;

/* Sorted by word (bsearch). SHiFT-QL's reserved words, rankql's set operators and
 * comparison words, and the non-reserved words that the grammar lets fall back to
 * identifiers (see %fallback in parser.y). */
static const keyword keywords[] = {
    {"ANALYZE", TK_ANALYZE},       {"AND", TK_AND},
    {"AS", TK_AS},                 {"ASC", TK_ASC},
    {"AUTO", TK_AUTO},             {"AVG", TK_AVG},
    {"BENCHMARK", TK_BENCHMARK},   {"BETWEEN", TK_BETWEEN},
    {"BUDGET", TK_BUDGET},         {"BY", TK_BY},
    {"CACHE", TK_CACHE},           {"CANCEL", TK_CANCEL},
    {"CHANGE", TK_CHANGE},         {"CHECK", TK_CHECK},
    {"CHUNK", TK_CHUNK},           {"CLASSIFIED", TK_CLASSIFIED},
    {"DATASET", TK_DATASET},       {"DATASETS", TK_DATASETS},
    {"DECLARE", TK_DECLARE},       {"DESC", TK_DESC},
    {"DISTINCT", TK_DISTINCT},     {"ETA", TK_ETA},
    {"EXCEPT", TK_EXCEPT},         {"EXPLAIN", TK_EXPLAIN},
    {"EXTENSIONS", TK_EXTENSIONS}, {"FALSE", TK_FALSE},
    {"FINETUNE", TK_FINETUNE},     {"FINETUNED", TK_FINETUNED},
    {"FROM", TK_FROM},             {"IN", TK_IN},
    {"INTERSECT", TK_INTERSECT},   {"IS", TK_IS},
    {"JOB", TK_JOB},               {"JOBS", TK_JOBS},
    {"JSON", TK_JSON},             {"LIKE", TK_LIKE},
    {"LIMIT", TK_LIMIT},           {"MAX", TK_MAX},
    {"MIN", TK_MIN},               {"MODEL", TK_MODEL},
    {"MODELS", TK_MODELS},         {"NOT", TK_NOT},
    {"NULL", TK_NULL},             {"OF", TK_OF},
    {"ON", TK_ON},                 {"OR", TK_OR},
    {"ORDER", TK_ORDER},           {"OTHER", TK_OTHER},
    {"PRINT", TK_PRINT},           {"PURGE", TK_PURGE},
    {"QUERY", TK_QUERY},           {"RANK", TK_RANK},
    {"REGISTER", TK_REGISTER},     {"SELECT", TK_SELECT},
    {"SHOW", TK_SHOW},             {"SUM", TK_SUM},
    {"TASK", TK_TASK},             {"TESTED", TK_TESTED},
    {"THAN", TK_THAN},             {"TO", TK_TO},
    {"TRAINED", TK_TRAINED},       {"TRUE", TK_TRUE},
    {"UNION", TK_UNION},           {"USE", TK_USE},
    {"USING", TK_USING},           {"VALUES", TK_VALUES},
    {"WAIT", TK_WAIT},             {"WHERE", TK_WHERE},
    {"WITH", TK_WITH},
};

enum { MAX_KEYWORD_LEN = 10 };

static int compare_keyword(const void *key, const void *elem)
{
    return strcasecmp((const char *)key, ((const keyword *)elem)->word);
}

int rq_keyword(const char *word, size_t len)
{
    char buf[MAX_KEYWORD_LEN + 1];
    if (len == 0 || len > MAX_KEYWORD_LEN)
        return 0;
    memcpy(buf, word, len);
    buf[len] = '\0';
    const keyword *k = bsearch(buf, keywords, sizeof(keywords) / sizeof(keywords[0]),
                               sizeof(keywords[0]), compare_keyword);
    return k ? k->token : 0;
}

const char *rq_token_display(int type)
{
    switch (type) {
    case 0: return "end of input";
    case TK_SEMI: return "';'";
    case TK_COMMA: return "','";
    case TK_DOT: return "'.'";
    case TK_LP: return "'('";
    case TK_RP: return "')'";
    case TK_LBRACKET: return "'['";
    case TK_RBRACKET: return "']'";
    case TK_LBRACE: return "'{'";
    case TK_RBRACE: return "'}'";
    case TK_COLON: return "':'";
    case TK_STAR: return "'*'";
    case TK_PLUS: return "'+'";
    case TK_MINUS: return "'-'";
    case TK_SLASH: return "'/'";
    case TK_EQ: return "'='";
    case TK_NE: return "'!='";
    case TK_LT: return "'<'";
    case TK_LE: return "'<='";
    case TK_GT: return "'>'";
    case TK_GE: return "'>='";
    case TK_IDENT: return "identifier";
    case TK_STRING: return "string";
    case TK_NUMBER: return "number";
    case TK_HOSTPORT: return "host:port";
    /* clause keywords read better with their second word */
    case TK_ORDER: return "ORDER BY";
    case TK_OTHER: return "OTHER THAN";
    case TK_TRAINED: return "TRAINED ON";
    case TK_TESTED: return "TESTED ON";
    case TK_CLASSIFIED: return "CLASSIFIED BY";
    default: break;
    }
    for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
        if (keywords[i].token == type)
            return keywords[i].word;
    return "token";
}
