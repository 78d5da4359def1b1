/* The strategy registry: builtins, C shared objects (dlopen) and process plugins (a manifest
 * NAME.json naming a command that speaks JSON on stdin/stdout), parameter schemas and their
 * validation (docs/extensions.md). */
#include "extensions/extensions.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

/* Proxy names and spellings (executor/task.c): RANK … BY "nn" means the proxy, so no
 * strategy may take these names. Compared without spaces, '-' and '_'. */
static const char *const proxy_names[] = {"nn", "euclideannn", "1nn", "knn", "cosinenn",
                                          "cosine", "linear", "linearprobe", "logme",
                                          "hscore", "leep"};

static bool is_proxy_name(const char *name)
{
    char squeezed[64];
    size_t n = 0;
    for (const char *p = name; *p && n + 1 < sizeof squeezed; p++)
        if (*p != ' ' && *p != '-' && *p != '_')
            squeezed[n++] = (char)tolower((unsigned char)*p);
    squeezed[n] = '\0';
    for (size_t i = 0; i < sizeof proxy_names / sizeof *proxy_names; i++)
        if (strcmp(squeezed, proxy_names[i]) == 0)
            return true;
    return false;
}

static bool valid_name(const char *name)
{
    if (!name || !*name || strlen(name) > 63)
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
            return false;
    return true;
}

