/*
 * The OpenAI-compatible backend's streaming engine: every call of one backend is a transfer
 * on one libcurl multi handle, driven by one thread ("af-http-stream"). Streamed answers go
 * through the SSE parser and the chunk reader in libcurl's write callback, so each delta is
 * relayed as it arrives and nothing buffers the whole answer; whole (non-streamed) answers
 * are read into a buffer of at most 16 MiB.
 *
 * Locking: mu guards `pending` and the flags; the active list and every transfer belong to
 * the engine thread (and, after it stopped, to af__http_engine_free). Other threads reach the
 * thread through curl_multi_wakeup.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/propagation.h"
#include "agentaflow/trace_sdk.h"
#include "serving/openai.h"
#include "serving/serving_int.h"
#include "serving/sse.h"
#include "util/str.h"

#define MAX_LINE (1u << 20)  /* one SSE line */
#define MAX_EVENT (4u << 20) /* one SSE event's data */
#define MAX_WHOLE (16u << 20)

typedef enum body_mode { MODE_UNKNOWN = 0, MODE_SSE, MODE_WHOLE } body_mode;

typedef struct xfer {
    struct xfer *next;
    af__stream *st;
    CURL *easy;
    struct curl_slist *headers;
    af_buf body, whole;
    af__sse sse;
    body_mode mode;
    int rc; /* set by the callbacks to stop the transfer with a reason */
    char err[192];
    bool done_marker;
    char finish[16], id[64], model[128];
    int64_t in_tokens, out_tokens;
} xfer;

struct af__http_engine {
    pthread_mutex_t mu;
    CURLM *multi;
    xfer *pending; /* started, not yet added to the multi handle (under mu) */
    xfer *active;  /* the thread's */
    bool stopping, started, scan;
    pthread_t thread;
    char *chat_url, *text_url, *model, *auth;
    uint32_t connect_timeout_ms, timeout_ms;
};

static void xfer_free(xfer *x)
{
    if (!x)
        return;
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    af__buf_clear(&x->body);
    af__buf_clear(&x->whole);
    af__sse_free(&x->sse);
    free(x);
}

static void keep(char *dst, size_t cap, const char *src)
{
    if (src)
        af__strlcpy(dst, src, cap);
}

/* One SSE event: "[DONE]" or a chunk whose delta is relayed at once. */
static int on_event(void *ctx, const af__sse_event *ev)
{
    xfer *x = ctx;
    if (af__sse_is_done(ev)) {
        x->done_marker = true;
        return 0;
    }
    af__oai_answer a;
    int rc = af__oai_parse(ev->data, ev->data_len, x->st->op, false, &a, x->err, sizeof(x->err));
    if (rc == 0) {
        keep(x->id, sizeof(x->id), a.id);
        keep(x->model, sizeof(x->model), a.model);
        keep(x->finish, sizeof(x->finish), a.finish_reason);
        if (a.input_tokens >= 0)
            x->in_tokens = a.input_tokens;
        if (a.output_tokens >= 0)
            x->out_tokens = a.output_tokens;
        if (a.text && a.text_len)
            af__stream_delta(x->st, a.text, a.text_len);
    }
    af__oai_answer_free(&a);
    return rc;
}

static body_mode pick_mode(xfer *x)
{
    long status = 0;
    char *ctype = NULL;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ctype);
    /* A backend that ignores "stream" answers with JSON: read that as a whole answer. */
    bool sse = ctype && strncmp(ctype, "text/event-stream", 17) == 0;
    return x->st->stream && status >= 200 && status <= 299 && sse ? MODE_SSE : MODE_WHOLE;
}

