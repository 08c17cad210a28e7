/*
 * The OpenAI-compatible front door: POST /v1/chat/completions, POST /v1/completions and
 * GET /v1/models on the daemon's own listener (its limits, TLS and bearer token), on top of
 * the serving gateway's chat seam (af_serving_chat_start in serving.h).
 *
 * This file is the call's lifecycle: start, relay, finish, spans, metrics; the body is parsed
 * and checked in openai_request.c (limits.h: model grammar, message count, the contents
 * against server.max_input_tokens). A call: the route parses the body and starts the gateway
 * call; the connection goes BUSY as for an inference job. The gateway answers on its own
 * threads: on_delta formats each piece of text as one server-sent event straight away and
 * appends it to the call's pending output (gw_out.h); on_done keeps the result. Either
 * queues the call on its loop's queue when it is not queued already, and wakes the loop only
 * when it waits (one wake-up per loop turn for all its streams). Each turn the loop takes every
 * queued call's pending events and sends them as one HTTP chunk with one write (af__gw_drain): with
 * the head on the first turn, and with the last events and the end of the answer on the last, so
 * tokens leave as they are produced, those that arrive while the loop is busy leave together, and
 * nothing waits for the whole answer. A non-streamed call answers one JSON body from on_done's
 * result. A streamed call whose backend fails before its first token is answered with a plain HTTP
 * error, after that with an error event.
 *
 * Bounds: a client that does not read its stream makes the output wait on the connection;
 * past AF__GW_MAX_BUFFERED bytes (pending + unsent) the call is cancelled and the connection
 * closed, with a warning naming the reason, and output that waits must move within the
 * write-progress deadline. A connection that closes cancels the backend call (af__gw_abort ->
 * af_serving_chat_cancel) and drops what was pending. Live streams have no idle deadline: the
 * gateway's request timeout (server.inference_timeout) bounds them.
 *
 * Lifetime: an af__gw is reference counted: the connection's transaction holds one until the
 * answer is written or the connection closes, the gateway's callbacks hold one until on_done
 * returns, and being on a loop's queue holds one. gw->out.mu guards the fields marked so; the
 * queue takes no lock.
 *
 * Tracing: the daemon's SERVER span gets the GenAI request attributes when the call starts
 * and the response attributes (model, id, usage, finish reasons, time to first chunk) when it
 * ends; the gateway makes model_serving.inference and the CLIENT span under the route's span.
 */
#define AF_LOG_COMPONENT "gateway"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/log.h"
#include "server/limits.h" /* routes_int.h needs it first */
#include "server/openai_json.h"
#include "server/openai_request.h"
#include "server/routes_int.h"
#include "server/server_int.h"

/* Bytes of a stream that may wait for a client that does not read (pending + unsent). */
#define AF__GW_MAX_BUFFERED (1u << 20)

struct af__gw {
    af__gw_out out; /* first: the loop's queue links these (gw_of) */
    atomic_int refs;
    af_server *srv;
    af__loop *loop;
    af__conn *conn;     /* loop only; NULL once the answer is written or the client left */
    af_chat_call *call; /* the caller's reference, released when the af__gw goes */
    /* out.mu (out.dropped: nobody reads the output any more, callbacks only drop it) */
    bool done;
    int rc;
    af_chat_result res; /* content: a malloc'd copy (non-streamed), owned here */
    /* fixed at start */
    bool stream, chat, include_usage;
    char id[64];
    char model[129];
    char op[24];
    af__oai_ids ids;
    af_buf frame; /* a delta event's prefix, then its suffix */
    size_t prefix_len;
    af_span_context span_ctx; /* the SERVER span, for exemplars */
    /* loop only */
    bool head_sent;
};

static af__gw *gw_of(af__gw_out *o)
{
    return (af__gw *)(void *)((char *)o - offsetof(af__gw, out));
}