static bool valid_param_name(const char *name)
{
    if (!name || !*name || strlen(name) > 63)
        return false;
    for (const char *p = name; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
            return false;
    return true;
}

static char *lower_dup(const char *s)
{
    char *d = xstrdup(s);
    for (char *p = d; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

const char *ext_kind_name(ext_kind k)
{
    return k == EXT_BUILTIN ? "builtin" : k == EXT_SO ? "so" : "process";
}

static const char *type_name(rqx_type t)
{
    switch (t) {
    case RQX_INT: return "int";
    case RQX_FLOAT: return "float";
    case RQX_STRING: return "string";
    case RQX_BOOL: return "bool";
    }
    return "?";
}

/* ---- parameter schemas ---------------------------------------------------------------- */

void ext_params_free(rqx_param *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++) {
        free((char *)p[i].name);
        free((char *)p[i].doc);
        free((char *)p[i].string_default);
        if (p[i].string_choices) {
            for (const char *const *c = p[i].string_choices; *c; c++)
                free((char *)*c);
            free((void *)p[i].string_choices);
        }
    }
    free(p);
}

static bool choice_ok(const rqx_param *p, const char *v)
{
    if (!p->string_choices)
        return true;
    for (const char *const *c = p->string_choices; *c; c++)
        if (strcmp(*c, v) == 0)
            return true;
    return false;
}

static char *choices_text(const rqx_param *p)
{
    strbuf sb = {0};
    for (const char *const *c = p->string_choices; c && *c; c++)
        strbuf_printf(&sb, "%s%s", c == p->string_choices ? "" : ", ", *c);
    return strbuf_detach(&sb);
}

/* Checks one schema entry (names, types, ranges, the default within them). */
static int param_check(const rqx_param *p, char **err)
{
    if (!valid_param_name(p->name)) {
        *err = xasprintf("parameter name \"%s\": use [a-z0-9_], 1 to 63 characters",
                         p->name ? p->name : "(null)");
        return -1;
    }
    bool lo = p->flags & RQX_HAS_MIN, hi = p->flags & RQX_HAS_MAX;
    switch (p->type) {
    case RQX_INT:
        if (lo && hi && p->int_min > p->int_max)
            goto bad_range;
        if ((lo && p->int_default < p->int_min) || (hi && p->int_default > p->int_max))
            goto bad_default;
        return 0;
    case RQX_FLOAT:
        if (!isfinite(p->float_default) || (lo && !isfinite(p->float_min)) ||
            (hi && !isfinite(p->float_max))) {
            *err = xasprintf("parameter %s: default, min and max must be finite", p->name);
            return -1;
        }
        if (lo && hi && p->float_min > p->float_max)
            goto bad_range;
        if ((lo && p->float_default < p->float_min) || (hi && p->float_default > p->float_max))
            goto bad_default;
        return 0;
    case RQX_STRING:
        if (!p->string_default) {
            *err = xasprintf("parameter %s: a string parameter needs a default", p->name);
            return -1;
        }
        if (!choice_ok(p, p->string_default))
            goto bad_default;
        return 0;
    case RQX_BOOL:
        if (p->bool_default != 0 && p->bool_default != 1) {
            *err = xasprintf("parameter %s: bool default must be 0 or 1", p->name);
            return -1;
        }
        return 0;
    }
    *err = xasprintf("parameter %s: unknown type %d", p->name, (int)p->type);
    return -1;
bad_range:
    *err = xasprintf("parameter %s: min is above max", p->name);
    return -1;
bad_default:
    *err = xasprintf("parameter %s: the default is outside its own range or choices", p->name);
    return -1;
}

static int params_check(const rqx_param *p, size_t n, char **err)
{
    for (size_t i = 0; i < n; i++) {
        if (param_check(&p[i], err) != 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(p[i].name, p[j].name) == 0) {
                *err = xasprintf("parameter %s is declared twice", p[i].name);
                return -1;
            }
    }
    return 0;
}

static rqx_param *params_copy(const rqx_param *src, size_t n)
{
    rqx_param *p = xcalloc(n + 1, sizeof *p);
    for (size_t i = 0; i < n; i++) {
        p[i] = src[i];
        p[i].name = xstrdup(src[i].name);
        p[i].doc = src[i].doc ? xstrdup(src[i].doc) : NULL;
        p[i].string_default = src[i].string_default ? xstrdup(src[i].string_default) : NULL;
        if (src[i].string_choices) {
            size_t k = 0;
            while (src[i].string_choices[k])
                k++;
            const char **c = xcalloc(k + 1, sizeof *c);
            for (size_t j = 0; j < k; j++)
                c[j] = xstrdup(src[i].string_choices[j]);
            p[i].string_choices = c;
        }
    }
    return p;
}

static int param_cmp(const void *a, const void *b)
{
    return strcmp(((const rqx_param *)a)->name, ((const rqx_param *)b)->name);
}

int ext_params_parse(const json_t *schema, rqx_param **out, size_t *n, char **err)
{
    *out = NULL;
    *n = 0;
    if (!schema || json_is_null(schema))
        return 0;
    if (!json_is_object(schema)) {
        *err = xstrdup("\"parameters\" must be an object {name: {type, default, …}}");
        return -1;
    }
    rqx_param *p = xcalloc(json_object_size(schema) + 1, sizeof *p);
    size_t k = 0;
    const char *key;
    json_t *def;
    json_object_foreach((json_t *)schema, key, def) {
        rqx_param *q = &p[k++];
        q->name = xstrdup(key);
        if (!json_is_object(def)) {
            *err = xasprintf("parameter %s: expected {\"type\": …, \"default\": …}", key);
            goto fail;
        }
        const char *k2;
        json_t *v;
        json_object_foreach(def, k2, v) {
            if (strcmp(k2, "type") && strcmp(k2, "default") && strcmp(k2, "min") &&
                strcmp(k2, "max") && strcmp(k2, "choices") && strcmp(k2, "doc")) {
                *err = xasprintf("parameter %s: unknown key \"%s\" (type, default, min, max, "
                                 "choices, doc)",
                                 key, k2);
                goto fail;
            }
        }
        const char *type = json_string_value(json_object_get(def, "type"));
        json_t *dv = json_object_get(def, "default"), *mn = json_object_get(def, "min"),
               *mx = json_object_get(def, "max"), *ch = json_object_get(def, "choices"),
               *doc = json_object_get(def, "doc");
        if (doc && !json_is_string(doc)) {
            *err = xasprintf("parameter %s: doc must be a string", key);
            goto fail;
        }
        q->doc = doc ? xstrdup(json_string_value(doc)) : NULL;
        if (!type) {
            *err = xasprintf("parameter %s: \"type\" must be int, float, string or bool", key);
            goto fail;
        }
        if (!dv) {
            *err = xasprintf("parameter %s: needs a \"default\"", key);
            goto fail;
        }
        if ((mn || mx) && strcmp(type, "int") && strcmp(type, "float")) {
            *err = xasprintf("parameter %s: min and max apply to int and float only", key);
            goto fail;
        }
        if (ch && strcmp(type, "string")) {
            *err = xasprintf("parameter %s: choices apply to strings only", key);
            goto fail;
        }
        q->flags = (mn ? RQX_HAS_MIN : 0u) | (mx ? RQX_HAS_MAX : 0u);
        if (strcmp(type, "int") == 0) {
            q->type = RQX_INT;
            if (!json_is_integer(dv) || (mn && !json_is_integer(mn)) || (mx && !json_is_integer(mx))) {
                *err = xasprintf("parameter %s: default, min and max of an int must be integers", key);
                goto fail;
            }
            q->int_default = json_integer_value(dv);
            q->int_min = mn ? json_integer_value(mn) : 0;
            q->int_max = mx ? json_integer_value(mx) : 0;
        } else if (strcmp(type, "float") == 0) {
            q->type = RQX_FLOAT;
            if (!json_is_number(dv) || (mn && !json_is_number(mn)) || (mx && !json_is_number(mx))) {
                *err = xasprintf("parameter %s: default, min and max of a float must be numbers", key);
                goto fail;
            }
            q->float_default = json_number_value(dv);
            q->float_min = mn ? json_number_value(mn) : 0;
            q->float_max = mx ? json_number_value(mx) : 0;
        } else if (strcmp(type, "string") == 0) {
            q->type = RQX_STRING;
            if (!json_is_string(dv)) {
                *err = xasprintf("parameter %s: the default of a string must be a string", key);
                goto fail;
            }
            q->string_default = xstrdup(json_string_value(dv));
            if (ch) {
                if (!json_is_array(ch) || json_array_size(ch) == 0) {
                    *err = xasprintf("parameter %s: choices must be a non-empty array of strings", key);
                    goto fail;
                }
                const char **c = xcalloc(json_array_size(ch) + 1, sizeof *c);
                q->string_choices = c;
                for (size_t i = 0; i < json_array_size(ch); i++) {
                    const char *s = json_string_value(json_array_get(ch, i));
                    if (!s) {
                        *err = xasprintf("parameter %s: choices must be strings", key);
                        goto fail;
                    }
                    c[i] = xstrdup(s);
                }
            }
        } else if (strcmp(type, "bool") == 0) {
            q->type = RQX_BOOL;
            if (!json_is_boolean(dv)) {
                *err = xasprintf("parameter %s: the default of a bool must be true or false", key);
                goto fail;
            }
            q->bool_default = json_is_true(dv);
        } else {
            *err = xasprintf("parameter %s: unknown type \"%s\" (int, float, string, bool)", key,
                             type);
            goto fail;
        }
    }
    qsort(p, k, sizeof *p, param_cmp);
    if (params_check(p, k, err) != 0)
        goto fail;
    *out = p;
    *n = k;
    return 0;
fail:
    ext_params_free(p, k);
    return -1;
}

json_t *ext_params_json(const ext_strategy *s)
{
    json_t *o = json_object();
    for (size_t i = 0; i < s->nparams; i++) {
        const rqx_param *p = &s->params[i];
        json_t *d = json_pack("{s:s}", "type", type_name(p->type));
        switch (p->type) {
        case RQX_INT:
            json_object_set_new(d, "default", json_integer(p->int_default));
            if (p->flags & RQX_HAS_MIN)
                json_object_set_new(d, "min", json_integer(p->int_min));
            if (p->flags & RQX_HAS_MAX)
                json_object_set_new(d, "max", json_integer(p->int_max));
            break;
        case RQX_FLOAT:
            json_object_set_new(d, "default", json_real(p->float_default));
            if (p->flags & RQX_HAS_MIN)
                json_object_set_new(d, "min", json_real(p->float_min));
            if (p->flags & RQX_HAS_MAX)
                json_object_set_new(d, "max", json_real(p->float_max));
            break;
        case RQX_STRING:
            json_object_set_new(d, "default", json_string(p->string_default));
            if (p->string_choices) {
                json_t *c = json_array();
                for (const char *const *x = p->string_choices; *x; x++)
                    json_array_append_new(c, json_string(*x));
                json_object_set_new(d, "choices", c);
            }
            break;
        case RQX_BOOL: json_object_set_new(d, "default", json_boolean(p->bool_default)); break;
        }
        if (p->doc)
            json_object_set_new(d, "doc", json_string(p->doc));
        json_object_set_new(o, p->name, d);
    }
    return o;
}

static char *value_text(const json_t *v)
{
    return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
}

json_t *ext_params_canonical(const ext_strategy *s, const json_t *given, char **err)
{
    if (given && !json_is_null(given) && !json_is_object(given)) {
        *err = xasprintf("%s: parameters must be an object", s->name);
        return NULL;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)given, key, v) {
        bool known = false;
        for (size_t i = 0; i < s->nparams && !known; i++)
            known = strcasecmp(s->params[i].name, key) == 0;
        if (!known) {
            strbuf names = {0};
            for (size_t i = 0; i < s->nparams; i++)
                strbuf_printf(&names, "%s%s", i ? ", " : "", s->params[i].name);
            *err = s->nparams ? xasprintf("%s: unknown parameter \"%s\" (it takes %s)", s->name,
                                          key, names.data)
                              : xasprintf("%s: unknown parameter \"%s\" (it takes no parameters)",
                                          s->name, key);
            strbuf_free(&names);
            return NULL;
        }
    }
    json_t *out = json_object();
    for (size_t i = 0; i < s->nparams; i++) {
        const rqx_param *p = &s->params[i];
        json_t *g = NULL;
        json_object_foreach((json_t *)given, key, v)
            if (strcasecmp(p->name, key) == 0)
                g = v;
        json_t *val = NULL;
        char *t = g ? value_text(g) : NULL;
        switch (p->type) {
        case RQX_INT:
            if (!g) {
                val = json_integer(p->int_default);
                break;
            }
            if (!json_is_integer(g)) {
                *err = xasprintf("%s: parameter %s: expected an integer, got %s", s->name, p->name, t);
                break;
            }
            if ((p->flags & RQX_HAS_MIN) && json_integer_value(g) < p->int_min)
                *err = xasprintf("%s: parameter %s: %s is out of range (minimum %" PRId64 ")",
                                 s->name, p->name, t, p->int_min);
            else if ((p->flags & RQX_HAS_MAX) && json_integer_value(g) > p->int_max)
                *err = xasprintf("%s: parameter %s: %s is out of range (maximum %" PRId64 ")",
                                 s->name, p->name, t, p->int_max);
            else
                val = json_integer(json_integer_value(g));
            break;
        case RQX_FLOAT: {
            if (!g) {
                val = json_real(p->float_default);
                break;
            }
            if (!json_is_number(g) || !isfinite(json_number_value(g))) {
                *err = xasprintf("%s: parameter %s: expected a number, got %s", s->name, p->name, t);
                break;
            }
            double d = json_number_value(g);
            if ((p->flags & RQX_HAS_MIN) && d < p->float_min)
                *err = xasprintf("%s: parameter %s: %s is out of range (minimum %g)", s->name,
                                 p->name, t, p->float_min);
            else if ((p->flags & RQX_HAS_MAX) && d > p->float_max)
                *err = xasprintf("%s: parameter %s: %s is out of range (maximum %g)", s->name,
                                 p->name, t, p->float_max);
            else
                val = json_real(d);
            break;
        }
        case RQX_STRING:
            if (!g) {
                val = json_string(p->string_default);
                break;
            }
            if (!json_is_string(g)) {
                *err = xasprintf("%s: parameter %s: expected a string, got %s", s->name, p->name, t);
                break;
            }
            if (!choice_ok(p, json_string_value(g))) {
                char *c = choices_text(p);
                *err = xasprintf("%s: parameter %s: %s is not one of %s", s->name, p->name, t, c);
                free(c);
                break;
            }
            val = json_string(json_string_value(g));
            break;
        case RQX_BOOL:
            if (!g) {
                val = json_boolean(p->bool_default);
                break;
            }
            if (!json_is_boolean(g)) {
                *err = xasprintf("%s: parameter %s: expected true or false, got %s", s->name,
                                 p->name, t);
                break;
            }
            val = json_boolean(json_is_true(g));
            break;
        }
        free(t);
        if (!val) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, p->name, val);
    }
    return out;
}

