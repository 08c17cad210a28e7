/*
 * Dumps of a configuration, driven by the key table: a nested JSON object (for
 * /api/v1/config) and "key = value" lines (for `agentaflow config check`). With redact,
 * secret values become "[redacted]" and URLs lose userinfo and query strings.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "util/buf.h"
#include "util/str.h"

#define REDACTED "[redacted]"

static json_t *jstr(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    /* Environment values are not checked for UTF-8; JSON strings must be. */
    return j ? j : json_string("[not UTF-8]");
}

static json_t *value_json(const af_tracing_config *cfg, const af__config_key *k, bool redact)
{
    const void *f = af__config_cfield(cfg, k);
    char tmp[2048];
    switch (k->info.type) {
    case AF_CFG_STRING: {
        const char *s = *(char *const *)f;
        if (s && redact && k->info.secret) {
            s = REDACTED;
        } else if (s && redact && (k->flags & AF__KEY_URL)) {
            af__config_safe_url(s, tmp, sizeof tmp);
            s = tmp;
        }
        return jstr(s);
    }
    case AF_CFG_BOOL:
        return json_boolean(*(const bool *)f);
    case AF_CFG_RATIO:
        return json_real(*(const double *)f);
    case AF_CFG_UINT:
        return json_integer((json_int_t) * (const uint32_t *)f);
    case AF_CFG_INT:
        return json_integer((json_int_t) * (const int *)f);
    case AF_CFG_BYTES:
        return json_integer((json_int_t) * (const uint64_t *)f);
    case AF_CFG_LIST: {
        size_t n;
        char *const *items = af__config_list_get(cfg, k, &n);
        json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++) {
            if (json_array_append_new(a, jstr(items[i])) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case AF_CFG_DURATION:
        af_config_format_duration(*(const uint32_t *)f, tmp, sizeof tmp);
        return json_string(tmp);
    case AF_CFG_ENUM:
        return json_string(k->info.enum_values[af__config_enum_get(cfg, k)]);
    case AF_CFG_MAP: {
        size_t n;
        const af_config_kv *kv = af__config_kv_get(cfg, k, &n);
        json_t *o = json_object();
        for (size_t i = 0; o && i < n; i++) {
            json_t *v = jstr(redact && k->info.secret ? REDACTED : kv[i].value);
            if (!v || json_object_set_new(o, kv[i].key, v) != 0) {
                json_decref(o);
                return NULL;
            }
        }
        return o;
    }
    case AF_CFG_KV_LIST: {
        size_t n;
        const af_config_kv *kv = af__config_kv_get(cfg, k, &n);
        json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++) {
            json_t *item = json_pack("{s:o,s:o}", "key", jstr(kv[i].key), "value",
                                     jstr(redact && k->info.secret ? REDACTED : kv[i].value));
            if (!item || json_array_append_new(a, item) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    }
    return NULL;
}

int af_config_dump_json(const af_tracing_config *cfg, bool redact, char **out)
{
    *out = NULL;
    json_t *root = json_object();
    if (!root)
        return -ENOMEM;
    for (size_t i = 0; i < af__config_nkeys; i++) {
        const af__config_key *k = &af__config_keys[i];
        /* Walk (creating) one object per dotted segment, then set the leaf. */
        json_t *obj = root;
        const char *seg = k->info.key;
        const char *dot;
        char name[128];
        while ((dot = strchr(seg, '.'))) {
            snprintf(name, sizeof name, "%.*s", (int)(dot - seg), seg);
            json_t *child = json_object_get(obj, name);
            if (!child) {
                child = json_object();
                if (!child || json_object_set_new(obj, name, child) != 0)
                    goto fail;
            }
            obj = child;
            seg = dot + 1;
        }
        json_t *v = value_json(cfg, k, redact);
        if (!v || json_object_set_new(obj, seg, v) != 0)
            goto fail;
    }
    *out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(root);
    return *out ? 0 : -ENOMEM;
fail:
    json_decref(root);
    return -ENOMEM;
}

static void put_str(af_buf *b, const char *s)
{
    if (s)
        af__buf_json_string(b, s, strlen(s));
    else
        af__buf_puts(b, "(unset)");
}

int af_config_dump_text(const af_tracing_config *cfg, bool redact, char **out)
{
    *out = NULL;
    af_buf b;
    af__buf_init(&b);
    char tmp[2048];
    for (size_t i = 0; i < af__config_nkeys; i++) {
        const af__config_key *k = &af__config_keys[i];
        const void *f = af__config_cfield(cfg, k);
        af__buf_printf(&b, "%s = ", k->info.key);
        switch (k->info.type) {
        case AF_CFG_STRING: {
            const char *s = *(char *const *)f;
            if (s && redact && k->info.secret) {
                af__buf_puts(&b, REDACTED);
                break;
            }
            if (s && redact && (k->flags & AF__KEY_URL)) {
                af__config_safe_url(s, tmp, sizeof tmp);
                s = tmp;
            }
            put_str(&b, s);
            break;
        }
        case AF_CFG_BOOL:
            af__buf_puts(&b, *(const bool *)f ? "true" : "false");
            break;
        case AF_CFG_RATIO:
            af__buf_printf(&b, "%g", *(const double *)f);
            break;
        case AF_CFG_UINT:
            af__buf_printf(&b, "%u", *(const uint32_t *)f);
            break;
        case AF_CFG_INT:
            af__buf_printf(&b, "%d", *(const int *)f);
            break;
        case AF_CFG_BYTES:
            af__buf_printf(&b, "%llu", (unsigned long long)*(const uint64_t *)f);
            break;
        case AF_CFG_LIST: {
            size_t n;
            char *const *items = af__config_list_get(cfg, k, &n);
            af__buf_putc(&b, '[');
            for (size_t j = 0; j < n; j++) {
                af__buf_puts(&b, j ? ", " : "");
                put_str(&b, items[j]);
            }
            af__buf_putc(&b, ']');
            break;
        }
        case AF_CFG_DURATION:
            af_config_format_duration(*(const uint32_t *)f, tmp, sizeof tmp);
            af__buf_puts(&b, tmp);
            break;
        case AF_CFG_ENUM:
            af__buf_puts(&b, k->info.enum_values[af__config_enum_get(cfg, k)]);
            break;
        case AF_CFG_MAP:
        case AF_CFG_KV_LIST: {
            size_t n;
            const af_config_kv *kv = af__config_kv_get(cfg, k, &n);
            bool list = k->info.type == AF_CFG_KV_LIST;
            af__buf_putc(&b, list ? '[' : '{');
            for (size_t j = 0; j < n; j++) {
                af__buf_puts(&b, j ? ", " : "");
                put_str(&b, kv[j].key);
                af__buf_putc(&b, list ? '=' : ':');
                if (!list)
                    af__buf_putc(&b, ' ');
                put_str(&b, redact && k->info.secret ? REDACTED : kv[j].value);
            }
            af__buf_putc(&b, list ? ']' : '}');
            break;
        }
        }
        af__buf_putc(&b, '\n');
    }
    af__buf_terminate(&b);
    if (b.failed) {
        af__buf_free(&b);
        return -ENOMEM;
    }
    *out = (char *)b.data;
    return 0;
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
    /* Unredacted, so a changed secret (a header, the auth token) counts as a change too. */
    json_t *va = value_json(a, k, false), *vb = value_json(b, k, false);
    bool differs = !va || !vb || !json_equal(va, vb);
    json_decref(va);
    json_decref(vb);
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
