/*
 * OTLP/HTTP trace exporter: one POST of an ExportTraceServiceRequest (protobuf or JSON) per
 * export() call, retried on transient failures, with partial-success handling and a health
 * record. Configuration follows the OTEL_EXPORTER_OTLP_* rules (docs/standards.md, environment
 * variables and OTLP/HTTP).
 */
#define AF_LOG_COMPONENT "export"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agentaflow/export.h"
#include "agentaflow/log.h"
#include "export/encode.h"
#include "export/http_exporter.h"
#include "util/env.h"
#include "util/str.h"

#define DEFAULT_URL "http://localhost:4318/v1/traces"
#define USER_AGENT "OTel-OTLP-Exporter-C/" AF_VERSION_STRING " agentaflow"

typedef struct otlp_http {
    af__http_exporter base; /* first: the shared ops take the otlp_http as their self */
    af_otlp_protocol protocol;
    uint64_t partial_log_ns; /* rate limit of the partial-success warning */
} otlp_http;

/* Reads OTEL_EXPORTER_OTLP_TRACES_<suffix>, else OTEL_EXPORTER_OTLP_<suffix>. */
static const char *otlp_env(const char *suffix, const char **name_out)
{
    static const char *const prefixes[] = {"OTEL_EXPORTER_OTLP_TRACES_", "OTEL_EXPORTER_OTLP_"};
    for (size_t i = 0; i < 2; i++) {
        char name[80];
        snprintf(name, sizeof(name), "%s%s", prefixes[i], suffix);
        const char *v = af__getenv(name);
        if (v) {
            if (name_out)
                *name_out = i == 0 ? "OTEL_EXPORTER_OTLP_TRACES_" : "OTEL_EXPORTER_OTLP_";
            return v;
        }
    }
    return NULL;
}

void af_otlp_http_opts_init(af_otlp_http_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->protocol = AF_OTLP_HTTP_PROTOBUF;
    o->timeout_ms = 10000;
    af__retry_opts_default(&o->retry);

    const char *prefix = NULL;
    const char *v = otlp_env("PROTOCOL", &prefix);
    if (v) {
        if (strcasecmp(v, "http/protobuf") == 0) {
            o->protocol = AF_OTLP_HTTP_PROTOBUF;
        } else if (strcasecmp(v, "http/json") == 0) {
            o->protocol = AF_OTLP_HTTP_JSON;
        } else if (strcasecmp(v, "grpc") == 0) {
            af_log(AF_LOG_WARN,
                   "%sPROTOCOL=grpc is not supported by this exporter; using "
                   "http/protobuf",
                   prefix);
        } else {
            af_log(AF_LOG_WARN,
                   "%sPROTOCOL: unknown protocol \"%s\" (expected http/protobuf or http/json); "
                   "ignored",
                   prefix, v);
        }
    }
    if ((v = otlp_env("COMPRESSION", &prefix))) {
        if (strcasecmp(v, "gzip") == 0)
            o->gzip = true;
        else if (strcasecmp(v, "none") == 0)
            o->gzip = false;
        else
            af_log(AF_LOG_WARN, "%sCOMPRESSION: expected gzip or none, got \"%s\"; ignored", prefix,
                   v);
    }
    /* Generic first, then per-signal, so the per-signal value wins when both are valid. A
     * negative or malformed value is warned about by af__env_u32 and leaves the default. */
    af__env_u32("OTEL_EXPORTER_OTLP_TIMEOUT", 0, UINT32_MAX, &o->timeout_ms);
    af__env_u32("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", 0, UINT32_MAX, &o->timeout_ms);
    o->tls.ca_file = otlp_env("CERTIFICATE", NULL);
    o->tls.client_cert = otlp_env("CLIENT_CERTIFICATE", NULL);
    o->tls.client_key = otlp_env("CLIENT_KEY", NULL);
}

int af_otlp_traces_url(const char *endpoint, bool per_signal, char *out, size_t out_len)
{
    if (af__http_url_check(endpoint) != 0)
        return -EINVAL;
    size_t len, auth_end;
    const char *auth = strstr(endpoint, "://") + 3;
    auth_end = (size_t)(auth - endpoint) + strcspn(auth, "/?#");
    int n;
    if (per_signal) {
        /* As-is; only an empty path becomes "/" (what an HTTP request line needs anyway). */
        bool no_path = endpoint[auth_end] != '/';
        n = snprintf(out, out_len, "%.*s%s%s", (int)auth_end, endpoint, no_path ? "/" : "",
                     endpoint + auth_end);
    } else {
        /* A base URL: scheme, host, port and path are honoured; "v1/traces" is appended after
         * exactly one slash. */
        len = auth_end + strcspn(endpoint + auth_end, "?#");
        while (len > auth_end && endpoint[len - 1] == '/')
            len--;
        n = snprintf(out, out_len, "%.*s/v1/traces", (int)len, endpoint);
    }
    if (n < 0 || (size_t)n >= out_len)
        return -ENOSPC;
    return 0;
}

