/*
 * serving.models: a list of {id, name, owned_by, max_tokens, pricing: {input_per_million,
 * output_per_million | gpu_hourly}, backends: [{id, url | simulated: true, model, api_key,
 * provider, connect_timeout, timeout, max_load, first_token, token_interval}]}. Every field
 * is checked where it is written, so an error names the line and the field.
 */
#include "config/models.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/str.h"

#define MAX_BACKENDS 64

typedef struct reader {
    yaml_document_t *doc;
    af__models_report report;
    void *ctx;
    size_t errors;
    int rc; /* -ENOMEM */
} reader;

static void bad(reader *r, const yaml_node_t *n, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static void bad(reader *r, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->errors++;
    r->report(r->ctx, AF_DIAG_ERROR, n, key, msg);
}

static const char *text_of(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || memchr(n->data.scalar.value, '\0', n->data.scalar.length))
        return NULL;
    return (const char *)n->data.scalar.value;
}

/* A non-empty string field into *slot (replacing it). */
static void get_string(reader *r, const yaml_node_t *v, const char *key, size_t maxlen, char **slot)
{
    const char *s = text_of(v);
    if (!s || !*s || strlen(s) > maxlen) {
        bad(r, v, key, "expected a non-empty string of at most %zu bytes", maxlen);
        return;
    }
    char *copy = af__strdup(s);
    if (!copy) {
        r->rc = -ENOMEM;
        return;
    }
    free(*slot);
    *slot = copy;
}

static void get_uint(reader *r, const yaml_node_t *v, const char *key, uint32_t max, uint32_t *out)
{
    const char *s = text_of(v);
    char *end = NULL;
    errno = 0;
    unsigned long long x = s && *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
    if (!s || !end || *end || errno || x > max) {
        bad(r, v, key, "expected an integer between 0 and %u", max);
        return;
    }
    *out = (uint32_t)x;
}

static void get_duration(reader *r, const yaml_node_t *v, const char *key, uint32_t *out)
{
    const char *s = text_of(v);
    if (!s || af_config_parse_duration(s, out) != 0 || *out > 3600000u)
        bad(r, v, key,
            "expected a duration up to 1h such as \"30s\" or \"500ms\" (a plain number means "
            "milliseconds)");
}

static void get_price(reader *r, const yaml_node_t *v, const char *key, double *out)
{
    const char *s = text_of(v);
    char *end = NULL;
    errno = 0;
    double d = s ? strtod(s, &end) : NAN;
    if (!s || !*s || !end || *end || errno || !isfinite(d) || d < 0) {
        bad(r, v, key, "expected a price in USD, a number >= 0");
        return;
    }
    *out = d;
}

