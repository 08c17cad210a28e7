/*
 * The event loop: one libwebsockets context with two vhosts (API + dashboard + /ws, and the
 * Prometheus listener), the HTTP transaction state machine with the tracing middleware, the
 * worker pool for slow requests, and the graceful stop.
 *
 * A transaction: LWS_CALLBACK_HTTP (headers) -> [HTTP_BODY ... BODY_COMPLETION] -> dispatch.
 * A synchronous handler answers at once; an asynchronous one (inference) queues a job, and the
 * loop resumes the transaction when a worker posts the job back (lws_cancel_service wakes the
 * loop, LWS_CALLBACK_EVENT_WAIT_CANCELLED drains the completions, HTTP_WRITEABLE answers).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "agentaflow/log.h"
#include "agentaflow/propagation.h"
#include "agentaflow/trace_helpers.h"
#include "server/server_int.h"
#include "util/str.h"

#if defined(__has_include)
#if __has_include("server/web_assets.h")
#include "server/web_assets.h"
#define AF_HAVE_WEB_ASSETS 1
#endif
#endif

/* Shown until the dashboard's embedded assets exist (web/ -> server/web_assets.h). */
static const char placeholder_page[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<title>AgentaFlow GPU Monitoring</title></head><body>"
    "<h1>AgentaFlow GPU Monitoring</h1>"
    "<h2>GPU Performance Metrics</h2><p>See <a href=\"/api/v1/gpus\">/api/v1/gpus</a> and "
    "<a href=\"/api/v1/metrics\">/api/v1/metrics</a>.</p>"
    "<h2>Cost Analytics</h2><p>See <a href=\"/api/v1/costs/summary\">/api/v1/costs/summary"
    "</a>.</p><h2>Traces</h2><p>See <a href=\"/api/v1/traces\">/api/v1/traces</a>.</p>"
    "</body></html>\n";

/* ---------------------------------------------------------------------------------------- */
/* Responses.                                                                                */

void af__resp_init(af__resp *rs)
{
    memset(rs, 0, sizeof(*rs));
    rs->status = 200;
    rs->content_type = "application/json";
    af__buf_init(&rs->body);
    af__resp_reset_body(rs);
}

void af__resp_free(af__resp *rs)
{
    af__buf_free(&rs->body);
}

void af__resp_reset_body(af__resp *rs)
{
    /* The headroom is only ever overwritten by the headers: it needs no content. */
    af__buf_reset(&rs->body);
    if (af__buf_reserve(&rs->body, AF__RESP_HEADROOM))
        rs->body.len = AF__RESP_HEADROOM;
}

void af__resp_error(af__resp *rs, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    af__resp_reset_body(rs);
    rs->status = status;
    rs->content_type = "application/json";
    af__buf_puts(&rs->body, "{\"error\":{\"code\":");
    af__buf_json_string(&rs->body, code, strlen(code));
    af__buf_printf(&rs->body, ",\"status\":%d,\"message\":", status);
    af__buf_json_string(&rs->body, msg, strlen(msg));
    af__buf_puts(&rs->body, "}}");
}

void af__resp_json_take(af__resp *rs, int status, char *json)
{
    if (!json) {
        af__resp_error(rs, 500, "internal", "out of memory");
        return;
    }
    af__resp_reset_body(rs);
    rs->status = status;
    rs->content_type = "application/json";
    af__buf_puts(&rs->body, json);
    free(json);
}

void af__resp_from_errno(af__resp *rs, int err, const char *msg)
{
    const char *m = msg && *msg ? msg : af_strerror(err);
    switch (err) {
    case -EINVAL:
    case AF_EPARSE:
        af__resp_error(rs, 400, "invalid_argument", "%s", m);
        break;
    case -ENOENT:
    case AF_ENOTFOUND:
        af__resp_error(rs, 404, "not_found", "%s", m);
        break;
    case -EEXIST:
    case -EBUSY:
        af__resp_error(rs, 409, "conflict", "%s", m);
        break;
    case AF_EFULL:
        af__resp_error(rs, 503, "overloaded", "%s", m);
        break;
    case AF_ESHUTDOWN:
        af__resp_error(rs, 503, "shutting_down", "%s", m);
        break;
    case AF_ETIMEDOUT:
        af__resp_error(rs, 504, "timeout", "%s", m);
        break;
    case -EHOSTDOWN:
    case -EIO:
        af__resp_error(rs, 502, "backend_error", "%s", m);
        break;
    default:
        af__resp_error(rs, 500, "internal", "%s", m);
        break;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Header carrier over the lws request headers (W3C extract).                                */

typedef struct lws_carrier {
    struct lws *wsi;
    char vals[4][1024];
    int used;
} lws_carrier;

static size_t lws_get_all(void *self, const char *key, af_str *out, size_t cap)
{
    lws_carrier *c = self;
    char name[64];
    size_t klen = strlen(key);
    if (klen + 2 > sizeof(name))
        return 0;
    memcpy(name, key, klen);
    name[klen] = ':';
    name[klen + 1] = '\0';
    int nlen = (int)klen + 1;
    int n = lws_hdr_custom_length(c->wsi, name, nlen);
    if (n <= 0)
        return 0;
    if (cap == 0 || c->used >= 4 || n >= (int)sizeof(c->vals[0]))
        return 1;
    char *v = c->vals[c->used++];
    int got = lws_hdr_custom_copy(c->wsi, v, sizeof(c->vals[0]), name, nlen);
    if (got < 0)
        return 0;
    out[0].ptr = v;
    out[0].len = (size_t)got;
    return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* Transactions.                                                                             */

static af_server *server_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

static unsigned method_of(struct lws *wsi, const char **name)
{
    static const struct {
        enum lws_token_indexes tok;
        unsigned m;
        const char *name;
    } t[] = {
        {WSI_TOKEN_GET_URI, AF__M_GET, "GET"},
        {WSI_TOKEN_POST_URI, AF__M_POST, "POST"},
        {WSI_TOKEN_PUT_URI, AF__M_PUT, "PUT"},
        {WSI_TOKEN_DELETE_URI, AF__M_DELETE, "DELETE"},
        {WSI_TOKEN_PATCH_URI, AF__M_PATCH, "PATCH"},
        {WSI_TOKEN_OPTIONS_URI, AF__M_OPTIONS, "OPTIONS"},
        {WSI_TOKEN_HEAD_URI, AF__M_HEAD, "HEAD"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (lws_hdr_total_length(wsi, t[i].tok) > 0) {
            *name = t[i].name;
            return t[i].m;
        }
    *name = "OTHER";
    return 0;
}

void af__allow_text(unsigned m, char *out, size_t cap)
{
    static const char *names[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"};
    out[0] = '\0';
    size_t used = 0;
    for (unsigned i = 0; i < 7; i++)
        if (m & (1u << i))
            used += (size_t)snprintf(out + used, cap - used, "%s%s", used ? ", " : "", names[i]);
}

static void pss_reset(af__pss *pss)
{
    af__buf_free(&pss->body);
    af__resp_free(&pss->resp);
    memset(pss, 0, sizeof(*pss));
}

/* The client's address, for the span. lws binds the per-session data to one transaction,
 * so nothing can be kept per connection; getpeername directly costs less than
 * lws_get_peer_simple. */
static void peer_of(struct lws *wsi, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    out[0] = '\0';
    if (getpeername(lws_get_socket_fd(wsi), (struct sockaddr *)&ss, &sl) != 0)
        return;
    if (ss.ss_family == AF_INET && cap >= INET_ADDRSTRLEN) {
        /* Dotted quad by hand: glibc's inet_ntop goes through sprintf. */
        const uint8_t *a = (const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr;
        char *p = out;
        for (int i = 0; i < 4; i++) {
            unsigned v = a[i];
            if (v >= 100)
                *p++ = (char)('0' + v / 100);
            if (v >= 10)
                *p++ = (char)('0' + v / 10 % 10);
            *p++ = (char)('0' + v % 10);
            *p++ = i < 3 ? '.' : '\0';
        }
    } else if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)cap);
    }
}

/* Writes headers and body and closes the transaction; returns the callback's verdict. */
static int send_response(af_server *s, struct lws *wsi, af__pss *pss)
{
    af__resp *rs = &pss->resp;
    if (rs->body.failed)
        af__resp_error(rs, 500, "internal", "out of memory");
    size_t body_len = rs->body.len - AF__RESP_HEADROOM;
    uint8_t hdr[LWS_PRE + 1024];
    uint8_t *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr) - 1;

    char tr[64] = "";
    af_span_context sc;
    af_span_get_context(pss->span, &sc);
    if (af_span_context_is_valid(&sc))
        af_traceparent_format(&sc, tr);

    if (lws_add_http_common_headers(wsi, (unsigned)rs->status, rs->content_type, body_len, &p, end))
        return -1;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end))
        return -1;
    if (tr[0] && lws_add_http_header_by_name(wsi, (const unsigned char *)"traceresponse:",
                                             (const unsigned char *)tr, (int)strlen(tr), &p, end))
        return -1;
    if (rs->allow[0] && lws_add_http_header_by_name(
                            wsi, (const unsigned char *)"allow:", (const unsigned char *)rs->allow,
                            (int)strlen(rs->allow), &p, end))
        return -1;
    if (rs->www_authenticate &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)"www-authenticate:",
                                    (const unsigned char *)"Bearer realm=\"agentaflow\"", 25, &p,
                                    end))
        return -1;
    if (lws_finalize_http_header(wsi, &p, end))
        return -1;
    /* Headers and body leave in one write (one send() per response): the headers go into the
     * body buffer's headroom when they fit, else they are written first on their own. */
    size_t hlen = (size_t)(p - start);
    bool with_body = body_len && pss->method != AF__M_HEAD;
    if (with_body && hlen + LWS_PRE <= AF__RESP_HEADROOM) {
        uint8_t *b = rs->body.data + AF__RESP_HEADROOM - hlen;
        memcpy(b, start, hlen);
        size_t total = hlen + body_len;
        if (lws_write(wsi, b, total, LWS_WRITE_HTTP_HEADERS) != (int)total)
            return -1;
    } else {
        if (lws_write(wsi, start, hlen, LWS_WRITE_HTTP_HEADERS) != (int)hlen)
            return -1;
        if (with_body && lws_write(wsi, rs->body.data + AF__RESP_HEADROOM, body_len,
                                   LWS_WRITE_HTTP) != (int)body_len)
            return -1;
    }

    /* Middleware epilogue: status on the span, duration into the histogram. */
    double secs = (double)(af_monotonic_ns() - pss->start_mono) / 1e9;
    if (af_span_is_recording(pss->span)) {
        af_span_set_int(pss->span, "http.status_code", rs->status);
        af_span_set_int(pss->span, "http.response.status_code", rs->status);
        af_span_set_int(pss->span, "operation.duration_ms", (int64_t)(secs * 1000.0));
        /* Semantic conventions: a SERVER span is an error only for 5xx (a 4xx is the
         * client's fault, not this service's). */
        if (rs->status >= 500) {
            char d[32];
            snprintf(d, sizeof(d), "HTTP %d", rs->status);
            af_span_set_status(pss->span, AF_STATUS_ERROR, d);
            af_span_set_string(pss->span, "operation.status", "error");
        } else {
            af_span_set_string(pss->span, "operation.status", "success");
        }
    }
    af__metrics_http(s, pss->route, rs->status, secs, &sc);
    af_span_end(pss->span);
    pss->span = AF_SPAN_NONE;
    if (pss->active && s->http_active)
        s->http_active--;
    pss->active = false;
    pss->ready = false;
    af__buf_free(&pss->body);
    af__resp_free(&pss->resp);
    if (lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

static bool token_ok(af_server *s, struct lws *wsi)
{
    if (!s->auth_token)
        return true;
    char h[512];
    int n = lws_hdr_copy(wsi, h, sizeof(h), WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n < 7 || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    const char *tok = h + 7;
    size_t tlen = (size_t)n - 7, want = strlen(s->auth_token);
    /* Constant time in the token's content: always walk the configured token's length. */
    unsigned char diff = (unsigned char)(tlen != want);
    for (size_t i = 0; i < want; i++)
        diff |= (unsigned char)(s->auth_token[i] ^ (i < tlen ? tok[i] : 0));
    return diff == 0;
}

static void serve_page(af_server *s, const char *path, af__resp *rs)
{
    af__resp_reset_body(rs);
#ifdef AF_HAVE_WEB_ASSETS
    const af_web_asset *a = af__web_asset_lookup(path);
    if (a) {
        rs->content_type = a->content_type;
        af__buf_append(&rs->body, a->data, a->len);
        return;
    }
#endif
    (void)s;
    if (strcmp(path, "/") != 0 && strcmp(path, "/index.html") != 0) {
        af__resp_error(rs, 404, "not_found", "no such page: %s", path);
        return;
    }
    rs->content_type = "text/html; charset=utf-8";
    af__buf_append(&rs->body, placeholder_page, sizeof(placeholder_page) - 1);
}

/* Runs the route (synchronous or queues a job). Returns the callback's verdict. */
static int dispatch(af_server *s, struct lws *wsi, af__pss *pss)
{
    af__resp *rs = &pss->resp;
    bool metrics_vhost = lws_get_vhost(wsi) == s->vh_metrics;

    if (pss->too_large) {
        af__resp_error(rs, 413, "payload_too_large", "request body exceeds %zu bytes",
                       s->o.body_limit);
        return send_response(s, wsi, pss);
    }
    if (metrics_vhost) {
        if (strcmp(pss->path, "/metrics") != 0) {
            af__resp_error(rs, 404, "not_found", "only /metrics is served on this port");
        } else if (!(pss->method & (AF__M_GET | AF__M_HEAD))) {
            af__resp_error(rs, 405, "method_not_allowed", "use GET");
            snprintf(rs->allow, sizeof(rs->allow), "GET, HEAD");
        } else {
            char accept[256] = "";
            lws_hdr_copy(wsi, accept, sizeof(accept), WSI_TOKEN_HTTP_ACCEPT);
            bool om = strstr(accept, "application/openmetrics-text") != NULL;
            af__resp_reset_body(rs);
            rs->content_type = om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                  : "text/plain; version=0.0.4; charset=utf-8";
            if (af__metrics_render(s, om, &rs->body) != 0)
                af__resp_error(rs, 500, "internal", "out of memory");
        }
        return send_response(s, wsi, pss);
    }

    if (atomic_load(&s->stopping)) {
        af__resp_error(rs, 503, "shutting_down", "the server is shutting down");
        return send_response(s, wsi, pss);
    }

    af__req rq;
    memset(&rq, 0, sizeof(rq));
    rq.srv = s;
    rq.wsi = wsi;
    rq.method = pss->method;
    rq.method_name = pss->method_name;
    rq.path = pss->path;
    rq.body = pss->body.len ? (const char *)pss->body.data : "";
    rq.body_len = pss->body.len;
    rq.span = pss->span;
    af_span_get_context(pss->span, &rq.span_ctx);
    /* on_http matched the route already (for the span name). */
    unsigned allowed = pss->allowed;
    int r = pss->route;
    memcpy(rq.params, pss->params, sizeof(rq.params));
    if (r < 0) {
        if (allowed) {
            af__allow_text(allowed, rs->allow, sizeof(rs->allow));
            af__resp_error(rs, 405, "method_not_allowed", "%s is not allowed on %s (allowed: %s)",
                           pss->method_name, pss->path, rs->allow);
        } else if (pss->method & (AF__M_GET | AF__M_HEAD) && strncmp(pss->path, "/api/", 5) != 0) {
            serve_page(s, pss->path, rs);
        } else {
            af__resp_error(rs, 404, "not_found", "no route for %s", pss->path);
        }
        return send_response(s, wsi, pss);
    }
    const af__route *rt = &af__routes[r];
    if (rt->write && !token_ok(s, wsi)) {
        af__resp_error(rs, 401, "unauthorized", "this route needs Authorization: Bearer <token>");
        rs->www_authenticate = true;
        return send_response(s, wsi, pss);
    }
    /* The route's work is a child span; component spans nest under it through the thread's
     * current context. */
    af_span child = af_span_start_child(s->api_tracer, rt->child_name, AF_SPAN_KIND_INTERNAL,
                                        &rq.span_ctx, NULL, 0);
    af_span_get_context(child, &rq.span_ctx);
    af_context_token tok = af_context_attach(child);
    int rc = rt->fn(&rq, rs);
    af_context_detach(tok);
    if (rc == AF__ASYNC) {
        af_span_end(child);
        return 0;
    }
    if (rs->status >= 500)
        af_span_set_status(child, AF_STATUS_ERROR, "handler failed");
    af_span_end(child);
    return send_response(s, wsi, pss);
}

/* The SERVER span as af_trace_api_request makes it (name "api_requests.<METHOD> <route>",
 * http.method, http.route and operation.start_time with milliseconds), with the route
 * table's precomputed name when the request matched a route with its own method, so the
 * common case formats no name. */
static af_span start_server_span(af_server *s, const af__pss *pss, const af_span_context *parent,
                                 const char *tmpl)
{
    if (pss->route < 0 || pss->method != af__routes[pss->route].methods)
        return af_trace_api_request(s->api_tracer, parent, pss->method_name, tmpl);
    uint64_t now = af_now_ns();
    char ts[32];
    af__rfc3339_frac(now, 3, ts);
    af_attr a[3] = {AF_STR("http.method", pss->method_name), AF_STR("http.route", tmpl),
                    AF_STR("operation.start_time", ts)};
    af_span_start_opts o = {.kind = AF_SPAN_KIND_SERVER,
                            .parent_mode = AF_PARENT_EXPLICIT,
                            .parent = parent,
                            .start_ns = now,
                            .attrs = a,
                            .n_attrs = 3};
    return af_span_start(s->api_tracer, af__routes[pss->route].span_name, &o);
}

static int on_http(af_server *s, struct lws *wsi, af__pss *pss, const char *uri)
{
    pss_reset(pss);
    af__resp_init(&pss->resp);
    af__buf_init(&pss->body);
    pss->active = true;
    s->http_active++;
    pss->start_mono = af_monotonic_ns();
    pss->method = method_of(wsi, &pss->method_name);
    af__strlcpy(pss->path, uri && *uri ? uri : "/", sizeof(pss->path));

    bool metrics_vhost = lws_get_vhost(wsi) == s->vh_metrics;
    unsigned allowed = 0;
    /* HEAD is answered by the GET route (without the body). */
    pss->route =
        metrics_vhost
            ? -1
            : af__route_match(pss->path, pss->method == AF__M_HEAD ? AF__M_GET : pss->method,
                              &allowed, pss->params);
    pss->allowed = allowed;
    const char *tmpl = metrics_vhost     ? "/metrics"
                       : pss->route >= 0 ? af__routes[pss->route].pattern
                       : allowed         ? pss->path
                                         : "unmatched";
    /* Unmatched paths share one span name so scanners cannot blow up the cardinality. */
    if (pss->route < 0 && allowed)
        tmpl = "unmatched";
    if (!metrics_vhost && pss->route < 0 && !allowed && (pss->method & (AF__M_GET | AF__M_HEAD)) &&
        strncmp(pss->path, "/api/", 5) != 0)
        tmpl = "/";

    /* Tracing middleware: continue the caller's trace when it sent one. */
    if (s->api_tracer) {
        lws_carrier lc = {.wsi = wsi};
        af_carrier c = {.get_all = lws_get_all, .self = &lc};
        af_span_context parent;
        af_span_context_init(&parent);
        af_baggage *bag = NULL;
        af_propagate_extract(AF_PROPAGATE_DEFAULT, &c, &parent, &bag);
        pss->span = start_server_span(s, pss, &parent, tmpl);
        if (af_span_is_recording(pss->span)) {
            char target[1024], args[512] = "", ua[256] = "", peer[INET6_ADDRSTRLEN];
            if (lws_hdr_copy(wsi, args, sizeof(args), WSI_TOKEN_HTTP_URI_ARGS) > 0)
                snprintf(target, sizeof(target), "%s?%s", pss->path, args);
            else
                af__strlcpy(target, pss->path, sizeof(target));
            lws_hdr_copy(wsi, ua, sizeof(ua), WSI_TOKEN_HTTP_USER_AGENT);
            peer_of(wsi, peer, sizeof(peer));
            af_span_set_attrs(
                pss->span,
                AF_ATTRS(AF_STR("http.target", target), AF_STR("url.path", pss->path),
                         AF_STR("http.scheme", "http"), AF_STR("user_agent.original", ua),
                         AF_STR("client.address", peer), AF_STR("net.peer.ip", peer),
                         AF_INT("server.port", metrics_vhost ? s->metrics_port : s->port)));
            for (size_t i = 0; bag && i < af_baggage_count(bag) && i < 8; i++) {
                const char *k, *v, *md;
                af_baggage_at(bag, i, &k, &v, &md);
                char key[160];
                snprintf(key, sizeof(key), "baggage.%s", k);
                af_span_set_string(pss->span, key, v);
            }
        }
        af_baggage_free(bag);
    }

    if (pss->method & (AF__M_POST | AF__M_PUT | AF__M_PATCH)) {
        char cl[32] = "";
        int has_cl = lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
        char te[32] = "";
        int chunked = lws_hdr_copy(wsi, te, sizeof(te), WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
        unsigned long long n = has_cl ? strtoull(cl, NULL, 10) : 0;
        if (has_cl && n > s->o.body_limit)
            pss->too_large = true;
        if (n > 0 || chunked)
            return 0; /* the body follows */
    }
    return dispatch(s, wsi, pss);
}

/* ---------------------------------------------------------------------------------------- */
/* Worker pool.                                                                              */

void af__server_wake(af_server *s)
{
    if (s->ctx)
        lws_cancel_service(s->ctx);
}

static void job_free(af__job *j)
{
    if (!j)
        return;
    free(j->model_id);
    free(j->input);
    free(j->request_id);
    af__resp_free(&j->resp);
    free(j);
}

static void run_job(af__job *j)
{
    af_server *s = j->srv;
    af__resp *rs = &j->resp;
    af_inference_request rq = {.id = j->request_id,
                               .model_id = j->model_id,
                               .input = j->input,
                               .input_len = AF_LEN_NUL,
                               .max_tokens = j->max_tokens,
                               .timeout_ms = j->timeout_ms};
    af_inference_response r;
    memset(&r, 0, sizeof(r));
    int rc = af_serving_infer(s->o.serving, &j->parent, &rq, &r);
    af__metrics_inference(s, j->model_id, rc, &r, &j->parent);
    if (rc != 0) {
        af__resp_from_errno(rs, rc, r.error);
        af_inference_response_free(&r);
        return;
    }
    char tid[33], ts[40];
    af_trace_id_to_hex(j->parent.trace_id, tid);
    af__rfc3339(r.completed_at_ns, ts);
    af_buf *b = &rs->body;
    af__resp_reset_body(rs);
    rs->status = 200;
    af__buf_puts(b, "{\"request_id\":");
    af__buf_json_string(b, r.request_id, strlen(r.request_id));
    af__buf_puts(b, ",\"model_id\":");
    af__buf_json_string(b, j->model_id, strlen(j->model_id));
    af__buf_puts(b, ",\"output\":");
    af__buf_json_string(b, r.output ? r.output : "", r.output ? r.output_len : 0);
    af__buf_printf(b,
                   ",\"latency_ms\":%.3f,\"cache_hit\":%s,\"batch_size\":%u,"
                   "\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"cost\":%.6f,"
                   "\"instance_id\":",
                   (double)r.latency_ns / 1e6, r.cache_hit ? "true" : "false", r.batch_size,
                   (long long)r.prompt_tokens, (long long)r.completion_tokens, r.cost);
    af__buf_json_string(b, r.instance_id, strlen(r.instance_id));
    af__buf_printf(b, ",\"completed_at\":\"%s\",\"trace_id\":\"%s\"}", ts, tid);
    af_inference_response_free(&r);
}

static void *worker_main(void *arg)
{
    af_server *s = arg;
    pthread_setname_np(pthread_self(), "af-srv-work");
    pthread_mutex_lock(&s->job_mu);
    for (;;) {
        while (!s->job_head && !s->workers_stop)
            pthread_cond_wait(&s->job_cv, &s->job_mu);
        if (!s->job_head)
            break;
        af__job *j = s->job_head;
        s->job_head = j->next;
        if (!s->job_head)
            s->job_tail = NULL;
        pthread_mutex_unlock(&s->job_mu);
        run_job(j);
        pthread_mutex_lock(&s->job_mu);
        j->next = s->done_head;
        s->done_head = j;
        pthread_mutex_unlock(&s->job_mu);
        af__server_wake(s);
        pthread_mutex_lock(&s->job_mu);
    }
    pthread_mutex_unlock(&s->job_mu);
    return NULL;
}

/* Called by the inference route on the loop. Returns AF__ASYNC, or fills rs with 503. */
int af__server_submit_job(af__req *rq, af__resp *rs, af__job *j);
int af__server_submit_job(af__req *rq, af__resp *rs, af__job *j)
{
    af_server *s = rq->srv;
    pthread_mutex_lock(&s->job_mu);
    if (s->inflight >= s->o.max_inflight || s->workers_stop) {
        pthread_mutex_unlock(&s->job_mu);
        job_free(j);
        af__resp_error(rs, 503, "overloaded", "%u requests in flight; try again later",
                       s->o.max_inflight);
        return 0;
    }
    s->inflight++;
    j->srv = s;
    j->wsi = rq->wsi;
    j->next = NULL;
    af__resp_init(&j->resp);
    if (s->job_tail)
        s->job_tail->next = j;
    else
        s->job_head = j;
    s->job_tail = j;
    pthread_cond_signal(&s->job_cv);
    pthread_mutex_unlock(&s->job_mu);
    af__pss *pss = lws_wsi_user(rq->wsi);
    pss->job = j;
    return AF__ASYNC;
}

static void drain_jobs(af_server *s)
{
    pthread_mutex_lock(&s->job_mu);
    af__job *done = s->done_head;
    s->done_head = NULL;
    pthread_mutex_unlock(&s->job_mu);
    while (done) {
        af__job *j = done;
        done = j->next;
        if (j->wsi) {
            af__pss *pss = lws_wsi_user(j->wsi);
            af__resp_free(&pss->resp);
            pss->resp = j->resp;
            af__resp_init(&j->resp);
            pss->ready = true;
            pss->job = NULL;
            lws_callback_on_writable(j->wsi);
        }
        job_free(j);
        pthread_mutex_lock(&s->job_mu);
        s->inflight--;
        pthread_mutex_unlock(&s->job_mu);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* The protocol callback.                                                                    */

/* The local port of a listening TCP socket, or -1 for anything else. */
static int listener_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int on = 0;
    socklen_t l = sizeof(on);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &l) != 0 || !on ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return -1;
}

/* Creation: the fd lws listens on for port, among this process's descriptors. */
static int find_listener(int port)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int found = -1;
    for (struct dirent *e; found < 0 && (e = readdir(d)) != NULL;) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end != '\0' || end == e->d_name || fd == dirfd(d))
            continue;
        if (listener_port((int)fd) == port)
            found = (int)fd;
    }
    closedir(d);
    return found;
}

/* Loop, on stop: new API connections are refused from now on while the ones in progress
 * finish. shutdown(SHUT_RD) moves a listening TCP socket to CLOSED (the kernel answers new
 * SYNs and the unaccepted backlog with RST) but leaves the fd to lws, which sees POLLHUP and
 * closes its listen wsi on this thread; closing the fd under lws instead would leave a stale
 * entry in its poll set. The metrics listener stays open so the drain can be scraped. */
static void close_api_listener(af_server *s)
{
    /* Checked again: the number is only ours to touch while it is still that listener. */
    if (s->api_listen_fd < 0 || listener_port(s->api_listen_fd) != s->port)
        return;
    if (shutdown(s->api_listen_fd, SHUT_RD) != 0)
        af_log(AF_LOG_WARN, "server: cannot close the listener on port %d: %s", s->port,
               strerror(errno));
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    af__pss *pss = user;
    af_server *s = server_of(wsi);
    /* lws calls some reasons (a connection closed before its first request) without
     * per-session storage. */
    if (!pss && reason != LWS_CALLBACK_EVENT_WAIT_CANCELLED &&
        reason != LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_http(s, wsi, pss, in);
    case LWS_CALLBACK_HTTP_BODY:
        if (!pss->too_large) {
            if (pss->body.len + len > s->o.body_limit) {
                pss->too_large = true;
                af__buf_free(&pss->body);
            } else {
                af__buf_append(&pss->body, in, len);
            }
        }
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        af__buf_terminate(&pss->body);
        return dispatch(s, wsi, pss);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (pss->ready)
            return send_response(s, wsi, pss);
        return 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        if (pss->job) {
            pss->job->wsi = NULL; /* the worker's answer is dropped when it arrives */
            pss->job = NULL;
        }
        if (pss->active) {
            af_span_set_attr(pss->span, &AF_BOOL("http.client_disconnected", true));
            af_span_end(pss->span);
            if (s->http_active)
                s->http_active--;
        }
        pss_reset(pss);
        break;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        drain_jobs(s);
        af__ws_drain(s);
        break;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_CLOSED:
        return af__ws_callback(s, wsi, reason, pss, in, len);
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols api_protocols[] = {
    {"agentaflow", callback, sizeof(af__pss), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static const struct lws_protocols metrics_protocols[] = {
    {"agentaflow-metrics", callback, sizeof(af__pss), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---------------------------------------------------------------------------------------- */
/* Lifecycle.                                                                                */

void af_server_opts_init(af_server_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->bind_address = "127.0.0.1";
    o->port = 9000;
    o->metrics_port = 9001;
    o->ws_push_interval_ms = 2000;
    o->max_ws_clients = 1000;
    o->ws_queue_depth = 16;
    o->body_limit = 1024 * 1024;
    o->max_inflight = 256;
    o->workers = 4;
    o->shutdown_timeout_ms = 5000;
    o->load_interval_ms = 1000;
    o->title = "AgentaFlow GPU Monitoring";
}

static bool is_loopback(const char *addr)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, addr, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, addr, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return strcmp(addr, "localhost") == 0;
}

static void lws_log_bridge(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    af_log(level == LLL_ERR ? AF_LOG_WARN : AF_LOG_DEBUG, "lws: %.*s", (int)n, line);
}

static void seterr(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || !err_len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

int af_server_new(const af_server_opts *opts, af_server **out, char *err, size_t err_len)
{
    *out = NULL;
    af_server_opts def;
    if (!opts) {
        af_server_opts_init(&def);
        opts = &def;
    }
    if (opts->port < 0 || opts->port > 65535 || opts->metrics_port < -1 ||
        opts->metrics_port > 65535 || opts->ws_queue_depth == 0 || opts->body_limit == 0 ||
        opts->max_inflight == 0 || opts->workers == 0 || opts->workers > 64 ||
        opts->ws_push_interval_ms == 0) {
        seterr(err, err_len, "invalid server options (ports 0-65535, non-zero limits)");
        return -EINVAL;
    }
    const char *bind = opts->bind_address && *opts->bind_address ? opts->bind_address : "127.0.0.1";
    bool has_token = opts->auth_token && *opts->auth_token;
    if (!is_loopback(bind) && !has_token) {
        seterr(err, err_len,
               "refusing to listen on %s without an auth token: set server.auth_token or "
               "AGENTAFLOW_AUTH_TOKEN, or bind 127.0.0.1",
               bind);
        return -EACCES;
    }

    af_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->api_listen_fd = -1;
    s->o = *opts;
    s->bind_address = af__strdup(bind);
    s->auth_token = has_token ? af__strdup(opts->auth_token) : NULL;
    s->title = af__strdup(opts->title ? opts->title : "AgentaFlow GPU Monitoring");
    s->o.bind_address = s->bind_address;
    s->o.auth_token = NULL; /* only s->auth_token holds it */
    s->o.title = s->title;
    pthread_mutex_init(&s->job_mu, NULL);
    pthread_cond_init(&s->job_cv, NULL);
    pthread_mutex_init(&s->ws_mu, NULL);
    pthread_mutex_init(&s->met_mu, NULL);
    pthread_mutex_init(&s->lg_mu, NULL);
    pthread_cond_init(&s->lg_cv, NULL);
    s->started_wall_ns = af_now_ns();
    s->started_mono_ns = af_monotonic_ns();
    s->api_tracer = af_tracing_tracer_for(opts->tracing, AF_TRACE_API_REQUESTS);
    s->ws_tracer = af_tracing_tracer_for(opts->tracing, AF_TRACE_WEBSOCKET_EVENTS);
    int rc = -ENOMEM;
    if (!s->bind_address || !s->title || (has_token && !s->auth_token))
        goto fail;
    af__metrics_init(s);
    if (!s->http_hist)
        goto fail;

    lws_set_log_level(LLL_ERR, lws_log_bridge);
    struct lws_context_creation_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    ci.user = s;
    ci.port = CONTEXT_PORT_NO_LISTEN;
    ci.count_threads = 1;
    /* Room for the WebSocket cap plus HTTP clients and benchmarks. */
    ci.fd_limit_per_thread = 0;
    ci.timeout_secs = 30;
    s->ctx = lws_create_context(&ci);
    rc = -EIO;
    if (!s->ctx) {
        seterr(err, err_len, "cannot create the event loop");
        goto fail;
    }
    struct lws_context_creation_info vi;
    memset(&vi, 0, sizeof(vi));
    vi.options = strchr(bind, ':') ? 0 : LWS_SERVER_OPTION_DISABLE_IPV6;
    vi.iface = bind;
    vi.port = opts->port;
    vi.protocols = api_protocols;
    vi.vhost_name = "api";
    vi.keepalive_timeout = 30;
    s->vh_api = lws_create_vhost(s->ctx, &vi);
    if (!s->vh_api) {
        rc = -EADDRINUSE;
        seterr(err, err_len, "cannot listen on %s:%d (in use or not an address of this host)", bind,
               opts->port);
        goto fail;
    }
    s->port = lws_get_vhost_listen_port(s->vh_api);
    if (opts->metrics_port >= 0) {
        vi.port = opts->metrics_port;
        vi.protocols = metrics_protocols;
        vi.vhost_name = "metrics";
        s->vh_metrics = lws_create_vhost(s->ctx, &vi);
        if (!s->vh_metrics) {
            rc = -EADDRINUSE;
            seterr(err, err_len, "cannot listen on %s:%d for metrics", bind, opts->metrics_port);
            goto fail;
        }
        s->metrics_port = lws_get_vhost_listen_port(s->vh_metrics);
    }
    s->api_listen_fd = find_listener(s->port);
    if (s->api_listen_fd < 0)
        af_log(AF_LOG_WARN,
               "server: the listener of port %d was not found; on stop it keeps "
               "accepting (and answers 503) until the last request finishes",
               s->port);
    *out = s;
    return 0;
fail:
    af_server_free(s);
    return rc;
}

int af_server_port(const af_server *s)
{
    return s ? s->port : 0;
}

int af_server_metrics_port(const af_server *s)
{
    return s ? s->metrics_port : 0;
}

static void *loop_main(void *arg)
{
    af_server *s = arg;
    pthread_setname_np(pthread_self(), "af-server");
    af__ws_timer_start(s);
    while (!atomic_load(&s->loop_exit)) {
        if (atomic_load(&s->stopping)) {
            if (!s->stop_deadline_mono) {
                s->stop_deadline_mono =
                    af_monotonic_ns() + (uint64_t)s->o.shutdown_timeout_ms * 1000000ull;
                close_api_listener(s);
            }
            uint32_t inflight;
            pthread_mutex_lock(&s->job_mu);
            inflight = s->inflight;
            pthread_mutex_unlock(&s->job_mu);
            if ((s->http_active == 0 && inflight == 0) ||
                af_monotonic_ns() >= s->stop_deadline_mono) {
                if (s->http_active || inflight)
                    af_log(AF_LOG_WARN, "server: stopping with %u requests unfinished after %u ms",
                           s->http_active + inflight, s->o.shutdown_timeout_ms);
                break;
            }
        }
        if (lws_service(s->ctx, 0) < 0)
            break;
    }
    af__ws_close_all(s);
    /* A few more turns so the close frames leave. */
    for (int i = 0; i < 4; i++)
        lws_service(s->ctx, -1);
    return NULL;
}

int af_server_start(af_server *s)
{
    if (!s)
        return -EINVAL;
    if (s->loop_started)
        return -EALREADY;
    s->workers = calloc(s->o.workers, sizeof(pthread_t));
    if (!s->workers)
        return -ENOMEM;
    for (uint32_t i = 0; i < s->o.workers; i++) {
        int rc = pthread_create(&s->workers[i], NULL, worker_main, s);
        if (rc != 0) {
            af_server_stop(s);
            return -rc;
        }
        s->n_workers++;
    }
    int rc = pthread_create(&s->loop_thread, NULL, loop_main, s);
    if (rc != 0) {
        af_server_stop(s);
        return -rc;
    }
    s->loop_started = true;
    af__collector_hooks_add(s);
    if (s->o.load_generator && af__loadgen_start(s) != 0)
        af_log(AF_LOG_WARN, "server: the load generator did not start");
    af_log(AF_LOG_INFO, "server: listening on http://%s:%d (metrics on %d)", s->bind_address,
           s->port, s->metrics_port);
    return 0;
}

void af_server_stop(af_server *s)
{
    if (!s)
        return;
    af__loadgen_stop(s);
    af__collector_hooks_remove(s);
    atomic_store(&s->stopping, true);
    if (s->loop_started) {
        af__server_wake(s);
        pthread_join(s->loop_thread, NULL);
        s->loop_started = false;
    }
    pthread_mutex_lock(&s->job_mu);
    s->workers_stop = true;
    pthread_cond_broadcast(&s->job_cv);
    pthread_mutex_unlock(&s->job_mu);
    for (uint32_t i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i], NULL);
    s->n_workers = 0;
    free(s->workers);
    s->workers = NULL;
}

void af_server_free(af_server *s)
{
    if (!s)
        return;
    af_server_stop(s);
    if (s->ctx)
        lws_context_destroy(s->ctx);
    s->ctx = NULL;
    /* Jobs nobody will answer any more. */
    while (s->job_head) {
        af__job *j = s->job_head;
        s->job_head = j->next;
        job_free(j);
    }
    while (s->done_head) {
        af__job *j = s->done_head;
        s->done_head = j->next;
        job_free(j);
    }
    for (size_t i = 0; i < s->outbox_len; i++)
        af__ws_msg_unref(s->outbox[i]);
    free(s->outbox);
    af__routes_free(s);
    af__metrics_free(s);
    pthread_mutex_destroy(&s->job_mu);
    pthread_cond_destroy(&s->job_cv);
    pthread_mutex_destroy(&s->ws_mu);
    pthread_mutex_destroy(&s->met_mu);
    pthread_mutex_destroy(&s->lg_mu);
    pthread_cond_destroy(&s->lg_cv);
    if (s->auth_token) {
        /* The token is a secret: do not leave it in freed memory. */
        volatile char *p = s->auth_token;
        while (*p)
            *p++ = 0;
    }
    free(s->auth_token);
    free(s->bind_address);
    free(s->title);
    free(s);
}

uint32_t af_server_ws_clients(af_server *s)
{
    return s ? atomic_load(&s->n_clients) : 0;
}
