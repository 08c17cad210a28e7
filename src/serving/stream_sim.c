/*
 * The simulated model's streaming engine: one thread ("af-sim-stream") per engine serves all
 * its streams from a min-heap of due times, so a thousand streams waiting between tokens
 * hold a heap slot each, not a thread. Tokens are words chosen deterministically from the
 * input's hash; the count follows the blocking simulated model (16 + hash % 48, at most
 * max_tokens), prompt tokens ceil(bytes / 4).
 *
 * Locking: mu guards the heap and the flags. Deltas and done are delivered without mu, by
 * the engine thread only (a stream is out of the heap while its step runs), so one stream's
 * callbacks never overlap.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/trace_sdk.h"
#include "serving/serving_int.h"
#include "util/timeutil.h"

typedef struct sim_rec {
    af__stream *st;
    uint64_t due;      /* monotonic ns of the next step */
    uint64_t interval; /* ns between tokens */
    uint64_t hash;
    int64_t prompt;
    uint32_t next, n; /* next token index, tokens in all */
} sim_rec;

struct af__sim_engine {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    af_sim_backend_opts o;
    sim_rec *heap;
    size_t n, cap;
    bool stopping, scan_cancelled, started;
    pthread_t thread;
};

static const char *const words[] = {
    "the",   "model", "simulated", "answer", "token",  "stream", "gateway", "latency",
    "cost",  "trace", "span",      "GPU",    "fleet",  "server", "request", "response",
    "first", "chunk", "of",        "and",    "serves", "with",   "each",    "instance",
    "fast",  "data",  "output",    "input",  "a",      "is",     "to",      "in",
};
#define N_WORDS (sizeof(words) / sizeof(words[0]))

static bool earlier(const sim_rec *a, const sim_rec *b)
{
    return a->due < b->due;
}

