/*
 * serving/serving_int.h - internals shared by the gateway's files: the backend handle, the
 * response cache and the routing decision (separate so unit tests can drive them directly).
 */
#ifndef AF_SERVING_SERVING_INT_H
#define AF_SERVING_SERVING_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "agentaflow/serving.h"
#include "agentaflow/tracing.h"

typedef struct af__stream_ops af__stream_ops;

struct af_model_backend {
    const af_model_backend_ops *ops;
    void *self;
    const af__stream_ops *sops; /* streaming hooks of the built-in backends; NULL = infer only */
    char server_address[128];   /* server.address of the backend's calls; "" = none */
    int server_port;            /* server.port; 0 = none */
    char provider[32];          /* gen_ai.provider.name; "" = sops->provider */
};

/* ---------------------------------------------------------------------------------------- */
/* Streaming calls (chat.c) as the built-in backends see them.                               */

/*
 * One backend call of a chat request. Owned by the gateway's call object; the backend borrows
 * it from a successful start until it has called af__stream_done. Everything but `cancelled`
 * is read-only for the backend and stays valid for that whole time.
 */
typedef struct af__stream {
    af_chat_operation op;
    const char *model;      /* the gateway's model id */
    const char *model_name; /* display name */
    const af_chat_message *messages;
    size_t n_messages;
    const char *prompt; /* text completion */
    size_t prompt_len;
    const char *input; /* the prompt as one text (chat: "role: content" lines) */
    size_t input_len;
    uint32_t max_tokens; /* resolved: never 0 */
    double temperature;  /* NAN = not given */
    bool stream;         /* ask the backend to stream */
    bool include_usage;
    const char *user;              /* NULL = none */
    af_span_context trace_context; /* the CLIENT span: propagate it */
    uint64_t deadline_ns;          /* absolute af_monotonic_ns() */
    atomic_bool cancelled;         /* set by af_serving_chat_cancel / shutdown */
} af__stream;

/* How a backend call ended (everything borrowed for the af__stream_done call). */
typedef struct af__stream_end {
    int64_t input_tokens, output_tokens; /* -1 = the backend did not say */
    const char *finish_reason;           /* NULL = unknown ("stop" assumed on success) */
    const char *response_id;             /* NULL = the gateway makes one */
    const char *response_model;          /* NULL = the request's model */
    const char *error;                   /* human message on failure */
} af__stream_end;

/*
 * Streaming hooks. start: 0 and from then on af__stream_delta for each piece of the answer
 * (in order, never two at once) and exactly one af__stream_done (possibly before start
 * returns); or a negative code and no call at all. wake: st->cancelled was set on some stream
 * of this backend; make its thread notice soon (any thread, must not block).
 * Errors for done: -ECANCELED, AF_ETIMEDOUT (deadline), -EHOSTDOWN (could not connect: no byte
 * was exchanged, so the gateway may retry elsewhere), -EIO (backend error status or broken
 * stream), AF_EPARSE (unreadable answer), -ENOMEM, AF_ESHUTDOWN (backend freed).
 */
struct af__stream_ops {
    const char *provider; /* gen_ai.provider.name */
    int (*start)(void *self, af__stream *st);
    void (*wake)(void *self);
};

void af__stream_delta(af__stream *st, const char *text, size_t len);
void af__stream_done(af__stream *st, int rc, const af__stream_end *end);

/* The simulated model's streaming engine (stream_sim.c): one timer thread per engine serves
 * every stream of a simulated backend; no thread per stream. Thread-safe. */
typedef struct af__sim_engine af__sim_engine;
int af__sim_engine_new(const af_sim_backend_opts *o, af__sim_engine **out);
/* Fails every stream still running with AF_ESHUTDOWN (on the caller's thread) and stops. */
void af__sim_engine_free(af__sim_engine *e);
int af__sim_engine_start(af__sim_engine *e, af__stream *st);
void af__sim_engine_wake(af__sim_engine *e);

/* The OpenAI-compatible backend's streaming engine (stream_http.c): one libcurl multi handle
 * and one thread per engine serve every call; each SSE delta is relayed from libcurl's write
 * callback as it arrives. Thread-safe. Strings in opts are copied. */
