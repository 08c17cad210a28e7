/*
 * The environment overlay. The AGENTAFLOW_* variables come from the key table's env column
 * and are parsed like the file's values; a bad one is an error. The OTEL_* variables
 * (docs/standards.md, environment variables): empty means unset, a value that does not parse
 * is a warning and is ignored, per-signal (_TRACES_) variables beat the generic ones. Warnings
 * go into the caller's diagnostics instead of the log so that `agentaflow config check` shows
 * them next to the file's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_int.h"
#include "util/env.h"
#include "util/str.h"

typedef struct env_ctx {
    af_tracing_config *cfg;
    af_config_diag *diag;
    int rc;
} env_ctx;

static void warn(env_ctx *e, const char *var, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void warn(env_ctx *e, const char *var, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (af__diag_add(e->diag, AF_DIAG_WARNING, NULL, 0, 0, var, "%s; ignored", text) != 0)
        e->rc = -ENOMEM;
}

static void note(env_ctx *e, const char *var, const char *text)
{
    if (af__diag_add(e->diag, AF_DIAG_INFO, NULL, 0, 0, var, "%s", text) != 0)
        e->rc = -ENOMEM;
}

static const af__config_key *row(const char *key)
{
    return af__config_key_lookup(key, strlen(key));
}

/* The per-signal variable when set, else the generic one; *name tells which. */
static const char *pick(const char *traces_var, const char *generic_var, const char **name)
{
    const char *v = af__getenv(traces_var);
    *name = traces_var;
    if (!v) {
        v = af__getenv(generic_var);
        *name = generic_var;
    }
    return v;
}

/* Sets table row `key` from an environment value; a bad value is warned about. */
static void set_row(env_ctx *e, const char *var, const char *key, const char *text)
{
    char why[256], got[96];
    int rc = af__config_set_scalar(e->cfg, row(key), text, why, sizeof why);
    if (rc == -ENOMEM) {
        e->rc = rc;
    } else if (rc != 0) {
        af__config_quote(text, strlen(text), got, sizeof got);
        warn(e, var, "%s, got %s", why, got);
    }
}

/* Integer milliseconds or counts: the variables take plain decimal integers only. */
static void set_row_int(env_ctx *e, const char *var, const char *key)
{
    const char *v = af__getenv(var);
    if (!v)
        return;
    if (v[strspn(v, "0123456789")] != '\0') {
        char got[96];
        af__config_quote(v, strlen(v), got, sizeof got);
        warn(e, var, "expected a non-negative integer%s, got %s",
             row(key)->info.type == AF_CFG_DURATION ? " of milliseconds" : "", got);
        return;
    }
    set_row(e, var, key, v);
}

static void set_bool(env_ctx *e, const char *key, bool value)
{
    char why[64];
    af__config_set_scalar(e->cfg, row(key), value ? "true" : "false", why, sizeof why);
}

/* ---------------------------------------------------------------------------------------- */

static void apply_sampler(env_ctx *e)
{
    const char *s = af__getenv("OTEL_TRACES_SAMPLER");
    if (!s)
        return;
    const char *arg = af__getenv("OTEL_TRACES_SAMPLER_ARG");
    bool parent_based = strncasecmp(s, "parentbased_", 12) == 0;
    const char *base = parent_based ? s + 12 : s;
    if (strcasecmp(base, "always_on") == 0) {
        e->cfg->tracing.sampling_ratio = 1.0;
    } else if (strcasecmp(base, "always_off") == 0) {
        e->cfg->tracing.sampling_ratio = 0.0;
    } else if (strcasecmp(base, "traceidratio") == 0) {
        /* The spec's default argument for the ratio samplers is 1.0. */
        e->cfg->tracing.sampling_ratio = 1.0;
        if (arg)
            set_row(e, "OTEL_TRACES_SAMPLER_ARG", "tracing.sampling_ratio", arg);
    } else {
        char got[96];
        af__config_quote(s, strlen(s), got, sizeof got);
        warn(e, "OTEL_TRACES_SAMPLER",
             "expected always_on, always_off, traceidratio or their parentbased_ forms, got %s",
             got);
        return;
    }
    if (!parent_based)
        note(e, "OTEL_TRACES_SAMPLER",
             "the integration's sampler is always parent-based: children follow their parent's "
             "decision so traces are never cut in half");
}