/* ---- the registry --------------------------------------------------------------------- */

static void strategy_free(ext_strategy *s)
{
    free(s->name);
    free(s->version);
    free(s->description);
    free(s->path);
    ext_params_free(s->params, s->nparams);
    if (s->dl)
        dlclose(s->dl);
    for (char **a = s->argv; a && *a; a++)
        free(*a);
    free(s->argv);
    free(s->dir);
}

void ext_registry_free(ext_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        strategy_free(&r->items[i]);
    free(r->items);
    for (size_t i = 0; i < r->nwarnings; i++)
        free(r->warnings[i]);
    free(r->warnings);
    free(r->dir);
    free(r);
}

const ext_strategy *ext_find(const ext_registry *r, const char *name)
{
    for (size_t i = 0; r && name && i < r->n; i++)
        if (strcasecmp(r->items[i].name, name) == 0)
            return &r->items[i];
    return NULL;
}

static void warn(ext_registry *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(ext_registry *r, const char *fmt, ...)
{
    strbuf sb = {0};
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&sb, fmt, ap);
    va_end(ap);
    r->warnings = xrealloc(r->warnings, (r->nwarnings + 1) * sizeof *r->warnings);
    r->warnings[r->nwarnings++] = strbuf_detach(&sb);
}

/* Adds s (whose name is checked: valid, not a proxy, not taken); on failure frees it and
 * warns. */