typedef struct af__http_engine_opts {
    const char *base_url;    /* without the trailing slash */
    const char *model;       /* remote model; NULL = the gateway's model id */
    const char *auth_header; /* "Bearer ..." or NULL */
    uint32_t connect_timeout_ms, timeout_ms;
} af__http_engine_opts;
typedef struct af__http_engine af__http_engine;
int af__http_engine_new(const af__http_engine_opts *o, af__http_engine **out);
/* Aborts every call still running with AF_ESHUTDOWN (on the caller's thread) and stops. */
void af__http_engine_free(af__http_engine *e);
int af__http_engine_start(af__http_engine *e, af__stream *st);
void af__http_engine_wake(af__http_engine *e);

/* ---------------------------------------------------------------------------------------- */
/* Circuit breaker per instance (breaker.c); the caller holds the gateway lock.              */

typedef enum af__breaker_state {
    AF__BREAKER_CLOSED = 0,
    AF__BREAKER_OPEN,
    AF__BREAKER_HALF_OPEN,
} af__breaker_state;

typedef struct af__breaker {
    af__breaker_state state;
    uint32_t consecutive_failures;
    uint64_t open_until; /* monotonic ns: a probe may go after it */
    bool probing;        /* half-open: the one probe is in flight */
} af__breaker;

/* "closed", "open", "half_open". */
const char *af__breaker_state_name(af__breaker_state s);
/* Whether a call may go to this instance now (an open breaker past its cool-down allows one). */
bool af__breaker_allows(const af__breaker *b, uint64_t now);
/* A call was sent (after allows): an open breaker past its cool-down turns half-open. */
void af__breaker_on_send(af__breaker *b, uint64_t now);
/* A call ended: ok closes it; a failure counts, and threshold in a row (or any failed probe)
 * opens it for cooldown_ns. threshold 0 = the breaker never opens. */
void af__breaker_on_result(af__breaker *b, bool ok, uint64_t now, uint32_t threshold,
                           uint64_t cooldown_ns);

/* FNV-1a 64 over the length-prefixed fields (lengths as 8 little-endian bytes), so no two
 * different (model, input, max_tokens) triples feed the hash the same bytes. */
uint64_t af__serving_key_hash(const char *model, size_t model_len, const char *input,
                              size_t input_len, uint32_t max_tokens);

/* ---------------------------------------------------------------------------------------- */
/* Response cache: its own mutex; values are copied in and out.                              */

typedef struct af__cache af__cache;

typedef struct af__cached {
    char *output; /* malloc'd, NUL-terminated */
    size_t output_len;
    int64_t prompt_tokens;
    int64_t completion_tokens;
} af__cached;

/* ttl_ns 0 = the cache stores nothing. */
int af__cache_new(uint32_t max_entries, uint64_t ttl_ns, af__cache **out);
void af__cache_free(af__cache *c);
/* 1 and a fresh copy in *out on a hit (caller frees out->output), 0 on a miss or expiry,
 * -ENOMEM. `now` is af_monotonic_ns(). */
int af__cache_get(af__cache *c, const char *model, const char *input, size_t input_len,
                  uint32_t max_tokens, uint64_t now, af__cached *out);
/* Stores a copy (replacing an entry with the same key). 0, or -ENOMEM. */
int af__cache_put(af__cache *c, const char *model, const char *input, size_t input_len,
                  uint32_t max_tokens, const af__cached *val, uint64_t now);
size_t af__cache_clean_expired(af__cache *c, uint64_t now);
/* Entries held, hits ever, entries found expired (on lookup or by cleaning). */
void af__cache_stats(af__cache *c, uint64_t *entries, uint64_t *hits, uint64_t *expired);

/* ---------------------------------------------------------------------------------------- */
/* Routing: pure decision over a model's instances; the caller holds the gateway lock.       */

typedef struct af__route_inst {
    bool available;
    uint32_t load;     /* in flight */
    uint32_t max_load; /* 0 = unlimited */
    bool has_latency;  /* at least one answer seen */
    double avg_latency_ms;
} af__route_inst;

/*
 * Picks the instance for `need` more requests. *cursor is the model's round-robin position
 * (advanced past the pick). Returns the index, -EHOSTDOWN when no instance is available
 * (or none exists) or AF_EFULL when every available one is at max_load.
 */
int af__route_pick(af_routing_strategy strategy, size_t *cursor, const af__route_inst *inst,
                   size_t n, uint32_t need);