static void apply_exporters(env_ctx *e)
{
    const char *v = af__getenv("OTEL_TRACES_EXPORTER");
    if (!v)
        return;
    bool jaeger = false, otlp = false, console = false, none = false, any = false;
    const char *p = v;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *t = p;
        size_t tl = n;
        while (tl && (*t == ' ' || *t == '\t')) {
            t++;
            tl--;
        }
        while (tl && (t[tl - 1] == ' ' || t[tl - 1] == '\t'))
            tl--;
        if (tl) {
            char name[32];
            snprintf(name, sizeof name, "%.*s", (int)(tl < 31 ? tl : 31), t);
            if (af__str_ieq(t, tl, "otlp")) {
                otlp = any = true;
            } else if (af__str_ieq(t, tl, "console")) {
                console = any = true;
            } else if (af__str_ieq(t, tl, "jaeger")) {
                jaeger = any = true;
                if (af__diag_add(e->diag, AF_DIAG_WARNING, NULL, 0, 0, "OTEL_TRACES_EXPORTER",
                                 "\"jaeger\" was removed from the OpenTelemetry specification; "
                                 "still honoured here (Jaeger Thrift over HTTP), but Jaeger "
                                 "also accepts \"otlp\"") != 0)
                    e->rc = -ENOMEM;
            } else if (af__str_ieq(t, tl, "none")) {
                none = any = true;
            } else {
                warn(e, "OTEL_TRACES_EXPORTER",
                     "\"%s\" is not supported (use otlp, console, jaeger or none)", name);
            }
        }
        p += n;
        if (*p == ',')
            p++;
    }
    if (!any)
        return;
    if (none && (jaeger || otlp || console)) {
        warn(e, "OTEL_TRACES_EXPORTER", "\"none\" cannot be combined with other exporters");
        return;
    }
    /* The variable names the complete set of exporters, replacing the file's choice. */
    set_bool(e, "tracing.exporters.jaeger.enabled", jaeger);
    set_bool(e, "tracing.exporters.otlp_http.enabled", otlp);
    set_bool(e, "tracing.exporters.stdout.enabled", console);
}

/* OTEL_EXPORTER_OTLP_HEADERS: "k1=v1,k2=v2" with percent-encoded values. The whole variable
 * is ignored when any entry is malformed; the warning never quotes a value (they are
 * secrets). Parsed headers replace same-named file headers and keep the others. */