static void add(ext_registry *r, ext_strategy *s, const char *what)
{
    const char *why = NULL;
    if (!valid_name(s->name))
        why = "its name must be 1 to 63 of [A-Za-z0-9_.-]";
    else if (is_proxy_name(s->name))
        why = "its name is a proxy's (RANK … BY that name means the proxy)";
    else if (ext_find(r, s->name))
        why = "the name is taken";
    else if (!s->version || !*s->version)
        why = "it has no version";
    if (why) {
        warn(r, "%s: strategy \"%s\" skipped: %s", what, s->name ? s->name : "", why);
        strategy_free(s);
        return;
    }
    char *low = lower_dup(s->name);
    free(s->name);
    s->name = low;
    r->items = xrealloc(r->items, (r->n + 1) * sizeof *r->items);
    r->items[r->n++] = *s;
}

/* A descriptor (builtin or from a .so) → a strategy, or NULL with *err. */
static bool from_descriptor(const rankql_extension *e, ext_strategy *s, char **err)
{
    memset(s, 0, sizeof *s);
    if (!e) {
        *err = xstrdup("the entry point returned NULL");
        return false;
    }
    if (e->abi_version < 1 || e->abi_version > RANKQL_EXTENSION_ABI_VERSION) {
        *err = xasprintf("ABI version %u, this rankql speaks versions 1 to %u", e->abi_version,
                         RANKQL_EXTENSION_ABI_VERSION);
        return false;
    }
    if (!e->name || !e->version || !e->rank) {
        *err = xstrdup("the descriptor needs name, version and rank");
        return false;
    }
    if (e->host_api || e->reserved[0] || e->reserved[1] || e->reserved[2] || e->reserved[3]) {
        *err = xstrdup("reserved fields (host_api, reserved[]) must be NULL");
        return false;
    }
    if (!(e->timeout_seconds >= 0) || !isfinite(e->timeout_seconds)) {
        *err = xstrdup("timeout_seconds must be a finite number >= 0");
        return false;
    }
    char *perr = NULL;
    if ((e->nparams && !e->params) || params_check(e->params, e->nparams, &perr) != 0) {
        *err = perr ? perr : xstrdup("nparams > 0 without params");
        return false;
    }
    s->name = xstrdup(e->name);
    s->version = xstrdup(e->version);
    s->description = xstrdup(e->description ? e->description : "");
    s->params = params_copy(e->params, e->nparams);
    s->nparams = e->nparams;
    s->timeout_seconds = e->timeout_seconds > 0 ? e->timeout_seconds : EXT_DEFAULT_TIMEOUT_SECONDS;
    s->abi_version = e->abi_version;
    s->ext = e;
    return true;
}