static size_t on_write(char *p, size_t size, size_t n, void *user)
{
    xfer *x = user;
    size_t len = size * n;
    if (atomic_load(&x->st->cancelled)) {
        x->rc = -ECANCELED;
        return 0;
    }
    if (x->mode == MODE_UNKNOWN)
        x->mode = pick_mode(x);
    if (x->mode == MODE_WHOLE) {
        if (x->whole.len + len > MAX_WHOLE) {
            x->rc = AF_EPARSE;
            snprintf(x->err, sizeof(x->err), "backend answer above %u bytes", MAX_WHOLE);
            return 0;
        }
        af__buf_append(&x->whole, p, len);
        return x->whole.failed ? 0 : len;
    }
    int rc = af__sse_feed(&x->sse, p, len, on_event, x);
    if (rc) {
        x->rc = rc;
        if (!x->err[0])
            snprintf(x->err, sizeof(x->err), "backend event stream: %s",
                     rc == AF_EPARSE ? "line or event too long" : af_strerror(rc));
        return 0;
    }
    return len;
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

/* The transfer's easy handle, headers and body. 0 or -ENOMEM. */
static int xfer_setup(af__http_engine *e, xfer *x)
{
    af__stream *st = x->st;
    af__oai_request_body(st, e->model ? e->model : st->model, &x->body);
    x->headers = curl_slist_append(NULL, "Content-Type: application/json");
    x->easy = curl_easy_init();
    if (x->body.failed || !x->headers || !x->easy ||
        (st->stream && slist_set(&x->headers, "Accept", "text/event-stream") != 0) ||
        (e->auth && slist_set(&x->headers, "Authorization", e->auth) != 0))
        return -ENOMEM;
    af_carrier carrier = {.set = slist_set, .self = &x->headers};
    af_tracecontext_inject(&carrier, &st->trace_context);
    uint64_t now = af_monotonic_ns();
    uint64_t left_ms = st->deadline_ns > now ? (st->deadline_ns - now + 999999) / 1000000 : 1;
    if (e->timeout_ms && e->timeout_ms < left_ms)
        left_ms = e->timeout_ms;
    CURL *c = x->easy;
    curl_easy_setopt(c, CURLOPT_URL,
                     st->op == AF_CHAT_OP_TEXT_COMPLETION ? e->text_url : e->chat_url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)x->body.data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)x->body.len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_PRIVATE, x);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)e->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left_ms);
    return 0;
}

/* The outcome of a transfer libcurl finished: rc and the message in x->err. */
static int classify(af__http_engine *e, xfer *x, CURLcode cc)
{
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    const char *url = x->st->op == AF_CHAT_OP_TEXT_COMPLETION ? e->text_url : e->chat_url;
    if (atomic_load(&x->st->cancelled) || x->rc == -ECANCELED) {
        snprintf(x->err, sizeof(x->err), "request cancelled");
        return -ECANCELED;
    }
    if (x->rc)
        return x->rc;
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        curl_off_t connected = 0;
        curl_easy_getinfo(x->easy, CURLINFO_CONNECT_TIME_T, &connected);
        if (!connected && af_monotonic_ns() < x->st->deadline_ns) {
            snprintf(x->err, sizeof(x->err), "backend unreachable: %s (connect timeout)", url);
            return -EHOSTDOWN;
        }
        snprintf(x->err, sizeof(x->err), "timeout: backend %s did not finish in time", url);
        return AF_ETIMEDOUT;
    }
    if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
        cc == CURLE_COULDNT_RESOLVE_PROXY) {
        snprintf(x->err, sizeof(x->err), "backend unreachable: %s (%s)", url,
                 curl_easy_strerror(cc));
        return -EHOSTDOWN;
    }
    if (cc != CURLE_OK) {
        snprintf(x->err, sizeof(x->err), "backend call failed: %s", curl_easy_strerror(cc));
        return -EIO;
    }
    if (status < 200 || status > 299) {
        af__oai_answer a;
        char why[160] = "";
        if (af__oai_parse(x->whole.data ? (const char *)x->whole.data : "", x->whole.len, x->st->op,
                          true, &a, why, sizeof(why)) != -EIO)
            why[0] = '\0';
        af__oai_answer_free(&a);
        snprintf(x->err, sizeof(x->err), "backend returned HTTP %ld%s%.150s", status,
                 why[0] ? ": " : "", why);
        return -EIO;
    }
    if (x->mode == MODE_SSE) {
        if (!x->done_marker && !x->finish[0]) {
            snprintf(x->err, sizeof(x->err), "backend event stream ended before [DONE]");
            return -EIO;
        }
        return 0;
    }
    af__oai_answer a;
    int rc = af__oai_parse(x->whole.data ? (const char *)x->whole.data : "", x->whole.len,
                           x->st->op, true, &a, x->err, sizeof(x->err));
    if (rc == 0) {
        keep(x->id, sizeof(x->id), a.id);
        keep(x->model, sizeof(x->model), a.model);
        keep(x->finish, sizeof(x->finish), a.finish_reason);
        x->in_tokens = a.input_tokens;
        x->out_tokens = a.output_tokens;
        if (a.text_len)
            af__stream_delta(x->st, a.text, a.text_len);
    }
    af__oai_answer_free(&a);
    return rc;
}

static void finish(xfer *x, int rc)
{
    af__stream_end end = {.input_tokens = x->in_tokens,
                          .output_tokens = x->out_tokens,
                          .finish_reason = x->finish[0] ? x->finish : NULL,
                          .response_id = x->id[0] ? x->id : NULL,
                          .response_model = x->model[0] ? x->model : NULL,
                          .error = x->err[0] ? x->err : NULL};
    af__stream_done(x->st, rc, &end);
    xfer_free(x);
}