typedef struct header_list {
    af_header_kv *kv;
    size_t n;
    size_t cap;
} header_list;

static void header_list_free(header_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free((char *)l->kv[i].name);
        free((char *)l->kv[i].value);
    }
    free(l->kv);
}

/* Adds or replaces (names compare case-insensitively). Takes ownership of name and value. */
static int header_list_set(header_list *l, char *name, char *value)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcasecmp(l->kv[i].name, name) == 0) {
            free(name);
            free((char *)l->kv[i].value);
            l->kv[i].value = value;
            return 0;
        }
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        af_header_kv *kv = realloc(l->kv, cap * sizeof(*kv));
        if (!kv) {
            free(name);
            free(value);
            return -ENOMEM;
        }
        l->kv = kv;
        l->cap = cap;
    }
    l->kv[l->n].name = name;
    l->kv[l->n].value = value;
    l->n++;
    return 0;
}

/* "k1=v1,k2=v2" (W3C baggage style, percent-encoded). A malformed member is skipped with a
 * warning that names the variable and the member's position, never its value. */
static int parse_env_headers(const char *var, const char *v, header_list *l)
{
    size_t index = 0;
    while (*v) {
        size_t len = strcspn(v, ",");
        const char *eq = memchr(v, '=', len);
        index++;
        if (eq) {
            bool bad = false;
            char *name = af__pct_decode_trimmed(v, (size_t)(eq - v), &bad);
            char *value =
                name ? af__pct_decode_trimmed(eq + 1, len - (size_t)(eq - v) - 1, &bad) : NULL;
            if (name && value && *name) {
                if (header_list_set(l, name, value))
                    return -ENOMEM;
            } else {
                free(name);
                free(value);
                if (!bad && (!name || !value))
                    return -ENOMEM;
                af_log(AF_LOG_WARN,
                       "%s: header #%zu is not a valid percent-encoded key=value; "
                       "skipped",
                       var, index);
            }
        } else if (len) {
            af_log(AF_LOG_WARN, "%s: header #%zu has no '='; skipped", var, index);
        }
        v += len;
        if (*v == ',')
            v++;
    }
    return 0;
}

/* Reads a 2xx body: partial success is logged (rate-limited) and counted, never retried. */
static uint64_t read_success(otlp_http *x, size_t n)
{
    af_otlp_response r;
    memset(&r, 0, sizeof(r));
    const af_buf *b = &x->base.resp.body;
    bool json = strstr(x->base.resp.content_type, "json") != NULL ||
                (!x->base.resp.content_type[0] && x->protocol == AF_OTLP_HTTP_JSON);
    int rc = json ? af__otlp_json_decode_response((const char *)b->data, b->len, &r)
                  : af__otlp_proto_decode_response(b->data, b->len, &r);
    if (rc != 0) {
        /* The collector accepted the data; an unreadable body does not change that. */
        af_log(AF_LOG_DEBUG, "otlp_http: unreadable %zu-byte success body from %s", b->len,
               x->base.health.h.endpoint);
        return 0;
    }
    if (!r.has_partial_success || (r.rejected_spans <= 0 && !r.error_message[0]))
        return 0;
    uint64_t rejected = r.rejected_spans > 0 ? (uint64_t)r.rejected_spans : 0;
    if (rejected > n)
        rejected = n;
    if (af__http_log_allowed(&x->partial_log_ns))
        af_log(AF_LOG_WARN, "otlp_http: collector at %s rejected %llu of %zu spans: %s",
               x->base.health.h.endpoint, (unsigned long long)rejected, n,
               r.error_message[0] ? r.error_message : "(no message)");
    return rejected;
}

static int otlp_export(void *self, const af_span_data *const *spans, size_t n, uint64_t deadline_ns)
{
    otlp_http *x = self;
    if (af__stopper_begin(&x->base.stop))
        return AF_ESHUTDOWN;
    int rc = 0;
    if (n == 0)
        goto out;
    deadline_ns = af__http_exporter_deadline(&x->base, deadline_ns);
    af__buf_reset(&x->base.body);
    rc = x->protocol == AF_OTLP_HTTP_JSON ? af__otlp_json_encode(spans, n, &x->base.body)
                                          : af__otlp_proto_encode(spans, n, &x->base.body);
    if (rc) {
        rc = af__http_exporter_encode_failed(&x->base, n, rc);
        goto out;
    }
    if ((rc = af__http_exporter_post(&x->base, n, deadline_ns)))
        goto out;
    long status = x->base.resp.status;
    if (status >= 200 && status < 300) {
        af__http_health_success(&x->base.health, n, read_success(x, n));
    } else {
        char msg[200];
        const af_buf *b = &x->base.resp.body;
        const char *ct = x->base.resp.content_type;
        if (strstr(ct, "protobuf") || strstr(ct, "json"))
            af__otlp_decode_status_message(b->data, b->len, strstr(ct, "json") != NULL, msg,
                                           sizeof(msg));
        else
            af__http_text_excerpt(b, msg, sizeof(msg));
        rc = af__http_exporter_status_failed(&x->base, n, msg);
    }
out:
    af__stopper_end(&x->base.stop);
    return rc;
}

