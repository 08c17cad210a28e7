/*
 * The HTTP transaction: the tracing middleware around every request, routing, and the JSON
 * error responses. Transport-free: http_conn.c frames requests and http_resp.c writes
 * responses; this file decides what they say.
 *
 * Middleware: the caller's traceparent / tracestate / baggage are extracted, a SERVER span
 * "api_requests.<METHOD> <route template>" starts when the head arrives, the route's work is
 * an INTERNAL child span, and the response carries the trace id back (traceresponse). The
 * span ends after the response was written, with the status and duration; the duration also
 * goes into the route's latency histogram with the trace as exemplar.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agentaflow/propagation.h"
#include "agentaflow/trace_helpers.h"
#include "server/openai_json.h"
#include "server/server_int.h"
#include "util/timeutil.h"
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
    af__buf_clear(&rs->body);
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
    if (rs->openai) {
        /* OpenAI's clients read only their own shape; 401 is their invalid_api_key. */
        af__oai_error_json(&rs->body, status, status == 401 ? "invalid_api_key" : code, NULL, msg);
        return;
    }
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

void af__allow_text(unsigned m, char *out, size_t cap)
{
    static const char *names[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"};
    out[0] = '\0';
    size_t used = 0;
    for (unsigned i = 0; i < 7; i++)
        if (m & (1u << i))
            used += (size_t)snprintf(out + used, cap - used, "%s%s", used ? ", " : "", names[i]);
}

/* ---------------------------------------------------------------------------------------- */
/* Header carrier over the parsed request head (W3C extract).                                */

static size_t head_get_all(void *self, const char *key, af_str *out, size_t cap)
{
    const af__http_request *r = self;
    size_t n = 0;
    for (size_t i = 0; i < r->n_headers; i++) {
        const af__http_header *h = &r->headers[i];
        if (!af__str_ieq(h->name, h->name_len, key))
            continue;
        if (n < cap) {
            out[n].ptr = h->value;
            out[n].len = h->value_len;
        }
        n++;
    }
    return n;
}

static unsigned method_of(const af__http_request *r, const char **name)
{
    static const struct {
        const char *name;
        size_t len;
        unsigned m;
    } t[] = {
        {"GET", 3, AF__M_GET},       {"POST", 4, AF__M_POST},   {"PUT", 3, AF__M_PUT},
        {"DELETE", 6, AF__M_DELETE}, {"PATCH", 5, AF__M_PATCH}, {"OPTIONS", 7, AF__M_OPTIONS},
        {"HEAD", 4, AF__M_HEAD},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (r->method_len == t[i].len && memcmp(r->method, t[i].name, t[i].len) == 0) {
            *name = t[i].name;
            return t[i].m;
        }
    *name = "OTHER";
    return 0;
}

/* Copies a header's value (truncated to cap - 1) or leaves "". */
static void copy_header(const af__http_request *r, const char *name, char *out, size_t cap)
{
    size_t n;
    const char *v = af__http_header_get(r, name, &n);
    out[0] = '\0';
    if (!v)
        return;
    n = n < cap - 1 ? n : cap - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

void af__txn_free(af__txn *t)
{
    af__buf_clear(&t->body);
    af__resp_free(&t->resp);
    free(t->query);
    t->query = NULL;
}

/* The SERVER span as af_trace_api_request makes it (name "api_requests.<METHOD> <route>",
 * http.method, http.route and operation.start_time with milliseconds), with the route
 * table's precomputed name when the request matched a route with its own method, so the
 * common case formats no name. */
static af_span start_server_span(af_server *s, const af__txn *t, const af_span_context *parent,
                                 const char *tmpl)
{
    if (t->route < 0 || t->method != af__routes[t->route].methods)
        return af_trace_api_request(af__api_tracer(s), parent, t->method_name, tmpl);
    uint64_t now = af_now_ns();
    char ts[32];
    af__fmt_rfc3339(now, 3, ts);
    af_attr a[3] = {AF_STR("http.method", t->method_name), AF_STR("http.route", tmpl),
                    AF_STR("operation.start_time", ts)};
    af_span_start_opts o = {.kind = AF_SPAN_KIND_SERVER,
                            .parent_mode = AF_PARENT_EXPLICIT,
                            .parent = parent,
                            .start_ns = now,
                            .attrs = a,
                            .n_attrs = 3};
    return af_span_start(af__api_tracer(s), af__routes[t->route].span_name, &o);
}

/* Matches the route (HEAD is answered by the GET route, without the body) and returns the
 * span's route template. */
static const char *match_route(af__conn *c, af__txn *t)
{
    unsigned allowed = 0;
    t->route = c->metrics
                   ? -1
                   : af__route_match(t->path, t->method == AF__M_HEAD ? AF__M_GET : t->method,
                                     &allowed, t->params);
    t->allowed = allowed;
    const char *tmpl = c->metrics      ? "/metrics"
                       : t->route >= 0 ? af__routes[t->route].pattern
                                       : "unmatched";
    /* Unmatched paths share one span name so scanners cannot blow up the cardinality; pages
     * share "/". */
    if (!c->metrics && t->route < 0 && !allowed && (t->method & (AF__M_GET | AF__M_HEAD)) &&
        strncmp(t->path, "/api/", 5) != 0)
        tmpl = "/";
    return tmpl;
}

/* The SERVER span's request attributes, and up to 8 baggage entries as baggage.<key>. */
static void set_request_attrs(af__conn *c, const af__http_request *req, const af_baggage *bag)
{
    af_server *s = c->loop->srv;
    af__txn *t = &c->txn;
    size_t ua_len = 0;
    const char *ua = af__http_header_get(req, "user-agent", &ua_len);
    /* Query values may be secrets (a /ws access_token, a mistyped token elsewhere): the
     * stored target keeps the parameter names only. */
    char target[1024];
    size_t tn = af__guard_redact_target(req->target, req->target_len, target, sizeof(target));
    af_attr a[] = {
        AF_STRN("http.target", target, tn),
        AF_STRN("url.path", req->path, req->path_len),
        AF_STR("http.scheme", c->ssl ? "https" : "http"),
        AF_STR("url.scheme", c->ssl ? "https" : "http"),
        AF_STRN("user_agent.original", ua ? ua : "", ua ? ua_len : 0),
        AF_STR("client.address", c->peer),
        AF_STR("net.peer.ip", c->peer),
        AF_INT("server.port", c->metrics ? s->metrics_port : s->port),
    };
    af_span_set_attrs(t->span, a, sizeof(a) / sizeof(a[0]));
    for (size_t i = 0; bag && i < af_baggage_count(bag) && i < 8; i++) {
        const char *k, *v, *md;
        af_baggage_at(bag, i, &k, &v, &md);
        char key[160];
        snprintf(key, sizeof(key), "baggage.%s", k);
        af_span_set_string(t->span, key, v);
    }
}

void af__txn_begin(af__conn *c, const af__http_request *req)
{
    af__loop *l = c->loop;
    af_server *s = l->srv;
    af__txn *t = &c->txn;
    af__buf_reset(&t->body);
    af__resp_reset_body(&t->resp);
    t->resp.status = 200;
    t->resp.content_type = "application/json";
    t->resp.allow[0] = '\0';
    t->resp.www_authenticate = false;
    t->resp.headers = NULL;
    t->gw = NULL;
    free(t->query);
    t->query = NULL;
    t->too_large = false;
    t->job = NULL;
    t->active = true;
    l->http_active++;
    t->start_mono = af_monotonic_ns();
    t->keep_alive = req->keep_alive;
    t->http10 = req->minor_version == 0;
    t->method = method_of(req, &t->method_name);
    memcpy(t->path, req->path, req->path_len);
    t->path[req->path_len] = '\0';
    t->resp.openai = !c->metrics && strncmp(t->path, "/v1/", 4) == 0;
    if (req->query)
        t->query = af__strndup(req->query, req->query_len);
    copy_header(req, "authorization", t->authorization, sizeof(t->authorization));
    if (c->metrics)
        copy_header(req, "accept", t->accept, sizeof(t->accept));

    const char *tmpl = match_route(c, t);

    t->span = AF_SPAN_NONE;
    if (!af__api_tracer(s))
        return;
    /* Tracing middleware: continue the caller's trace when it sent one. */
    af_carrier car = {.get_all = head_get_all, .self = (void *)req};
    af_span_context parent;
    af_span_context_init(&parent);
    af_baggage *bag = NULL;
    af_propagate_extract(s->propagators, &car, &parent, &bag);
    t->span = start_server_span(s, t, &parent, tmpl);
    if (af_span_is_recording(t->span))
        set_request_attrs(c, req, bag);
    af_baggage_free(bag);
}

void af__txn_end(af__conn *c)
{
    af__loop *l = c->loop;
    af_server *s = l->srv;
    af__txn *t = &c->txn;
    af__resp *rs = &t->resp;
    double secs = (double)(af_monotonic_ns() - t->start_mono) / 1e9;
    af_span_context sc;
    af_span_get_context(t->span, &sc);
    if (af_span_is_recording(t->span)) {
        af_attr a[] = {
            AF_INT("http.status_code", rs->status),
            AF_INT("http.response.status_code", rs->status),
            AF_INT("operation.duration_ms", (int64_t)(secs * 1000.0)),
            AF_STR("operation.status", rs->status >= 500 ? "error" : "success"),
        };
        af_span_set_attrs(t->span, a, sizeof(a) / sizeof(a[0]));
        /* Semantic conventions: a SERVER span is an error only for 5xx (a 4xx is the
         * client's fault, not this service's). */
        if (rs->status >= 500) {
            char d[32];
            snprintf(d, sizeof(d), "HTTP %d", rs->status);
            af_span_set_status(t->span, AF_STATUS_ERROR, d);
        }
    }
    af__metrics_http(s, t->route, rs->status, secs, &sc);
    af_span_end(t->span);
    t->span = AF_SPAN_NONE;
    if (t->active && l->http_active)
        l->http_active--;
    t->active = false;
    /* Buffers keep their capacity for the connection's next request, unless large. */
    if (t->body.cap > 65536)
        af__buf_clear(&t->body);
    else
        af__buf_reset(&t->body);
    if (rs->body.cap > 65536) {
        af__resp_free(rs);
        af__resp_init(rs);
    }
    free(t->query);
    t->query = NULL;
}

void af__txn_abort(af__conn *c, const char *why)
{
    af__loop *l = c->loop;
    af__txn *t = &c->txn;
    if (t->job) {
        t->job->conn = NULL; /* the worker's answer is dropped when it arrives */
        t->job = NULL;
    }
    if (t->gw)
        af__gw_abort(c, why);
    if (af_span_is_recording(t->span)) {
        if (why && strcmp(why, "client disconnected") == 0)
            af_span_set_attr(t->span, &AF_BOOL("http.client_disconnected", true));
        else if (why)
            af_span_set_string(t->span, "http.aborted", why);
    }
    af_span_end(t->span);
    t->span = AF_SPAN_NONE;
    if (l->http_active)
        l->http_active--;
    t->active = false;
}

static bool token_ok(af_server *s, const af__txn *t)
{
    return af__guard_bearer_ok(s->auth_token, t->authorization, strlen(t->authorization));
}

/* server.auth.read: reads need the token too, except the page and its assets (they hold no
 * data) and /health, which liveness probes call without one and which then says only that
 * the process answers. true when the request may go on; otherwise the response is set. */
static bool read_allowed(af_server *s, const af__txn *t, af__resp *rs)
{
    if (!s->guard.auth_read || token_ok(s, t))
        return true;
    if (t->route >= 0 && strcmp(af__routes[t->route].pattern, "/health") == 0) {
        af__resp_reset_body(rs);
        af__buf_puts(&rs->body, "{\"status\":\"alive\"}");
        return false;
    }
    af__resp_error(rs, 401, "unauthorized", "reads need Authorization: Bearer <token> here");
    rs->www_authenticate = true;
    return false;
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

/* The metrics listener: /metrics (Prometheus or OpenMetrics, by Accept) and /health only. */
static void serve_metrics_port(af_server *s, af__txn *t, af__resp *rs)
{
    bool health = strcmp(t->path, "/health") == 0;
    if (strcmp(t->path, "/metrics") != 0 && !health) {
        af__resp_error(rs, 404, "not_found", "only /metrics and /health are served on this port");
    } else if (!(t->method & (AF__M_GET | AF__M_HEAD))) {
        af__resp_error(rs, 405, "method_not_allowed", "use GET");
        snprintf(rs->allow, sizeof(rs->allow), "GET, HEAD");
    } else if (health) {
        /* Liveness for probes that can only reach this port (a node agent's pod, a
         * scrape-port check): that the process answers; details are on the API port. */
        af__resp_reset_body(rs);
        af__buf_puts(&rs->body, "{\"status\":\"alive\"}");
    } else if (read_allowed(s, t, rs)) {
        bool om = strstr(t->accept, "application/openmetrics-text") != NULL;
        af__resp_reset_body(rs);
        rs->content_type = om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                              : "text/plain; version=0.0.4; charset=utf-8";
        if (af__metrics_render(s, om, &rs->body) != 0)
            af__resp_error(rs, 500, "internal", "out of memory");
    }
}

/* No route matched: 405 with Allow when another method would, a dashboard page outside
 * /api/, else 404. */
static void no_route(af_server *s, const af__txn *t, af__resp *rs)
{
    if (t->allowed) {
        af__allow_text(t->allowed, rs->allow, sizeof(rs->allow));
        af__resp_error(rs, 405, "method_not_allowed", "%s is not allowed on %s (allowed: %s)",
                       t->method_name, t->path, rs->allow);
    } else if (t->method & (AF__M_GET | AF__M_HEAD) && strncmp(t->path, "/api/", 5) != 0 &&
               !rs->openai) {
        serve_page(s, t->path, rs);
    } else {
        af__resp_error(rs, 404, "not_found", "no route for %s", t->path);
    }
}

/* Whether the request may run route r: the token for writes, the read policy, decodable path
 * parameters. When not, rs holds the refusal. */
static bool route_allowed(af_server *s, const af__txn *t, int r, af__req *rq, af__resp *rs)
{
    const af__route *rt = &af__routes[r];
    /* kube-scheduler's extender client cannot send a bearer token: with
     * cluster.extender_auth false its three routes rely on the network (a NetworkPolicy, or
     * mutual TLS through server.tls.client_ca_file) instead. */
    bool exempt = rt->write == AF__ROUTE_EXTENDER && !s->o.extender_auth;
    if (rt->write && !exempt && !token_ok(s, t)) {
        af__resp_error(rs, 401, "unauthorized", "this route needs Authorization: Bearer <token>");
        rs->www_authenticate = true;
        return false;
    }
    if (!rt->write && !read_allowed(s, t, rs))
        return false;
    char why[160];
    if (af__route_params_decode(r, rq->params, why, sizeof(why)) != 0) {
        af__resp_error(rs, 400, "invalid_argument", "%s", why);
        return false;
    }
    return true;
}

/* Runs the route and answers, unless the route went asynchronous. */
static void run_route(af__conn *c, const af__route *rt, af__req *rq, af__resp *rs)
{
    /* The route's work is a child span; component spans nest under it through the thread's
     * current context. */
    af_span child = af_span_start_child(af__api_tracer(rq->srv), rt->child_name,
                                        AF_SPAN_KIND_INTERNAL, &rq->span_ctx, NULL, 0);
    af_span_get_context(child, &rq->span_ctx);
    af_context_token tok = af_context_attach(child);
    int rc = rt->fn(rq, rs);
    af_context_detach(tok);
    if (rc == AF__ASYNC) {
        af_span_end(child);
        return;
    }
    if (rs->status >= 500)
        af_span_set_status(child, AF_STATUS_ERROR, "handler failed");
    af_span_end(child);
    af__conn_respond(c);
}

void af__txn_dispatch(af__conn *c)
{
    af__loop *l = c->loop;
    af_server *s = l->srv;
    af__txn *t = &c->txn;
    af__resp *rs = &t->resp;

    if (t->too_large) {
        af__resp_error(rs, 413, "payload_too_large", "request body exceeds %zu bytes",
                       s->o.body_limit);
        af__conn_respond(c);
        return;
    }
    if (c->metrics) {
        serve_metrics_port(s, t, rs);
        af__conn_respond(c);
        return;
    }
    if (atomic_load(&s->stopping)) {
        af__resp_error(rs, 503, "shutting_down", "the server is shutting down");
        af__conn_respond(c);
        return;
    }

    af__req rq;
    memset(&rq, 0, sizeof(rq));
    rq.srv = s;
    rq.loop = l;
    rq.conn = c;
    rq.method = t->method;
    rq.method_name = t->method_name;
    rq.path = t->path;
    rq.query = t->query ? t->query : "";
    rq.body = t->body.len ? (const char *)t->body.data : "";
    rq.body_len = t->body.len;
    rq.span = t->span;
    af_span_get_context(t->span, &rq.span_ctx);
    memcpy(rq.params, t->params, sizeof(rq.params));
    int r = t->route;
    if (r < 0) {
        no_route(s, t, rs);
        af__conn_respond(c);
        return;
    }
    if (!route_allowed(s, t, r, &rq, rs)) {
        af__conn_respond(c);
        return;
    }
    run_route(c, &af__routes[r], &rq, rs);
}