/* Takes x off the active list and the multi handle. */
static void unlink_active(af__http_engine *e, xfer *x)
{
    for (xfer **pp = &e->active; *pp; pp = &(*pp)->next) {
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    }
    curl_multi_remove_handle(e->multi, x->easy);
}

static void end_cancelled(af__http_engine *e)
{
    xfer *x = e->active;
    while (x) {
        xfer *next = x->next;
        if (atomic_load(&x->st->cancelled)) {
            unlink_active(e, x);
            snprintf(x->err, sizeof(x->err), "request cancelled");
            finish(x, -ECANCELED);
        }
        x = next;
    }
}

static void *engine_main(void *arg)
{
    af__http_engine *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        bool stop = e->stopping, scan = e->scan;
        xfer *add = e->pending;
        e->pending = NULL;
        e->scan = false;
        pthread_mutex_unlock(&e->mu);
        while (add) {
            xfer *x = add;
            add = x->next;
            x->next = e->active;
            e->active = x;
            curl_multi_add_handle(e->multi, x->easy);
        }
        if (stop)
            break;
        if (scan)
            end_cancelled(e);
        int running = 0, q = 0;
        curl_multi_perform(e->multi, &running);
        CURLMsg *m;
        while ((m = curl_multi_info_read(e->multi, &q)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            xfer *x = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            CURLcode cc = m->data.result;
            unlink_active(e, x);
            finish(x, classify(e, x, cc));
        }
        curl_multi_poll(e->multi, NULL, 0, 1000, NULL);
    }
    return NULL;
}

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

int af__http_engine_new(const af__http_engine_opts *o, af__http_engine **out)
{
    af__http_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->chat_url = join(o->base_url, "/v1/chat/completions");
    e->text_url = join(o->base_url, "/v1/completions");
    e->model = o->model ? af__strdup(o->model) : NULL;
    e->auth = o->auth_header ? af__strdup(o->auth_header) : NULL;
    e->connect_timeout_ms = o->connect_timeout_ms;
    e->timeout_ms = o->timeout_ms;
    e->multi = curl_multi_init();
    if (!e->chat_url || !e->text_url || (o->model && !e->model) || (o->auth_header && !e->auth) ||
        !e->multi || pthread_mutex_init(&e->mu, NULL) != 0) {
        if (e->multi)
            curl_multi_cleanup(e->multi);
        free(e->chat_url);
        free(e->text_url);
        free(e->model);
        free(e->auth);
        free(e);
        return -ENOMEM;
    }
    *out = e;
    return 0;
}

void af__http_engine_free(af__http_engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stopping = true;
    bool started = e->started;
    pthread_mutex_unlock(&e->mu);
    if (started) {
        curl_multi_wakeup(e->multi);
        pthread_join(e->thread, NULL);
    }
    while (e->active) {
        xfer *x = e->active;
        unlink_active(e, x);
        snprintf(x->err, sizeof(x->err), "the backend was shut down");
        finish(x, AF_ESHUTDOWN);
    }
    while (e->pending) {
        xfer *x = e->pending;
        e->pending = x->next;
        snprintf(x->err, sizeof(x->err), "the backend was shut down");
        finish(x, AF_ESHUTDOWN);
    }
    curl_multi_cleanup(e->multi);
    pthread_mutex_destroy(&e->mu);
    free(e->chat_url);
    free(e->text_url);
    free(e->model);
    free(e->auth);
    free(e);
}

int af__http_engine_start(af__http_engine *e, af__stream *st)
{
    xfer *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->st = st;
    x->in_tokens = x->out_tokens = -1;
    af__buf_init(&x->body);
    af__buf_init(&x->whole);
    af__sse_init(&x->sse, MAX_LINE, MAX_EVENT);
    int rc = xfer_setup(e, x);
    if (rc) {
        xfer_free(x);
        return rc;
    }
    pthread_mutex_lock(&e->mu);
    if (e->stopping)
        rc = AF_ESHUTDOWN;
    else if (!e->started && (rc = -pthread_create(&e->thread, NULL, engine_main, e)) == 0) {
        pthread_setname_np(e->thread, "af-http-stream");
        e->started = true;
    }
    if (rc == 0) {
        x->next = e->pending;
        e->pending = x;
        if (atomic_load(&st->cancelled))
            e->scan = true;
    }
    pthread_mutex_unlock(&e->mu);
    if (rc) {
        xfer_free(x);
        return rc;
    }
    curl_multi_wakeup(e->multi);
    return 0;
}

void af__http_engine_wake(af__http_engine *e)
{
    pthread_mutex_lock(&e->mu);
    e->scan = true;
    pthread_mutex_unlock(&e->mu);
    curl_multi_wakeup(e->multi);
}
