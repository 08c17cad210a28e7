/*
 * OpenAI-compatible completions backend over libcurl. One easy handle per call, taken from a
 * small stack so keep-alive connections are reused across requests and batcher threads.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/propagation.h"
#include "agentaflow/trace_sdk.h"
#include "serving/serving_int.h"
#include "util/buf.h"
#include "util/str.h"

#define HANDLE_STACK 8
#define MAX_RESPONSE (16u << 20) /* refuse answers above 16 MiB rather than grow unbounded */

typedef struct http_backend {
    af__http_engine *engine; /* chat calls */
    char *url;               /* {base}/v1/completions */
    char *model;
    char *auth_header;
    uint32_t connect_timeout_ms;
    pthread_mutex_t mu;
    CURL *handles[HANDLE_STACK];
    size_t n_handles;
} http_backend;

void af_http_backend_opts_init(af_http_backend_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->connect_timeout_ms = 2000;
}

static void http_destroy(void *self)
{
    http_backend *h = self;
    if (!h)
        return;
    for (size_t i = 0; i < h->n_handles; i++)
        curl_easy_cleanup(h->handles[i]);
    pthread_mutex_destroy(&h->mu);
    af__http_engine_free(h->engine);
    curl_global_cleanup();
    free(h->url);
    free(h->model);
    free(h->auth_header);
    free(h);
}

static CURL *handle_get(http_backend *h)
{
    CURL *c = NULL;
    pthread_mutex_lock(&h->mu);
    if (h->n_handles)
        c = h->handles[--h->n_handles];
    pthread_mutex_unlock(&h->mu);
    if (c)
        curl_easy_reset(c);
    else
        c = curl_easy_init();
    return c;
}

static void handle_put(http_backend *h, CURL *c)
{
    pthread_mutex_lock(&h->mu);
    if (h->n_handles < HANDLE_STACK) {
        h->handles[h->n_handles++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&h->mu);
    if (c)
        curl_easy_cleanup(c);
}

/* The af_carrier over a curl header list: traceparent/tracestate land as request headers. */
static int slist_set(void *self, const char *key, const char *value)
{
    struct curl_slist **list = self;
    char line[AF_TRACE_STATE_MAX + 64];
    snprintf(line, sizeof(line), "%s: %s", key, value);
    struct curl_slist *n = curl_slist_append(*list, line);
    if (!n)
        return -ENOMEM;
    *list = n;
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    af_buf *b = user;
    if (b->len + size * n > MAX_RESPONSE)
        return 0;
    af__buf_append(b, p, size * n);
    return b->failed ? 0 : size * n;
}

static int parse_answer(const af_buf *body, af_backend_result *res)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)body->data, body->len, 0, &jerr);
    json_t *choices = root ? json_object_get(root, "choices") : NULL;
    json_t *text = json_object_get(json_array_get(choices, 0), "text");
    if (!json_is_string(text)) {
        snprintf(res->error, sizeof(res->error), "backend answer has no choices[0].text");
        json_decref(root);
        return AF_EPARSE;
    }
    json_t *usage = json_object_get(root, "usage");
    res->prompt_tokens = json_integer_value(json_object_get(usage, "prompt_tokens"));
    res->completion_tokens = json_integer_value(json_object_get(usage, "completion_tokens"));
    res->output_len = json_string_length(text);
    res->output = malloc(res->output_len + 1);
    if (res->output) {
        memcpy(res->output, json_string_value(text), res->output_len);
        res->output[res->output_len] = '\0';
    }
    json_decref(root);
    return res->output ? 0 : -ENOMEM;
}