static bool is_http_url(const char *s)
{
    const char *rest = strncasecmp(s, "http://", 7) == 0    ? s + 7
                       : strncasecmp(s, "https://", 8) == 0 ? s + 8
                                                            : NULL;
    if (!rest || !*rest || *rest == '/')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

/* Walks a mapping node: calls field() for each pair; reports a non-mapping. */
typedef void (*field_fn)(reader *r, const char *name, const yaml_node_t *kn, const yaml_node_t *v,
                         const char *where, void *obj);

static void each_field(reader *r, const yaml_node_t *map, const char *where, field_fn fn, void *obj)
{
    if (map->type != YAML_MAPPING_NODE) {
        bad(r, map, where, "expected a mapping");
        return;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top && r->rc == 0; p++) {
        yaml_node_t *kn = yaml_document_get_node(r->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(r->doc, p->value);
        const char *name = kn ? text_of(kn) : NULL;
        if (!name || !vn) {
            bad(r, kn ? kn : map, where, "expected a field name");
            continue;
        }
        char full[192];
        snprintf(full, sizeof full, "%s.%s", where, name);
        fn(r, name, kn, vn, full, obj);
    }
}

static void unknown(reader *r, const yaml_node_t *kn, const char *full)
{
    r->report(r->ctx, AF_DIAG_WARNING, kn, full, "unknown key (ignored)");
}

static void backend_field(reader *r, const char *name, const yaml_node_t *kn, const yaml_node_t *v,
                          const char *full, void *obj)
{
    af_config_backend *b = obj;
    if (strcmp(name, "id") == 0) {
        get_string(r, v, full, 63, &b->id);
    } else if (strcmp(name, "url") == 0) {
        const char *s = text_of(v);
        if (!s || !is_http_url(s) || strlen(s) > 2048)
            bad(r, v, full, "expected an http:// or https:// URL");
        else
            get_string(r, v, full, 2048, &b->url);
    } else if (strcmp(name, "simulated") == 0) {
        const char *s = text_of(v);
        if (!s || (strcmp(s, "true") != 0 && strcmp(s, "false") != 0))
            bad(r, v, full, "expected true or false");
        else if (strcmp(s, "false") == 0)
            bad(r, v, full, "simulated: false means nothing; give the backend a url instead");
    } else if (strcmp(name, "model") == 0) {
        get_string(r, v, full, 255, &b->model);
    } else if (strcmp(name, "api_key") == 0) {
        get_string(r, v, full, 4096, &b->api_key);
    } else if (strcmp(name, "provider") == 0) {
        get_string(r, v, full, 31, &b->provider);
    } else if (strcmp(name, "connect_timeout") == 0) {
        get_duration(r, v, full, &b->connect_timeout_ms);
    } else if (strcmp(name, "timeout") == 0) {
        get_duration(r, v, full, &b->timeout_ms);
    } else if (strcmp(name, "max_load") == 0) {
        get_uint(r, v, full, 1000000, &b->max_load);
    } else if (strcmp(name, "first_token") == 0) {
        get_duration(r, v, full, &b->first_token_ms);
    } else if (strcmp(name, "token_interval") == 0) {
        get_duration(r, v, full, &b->token_interval_ms);
    } else {
        unknown(r, kn, full);
    }
}

static void pricing_field(reader *r, const char *name, const yaml_node_t *kn, const yaml_node_t *v,
                          const char *full, void *obj)
{
    af_config_model *m = obj;
    if (strcmp(name, "input_per_million") == 0)
        get_price(r, v, full, &m->input_per_million);
    else if (strcmp(name, "output_per_million") == 0)
        get_price(r, v, full, &m->output_per_million);
    else if (strcmp(name, "gpu_hourly") == 0)
        get_price(r, v, full, &m->gpu_hourly);
    else
        unknown(r, kn, full);
}

static void read_backends(reader *r, const yaml_node_t *v, const char *full, af_config_model *m)
{
    size_t count = v->type == YAML_SEQUENCE_NODE
                       ? (size_t)(v->data.sequence.items.top - v->data.sequence.items.start)
                       : 0;
    if (v->type != YAML_SEQUENCE_NODE || count == 0 || count > MAX_BACKENDS) {
        bad(r, v, full, "expected a list of 1 to %d backends ({url: ...} or {simulated: true})",
            MAX_BACKENDS);
        return;
    }
    m->backends = calloc(count, sizeof(*m->backends));
    if (!m->backends) {
        r->rc = -ENOMEM;
        return;
    }
    for (size_t i = 0; i < count && r->rc == 0; i++) {
        const yaml_node_t *item = yaml_document_get_node(r->doc, v->data.sequence.items.start[i]);
        af_config_backend *b = &m->backends[m->n_backends++];
        b->connect_timeout_ms = 2000;
        b->first_token_ms = 50;
        b->token_interval_ms = 30;
        char where[192];
        snprintf(where, sizeof where, "%s[%zu]", full, i);
        size_t before = r->errors;
        each_field(r, item, where, backend_field, b);
        bool sim = false;
        for (yaml_node_pair_t *p = item->type == YAML_MAPPING_NODE ? item->data.mapping.pairs.start
                                                                   : NULL;
             p && p < item->data.mapping.pairs.top; p++) {
            const char *k = text_of(yaml_document_get_node(r->doc, p->key));
            sim |= k && strcmp(k, "simulated") == 0;
        }
        if (r->errors == before && !b->url == !sim)
            bad(r, item, where, "expected exactly one of url or simulated: true");
    }
}

static void model_field(reader *r, const char *name, const yaml_node_t *kn, const yaml_node_t *v,
                        const char *full, void *obj)
{
    af_config_model *m = obj;
    if (strcmp(name, "id") == 0)
        get_string(r, v, full, 63, &m->id);
    else if (strcmp(name, "name") == 0)
        get_string(r, v, full, 255, &m->name);
    else if (strcmp(name, "owned_by") == 0)
        get_string(r, v, full, 63, &m->owned_by);
    else if (strcmp(name, "max_tokens") == 0)
        get_uint(r, v, full, 1000000, &m->max_tokens);
    else if (strcmp(name, "pricing") == 0)
        each_field(r, v, full, pricing_field, m);
    else if (strcmp(name, "backends") == 0)
        read_backends(r, v, full, m);
    else
        unknown(r, kn, full);
}

/* Cross-field checks of one model: an id, backends, one way of pricing, unique ids. */
static void check_model(reader *r, const yaml_node_t *item, const char *where,
                        const af_config_model *all, size_t i)
{
    const af_config_model *m = &all[i];
    if (!m->id) {
        bad(r, item, where, "a model needs an id");
        return;
    }
    if (!m->n_backends)
        bad(r, item, where, "model %s needs backends: [{url: ...} or {simulated: true}]", m->id);
    if (m->gpu_hourly > 0 && (m->input_per_million > 0 || m->output_per_million > 0))
        bad(r, item, where,
            "pricing: give per-token prices (input_per_million, output_per_million) or "
            "gpu_hourly, not both");
    for (size_t j = 0; j < i; j++)
        if (all[j].id && strcmp(all[j].id, m->id) == 0)
            bad(r, item, where, "model id %s is used twice", m->id);
}

int af__config_models_read(yaml_document_t *doc, const yaml_node_t *v, size_t max,
                           af_config_model **out, size_t *n, af__models_report report, void *ctx)
{
    reader r = {doc, report, ctx, 0, 0};
    *out = NULL;
    *n = 0;
    bool null = v->type == YAML_SCALAR_NODE && v->data.scalar.length == 0;
    if (null)
        return 0;
    size_t count = v->type == YAML_SEQUENCE_NODE
                       ? (size_t)(v->data.sequence.items.top - v->data.sequence.items.start)
                       : 0;
    if (v->type != YAML_SEQUENCE_NODE || count > max) {
        bad(&r, v, "serving.models", "expected a list of at most %zu model mappings", max);
        return AF_EPARSE;
    }
    af_config_model *models = count ? calloc(count, sizeof(*models)) : NULL;
    if (count && !models)
        return -ENOMEM;
    size_t made = 0;
    for (size_t i = 0; i < count && r.rc == 0; i++) {
        const yaml_node_t *item = yaml_document_get_node(doc, v->data.sequence.items.start[i]);
        char where[64];
        snprintf(where, sizeof where, "serving.models[%zu]", i);
        made++;
        each_field(&r, item, where, model_field, &models[i]);
        if (r.rc == 0 && item->type == YAML_MAPPING_NODE)
            check_model(&r, item, where, models, i);
    }
    if (r.rc || r.errors) {
        af__config_models_free(models, made);
        return r.rc ? r.rc : AF_EPARSE;
    }
    *out = models;
    *n = count;
    return 0;
}

static void backend_free(af_config_backend *b)
{
    free(b->id);
    free(b->url);
    free(b->model);
    free(b->api_key);
    free(b->provider);
}

void af__config_models_free(af_config_model *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].id);
        free(m[i].name);
        free(m[i].owned_by);
        for (size_t j = 0; j < m[i].n_backends; j++)
            backend_free(&m[i].backends[j]);
        free(m[i].backends);
    }
    free(m);
}