static void gw_unref(af__gw *g)
{
    if (atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    af_chat_call_release(g->call);
    free(g->res.content);
    af__buf_clear(&g->frame);
    af__gw_out_destroy(&g->out);
    free(g);
}

/* out.mu held, after an add or mark asked for it: puts the call on its loop's queue (a
 * reference for the queue); true when the loop needs a wake-up. */
static bool gw_queue_locked(af__gw *g)
{
    atomic_fetch_add(&g->refs, 1);
    return af__gw_queue_push(&g->loop->gwq, &g->out);
}

/* ---------------------------------------------------------------------------------------- */
/* The gateway's callbacks (its threads).                                                    */

static void gw_on_delta(void *ctx, const char *text, size_t len)
{
    af__gw *g = ctx;
    bool wake = false;
    pthread_mutex_lock(&g->out.mu);
    if (af__gw_out_add_locked(&g->out, (const char *)g->frame.data, g->prefix_len,
                              (const char *)g->frame.data + g->prefix_len,
                              g->frame.len - g->prefix_len, text, len))
        wake = gw_queue_locked(g);
    pthread_mutex_unlock(&g->out.mu);
    if (wake)
        af__loop_wake(g->loop);
}

static void gw_on_done(void *ctx, int rc, const af_chat_result *res)
{
    af__gw *g = ctx;
    af__metrics_genai(g->srv, g->op, g->model, rc, res, g->stream, &g->span_ctx);
    bool wake = false;
    pthread_mutex_lock(&g->out.mu);
    g->done = true;
    g->rc = rc;
    g->res = *res;
    g->res.content = NULL;
    if (res->content && !g->out.dropped) {
        g->res.content = malloc(res->content_len + 1);
        if (g->res.content) {
            memcpy(g->res.content, res->content, res->content_len);
            g->res.content[res->content_len] = '\0';
        } else if (rc == 0) {
            g->rc = -ENOMEM;
        }
    }
    if (af__gw_out_mark_locked(&g->out))
        wake = gw_queue_locked(g);
    pthread_mutex_unlock(&g->out.mu);
    if (wake)
        af__loop_wake(g->loop);
    af__chat_call_end(g->srv); /* the server may go from here on */
    gw_unref(g);               /* the callbacks' reference */
}

/* ---------------------------------------------------------------------------------------- */
/* Errors.                                                                                   */

/* The HTTP status and OpenAI error code of a gateway failure. */
static int status_of(int rc, const char **code)
{
    switch (rc) {
    case -EINVAL:
        *code = "invalid_value";
        return 400;
    case AF_ENOTFOUND:
        *code = "model_not_found";
        return 404;
    case AF_EFULL:
        *code = "rate_limit_exceeded";
        return 429;
    case -EHOSTDOWN:
        *code = "backend_unavailable";
        return 503;
    case AF_ESHUTDOWN:
        *code = "shutting_down";
        return 503;
    case -ECANCELED:
        *code = "cancelled";
        return 503;
    case AF_ETIMEDOUT:
        *code = "timeout";
        return 504;
    case -EIO:
        *code = "backend_error";
        return 502;
    case AF_EPARSE:
        *code = "invalid_response";
        return 502;
    default:
        *code = "internal_error";
        return 500;
    }
}

static void resp_from_rc(af__resp *rs, int rc, const char *model, const af_chat_result *r)
{
    const char *code;
    int status = status_of(rc, &code);
    if (r && r->error_type[0])
        code = r->error_type;
    if (rc == AF_ENOTFOUND)
        af__oai_resp_error(rs, status, "model_not_found", "model",
                           "The model `%s` does not exist or you do not have access to it.", model);
    else
        af__oai_resp_error(rs, status, code, NULL, "%s",
                           r && r->error[0] ? r->error : af_strerror(rc));
}

/* ---------------------------------------------------------------------------------------- */
/* The loop's side.                                                                          */

static void span_set_result(af_span sp, const af__gw *g)
{
    if (!af_span_is_recording(sp))
        return;
    const af_chat_result *r = &g->res;
    const char *fr = r->finish_reason[0] ? r->finish_reason : (g->rc ? "error" : "stop");
    const char *frs[1] = {fr};
    af_span_set_attrs(sp, AF_ATTRS(AF_STR("gen_ai.response.id", g->id),
                                   AF_STR("gen_ai.response.model",
                                          r->response_model[0] ? r->response_model : g->model),
                                   AF_INT("gen_ai.usage.input_tokens", r->input_tokens),
                                   AF_INT("gen_ai.usage.output_tokens", r->output_tokens),
                                   AF_STR_ARRAY("gen_ai.response.finish_reasons", frs, 1)));
    if (r->time_to_first_token_ns)
        af_span_set_double(sp, "gen_ai.response.time_to_first_chunk",
                           (double)r->time_to_first_token_ns / 1e9);
    if (g->rc != 0)
        af_span_set_string(sp, "error.type", r->error_type[0] ? r->error_type : "_OTHER");
}

/* The connection is done with the call (answered, or gone): what is pending goes. */
static void gw_detach(af__gw *g)
{
    if (!g->conn)
        return;
    pthread_mutex_lock(&g->out.mu);
    af__gw_out_drop_locked(&g->out);
    pthread_mutex_unlock(&g->out.mu);
    g->conn->txn.gw = NULL;
    g->conn = NULL;
    gw_unref(g); /* the transaction's reference */
}

/* A call answered with one body: the JSON answer, or the error of a call that failed before
 * its stream began. */
static void gw_answer(af__gw *g, af__conn *c)
{
    af__resp *rs = &c->txn.resp;
    span_set_result(c->txn.span, g);
    if (g->rc != 0) {
        resp_from_rc(rs, g->rc, g->model, &g->res);
    } else {
        af__resp_reset_body(rs);
        rs->status = 200;
        if (g->res.response_model[0])
            g->ids.model = g->res.response_model;
        af__oai_completion_json(&rs->body, &g->ids, &g->res);
    }
    gw_detach(g);
    af__conn_respond(c);
    af__conn_resume(c);
}

/* A stream's last events: the finish reason and usage, or the error; then [DONE]. */
static void stream_tail(const af__gw *g, af_buf *tail)
{
    if (g->rc == 0) {
        af__oai_finish_event(tail, &g->ids, g->res.finish_reason);
        if (g->include_usage)
            af__oai_usage_event(tail, &g->ids, g->res.input_tokens, g->res.output_tokens);
    } else {
        const char *code;
        int status = status_of(g->rc, &code);
        af__oai_error_event(tail, status, g->res.error_type[0] ? g->res.error_type : code,
                            g->res.error[0] ? g->res.error : af_strerror(g->rc));
    }
    af__buf_puts(tail, "data: [DONE]\n\n");
}

/* One turn of a stream, in one write: the head and, for chat, the role event first (also for
 * an answer that came at once, a cache hit), the events pending, and when done the last
 * events and the end of the answer. */
static void stream_turn(af__gw *g, af__conn *c, const af_buf *events, bool done)
{
    char head[AF__RESP_HEADROOM];
    size_t head_len = 0;
    af_buf role, tail;
    af__buf_init(&role);
    af__buf_init(&tail);
    if (!g->head_sent) {
        head_len = af__conn_stream_head(c, "text/event-stream", head);
        g->head_sent = true;
        if (g->chat)
            af__oai_role_event(&role, &g->ids);
    }
    if (done) {
        span_set_result(c->txn.span, g);
        stream_tail(g, &tail);
        gw_detach(g);
    }
    struct iovec parts[3] = {
        {role.data, role.len}, {events->data, events->len}, {tail.data, tail.len}};
    af__conn_stream_send(c, head, head_len, parts, 3, done);
    af__buf_clear(&role);
    af__buf_clear(&tail);
    if (done && c->fd >= 0)
        af__conn_resume(c);
}

/* One call's turn on its loop: what the gateway produced since the last one. */
static void gw_deliver(af__gw *g)
{
    pthread_mutex_lock(&g->out.mu);
    const af_buf *events = af__gw_out_take_locked(&g->out);
    bool done = g->done, overflow = g->out.overflow;
    pthread_mutex_unlock(&g->out.mu);
    af__conn *c = g->conn;
    if (!c)
        return;
    if (done && !g->head_sent && !events->len && (!g->stream || g->rc != 0)) {
        gw_answer(g, c);
        return;
    }
    if (events->len || done)
        stream_turn(g, c, events, done);
    if (done || c->fd < 0)
        return; /* answered, or the write failed: af__gw_abort ran */
    if (overflow || c->tx.len - c->tx_off > AF__GW_MAX_BUFFERED) {
        af_log(AF_LOG_WARN,
               "stream %s cancelled: the client at %s is not reading "
               "(%zu bytes waiting)",
               g->id, c->peer, c->tx.len - c->tx_off);
        af__conn_close(c, "client not reading the stream");
    }
}

void af__gw_drain(af__loop *l)
{
    af__gw_out *o = af__gw_queue_take(&l->gwq);
    while (o) {
        af__gw_out *next = o->next;
        af__gw *g = gw_of(o);
        gw_deliver(g);
        gw_unref(g); /* the queue's reference */
        o = next;
    }
}

void af__gw_loop_free(af__loop *l)
{
    af__gw_out *o = af__gw_queue_take(&l->gwq);
    while (o) {
        af__gw_out *next = o->next;
        gw_unref(gw_of(o));
        o = next;
    }
}

void af__gw_abort(af__conn *c, const char *why)
{
    af__gw *g = c->txn.gw;
    if (!g)
        return;
    if (af_span_is_recording(c->txn.span))
        af_span_set_string(c->txn.span, "gen_ai.response.id", g->id);
    af_log(AF_LOG_DEBUG, "call %s cancelled: %s", g->id, why ? why : "closed");
    af_serving_chat_cancel(g->call);
    gw_detach(g);
}

/* ---------------------------------------------------------------------------------------- */
/* Starting a call.                                                                          */

/* The call's fixed parts: its id, the stream events' frame, the span attributes. */
static af__gw *gw_new(af__req *rq, const af_chat_request *r)
{
    static atomic_ulong seq;
    af__gw *g = calloc(1, sizeof(*g));
    if (!g || af__gw_out_init(&g->out, AF__GW_MAX_BUFFERED) != 0) {
        free(g);
        return NULL;
    }
    atomic_init(&g->refs, 1);
    g->srv = rq->srv;
    g->loop = rq->loop;
    g->conn = rq->conn;
    g->stream = r->stream;
    g->chat = r->operation == AF_CHAT_OP_CHAT;
    g->include_usage = r->include_usage;
    af__buf_init(&g->frame);
    af_span_get_context(rq->span, &g->span_ctx);
    char sid[17] = "";
    if (af_span_context_is_valid(&g->span_ctx))
        af_span_id_to_hex(g->span_ctx.span_id, sid);
    snprintf(g->id, sizeof(g->id), "%s-%s%06lx", g->chat ? "chatcmpl" : "cmpl", sid,
             (unsigned long)(atomic_fetch_add(&seq, 1) & 0xffffff));
    snprintf(g->model, sizeof(g->model), "%s", r->model);
    snprintf(g->op, sizeof(g->op), "%s", g->chat ? "chat" : "text_completion");
    g->ids = (af__oai_ids){
        .id = g->id, .model = g->model, .created = (uint64_t)time(NULL), .chat = g->chat};
    af__oai_delta_prefix(&g->frame, &g->ids);
    g->prefix_len = g->frame.len;
    af__oai_delta_suffix(&g->frame, &g->ids);
    if (g->frame.failed) {
        gw_unref(g);
        return NULL;
    }
    return g;
}

static int start_call(af__req *rq, af__resp *rs, bool chat)
{
    af_server *s = rq->srv;
    if (!s->o.serving) {
        af__oai_resp_error(rs, 503, "unavailable", NULL,
                           "the model-serving gateway is not running");
        return 0;
    }
    af__oai_body b;
    int ret = 0;
    if (!af__oai_parse_body(rq, rs, chat, &b))
        goto out;
    const af_chat_request *r = &b.req;
    if (af_span_is_recording(rq->span)) {
        af_span_set_attrs(
            rq->span, AF_ATTRS(AF_STR("gen_ai.operation.name", chat ? "chat" : "text_completion"),
                               AF_STR("gen_ai.request.model", r->model)));
        if (r->max_tokens)
            af_span_set_int(rq->span, "gen_ai.request.max_tokens", r->max_tokens);
        if (!isnan(r->temperature))
            af_span_set_double(rq->span, "gen_ai.request.temperature", r->temperature);
    }
    af__gw *g = gw_new(rq, r);
    if (!g) {
        af__oai_resp_error(rs, 500, "internal_error", NULL, "out of memory");
        goto out;
    }
    b.req.id = g->id; /* the id the first chunk carries is the gateway's and the trace's */
    atomic_fetch_add(&g->refs, 1); /* the callbacks' */
    af__chat_call_begin(s);
    af_chat_callbacks cb = {.on_delta = gw_on_delta, .on_done = gw_on_done};
    char err[192] = "";
    int rc =
        af_serving_chat_start(s->o.serving, &rq->span_ctx, r, &cb, g, &g->call, err, sizeof(err));
    if (rc != 0) {
        atomic_fetch_sub(&g->refs, 1); /* no callback will come */
        af__chat_call_end(s);
        g->conn = NULL;
        gw_unref(g);
        af_chat_result none;
        memset(&none, 0, sizeof(none));
        snprintf(none.error, sizeof(none.error), "%s", err);
        resp_from_rc(rs, rc, r->model, &none);
        goto out;
    }
    rq->conn->txn.gw = g;
    rq->conn->state = AF__CONN_BUSY;
    ret = AF__ASYNC;
out:
    af__oai_body_free(&b);
    return ret;
}

int af__h_oai_chat(af__req *rq, af__resp *rs)
{
    return start_call(rq, rs, true);
}

int af__h_oai_completions(af__req *rq, af__resp *rs)
{
    return start_call(rq, rs, false);
}

int af__h_oai_models(af__req *rq, af__resp *rs)
{
    af_serving *sv = rq->srv->o.serving;
    if (!sv) {
        af__oai_resp_error(rs, 503, "unavailable", NULL,
                           "the model-serving gateway is not running");
        return 0;
    }
    size_t n = af_serving_models_list(sv, NULL, 0);
    af_serving_model_entry *m = n ? calloc(n, sizeof(*m)) : NULL;
    if (n && !m) {
        af__oai_resp_error(rs, 500, "internal_error", NULL, "out of memory");
        return 0;
    }
    size_t got = af_serving_models_list(sv, m, n);
    af__resp_reset_body(rs);
    af__oai_models_json(&rs->body, m, got < n ? got : n);
    free(m);
    return 0;
}
