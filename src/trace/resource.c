/*
 * Resource: the attributes that describe this process, deep-copied into one owned array.
 *
 * af_resource_new() applies its sources in this order, a later source overwriting an earlier
 * one key by key:
 *
 *   1. telemetry.sdk.name = "agentaflow", telemetry.sdk.language = "c",
 *      telemetry.sdk.version = AF_VERSION_STRING
 *   2. OTEL_RESOURCE_ATTRIBUTES (the whole value is ignored, with one warning, when any part
 *      of it fails to parse)
 *   3. OTEL_SERVICE_NAME as service.name (the spec: it beats service.name from step 2)
 *   4. the attributes given in code (the spec: a user-provided resource beats the
 *      environment, so code can override every key above, telemetry.sdk.* included)
 *   5. service.name = "unknown_service:<executable name>" only when no step set it.
 *
 * OTEL_RESOURCE_ATTRIBUTES syntax, as parsed here: members separated by ',', each
 * "key=value" split at the first '='. Key and value are trimmed of spaces and tabs, then
 * percent-decoded ("%2C" -> ','; '+' stays '+'). Members that are empty after trimming are
 * skipped, so a trailing comma is harmless. Errors that reject the whole value: a member
 * without '=', an empty key, a malformed escape ('%' not followed by two hex digits), an
 * escape decoding to NUL (values are C strings) and a result that is not valid UTF-8 (OTLP
 * strings must be). A repeated key keeps its last value.
 *
 * A resource is not shared mutable state: it is built once, then only read (the schema URL
 * setter is for its owner before handing it to a provider).
 */
#define AF_LOG_COMPONENT "tracing"

#include "agentaflow/trace.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentaflow/log.h"
#include "util/env.h"
#include "util/str.h"

struct af_resource {
    af_attr *attrs; /* every key, string and array owned */
    size_t n;
    size_t cap;
    char *schema_url; /* NULL = none */
};

/* ------------------------------------------------------------------------------------------ */
/* Owned attribute values                                                                      */

static void value_free(af_attr *a)
{
    switch (a->type) {
    case AF_VAL_STRING:
        free((char *)a->v.s.ptr);
        break;
    case AF_VAL_STRING_ARRAY: {
        char **items = (char **)a->v.arr.items;
        for (size_t i = 0; i < a->v.arr.count; i++)
            free(items[i]);
        free(items);
        break;
    }
    case AF_VAL_BOOL_ARRAY:
    case AF_VAL_INT_ARRAY:
    case AF_VAL_DOUBLE_ARRAY:
        free((void *)a->v.arr.items);
        break;
    case AF_VAL_BOOL:
    case AF_VAL_INT:
    case AF_VAL_DOUBLE:
        break;
    }
}

static int copy_string_array(af_attr *dst, const af_attr *src)
{
    const char *const *in = src->v.arr.items;
    char **items = calloc(src->v.arr.count, sizeof(*items));
    if (!items)
        return -ENOMEM;
    for (size_t i = 0; i < src->v.arr.count; i++) {
        if (!in[i] || !(items[i] = af__strdup(in[i]))) {
            int rc = in[i] ? -ENOMEM : -EINVAL;
            for (size_t k = 0; k < i; k++)
                free(items[k]);
            free(items);
            return rc;
        }
    }
    dst->v.arr.items = items;
    return 0;
}

/* Copies src's type and value into dst (not the key). Returns 0, -EINVAL or -ENOMEM; dst is
 * untouched on failure. */
static int value_copy(af_attr *dst, const af_attr *src)
{
    af_attr out = {.key = NULL, .type = src->type};
    size_t elem = 0;
    switch (src->type) {
    case AF_VAL_STRING: {
        size_t len = src->v.s.len;
        if (!src->v.s.ptr && len != 0 && len != AF_LEN_NUL)
            return -EINVAL;
        const char *p = src->v.s.ptr ? src->v.s.ptr : "";
        if (len == AF_LEN_NUL)
            len = strlen(p);
        char *copy = af__strndup(p, len);
        if (!copy)
            return -ENOMEM;
        out.v.s.ptr = copy;
        out.v.s.len = len;
        break;
    }
    case AF_VAL_BOOL:
    case AF_VAL_INT:
    case AF_VAL_DOUBLE:
        out.v = src->v;
        break;
    case AF_VAL_STRING_ARRAY:
    case AF_VAL_BOOL_ARRAY:
    case AF_VAL_INT_ARRAY:
    case AF_VAL_DOUBLE_ARRAY:
        if (src->v.arr.count && !src->v.arr.items)
            return -EINVAL;
        out.v.arr.count = src->v.arr.count;
        out.v.arr.items = NULL;
        if (!src->v.arr.count)
            break;
        if (src->type == AF_VAL_STRING_ARRAY) {
            int rc = copy_string_array(&out, src);
            if (rc)
                return rc;
            break;
        }
        elem = src->type == AF_VAL_BOOL_ARRAY  ? sizeof(bool)
               : src->type == AF_VAL_INT_ARRAY ? sizeof(int64_t)
                                               : sizeof(double);
        if (src->v.arr.count > SIZE_MAX / elem)
            return -ENOMEM;
        void *items = malloc(src->v.arr.count * elem);
        if (!items)
            return -ENOMEM;
        memcpy(items, src->v.arr.items, src->v.arr.count * elem);
        out.v.arr.items = items;
        break;
    default:
        return -EINVAL;
    }
    dst->type = out.type;
    dst->v = out.v;
    return 0;
}