/* Replaces each *slots[i] by a copy of itself; false when out of memory. Every slot is
 * replaced (a failed copy by NULL), so none is left pointing into the source. */
static bool dup_all(char **const *slots, size_t n)
{
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        if (*slots[i] && !(*slots[i] = af__strdup(*slots[i])))
            ok = false;
    }
    return ok;
}

int af__config_models_copy(const af_config_model *src, size_t n, af_config_model **out)
{
    *out = NULL;
    if (!n)
        return 0;
    af_config_model *m = calloc(n, sizeof(*m));
    if (!m)
        return -ENOMEM;
    bool ok = true;
    size_t i;
    for (i = 0; i < n && ok; i++) {
        m[i] = src[i];
        m[i].backends = calloc(src[i].n_backends ? src[i].n_backends : 1, sizeof(*m[i].backends));
        m[i].n_backends = 0;
        char **const ms[] = {&m[i].id, &m[i].name, &m[i].owned_by};
        ok = dup_all(ms, 3) && m[i].backends;
        for (size_t j = 0; ok && j < src[i].n_backends; j++) {
            af_config_backend *b = &m[i].backends[m[i].n_backends++];
            *b = src[i].backends[j];
            char **const bs[] = {&b->id, &b->url, &b->model, &b->api_key, &b->provider};
            ok = dup_all(bs, 5);
        }
    }
    if (!ok) {
        af__config_models_free(m, i);
        return -ENOMEM;
    }
    *out = m;
    return 0;
}

