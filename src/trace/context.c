/*
 * The thread's current span and baggage, with LIFO attach/detach tokens.
 *
 * The ids of the current span are copied at attach time, so a child started after its
 * parent ended (common with async hand-offs) still finds the parent's trace and span id.
 * Work that crosses threads carries an af_span_context value explicitly.
 */
#define AF_LOG_COMPONENT "tracing"

#include <stdatomic.h>
#include <string.h>

#include "agentaflow/log.h"
#include "trace/context_int.h"

typedef struct current_ctx {
    af_span span;
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t trace_flags;
    bool valid;
    af_baggage *baggage;
    uint32_t depth;
} current_ctx;

static _Thread_local current_ctx cur;

static af_context_token save(void)
{
    af_context_token tok;
    tok.span = cur.span;
    memcpy(tok.trace_id, cur.trace_id, 16);
    memcpy(tok.span_id, cur.span_id, 8);
    tok.trace_flags = cur.trace_flags;
    tok.valid = cur.valid;
    tok.baggage = cur.baggage;
    tok.depth = ++cur.depth;
    return tok;
}

af_context_token af_context_attach(af_span s)
{
    af_context_token tok = save();
    af_span_context sc;
    cur.span = s;
    cur.valid = af__span_context_of(s, &sc, false) && af_span_context_is_valid(&sc);
    if (cur.valid) {
        memcpy(cur.trace_id, sc.trace_id, 16);
        memcpy(cur.span_id, sc.span_id, 8);
        cur.trace_flags = sc.trace_flags;
    }
    return tok;
}

af_context_token af_context_attach_baggage(af_baggage *b)
{
    af_context_token tok = save();
    cur.baggage = b;
    return tok;
}

void af_context_detach(af_context_token tok)
{
    if (tok.depth != cur.depth) {
        static _Atomic int warned;
        if (!atomic_exchange(&warned, 1))
            af_log(AF_LOG_WARN,
                   "af_context_detach: token detached out of order (depth %u, "
                   "current %u); ignored",
                   tok.depth, cur.depth);
        return;
    }
    cur.span = tok.span;
    memcpy(cur.trace_id, tok.trace_id, 16);
    memcpy(cur.span_id, tok.span_id, 8);
    cur.trace_flags = tok.trace_flags;
    cur.valid = tok.valid;
    cur.baggage = tok.baggage;
    cur.depth--;
}

af_span af_context_current_span(void)
{
    return cur.span;
}

void af_context_current(af_span_context *out)
{
    af_span_context_init(out);
    if (!cur.valid)
        return;
    if (af__span_context_of(cur.span, out, true))
        return;
    memcpy(out->trace_id, cur.trace_id, 16);
    memcpy(out->span_id, cur.span_id, 8);
    out->trace_flags = cur.trace_flags;
}

bool af__context_log_ids(uint8_t trace_id[16], uint8_t span_id[8])
{
    /* The ids copied at attach: no span lock on a log call, and still right after the span
     * ended. */
    if (!cur.valid)
        return false;
    memcpy(trace_id, cur.trace_id, 16);
    memcpy(span_id, cur.span_id, 8);
    return true;
}

bool af__context_current_parent(af_span_context *sc)
{
    if (!cur.valid)
        return false;
    memcpy(sc->trace_id, cur.trace_id, 16);
    memcpy(sc->span_id, cur.span_id, 8);
    sc->trace_flags = cur.trace_flags;
    sc->is_remote = false;
    sc->trace_state_len = 0;
    sc->trace_state[0] = '\0';
    /* The parent's tracestate is inherited when the parent is still alive. */
    af_span_rec *r = cur.span.rec;
    if (r) {
        af_span_context full;
        if (af__span_context_of(cur.span, &full, true) && full.trace_state_len) {
            memcpy(sc->trace_state, full.trace_state, (size_t)full.trace_state_len + 1);
            sc->trace_state_len = full.trace_state_len;
        }
    }
    return true;
}

af_baggage *af_context_current_baggage(void)
{
    return cur.baggage;
}