/* Folds one latency sample into the moving average (alpha 0.2). */
void af__route_observe(af__route_inst *inst, double latency_ms);

/* ---------------------------------------------------------------------------------------- */
/* Gateway state, shared by serving.c (registry, requests), batcher.c (queue, batches) and   */
/* serving_json.c (renderers). One mutex (mu) guards the registry, the queue and every      */
/* request's state. Each .c file gives the structs its own short typedef names.             */

#define AF__SERVING_MAX_WORKERS 64
#define AF__SERVING_MAX_MODEL_INSTANCES 64 /* routing candidates live on the batcher's stack */

struct af__serving_model {
    char *id, *name, *version, *framework;
    uint64_t memory_mb;
    double price_per_1k_tokens, gpu_price_per_hour;
    double input_per_million, output_per_million;
    char *owned_by;
    uint32_t default_max_tokens;
    uint64_t loaded_at_ns; /* af_now_ns() */
    size_t cursor;         /* round-robin position among this model's instances */
    size_t chat_cursor;    /* where chat routing starts looking (ties rotate) */
    uint64_t mark;         /* scan marker for the batcher */
};

struct af__serving_instance {
    char *id, *endpoint;
    struct af__serving_model *m;
    af_model_backend *backend;
    af__route_inst route;
    af__breaker breaker;
    uint64_t served, failures;
};

struct af__serving_item {
    struct af__serving_item *prev, *next; /* queue links while queued */
    struct af__serving_model *m;
    char id[64];
    char *input; /* a copy, so a caller that timed out can return while a batcher holds it */
    size_t input_len;
    uint32_t max_tokens;
    af_span_context ctx; /* the inference span: parent of batch_wait and backend_call */
    uint64_t enq_mono, enq_wall, deadline;
    pthread_cond_t cv;
    bool queued, done, abandoned;
    /* result */
    int rc;
    af_backend_result res;
    uint32_t batch_size;
    char instance_id[64];
    uint64_t backend_ns;
};

struct af_serving {
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* queue changed or stopping */
    af_serving_opts opts;
    af_tracer *tracer; /* opts->tracer, used when there is no opts->tracing */
    af__cache *cache;
    struct af__serving_model **models;
    size_t n_models, cap_models;
    struct af__serving_instance **insts;
    size_t n_insts, cap_insts;
    struct af__serving_item *q_head, *q_tail;
    uint32_t q_len, in_flight;
    uint32_t busy; /* batches running, on batchers or inline; at most opts.workers */
    uint64_t next_id, scan_mark;
    uint64_t requests, cache_hits, cache_misses, batches, overloaded, timeouts, errors;
    bool stopping;
    /* chat calls in progress (chat.c): a list so shutdown can cancel them */
    struct af_chat_call *calls;
    uint32_t n_calls;
    pthread_cond_t calls_cv; /* n_calls dropped */
    uint64_t chat_seq;
    pthread_t threads[AF__SERVING_MAX_WORKERS];
    uint32_t n_threads;
};

/* Asked per operation: a reload may flip the component's toggle. */
af_tracer *af__serving_tracer_for(const af_serving *s, af_trace_component c);

/* Frees a request item: its condition variable, its input copy and the item itself. */
void af__serving_item_free(struct af__serving_item *it);

/* Batcher (batcher.c). Caller holds mu for queue_remove and take_batch. */
void af__serving_queue_remove(af_serving *s, struct af__serving_item *it);
uint32_t af__serving_take_batch(af_serving *s, struct af__serving_item **batch, uint64_t now,
                                uint64_t *wake);
/* Runs n items (taken by take_batch, counted in in_flight) on one instance; takes mu itself. */
/* Answers it with rc (and msg when it has no error yet) and wakes its caller, or frees it
 * when the caller gave up. Caller holds mu. */
void af__serving_finish_item(struct af__serving_item *it, int rc, const char *msg);
void af__serving_run_batch(af_serving *s, struct af__serving_item **batch, uint32_t n);
void *af__serving_batcher_main(void *arg);

/* Chat calls (chat.c): cancels every call in progress and waits until each has had its
 * on_done (AF_ESHUTDOWN). Called first by af_serving_free, without the lock. */
void af__serving_chat_shutdown(af_serving *s);

#endif
