/*
 * Dumps of a configuration, driven by the key table: a nested JSON object (for
 * /api/v1/config) and "key = value" lines (for `agentaflow config check`). With redact,
 * secret values become "[redacted]" and URLs lose userinfo and query strings.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "config/models.h"
#include "util/buf.h"
#include "util/str.h"

static const char REDACTED[] = "[redacted]";

/* A JSON number for a config double: "%.10g" (ratios are short decimals), with ".0" added to
 * integral values so readers keep the type; non-finite values (never valid config) as null. */
static void put_real(af_buf *b, double d)
{
    if (!isfinite(d)) {
        af__buf_puts(b, "null");
        return;
    }
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%.10g", d);
    af__buf_puts(b, tmp);
    if (!strpbrk(tmp, ".e"))
        af__buf_puts(b, ".0");
}

static void put_jstr(af_buf *b, const char *s)
{
    if (s)
        af__buf_json_string(b, s, strlen(s));
    else
        af__buf_puts(b, "null");
}

/* A string row's value as the dumps show it: REDACTED for a secret and a URL without its
 * credentials (in tmp) when redact is set; NULL when unset. */
static const char *shown_string(const af__config_key *k, const char *s, bool redact, char *tmp,
                                size_t cap)
{
    if (s && redact && k->info.secret)
        return REDACTED;
    if (s && redact && (k->flags & AF__KEY_URL)) {
        af__config_safe_url(s, tmp, cap);
        return tmp;
    }
    return s;
}

static void indent(af_buf *b, int depth)
{
    af__buf_putc(b, '\n');
    for (int i = 0; i < depth; i++)
        af__buf_puts(b, "  ");
}

/* A list row as a JSON array, one entry a line. */
static void list_json(af_buf *b, const af_tracing_config *cfg, const af__config_key *k, int depth)
{
    size_t n;
    char *const *items = af__config_list_get(cfg, k, &n);
    if (n == 0) {
        af__buf_puts(b, "[]");
        return;
    }
    af__buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        af__buf_puts(b, i ? "," : "");
        indent(b, depth + 1);
        put_jstr(b, items[i]);
    }
    indent(b, depth);
    af__buf_putc(b, ']');
}

/* A map row as a JSON object, a kv-list row as an array of {"key", "value"}; secret values
 * redacted when asked. */
static void kv_json(af_buf *b, const af_tracing_config *cfg, const af__config_key *k, bool redact,
                    int depth)
{
    size_t n;
    const af_config_kv *kv = af__config_kv_get(cfg, k, &n);
    bool list = k->info.type == AF_CFG_KV_LIST;
    if (n == 0) {
        af__buf_puts(b, list ? "[]" : "{}");
        return;
    }
    af__buf_putc(b, list ? '[' : '{');
    for (size_t i = 0; i < n; i++) {
        const char *v = redact && k->info.secret ? REDACTED : kv[i].value;
        af__buf_puts(b, i ? "," : "");
        indent(b, depth + 1);
        if (list) {
            af__buf_puts(b, "{\"key\": ");
            put_jstr(b, kv[i].key);
            af__buf_puts(b, ", \"value\": ");
            put_jstr(b, v);
            af__buf_putc(b, '}');
        } else {
            put_jstr(b, kv[i].key);
            af__buf_puts(b, ": ");
            put_jstr(b, v);
        }
    }
    indent(b, depth);
    af__buf_putc(b, list ? ']' : '}');
}

static void value_json(af_buf *b, const af_tracing_config *cfg, const af__config_key *k,
                       bool redact, int depth)
{
    const void *f = af__config_cfield(cfg, k);
    char tmp[2048];
    switch (k->info.type) {
    case AF_CFG_STRING:
        put_jstr(b, shown_string(k, *(char *const *)f, redact, tmp, sizeof tmp));
        return;
    case AF_CFG_BOOL:
        af__buf_puts(b, *(const bool *)f ? "true" : "false");
        return;
    case AF_CFG_RATIO:
        put_real(b, *(const double *)f);
        return;
    case AF_CFG_UINT:
        af__buf_printf(b, "%u", *(const uint32_t *)f);
        return;
    case AF_CFG_INT:
        af__buf_printf(b, "%d", *(const int *)f);
        return;
    case AF_CFG_BYTES:
        af__buf_printf(b, "%llu", (unsigned long long)*(const uint64_t *)f);
        return;
    case AF_CFG_LIST:
        list_json(b, cfg, k, depth);
        return;
    case AF_CFG_DURATION:
        af_config_format_duration(*(const uint32_t *)f, tmp, sizeof tmp);
        put_jstr(b, tmp);
        return;
    case AF_CFG_ENUM:
        put_jstr(b, k->info.enum_values[af__config_enum_get(cfg, k)]);
        return;
    case AF_CFG_MAP:
    case AF_CFG_KV_LIST:
        kv_json(b, cfg, k, redact, depth);
        return;
    case AF_CFG_MODELS:
        af__config_models_json(b, cfg->serving.models, cfg->serving.n_models, redact);
        return;
    }
}