static void load_so(ext_registry *r, const char *path)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        warn(r, "%s skipped: %s", path, dlerror());
        return;
    }
    rankql_extension_entry_fn entry;
    void *sym = dlsym(dl, RANKQL_EXTENSION_ENTRY);
    if (!sym)
        sym = dlsym(dl, RANKQL_EXTENSION_ENTRY_V1);
    if (!sym) {
        warn(r, "%s skipped: no symbol %s or %s (see extensions/rankql_extension.h)", path,
             RANKQL_EXTENSION_ENTRY, RANKQL_EXTENSION_ENTRY_V1);
        dlclose(dl);
        return;
    }
    memcpy(&entry, &sym, sizeof entry);
    ext_strategy s;
    char *err = NULL;
    if (!from_descriptor(entry(), &s, &err)) {
        warn(r, "%s skipped: %s", path, err);
        free(err);
        dlclose(dl);
        return;
    }
    s.kind = EXT_SO;
    s.path = xstrdup(path);
    s.dl = dl;
    add(r, &s, path);
}

/* ---- describing a C plugin without loading it here ----------------------------------- */

/* How long a plugin may take to describe itself (dlopen, constructors, the entry point). */
enum { DESCRIBE_TIMEOUT_MS = 10000 };

/* In the child: the plugin's description as JSON text on fd, {"name", "version",
 * "description", "timeout", "abi", "params"} or {"error"}. */