/* Sets one attribute, overwriting the value of an existing key in place (so the first
 * position of a key is kept). Returns 0, -EINVAL (NULL/empty key, bad value) or -ENOMEM. */
static int res_set(af_resource *r, const af_attr *a)
{
    if (!a->key || !a->key[0])
        return -EINVAL;
    af_attr value;
    int rc = value_copy(&value, a);
    if (rc)
        return rc;
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->attrs[i].key, a->key) == 0) {
            value_free(&r->attrs[i]);
            r->attrs[i].type = value.type;
            r->attrs[i].v = value.v;
            return 0;
        }
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        af_attr *grown = realloc(r->attrs, cap * sizeof(*grown));
        if (!grown)
            goto fail;
        r->attrs = grown;
        r->cap = cap;
    }
    value.key = af__strdup(a->key);
    if (!value.key)
        goto fail;
    r->attrs[r->n++] = value;
    return 0;
fail:
    value_free(&value);
    return -ENOMEM;
}

static int res_set_string(af_resource *r, const char *key, const char *val)
{
    af_attr a = AF_STR(key, val);
    return res_set(r, &a);
}

static const af_attr *res_find(const af_resource *r, const char *key)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->attrs[i].key, key) == 0)
            return &r->attrs[i];
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* OTEL_RESOURCE_ATTRIBUTES                                                                    */

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i < n)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_for_len[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n;
    }
    return true;
}

typedef struct parse_err {
    char *buf;
    size_t len;
} parse_err;

static void set_err(parse_err *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void set_err(parse_err *e, const char *fmt, ...)
{
    if (!e->buf || !e->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->buf, e->len, fmt, ap);
    va_end(ap);
}

/* Percent-decodes s[0..len) (len >= 0) into a new NUL-terminated string. `base` is the
 * offset of s in the whole variable, for the error text. Returns 0, AF_EPARSE or -ENOMEM. */
static int percent_decode(const char *s, size_t len, size_t base, const char *what, parse_err *e,
                          char **out)
{
    char *d = malloc(len + 1);
    if (!d)
        return -ENOMEM;
    size_t o;
    if (af__pct_decode(s, len, false, d, len + 1, &o) != 0) {
        if (len - o >= 3 && s[o + 1] == '0' && s[o + 2] == '0')
            set_err(e, "%%00 (NUL) in a %s at offset %zu", what, base + o);
        else
            set_err(e, "malformed percent escape in a %s at offset %zu", what, base + o);
        goto fail;
    }
    if (!utf8_valid((const unsigned char *)d, o)) {
        set_err(e, "the %s at offset %zu is not valid UTF-8 after decoding", what, base);
        goto fail;
    }
    *out = d;
    return 0;
fail:
    free(d);
    return AF_EPARSE;
}

static void trim(const char **b, const char **e)
{
    while (*b < *e && is_space(**b))
        (*b)++;
    while (*e > *b && is_space((*e)[-1]))
        (*e)--;
}

static int parse_member(af_resource *r, const char *value, const char *b, const char *e,
                        parse_err *err)
{
    const char *eq = memchr(b, '=', (size_t)(e - b));
    if (!eq) {
        set_err(err, "the member at offset %zu has no '='", (size_t)(b - value));
        return AF_EPARSE;
    }
    const char *kb = b, *ke = eq, *vb = eq + 1, *ve = e;
    trim(&kb, &ke);
    trim(&vb, &ve);
    if (kb == ke) {
        set_err(err, "the member at offset %zu has an empty key", (size_t)(b - value));
        return AF_EPARSE;
    }
    char *key = NULL, *val = NULL;
    int rc = percent_decode(kb, (size_t)(ke - kb), (size_t)(kb - value), "key", err, &key);
    if (rc == 0)
        rc = percent_decode(vb, (size_t)(ve - vb), (size_t)(vb - value), "value", err, &val);
    if (rc == 0)
        rc = res_set_string(r, key, val);
    free(key);
    free(val);
    return rc;
}

static int parse_env(const char *value, af_resource **out, parse_err *err)
{
    if (!value || !out)
        return -EINVAL;
    af_resource *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    int rc = 0;
    const char *p = value;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *b = p, *e = end;
        trim(&b, &e);
        if (b < e && (rc = parse_member(r, value, b, e, err)) != 0)
            goto fail;
        if (*end == '\0')
            break;
        p = end + 1;
    }
    *out = r;
    return 0;
fail:
    af_resource_free(r);
    return rc;
}