/* True when key k starts with prefix and its next dotted segment is seg (seg_len bytes). */
static bool has_segment(const char *k, size_t prefix_len, const char *seg, size_t seg_len)
{
    return strncmp(k + prefix_len, seg, seg_len) == 0 &&
           (k[prefix_len + seg_len] == '.' || k[prefix_len + seg_len] == '\0');
}

/*
 * The object for every key under `prefix` (prefix_len bytes, "" or ending in '.'): one member
 * per distinct next segment, in key-table order, a nested object where keys go deeper. The
 * table is small (tens of keys), so the quadratic scan for "seen before" costs nothing.
 */
static void object_json(af_buf *b, const af_tracing_config *cfg, bool redact, const char *prefix,
                        size_t prefix_len, int depth)
{
    af__buf_putc(b, '{');
    bool first = true;
    for (size_t i = 0; i < af__config_nkeys; i++) {
        const char *key = af__config_keys[i].info.key;
        if (strncmp(key, prefix, prefix_len) != 0)
            continue;
        const char *seg = key + prefix_len;
        size_t seg_len = strcspn(seg, ".");
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) {
            const char *other = af__config_keys[j].info.key;
            seen = strncmp(other, prefix, prefix_len) == 0 &&
                   has_segment(other, prefix_len, seg, seg_len);
        }
        if (seen)
            continue;
        af__buf_puts(b, first ? "" : ",");
        first = false;
        indent(b, depth + 1);
        af__buf_json_string(b, seg, seg_len);
        af__buf_puts(b, ": ");
        if (seg[seg_len] == '.')
            object_json(b, cfg, redact, key, prefix_len + seg_len + 1, depth + 1);
        else
            value_json(b, cfg, &af__config_keys[i], redact, depth + 1);
    }
    if (!first)
        indent(b, depth);
    af__buf_putc(b, '}');
}

int af_config_dump_json(const af_tracing_config *cfg, bool redact, char **out)
{
    *out = NULL;
    af_buf b;
    af__buf_init(&b);
    object_json(&b, cfg, redact, "", 0, 0);
    return af__buf_finish(&b, out);
}

static void put_str(af_buf *b, const char *s)
{
    if (s)
        af__buf_json_string(b, s, strlen(s));
    else
        af__buf_puts(b, "(unset)");
}

static void list_text(af_buf *b, const af_tracing_config *cfg, const af__config_key *k)
{
    size_t n;
    char *const *items = af__config_list_get(cfg, k, &n);
    af__buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        af__buf_puts(b, i ? ", " : "");
        put_str(b, items[i]);
    }
    af__buf_putc(b, ']');
}

static void kv_text(af_buf *b, const af_tracing_config *cfg, const af__config_key *k, bool redact)
{
    size_t n;
    const af_config_kv *kv = af__config_kv_get(cfg, k, &n);
    bool list = k->info.type == AF_CFG_KV_LIST;
    af__buf_putc(b, list ? '[' : '{');
    for (size_t i = 0; i < n; i++) {
        af__buf_puts(b, i ? ", " : "");
        put_str(b, kv[i].key);
        af__buf_putc(b, list ? '=' : ':');
        if (!list)
            af__buf_putc(b, ' ');
        put_str(b, redact && k->info.secret ? REDACTED : kv[i].value);
    }
    af__buf_putc(b, list ? ']' : '}');
}