static void describe_to_fd(const char *path, int fd)
{
    json_t *out;
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    void *sym = dl ? dlsym(dl, RANKQL_EXTENSION_ENTRY) : NULL;
    if (dl && !sym)
        sym = dlsym(dl, RANKQL_EXTENSION_ENTRY_V1);
    if (!dl) {
        out = json_pack("{s:s}", "error", dlerror());
    } else if (!sym) {
        out = json_pack("{s:s+}", "error", "no symbol " RANKQL_EXTENSION_ENTRY " or "
                        RANKQL_EXTENSION_ENTRY_V1, " (see extensions/rankql_extension.h)");
    } else {
        rankql_extension_entry_fn entry;
        memcpy(&entry, &sym, sizeof entry);
        ext_strategy st;
        char *err = NULL;
        if (from_descriptor(entry(), &st, &err)) {
            out = json_pack("{s:s, s:s, s:s, s:f, s:i, s:o}", "name", st.name, "version",
                            st.version, "description", st.description, "timeout",
                            st.timeout_seconds, "abi", (int)st.abi_version, "params",
                            ext_params_json(&st));
        } else {
            out = json_pack("{s:s}", "error", err);
        }
    }
    char *text = out ? json_dumps(out, JSON_COMPACT) : NULL;
    for (size_t off = 0, len = text ? strlen(text) : 0; off < len;) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
}

/* Reads the child's answer until EOF or the deadline; NULL on timeout. */
static char *read_answer(int fd, int timeout_ms)
{
    strbuf sb = {0};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = timeout_ms - ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0) {
            strbuf_free(&sb);
            return NULL;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue; /* the deadline check above ends it */
        char buf[4096];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        strbuf_append(&sb, buf, (size_t)n);
    }
    return strbuf_detach(&sb);
}

/* rankqld's way of reading a C plugin: dlopen, its constructors and its entry point run in a
 * child process that writes the description back, so no plugin code ever runs inside
 * rankqld (a plugin that crashes or hangs while describing itself is skipped with a
 * warning). The strategy has no descriptor here (ext = NULL): only workers run plugins. */