static void put_field(af_buf *b, const char *name, const char *v)
{
    if (!v)
        return;
    af__buf_printf(b, ",\"%s\":", name);
    af__buf_json_string(b, v, strlen(v));
}

static void backend_json(af_buf *b, const af_config_backend *be, bool redact)
{
    af__buf_puts(b, be->url ? "{\"url\":" : "{\"simulated\":true");
    if (be->url)
        af__buf_json_string(b, be->url, strlen(be->url));
    put_field(b, "id", be->id);
    put_field(b, "model", be->model);
    put_field(b, "api_key", be->api_key && redact ? "[redacted]" : be->api_key);
    put_field(b, "provider", be->provider);
    char t[32];
    af_config_format_duration(be->connect_timeout_ms, t, sizeof t);
    put_field(b, "connect_timeout", t);
    af_config_format_duration(be->timeout_ms, t, sizeof t);
    put_field(b, "timeout", t);
    af__buf_printf(b, ",\"max_load\":%u", be->max_load);
    if (!be->url) {
        af_config_format_duration(be->first_token_ms, t, sizeof t);
        put_field(b, "first_token", t);
        af_config_format_duration(be->token_interval_ms, t, sizeof t);
        put_field(b, "token_interval", t);
    }
    af__buf_putc(b, '}');
}

void af__config_models_json(af_buf *b, const af_config_model *m, size_t n, bool redact)
{
    af__buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        af__buf_puts(b, i ? ",{\"id\":" : "{\"id\":");
        af__buf_json_string(b, m[i].id, strlen(m[i].id));
        put_field(b, "name", m[i].name);
        put_field(b, "owned_by", m[i].owned_by);
        af__buf_printf(b,
                       ",\"max_tokens\":%u,\"pricing\":{\"input_per_million\":%.10g,"
                       "\"output_per_million\":%.10g,\"gpu_hourly\":%.10g},\"backends\":[",
                       m[i].max_tokens, m[i].input_per_million, m[i].output_per_million,
                       m[i].gpu_hourly);
        for (size_t j = 0; j < m[i].n_backends; j++) {
            af__buf_puts(b, j ? "," : "");
            backend_json(b, &m[i].backends[j], redact);
        }
        af__buf_puts(b, "]}");
    }
    af__buf_putc(b, ']');
}