/* One row's value as `config dump` prints it. */
static void value_text(af_buf *b, const af_tracing_config *cfg, const af__config_key *k,
                       bool redact)
{
    const void *f = af__config_cfield(cfg, k);
    char tmp[2048];
    switch (k->info.type) {
    case AF_CFG_STRING: {
        const char *s = shown_string(k, *(char *const *)f, redact, tmp, sizeof tmp);
        if (s == REDACTED)
            af__buf_puts(b, REDACTED); /* bare in the text dump */
        else
            put_str(b, s);
        break;
    }
    case AF_CFG_BOOL:
        af__buf_puts(b, *(const bool *)f ? "true" : "false");
        break;
    case AF_CFG_RATIO:
        af__buf_printf(b, "%g", *(const double *)f);
        break;
    case AF_CFG_UINT:
        af__buf_printf(b, "%u", *(const uint32_t *)f);
        break;
    case AF_CFG_INT:
        af__buf_printf(b, "%d", *(const int *)f);
        break;
    case AF_CFG_BYTES:
        af__buf_printf(b, "%llu", (unsigned long long)*(const uint64_t *)f);
        break;
    case AF_CFG_LIST:
        list_text(b, cfg, k);
        break;
    case AF_CFG_DURATION:
        af_config_format_duration(*(const uint32_t *)f, tmp, sizeof tmp);
        af__buf_puts(b, tmp);
        break;
    case AF_CFG_ENUM:
        af__buf_puts(b, k->info.enum_values[af__config_enum_get(cfg, k)]);
        break;
    case AF_CFG_MAP:
    case AF_CFG_KV_LIST:
        kv_text(b, cfg, k, redact);
        break;
    case AF_CFG_MODELS:
        af__config_models_json(b, cfg->serving.models, cfg->serving.n_models, redact);
        break;
    }
}

int af_config_dump_text(const af_tracing_config *cfg, bool redact, char **out)
{
    *out = NULL;
    af_buf b;
    af__buf_init(&b);
    for (size_t i = 0; i < af__config_nkeys; i++) {
        const af__config_key *k = &af__config_keys[i];
        af__buf_printf(&b, "%s = ", k->info.key);
        value_text(&b, cfg, k, redact);
        af__buf_putc(&b, '\n');
    }
    return af__buf_finish(&b, out);
}

/* ---------------------------------------------------------------------------------------- */
/* Reload: which keys SIGHUP applies. Everything else is bound at start (listeners, threads,
 * the resource every span carries, queue sizes), so a change is reported, not applied. */

static const char *const reloadable_prefixes[] = {
    "tracing.sampling_ratio",
    "tracing.exporters.",
    "components.",
    "server.log_",
};

bool af_config_key_reloadable(const char *dotted)
{
    if (!dotted)
        return false;
    for (size_t i = 0; i < sizeof reloadable_prefixes / sizeof reloadable_prefixes[0]; i++)
        if (strncmp(dotted, reloadable_prefixes[i], strlen(reloadable_prefixes[i])) == 0)
            return true;
    return false;
}

static bool key_differs(const af_tracing_config *a, const af_tracing_config *b,
                        const af__config_key *k)
{
    /* Compared as their JSON text, unredacted, so a changed secret (a header, the auth
     * token) counts as a change too. */
    af_buf ba, bb;
    af__buf_init(&ba);
    af__buf_init(&bb);
    value_json(&ba, a, k, false, 0);
    value_json(&bb, b, k, false, 0);
    bool differs = ba.failed || bb.failed || ba.len != bb.len ||
                   (ba.len && memcmp(ba.data, bb.data, ba.len) != 0);
    af__buf_clear(&ba);
    af__buf_clear(&bb);
    return differs;
}

bool af__config_section_differs(const af_tracing_config *a, const af_tracing_config *b,
                                const char *prefix)
{
    size_t len = strlen(prefix);
    for (size_t i = 0; i < af__config_nkeys; i++) {
        const char *key = af__config_keys[i].info.key;
        if (strncmp(key, prefix, len) == 0 && (key[len] == '.' || key[len] == '\0') &&
            key_differs(a, b, &af__config_keys[i]))
            return true;
    }
    return false;
}

size_t af_config_restart_keys(const af_tracing_config *a, const af_tracing_config *b,
                              const char **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < af__config_nkeys; i++) {
        const af__config_key *k = &af__config_keys[i];
        if (af_config_key_reloadable(k->info.key))
            continue;
        if (key_differs(a, b, k)) {
            if (n < cap)
                out[n] = k->info.key;
            n++;
        }
    }
    return n;
}