static void describe_so(ext_registry *r, const char *path)
{
    int fds[2];
    if (pipe(fds) != 0) {
        warn(r, "%s skipped: pipe: %s", path, strerror(errno));
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        warn(r, "%s skipped: fork: %s", path, strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        describe_to_fd(path, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    char *text = read_answer(fds[0], DESCRIBE_TIMEOUT_MS);
    close(fds[0]);
    if (!text)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    const char *why = json_string_value(json_object_get(j, "error"));
    ext_strategy s = {0};
    char *perr = NULL;
    if (!text && !j)
        warn(r, "%s skipped: it took over %d s to describe itself", path, DESCRIBE_TIMEOUT_MS / 1000);
    else if (WIFSIGNALED(status))
        warn(r, "%s skipped: it crashed while describing itself (signal %d)", path, WTERMSIG(status));
    else if (why)
        warn(r, "%s skipped: %s", path, why);
    else if (!json_is_object(j) || !json_is_string(json_object_get(j, "name")))
        warn(r, "%s skipped: no description came back", path);
    else if (ext_params_parse(json_object_get(j, "params"), &s.params, &s.nparams, &perr) != 0) {
        warn(r, "%s skipped: %s", path, perr);
        free(perr);
    } else {
        s.name = xstrdup(json_string_value(json_object_get(j, "name")));
        s.version = xstrdup(json_string_value(json_object_get(j, "version")));
        s.description = xstrdup(json_string_value(json_object_get(j, "description")));
        s.timeout_seconds = json_number_value(json_object_get(j, "timeout"));
        s.abi_version = (unsigned)json_integer_value(json_object_get(j, "abi"));
        s.kind = EXT_SO;
        s.path = xstrdup(path);
        add(r, &s, path);
    }
    json_decref(j);
}

static char *resolve_command(const char *dir, const char *arg0)
{
    if (arg0[0] == '/')
        return xstrdup(arg0);
    if (strchr(arg0, '/'))
        return xasprintf("%s/%s", dir, arg0);
    /* A bare name: a file of that name next to the manifest, else the PATH (python3). */
    char *local = xasprintf("%s/%s", dir, arg0);
    if (access(local, X_OK) == 0)
        return local;
    free(local);
    return xstrdup(arg0);
}

static void load_manifest(ext_registry *r, const char *dir, const char *file)
{
    char *path = xasprintf("%s/%s", dir, file);
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    ext_strategy s = {0};
    char *err = NULL;
    if (!m) {
        warn(r, "%s skipped: not JSON (line %d: %s)", path, je.line, je.text);
        goto out;
    }
    if (!json_is_object(m)) {
        warn(r, "%s skipped: a manifest is an object", path);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v) {
        if (strcmp(key, "name") && strcmp(key, "version") && strcmp(key, "description") &&
            strcmp(key, "command") && strcmp(key, "parameters") && strcmp(key, "timeout_seconds")) {
            warn(r, "%s skipped: unknown key \"%s\" (name, version, description, command, "
                    "parameters, timeout_seconds)",
                 path, key);
            goto out;
        }
    }
    const char *name = json_string_value(json_object_get(m, "name"));
    json_t *ver = json_object_get(m, "version");
    json_t *desc = json_object_get(m, "description");
    json_t *cmd = json_object_get(m, "command");
    json_t *to = json_object_get(m, "timeout_seconds");
    if (!name || !ver || !(json_is_string(ver) || json_is_number(ver))) {
        warn(r, "%s skipped: needs \"name\" and \"version\" strings", path);
        goto out;
    }
    if (desc && !json_is_string(desc)) {
        warn(r, "%s skipped: \"description\" must be a string", path);
        goto out;
    }
    if (to && (!json_is_number(to) || !(json_number_value(to) > 0) ||
               json_number_value(to) > 86400)) {
        warn(r, "%s skipped: \"timeout_seconds\" must be a number in (0, 86400]", path);
        goto out;
    }
    if (ext_params_parse(json_object_get(m, "parameters"), &s.params, &s.nparams, &err) != 0) {
        warn(r, "%s skipped: %s", path, err);
        goto out;
    }
    /* The command: an array of strings, a single string, or (none) the file named like the
     * manifest without .json. */
    size_t argc = cmd ? (json_is_array(cmd) ? json_array_size(cmd) : 1) : 1;
    if (cmd && !json_is_string(cmd) && !(json_is_array(cmd) && argc > 0)) {
        warn(r, "%s skipped: \"command\" must be a string or a non-empty array of strings", path);
        goto out;
    }
    s.argv = xcalloc(argc + 1, sizeof *s.argv);
    for (size_t i = 0; i < argc; i++) {
        const char *a;
        char *stem = NULL;
        if (!cmd) {
            stem = xstrndup(file, strlen(file) - 5);
            a = stem;
        } else {
            a = json_string_value(json_is_array(cmd) ? json_array_get(cmd, i) : cmd);
        }
        if (!a || !*a) {
            warn(r, "%s skipped: \"command\" must be a string or a non-empty array of strings",
                 path);
            free(stem);
            goto out;
        }
        s.argv[i] = i == 0 ? resolve_command(dir, a) : xstrdup(a);
        free(stem);
    }
    if (strchr(s.argv[0], '/') && access(s.argv[0], X_OK) != 0) {
        warn(r, "%s skipped: command %s: %s", path, s.argv[0], strerror(errno));
        goto out;
    }
    s.name = xstrdup(name);
    s.version = json_is_string(ver) ? xstrdup(json_string_value(ver)) : value_text(ver);
    s.description = xstrdup(desc ? json_string_value(desc) : "");
    s.kind = EXT_PROCESS;
    s.path = path;
    path = NULL;
    s.dir = xstrdup(dir);
    s.timeout_seconds = to ? json_number_value(to) : EXT_DEFAULT_TIMEOUT_SECONDS;
    add(r, &s, s.path);
    memset(&s, 0, sizeof s);
out:
    strategy_free(&s);
    free(err);
    json_decref(m);
    free(path);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

static ext_registry *registry_load(const char *dir, bool describe_only, char **err)
{
    ext_registry *r = xcalloc(1, sizeof *r);
    ext_strategy s;
    char *e = NULL;
    for (size_t i = 0; ext_builtins[i]; i++) {
        if (from_descriptor(ext_builtins[i], &s, &e)) {
            s.kind = EXT_BUILTIN;
            add(r, &s, "builtin");
        } else {
            warn(r, "builtin %s: %s", ext_builtins[i]->name, e);
            free(e);
            e = NULL;
        }
    }
    if (!dir)
        return r;
    /* Absolute: process plugins run in their directory, with commands resolved in it. */
    char *absdir = realpath(dir, NULL);
    DIR *d = absdir ? opendir(absdir) : NULL;
    if (!d) {
        *err = xasprintf("extensions directory %s: %s", dir, strerror(errno));
        free(absdir);
        ext_registry_free(r);
        return NULL;
    }
    r->dir = absdir;
    dir = absdir;
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || !(ends_with(de->d_name, ".so") || ends_with(de->d_name, ".json")))
            continue;
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    /* In name order: which of two plugins with one name wins does not depend on the
     * file system. */
    qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < n; i++) {
        if (ends_with(names[i], ".so")) {
            char *path = xasprintf("%s/%s", dir, names[i]);
            if (describe_only)
                describe_so(r, path);
            else
                load_so(r, path);
            free(path);
        } else {
            load_manifest(r, dir, names[i]);
        }
        free(names[i]);
    }
    free(names);
    return r;
}

ext_registry *ext_registry_load(const char *dir, char **err)
{
    return registry_load(dir, false, err);
}

ext_registry *ext_registry_describe(const char *dir, char **err)
{
    return registry_load(dir, true, err);
}

/* ---- the process-wide registry -------------------------------------------------------- */

#include <pthread.h>

static ext_registry *default_registry;
static ext_registry *builtin_registry;
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;

static void load_builtins(void)
{
    char *err = NULL;
    builtin_registry = ext_registry_load(NULL, &err);
    free(err);
}

void ext_set_default(ext_registry *r)
{
    default_registry = r;
}

const ext_registry *ext_default(void)
{
    if (default_registry)
        return default_registry;
    pthread_once(&builtin_once, load_builtins);
    return builtin_registry;
}

/* ---- which directory ------------------------------------------------------------------ */

int ext_resolve_dir(const char *flag, const char *data_dir, char **dir, char **err)
{
    *dir = NULL;
    const char *from = "--extensions";
    if (!flag) {
        const char *env = getenv("RANKQL_EXTENSIONS");
        if (env && *env) {
            flag = env;
            from = "RANKQL_EXTENSIONS";
        }
    }
    if (flag) {
        if (!*flag) {
            *err = xasprintf("%s is empty (give a directory, or none)", from);
            return -1;
        }
        if (strcmp(flag, "none") == 0)
            return 0;
        struct stat st;
        if (stat(flag, &st) != 0 || !S_ISDIR(st.st_mode)) {
            *err = xasprintf("%s: '%s' is not a directory", from, flag);
            return -1;
        }
        *dir = xstrdup(flag);
        return 0;
    }
    if (data_dir) {
        char *d = xasprintf("%s/extensions", data_dir);
        struct stat st;
        if (stat(d, &st) == 0 && S_ISDIR(st.st_mode)) {
            *dir = d;
            return 0;
        }
        free(d);
    }
    return 0;
}