static void otlp_destroy(void *self)
{
    otlp_http *x = self;
    af__http_exporter_clear(&x->base);
    free(x);
}

static const af_exporter_ops otlp_ops = {
    .type = "otlp_http",
    .export_spans = otlp_export,
    .force_flush = NULL, /* nothing is buffered here: the processor owns the queue */
    .shutdown = af__http_exporter_shutdown,
    .destroy = otlp_destroy,
    .health = af__http_exporter_health,
    .atfork = af__http_exporter_fork,
};

/* The effective URL (docs/standards.md): code, per-signal variable, generic variable,
 * default. Returns a malloc'd string or NULL with *rc set. */
static char *resolve_url(const char *endpoint, int *rc)
{
    const char *v = endpoint;
    bool per_signal = true;
    const char *src = "the endpoint option";
    if (!v && (v = af__getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")))
        src = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
    if (!v && (v = af__getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))) {
        src = "OTEL_EXPORTER_OTLP_ENDPOINT";
        per_signal = false;
    }
    if (!v)
        v = DEFAULT_URL;
    size_t cap = strlen(v) + sizeof("/v1/traces") + 1;
    char *url = malloc(cap);
    if (!url) {
        *rc = -ENOMEM;
        return NULL;
    }
    if (endpoint) {
        /* Code configuration is used exactly as given. */
        memcpy(url, endpoint, strlen(endpoint) + 1);
        *rc = af__http_url_check(url);
    } else {
        *rc = af_otlp_traces_url(v, per_signal, url, cap);
    }
    if (*rc) {
        char shown[256];
        af__http_url_redact(v, shown, sizeof(shown));
        af_log(AF_LOG_ERROR, "otlp_http: %s \"%s\" is not an http:// or https:// URL", src, shown);
        free(url);
        *rc = -EINVAL;
        return NULL;
    }
    return url;
}

int af_otlp_http_exporter_new(const af_otlp_http_opts *opts, af_exporter **out)
{
    *out = NULL;
    af_otlp_http_opts defaults;
    if (!opts) {
        af_otlp_http_opts_init(&defaults);
        opts = &defaults;
    }
    int rc = -EINVAL;
    header_list headers = {0};
    char *url = NULL;
    otlp_http *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    if (af__http_exporter_init(&x->base, "otlp_http", "", &opts->retry, opts->timeout_ms)) {
        free(x);
        return -ENOMEM;
    }
    x->protocol = opts->protocol == AF_OTLP_HTTP_JSON ? AF_OTLP_HTTP_JSON : AF_OTLP_HTTP_PROTOBUF;

    if (!(url = resolve_url(opts->endpoint, &rc)))
        goto fail;
    af__http_url_redact(url, x->base.health.h.endpoint, sizeof(x->base.health.h.endpoint));

    /* Environment headers first, then code headers replace any of the same name. */
    const char *var = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
    const char *hv = af__getenv(var);
    if (!hv)
        hv = af__getenv(var = "OTEL_EXPORTER_OTLP_HEADERS");
    if (hv && (rc = parse_env_headers(var, hv, &headers)))
        goto fail;
    for (size_t i = 0; i < opts->n_headers; i++) {
        char *name = af__strdup(opts->headers[i].name);
        char *value = af__strdup(opts->headers[i].value);
        if (!name || !value) {
            free(name);
            free(value);
            rc = opts->headers[i].name && opts->headers[i].value ? -ENOMEM : -EINVAL;
            goto fail;
        }
        if ((rc = header_list_set(&headers, name, value)))
            goto fail;
    }

    af__http_client_opts co = {
        .url = url,
        .user_agent = USER_AGENT,
        .content_type =
            x->protocol == AF_OTLP_HTTP_JSON ? "application/json" : "application/x-protobuf",
        .headers = headers.kv,
        .n_headers = headers.n,
        .gzip = opts->gzip,
        .tls = opts->tls,
    };
    if ((rc = af__http_client_new(&co, &x->base.client)))
        goto fail;
    header_list_free(&headers);
    free(url);
    /* af_exporter_new takes ownership of x even when it fails. */
    return af_exporter_new(&otlp_ops, x, out);
fail:
    header_list_free(&headers);
    free(url);
    otlp_destroy(x);
    return rc;
}