int af_resource_parse_env(const char *value, af_resource **out)
{
    parse_err err = {NULL, 0};
    return parse_env(value, out, &err);
}

/* ------------------------------------------------------------------------------------------ */
/* Construction                                                                                */

/* The base name of /proc/self/exe (what semantic conventions call process.executable.name),
 * else glibc's program_invocation_short_name; "" when neither is known. */
static void executable_name(char *buf, size_t len)
{
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    if (n > 0) {
        size_t plen = (size_t)n;
        path[plen] = '\0';
        static const char deleted[] = " (deleted)";
        size_t dl = sizeof(deleted) - 1;
        if (plen > dl && strcmp(path + plen - dl, deleted) == 0)
            path[plen - dl] = '\0';
        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        if (*base) {
            af__strlcpy(buf, base, len);
            return;
        }
    }
    af__strlcpy(buf, program_invocation_short_name ? program_invocation_short_name : "", len);
}

static int apply_env(af_resource *r)
{
    const char *env = af__getenv("OTEL_RESOURCE_ATTRIBUTES");
    if (env) {
        char msg[160];
        parse_err err = {msg, sizeof(msg)};
        af_resource *parsed = NULL;
        int rc = parse_env(env, &parsed, &err);
        if (rc == AF_EPARSE) {
            af_log(AF_LOG_WARN, "OTEL_RESOURCE_ATTRIBUTES: %s; the whole value is ignored", msg);
        } else if (rc) {
            return rc;
        } else {
            for (size_t i = 0; i < parsed->n && rc == 0; i++)
                rc = res_set(r, &parsed->attrs[i]);
            af_resource_free(parsed);
            if (rc)
                return rc;
        }
    }
    const char *svc = af__getenv("OTEL_SERVICE_NAME");
    return svc ? res_set_string(r, "service.name", svc) : 0;
}

int af_resource_new(const af_attr *attrs, size_t n_attrs, af_resource **out)
{
    if (!out || (n_attrs && !attrs))
        return -EINVAL;
    af_resource *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    int rc;
    if ((rc = res_set_string(r, "telemetry.sdk.name", "agentaflow")) ||
        (rc = res_set_string(r, "telemetry.sdk.language", "c")) ||
        (rc = res_set_string(r, "telemetry.sdk.version", AF_VERSION_STRING)))
        goto fail;
    if ((rc = apply_env(r)))
        goto fail;
    for (size_t i = 0; i < n_attrs; i++)
        if ((rc = res_set(r, &attrs[i])))
            goto fail;
    if (!res_find(r, "service.name")) {
        char exe[256];
        char name[sizeof(exe) + 32];
        executable_name(exe, sizeof(exe));
        snprintf(name, sizeof(name), exe[0] ? "unknown_service:%s" : "unknown_service%s", exe);
        if ((rc = res_set_string(r, "service.name", name)))
            goto fail;
    }
    *out = r;
    return 0;
fail:
    af_resource_free(r);
    return rc;
}

int af_resource_new_raw(const af_attr *attrs, size_t n_attrs, af_resource **out)
{
    if (!out || (n_attrs && !attrs))
        return -EINVAL;
    af_resource *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n_attrs; i++)
        if ((rc = res_set(r, &attrs[i])))
            goto fail;
    *out = r;
    return 0;
fail:
    af_resource_free(r);
    return rc;
}

void af_resource_free(af_resource *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free((char *)r->attrs[i].key);
        value_free(&r->attrs[i]);
    }
    free(r->attrs);
    free(r->schema_url);
    free(r);
}

const af_attr *af_resource_attrs(const af_resource *r, size_t *n)
{
    if (!r) {
        if (n)
            *n = 0;
        return NULL;
    }
    if (n)
        *n = r->n;
    return r->attrs;
}

const char *af_resource_get_string(const af_resource *r, const char *key)
{
    if (!r || !key)
        return NULL;
    const af_attr *a = res_find(r, key);
    return a && a->type == AF_VAL_STRING ? a->v.s.ptr : NULL;
}

const char *af_resource_schema_url(const af_resource *r)
{
    return r && r->schema_url ? r->schema_url : "";
}

int af_resource_set_schema_url(af_resource *r, const char *schema_url)
{
    if (!r)
        return -EINVAL;
    char *copy = NULL;
    if (schema_url && *schema_url && !(copy = af__strdup(schema_url)))
        return -ENOMEM;
    free(r->schema_url);
    r->schema_url = copy;
    return 0;
}
