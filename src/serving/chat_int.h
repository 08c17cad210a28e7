/*
 * serving/chat_int.h - a chat call's state, shared by chat.c (the request: checks, copies,
 * cache, the public functions) and chat_run.c (routing, backend calls, retries, spans, cost,
 * the answer).
 *
 * Threads: a call is touched by the thread that started it until it is dispatched, then by
 * the backend's thread (one at a time, see af__stream_ops); `inst`, the list links and
 * `shutdown` are guarded by the gateway mutex; `st.cancelled` and `refs` are atomic.
 */
#ifndef AF_SERVING_CHAT_INT_H
#define AF_SERVING_CHAT_INT_H

#include "serving/serving_int.h"
#include "util/buf.h"

struct af_chat_call {
    af__stream st; /* first: backends see the call as this */
    atomic_int refs;
    af_serving *s;
    struct af_chat_call *prev, *next; /* s->calls, under s->mu */
    af_chat_callbacks cb;
    void *ctx;
    struct af__serving_model *m;
    struct af__serving_instance *inst; /* the attempt in progress; NULL between */
    af_span span;                      /* model_serving.inference */
    af_span client;                    /* the attempt's CLIENT span */
    af_span_context client_ctx;        /* its context, kept at its end: the handle goes stale
                                          once the span is exported */
    char *strings;                     /* the request's copies, one allocation */
    af_chat_message *msgs;
    af_buf text; /* the answer when it does not stream or content is captured */
    af_buf key;  /* the cache key when cacheable */
    uint64_t t0, attempt_t0, first_ns, backend_ns;
    uint64_t created_s;
    size_t relayed; /* bytes of answer relayed so far (retries only before the first) */
    uint32_t attempts;
    bool cacheable, capture, shutdown, temperature_given;
    char id[64];
    char provider[32];
    char instance_id[64];
};

/* chat_run.c */
/* Routes the call and starts the backend; failures end the call (finish). */
void af__chat_dispatch(struct af_chat_call *c);
/* Ends the call: spans, cost, stats, on_done, cache, and drops the gateway's reference. */
void af__chat_finish(struct af_chat_call *c, int rc, const af__stream_end *end);
/* The OpenAI-ish error code for rc ("timeout", "overloaded", ...); "" for 0. */
const char *af__chat_error_type(int rc);

/* chat.c */
void af__chat_call_unref(struct af_chat_call *c);
/* Takes an answered call off the gateway's list of calls in progress (wakes a shutdown). */
void af__chat_retire(struct af_chat_call *c);

#endif