static void apply_headers(env_ctx *e)
{
    const char *var;
    const char *v = pick("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS", &var);
    if (!v)
        return;
    af_config_kv *list = NULL;
    size_t n = 0, idx = 0;
    const char *p = v;
    const char *problem = NULL;
    while (*p && !problem) {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        idx++;
        bool bad = false;
        if (!eq) {
            if (strspn(p, " \t") < len)
                problem = "has no '='";
        } else {
            char *k = af__pct_decode_trimmed(p, (size_t)(eq - p), &bad);
            char *val = k ? af__pct_decode_trimmed(eq + 1, len - (size_t)(eq - p) - 1, &bad) : NULL;
            if (!k || !val) {
                problem = bad ? "has a bad percent escape" : NULL;
                if (!bad)
                    e->rc = -ENOMEM;
            } else if (!af__config_header_name_ok(k)) {
                problem = "has an invalid header name";
            } else if (!af__config_header_value_ok(val)) {
                problem = "has a line break in its value";
            } else if (af__config_kv_put(&list, &n, k, val, true, true) != 0) {
                e->rc = -ENOMEM;
            }
            free(k);
            free(val);
            if (e->rc)
                break;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    if (problem || e->rc) {
        if (problem)
            warn(e, var, "entry %zu %s (expected name=value pairs separated by commas)", idx,
                 problem);
        af__config_kv_free(list, n);
        return;
    }
    size_t *cur_n;
    af_config_kv **cur =
        af__config_kv_slot(e->cfg, row("tracing.exporters.otlp_http.headers"), &cur_n);
    for (size_t i = 0; i < n && !e->rc; i++)
        if (af__config_kv_put(cur, cur_n, list[i].key, list[i].value, true, true) != 0)
            e->rc = -ENOMEM;
    af__config_kv_free(list, n);
}

static void apply_endpoint(env_ctx *e)
{
    const char *var;
    const char *v = pick("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", &var);
    if (!v)
        return;
    bool per_signal = strcmp(var, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == 0;
    char url[2048];
    if (af_otlp_traces_url(v, per_signal, url, sizeof url) != 0) {
        char got[96];
        af__config_quote(v, strlen(v), got, sizeof got);
        warn(e, var, "expected an http:// or https:// URL, got %s", got);
        return;
    }
    set_row(e, var, "tracing.exporters.otlp_http.endpoint", url);
}

static void apply_path(env_ctx *e, const char *traces_var, const char *generic_var, const char *key)
{
    const char *var;
    const char *v = pick(traces_var, generic_var, &var);
    if (v)
        set_row(e, var, key, v);
}

static void env_error(env_ctx *e, const char *var, const char *why, const char *text, bool secret)
{
    char got[96];
    int rc;
    if (secret) {
        rc = af__diag_add(e->diag, AF_DIAG_ERROR, NULL, 0, 0, var, "%s", why);
    } else {
        af__config_quote(text, strlen(text), got, sizeof got);
        rc = af__diag_add(e->diag, AF_DIAG_ERROR, NULL, 0, 0, var, "%s, got %s", why, got);
    }
    if (rc != 0)
        e->rc = -ENOMEM;
}

/* A comma-separated list; blanks around entries and empty entries are dropped so that
 * "a, b," reads as two hosts. */
static void set_list_env(env_ctx *e, const af__config_key *k, const char *var, const char *v)
{
    char why[256];
    char **items = NULL;
    size_t n = 0;
    for (const char *p = v; *p && e->rc == 0;) {
        size_t len = strcspn(p, ",");
        const char *b = p, *end = p + len;
        while (b < end && (*b == ' ' || *b == '\t'))
            b++;
        while (end > b && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        p += len + (p[len] == ',');
        if (b == end)
            continue;
        if (n == (size_t)k->info.max) {
            snprintf(why, sizeof why, "more than %lld entries", (long long)k->info.max);
            env_error(e, var, why, v, false);
            goto fail;
        }
        char *item = af__strndup(b, (size_t)(end - b));
        char **grown = item ? realloc(items, (n + 1) * sizeof *items) : NULL;
        if (!grown) {
            free(item);
            e->rc = -ENOMEM;
            goto fail;
        }
        items = grown;
        items[n++] = item;
        if (!af__config_list_item_ok(k, item, why, sizeof why)) {
            env_error(e, var, why, item, false);
            goto fail;
        }
    }
    af__config_list_replace(e->cfg, k, items, n);
    return;
fail:
    af__config_list_free(items, n);
}

/* Rows marked AF__KEY_ENV: their variable is the value, parsed by the table's setter. */
static void apply_table_env(env_ctx *e)
{
    char why[256];
    for (size_t i = 0; i < af__config_nkeys && e->rc == 0; i++) {
        const af__config_key *k = &af__config_keys[i];
        if (!(k->flags & AF__KEY_ENV))
            continue;
        const char *v = af__getenv(k->info.env);
        if (!v)
            continue;
        if (k->info.type == AF_CFG_LIST) {
            set_list_env(e, k, k->info.env, v);
            continue;
        }
        int rc = af__config_set_scalar(e->cfg, k, v, why, sizeof why);
        if (rc == -ENOMEM)
            e->rc = rc;
        else if (rc != 0)
            env_error(e, k->info.env, why, v, k->info.secret);
    }
}

int af_tracing_config_apply_env(af_tracing_config *cfg, af_config_diag *diag)
{
    env_ctx e = {cfg, diag, 0};
    const char *v;

    apply_table_env(&e);

    if ((v = af__getenv("OTEL_SDK_DISABLED"))) {
        if (strcasecmp(v, "true") == 0)
            set_bool(&e, "tracing.enabled", false);
        else if (strcasecmp(v, "false") != 0)
            warn(&e, "OTEL_SDK_DISABLED", "expected true or false");
    }
    if ((v = af__getenv("OTEL_SERVICE_NAME")))
        set_row(&e, "OTEL_SERVICE_NAME", "service_name", v);
    apply_sampler(&e);
    apply_exporters(&e);
    apply_endpoint(&e);
    apply_headers(&e);

    const char *var;
    if ((v = pick("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT", &var))) {
        (void)v;
        set_row_int(&e, var, "tracing.exporters.otlp_http.timeout");
    }
    if ((v = pick("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION", &var)))
        set_row(&e, var, "tracing.exporters.otlp_http.compression", v);
    if ((v = pick("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL", &var))) {
        if (strcasecmp(v, "grpc") == 0)
            warn(&e, var, "\"grpc\" is not supported; use http/protobuf or http/json");
        else
            set_row(&e, var, "tracing.exporters.otlp_http.protocol", v);
    }
    apply_path(&e, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE",
               "tracing.exporters.otlp_http.ca_file");
    apply_path(&e, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
               "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "tracing.exporters.otlp_http.client_cert");
    apply_path(&e, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "OTEL_EXPORTER_OTLP_CLIENT_KEY",
               "tracing.exporters.otlp_http.client_key");

    set_row_int(&e, "OTEL_BSP_SCHEDULE_DELAY", "performance.schedule_delay");
    set_row_int(&e, "OTEL_BSP_EXPORT_TIMEOUT", "performance.export_timeout");
    set_row_int(&e, "OTEL_BSP_MAX_QUEUE_SIZE", "performance.max_queue_size");
    set_row_int(&e, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "performance.max_export_batch_size");
    return e.rc;
}