static int http_infer(void *self, const af_backend_request *req, af_backend_result *res)
{
    http_backend *h = self;
    af_buf body, answer;
    af__buf_init(&body);
    af__buf_init(&answer);
    const char *model = h->model ? h->model : req->model_id;
    af__buf_puts(&body, "{\"model\":");
    af__buf_json_string(&body, model, strlen(model));
    af__buf_puts(&body, ",\"prompt\":");
    af__buf_json_string(&body, req->input, req->input_len);
    af__buf_printf(&body, ",\"max_tokens\":%u}", req->max_tokens);
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    CURL *c = handle_get(h);
    int rc = 0;
    if (body.failed || !headers || !c ||
        (h->auth_header && slist_set(&headers, "Authorization", h->auth_header) != 0)) {
        rc = -ENOMEM;
        goto out;
    }
    if (req->trace_context) {
        af_carrier carrier = {.set = slist_set, .self = &headers};
        af_tracecontext_inject(&carrier, req->trace_context);
    }
    long timeout_ms = 0;
    if (req->deadline_ns) {
        uint64_t now = af_monotonic_ns();
        if (now >= req->deadline_ns) {
            snprintf(res->error, sizeof(res->error), "timeout: deadline passed before the call");
            rc = AF_ETIMEDOUT;
            goto out;
        }
        timeout_ms = (long)((req->deadline_ns - now + 999999) / 1000000);
    }
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body.data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body.len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->connect_timeout_ms);
    if (timeout_ms)
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(res->error, sizeof(res->error), "timeout: backend %s did not answer in time",
                 h->url);
        rc = AF_ETIMEDOUT;
    } else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
               cc == CURLE_COULDNT_RESOLVE_PROXY || cc == CURLE_SEND_ERROR ||
               cc == CURLE_RECV_ERROR || cc == CURLE_GOT_NOTHING) {
        snprintf(res->error, sizeof(res->error), "backend down: %s (%s)", h->url,
                 curl_easy_strerror(cc));
        rc = -EHOSTDOWN;
    } else if (cc != CURLE_OK) {
        snprintf(res->error, sizeof(res->error), "backend call failed: %s", curl_easy_strerror(cc));
        rc = answer.failed ? -ENOMEM : -EIO;
    } else if (status < 200 || status > 299) {
        snprintf(res->error, sizeof(res->error), "backend returned HTTP %ld", status);
        rc = -EIO;
    } else {
        rc = parse_answer(&answer, res);
    }
out:
    if (c)
        handle_put(h, c);
    curl_slist_free_all(headers);
    af__buf_clear(&body);
    af__buf_clear(&answer);
    return rc;
}

static int http_start(void *self, af__stream *st)
{
    return af__http_engine_start(((http_backend *)self)->engine, st);
}

static void http_wake(void *self)
{
    af__http_engine_wake(((http_backend *)self)->engine);
}

static const af_model_backend_ops http_ops = {"http", http_infer, http_destroy};
static const af__stream_ops http_stream_ops_openai = {"openai", http_start, http_wake};

/* server.address and server.port of base_url (the scheme's port when none is given). */
static void server_of(const char *base_url, af_model_backend *b)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, base_url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        af__strlcpy(b->server_address, host, sizeof(b->server_address));
        b->server_port = atoi(port);
    }
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

/* The engine for chat calls. 0 or -ENOMEM. */
static int engine_for(http_backend *h, const af_http_backend_opts *opts, size_t blen)
{
    char *base = malloc(blen + 1);
    if (!base)
        return -ENOMEM;
    memcpy(base, opts->base_url, blen);
    base[blen] = '\0';
    af__http_engine_opts eo = {.base_url = base,
                               .model = opts->model,
                               .auth_header = h->auth_header,
                               .connect_timeout_ms = h->connect_timeout_ms,
                               .timeout_ms = opts->timeout_ms};
    int rc = af__http_engine_new(&eo, &h->engine);
    free(base);
    return rc;
}

int af_http_backend_new(const af_http_backend_opts *opts, af_model_backend **out)
{
    if (!out || !opts || !opts->base_url || !opts->base_url[0])
        return -EINVAL;
    /* Reference-counted and thread-safe in the libcurl we build against (>= 7.84). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -ENOMEM;
    http_backend *h = calloc(1, sizeof(*h));
    if (!h) {
        curl_global_cleanup();
        return -ENOMEM;
    }
    size_t blen = strlen(opts->base_url);
    while (blen && opts->base_url[blen - 1] == '/')
        blen--;
    h->url = malloc(blen + sizeof("/v1/completions"));
    if (h->url) {
        memcpy(h->url, opts->base_url, blen);
        memcpy(h->url + blen, "/v1/completions", sizeof("/v1/completions"));
    }
    h->model = af__strdup(opts->model);
    if (opts->api_key) {
        size_t n = strlen(opts->api_key) + sizeof("Bearer ");
        h->auth_header = malloc(n);
        if (h->auth_header)
            snprintf(h->auth_header, n, "Bearer %s", opts->api_key);
    }
    h->connect_timeout_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms : 2000;
    if (!h->url || (opts->model && !h->model) || (opts->api_key && !h->auth_header) ||
        engine_for(h, opts, blen) != 0 || pthread_mutex_init(&h->mu, NULL) != 0) {
        af__http_engine_free(h->engine);
        free(h->url);
        free(h->model);
        free(h->auth_header);
        free(h);
        curl_global_cleanup();
        return -ENOMEM;
    }
    int rc = af_model_backend_new(&http_ops, h, out);
    if (rc == 0) {
        server_of(opts->base_url, *out);
        (*out)->sops = &http_stream_ops_openai;
        if (opts->provider && opts->provider[0])
            af__strlcpy((*out)->provider, opts->provider, sizeof((*out)->provider));
    }
    return rc;
}