static void sift_up(sim_rec *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!earlier(&h[i], &h[p]))
            break;
        sim_rec t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static void sift_down(sim_rec *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && earlier(&h[l], &h[m]))
            m = l;
        if (r < n && earlier(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        sim_rec t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Caller holds mu. 0 or -ENOMEM. */
static int heap_push(af__sim_engine *e, const sim_rec *r)
{
    if (e->n == e->cap) {
        size_t ncap = e->cap ? e->cap * 2 : 64;
        sim_rec *h = realloc(e->heap, ncap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        e->heap = h;
        e->cap = ncap;
    }
    e->heap[e->n] = *r;
    sift_up(e->heap, e->n++);
    return 0;
}

static sim_rec heap_pop(af__sim_engine *e)
{
    sim_rec top = e->heap[0];
    e->heap[0] = e->heap[--e->n];
    sift_down(e->heap, e->n, 0);
    return top;
}

/* Caller holds mu: cancelled streams become due now, so the thread ends them at once. */
static void expedite_cancelled(af__sim_engine *e)
{
    bool changed = false;
    for (size_t i = 0; i < e->n; i++) {
        if (atomic_load(&e->heap[i].st->cancelled)) {
            e->heap[i].due = 0;
            changed = true;
        }
    }
    for (size_t i = e->n / 2; changed && i-- > 0;)
        sift_down(e->heap, e->n, i);
}

static void finish(sim_rec *r, int rc, const char *msg)
{
    af__stream_end end = {.input_tokens = r->prompt,
                          .output_tokens = r->next,
                          .finish_reason =
                              rc ? NULL : (r->n == r->st->max_tokens ? "length" : "stop"),
                          .error = msg};
    af__stream_done(r->st, rc, &end);
}

/* One step of a stream, without the lock: ends it (true) or emits its next token. */
static bool step(sim_rec *r, uint64_t now)
{
    if (atomic_load(&r->st->cancelled)) {
        finish(r, -ECANCELED, "request cancelled");
        return true;
    }
    if (now >= r->st->deadline_ns) {
        finish(r, AF_ETIMEDOUT, "timeout: the simulated model passed the deadline");
        return true;
    }
    char tok[32];
    const char *w = words[(r->hash >> 7 ^ (uint64_t)r->next * 0x9e3779b97f4a7c15u) % N_WORDS];
    int len = snprintf(tok, sizeof(tok), "%s%s", r->next ? " " : "", w);
    af__stream_delta(r->st, tok, (size_t)len);
    if (++r->next >= r->n) {
        finish(r, 0, NULL);
        return true;
    }
    r->due += r->interval;
    if (r->due > r->st->deadline_ns)
        r->due = r->st->deadline_ns;
    return false;
}

static void *engine_main(void *arg)
{
    af__sim_engine *e = arg;
    pthread_mutex_lock(&e->mu);
    while (!e->stopping) {
        if (e->scan_cancelled) {
            e->scan_cancelled = false;
            expedite_cancelled(e);
        }
        if (e->n == 0) {
            pthread_cond_wait(&e->cv, &e->mu);
            continue;
        }
        uint64_t now = af_monotonic_ns();
        if (e->heap[0].due > now) {
            struct timespec ts = af__timespec_of_ns(e->heap[0].due);
            pthread_cond_timedwait(&e->cv, &e->mu, &ts);
            continue;
        }
        sim_rec r = heap_pop(e);
        pthread_mutex_unlock(&e->mu);
        bool ended = step(&r, now);
        pthread_mutex_lock(&e->mu);
        if (!ended && heap_push(e, &r) != 0) {
            pthread_mutex_unlock(&e->mu);
            finish(&r, -ENOMEM, "out of memory");
            pthread_mutex_lock(&e->mu);
        }
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

int af__sim_engine_new(const af_sim_backend_opts *o, af__sim_engine **out)
{
    af__sim_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->o = *o;
    if (pthread_mutex_init(&e->mu, NULL) != 0) {
        free(e);
        return -ENOMEM;
    }
    if (af__cond_init_monotonic(&e->cv) != 0) {
        pthread_mutex_destroy(&e->mu);
        free(e);
        return -ENOMEM;
    }
    *out = e;
    return 0;
}

void af__sim_engine_free(af__sim_engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stopping = true;
    pthread_cond_signal(&e->cv);
    bool started = e->started;
    pthread_mutex_unlock(&e->mu);
    if (started)
        pthread_join(e->thread, NULL);
    for (size_t i = 0; i < e->n; i++)
        finish(&e->heap[i], AF_ESHUTDOWN, "the simulated backend was shut down");
    free(e->heap);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

/* Caller holds mu. The thread starts with the first stream. It keeps the default stack: the
 * gateway's completion work runs on it (cost record, span ends, which may export through a
 * simple processor), and there is one such thread per backend, not one per stream. */
static int ensure_thread(af__sim_engine *e)
{
    if (e->started)
        return 0;
    int rc = -pthread_create(&e->thread, NULL, engine_main, e);
    if (rc)
        return rc;
    pthread_setname_np(e->thread, "af-sim-stream");
    e->started = true;
    return 0;
}

int af__sim_engine_start(af__sim_engine *e, af__stream *st)
{
    const af_sim_backend_opts *o = &e->o;
    sim_rec r = {.st = st};
    r.hash = af__serving_key_hash("", 0, st->input, st->input_len, 0);
    r.prompt = af_serving_input_tokens(st->input_len);
    uint64_t n = 16 + r.hash % 48;
    r.n = (uint32_t)(n > st->max_tokens ? st->max_tokens : n);
    uint64_t prefill = (uint64_t)o->base_latency_us * 1000u;
    if (o->max_latency_ms && prefill > (uint64_t)o->max_latency_ms * 1000000u)
        prefill = (uint64_t)o->max_latency_ms * 1000000u;
    r.interval =
        (uint64_t)(o->stream_token_us ? o->stream_token_us : o->per_token_latency_us) * 1000u;
    r.due = af_monotonic_ns() + prefill;
    if (r.due > st->deadline_ns)
        r.due = st->deadline_ns;
    pthread_mutex_lock(&e->mu);
    int rc = e->stopping ? AF_ESHUTDOWN : ensure_thread(e);
    if (rc == 0)
        rc = heap_push(e, &r);
    if (rc == 0 && atomic_load(&st->cancelled))
        e->scan_cancelled = true; /* cancelled while being started: end it at once */
    if (rc == 0 && (e->heap[0].st == st || e->scan_cancelled))
        pthread_cond_signal(&e->cv); /* the new stream is the next due: re-arm the wait */
    pthread_mutex_unlock(&e->mu);
    return rc;
}

void af__sim_engine_wake(af__sim_engine *e)
{
    pthread_mutex_lock(&e->mu);
    e->scan_cancelled = true;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}
