/*
 * agentaflow/serving.h - the model-serving gateway: model registry, response cache, batcher,
 * router and backends (simulated model, OpenAI-compatible HTTP), each request traced.
 *
 * Flow of af_serving_infer(): check the model exists (AF_ENOTFOUND) -> cache lookup (a hit
 * returns a copy) -> bounded queue (full: AF_EFULL, "overloaded") -> a batcher thread forms a
 * batch for one model and routes it to one instance -> the instance's backend answers each
 * request -> tokens and cost recorded -> the caller, blocked until then or its deadline
 * (AF_ETIMEDOUT), gets the response.
 *
 * Batching: batcher threads ("af-batcher", opts.workers of them) take a batch when they are
 * free and, for some model, either at least min_batch_size requests are queued or the oldest
 * has waited max_wait_time_ms; a batch holds at most max_batch_size requests, oldest first.
 * So with min_batch_size 1 (the default) an idle gateway sends at once and batches form under
 * load; a larger min_batch_size holds small batches for up to max_wait_time_ms.
 *
 * Cache: keyed by a hash of the length-prefixed (model id, input, max_tokens), compared in
 * full on lookup, so ("ab","c") and ("a","bc") never meet. Entries live cache_ttl_ms;
 * cache_ttl_ms 0 turns the cache off (the original cached forever with TTL 0). At most
 * cache_max_entries, least recently used evicted first. A hit never touches a backend and
 * records no cost.
 *
 * Routing among a model's instances: round_robin (a cursor per model that really rotates),
 * least_latency (lowest moving average of backend latency, untried instances first),
 * least_load (fewest requests in flight). An instance is eligible while available, below
 * max_load (0 = unlimited) and not behind an open circuit breaker: breaker_failures
 * consecutive failures open it for breaker_cooldown_ms, then one probe may go (half-open);
 * its success closes it, its failure opens it again. Chat calls (below) always route by
 * least load, ties rotating.
 *
 * Tracing (opts.tracing: components.model_serving.trace_inference_requests for requests and
 * trace_model_loading for registration; or a plain opts.tracer for both; both borrowed):
 *   model_serving.inference        SERVER   model.id, model.name, cache.hit, batch.size,
 *                                            tokens.prompt, tokens.completion, cost.amount,
 *                                            backend.instance, operation.*
 *     model_serving.cache_lookup   INTERNAL cache.hit
 *     model_serving.batch_wait     INTERNAL batch.size (started at enqueue, ended by the
 *                                            batcher thread; the parent context travels
 *                                            with the request)
 *     model_serving.backend_call   CLIENT   backend.instance, backend.kind, tokens.*; the
 *                                            HTTP backend injects this span's traceparent
 *   model_serving.register_model   SERVER   model.id, model.name, model.version,
 *                                            model.framework, model.size_mb; event model.loaded
 * Errors are recorded on the spans (exception event + Error status).
 *
 * Threads: every function is thread-safe. Ownership: inputs are copied; backends passed to
 * af_serving_add_instance are owned by the gateway from then on (even on failure).
 */
#ifndef AGENTAFLOW_SERVING_H
#define AGENTAFLOW_SERVING_H

#include "agentaflow/cost.h"
#include "agentaflow/trace.h"

#ifdef __cplusplus
extern "C" {
#endif
AF_API_BEGIN

typedef struct af_tracing af_tracing; /* tracing.h */

/* ---------------------------------------------------------------------------------------- */
/* Backends.                                                                                 */

/* One request as a backend sees it; everything borrowed for the call. */
typedef struct af_backend_request {
    const char *request_id;
    const char *model_id;
    const char *model_name;
    const char *input;
    size_t input_len;
    uint32_t max_tokens;
    const af_span_context *trace_context; /* the backend_call span; propagate it */
    uint64_t deadline_ns;                 /* absolute af_monotonic_ns(); 0 = none */
} af_backend_request;

/* What a backend fills in. `output` is malloc'd by the backend (NUL-terminated); the gateway
 * takes it. `error` is a human message for a failure. */
typedef struct af_backend_result {
    char *output;
    size_t output_len;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    char error[192];
} af_backend_result;

/*
 * Backend hooks. infer returns 0 or: -EHOSTDOWN (backend unreachable), AF_ETIMEDOUT (past
 * the deadline), -EIO (the backend answered with an error), AF_EPARSE (unreadable answer),
 * -ENOMEM. It may be called from several batcher threads at once.
 */
typedef struct af_model_backend_ops {
    const char *kind; /* "simulated", "http", ... (shown in JSON and spans) */
    int (*infer)(void *self, const af_backend_request *req, af_backend_result *res);
    void (*destroy)(void *self);
} af_model_backend_ops;

typedef struct af_model_backend af_model_backend;

/* Wraps custom hooks; takes ownership of self (destroy is called by _free). */
int af_model_backend_new(const af_model_backend_ops *ops, void *self, af_model_backend **out);
void af_model_backend_free(af_model_backend *b);
const char *af_model_backend_kind(const af_model_backend *b);
int af_model_backend_infer(af_model_backend *b, const af_backend_request *req,
                           af_backend_result *res);

/*
 * The built-in simulated model (kind "simulated"; no real model runs). Deterministic from the
 * input: prompt_tokens = ceil(bytes / 4) (at least 1); completion_tokens = min(max_tokens,
 * 16 + hash(input) % 48); output "[simulated <model>] <n> tokens for: <input prefix>";
 * latency = base_latency_us + per_token_latency_us * (prompt + completion tokens), at most
 * max_latency_ms, slept (and cut at the deadline, which returns AF_ETIMEDOUT).
 */
typedef struct af_sim_backend_opts {
    uint32_t base_latency_us;      /* 2000 */
    uint32_t per_token_latency_us; /* 50 */
    /* 2000; 0 = unbounded. A long input must not hold a batcher (and the HTTP worker waiting
     * on it) for seconds: 1 MiB at 50 us a token would sleep 13 s. */
    uint32_t max_latency_ms;
    /* Streamed answers (af_serving_chat_*): the first token comes after base_latency_us (at
     * most max_latency_ms), then one token every stream_token_us (0 = per_token_latency_us).
     * No thread is held while a stream waits. */
    uint32_t stream_token_us;
} af_sim_backend_opts;

/* Prompt tokens of an input of len bytes as the gateway counts them: ceil(len / 4), at least
 * 1. The daemon bounds inference input with the same count (server.max_input_tokens). */
int64_t af_serving_input_tokens(size_t len);

void af_sim_backend_opts_init(af_sim_backend_opts *o);
int af_sim_backend_new(const af_sim_backend_opts *opts, af_model_backend **out);

/*
 * OpenAI-compatible completions over HTTP (libcurl): POST {base_url}/v1/completions with
 * {"model","prompt","max_tokens"}, headers Content-Type: application/json, traceparent (and
 * tracestate) of the backend_call span, Authorization: Bearer <api_key> when set. Reads
 * choices[0].text and usage.prompt_tokens / usage.completion_tokens. Connection failure ->
 * -EHOSTDOWN, deadline -> AF_ETIMEDOUT, non-2xx -> -EIO, bad JSON -> AF_EPARSE.
 */
typedef struct af_http_backend_opts {
    const char *base_url;        /* required, e.g. "http://127.0.0.1:8000" */
    const char *model;           /* the remote model name; NULL = the gateway's model id */
    const char *api_key;         /* NULL = none */
    uint32_t connect_timeout_ms; /* 2000 */
    /* Chat calls (af_serving_chat_*) stream over one libcurl multi handle and thread per
     * backend: POST {base_url}/v1/chat/completions (or /v1/completions) with "stream": true
     * and stream_options.include_usage when the request streams, each SSE delta relayed as
     * it arrives. */
    uint32_t timeout_ms;  /* whole call at most (a request's own deadline may cut it); 0 = none */
    const char *provider; /* gen_ai.provider.name; NULL = "openai" (the API spoken) */
} af_http_backend_opts;

void af_http_backend_opts_init(af_http_backend_opts *o);
int af_http_backend_new(const af_http_backend_opts *opts, af_model_backend **out);

/* ---------------------------------------------------------------------------------------- */
/* Gateway.                                                                                  */

typedef enum af_routing_strategy {
    AF_ROUTE_ROUND_ROBIN = 0,
    AF_ROUTE_LEAST_LATENCY,
    AF_ROUTE_LEAST_LOAD,
} af_routing_strategy;

/* "round_robin", "least_latency", "least_load". */
const char *af_routing_strategy_name(af_routing_strategy s);
/* 0 or -EINVAL. */
int af_routing_strategy_parse(const char *name, af_routing_strategy *out);

typedef struct af_serving af_serving;

typedef struct af_serving_opts {
    uint32_t max_batch_size;     /* 32 */
    uint32_t max_wait_time_ms;   /* 100 */
    uint32_t min_batch_size;     /* 1 */
    uint32_t cache_ttl_ms;       /* 300000 (5 min); 0 = cache off */
    uint32_t cache_max_entries;  /* 10000 */
    uint32_t max_queue;          /* 1024 queued requests; more = AF_EFULL "overloaded" */
    uint32_t workers;            /* 1 batcher thread */
    uint32_t request_timeout_ms; /* 30000, per request unless the request says otherwise */
    af_routing_strategy routing; /* round_robin */
    af_cost_tracker *costs;      /* borrowed; NULL = cost computed but not recorded */
    af_tracing *tracing;         /* borrowed; NULL = use `tracer` */
    af_tracer *tracer;           /* borrowed; NULL = no spans */
    /* Chat calls (af_serving_chat_*). Zero in the first three means their default. */
    uint32_t max_chat_calls;      /* 4096 in progress at most; more = AF_EFULL */
    uint32_t breaker_failures;    /* 5 consecutive failures open an instance's breaker */
    uint32_t breaker_cooldown_ms; /* 10000: an open breaker lets one probe through after it */
    uint32_t connect_retries;     /* 2 more tries elsewhere when an instance cannot be connected to
                                     (0 = none) */
    /* Record prompt and answer on the spans (gen_ai.input.messages, gen_ai.output.messages);
     * off by default. With `tracing`, its components.model_serving.capture_content also
     * turns it on (read per call, so a reload applies). */
    bool capture_content;
} af_serving_opts;

void af_serving_opts_init(af_serving_opts *o);
/* Starts the batcher threads. 0, -EINVAL (zero batch sizes, min > max, max_batch_size above
 * 1024, zero queue, workers 0 or above 64), -ENOMEM or a pthread error. */
int af_serving_new(const af_serving_opts *opts, af_serving **out);
/* Stops the batchers (queued requests fail with AF_ESHUTDOWN) and frees everything. No
 * af_serving_infer may still be running. NULL is a no-op. */
void af_serving_free(af_serving *s);

/* The original's Model. */
typedef struct af_model_info {
    const char *id;   /* required */
    const char *name; /* required */
    const char *version;
    const char *framework;
    uint64_t memory_mb;
    double price_per_1k_tokens;    /* cost per 1000 prompt + completion tokens */
    double gpu_price_per_hour;     /* cost per hour of backend time */
    double input_usd_per_million;  /* USD per million input (prompt) tokens */
    double output_usd_per_million; /* USD per million output (completion) tokens */
    const char *owned_by;          /* /v1/models owned_by; NULL = "agentaflow" */
    uint32_t default_max_tokens;   /* chat calls without max_tokens; 0 = 256 */
} af_model_info;

/* Registers a model (span model_serving.register_model). 0, -EINVAL ("model ID cannot be
 * empty", ...), -EEXIST or -ENOMEM; `err` (may be NULL) receives the message. */
int af_serving_register_model(af_serving *s, const af_span_context *parent, const af_model_info *m,
                              char *err, size_t err_len);

typedef struct af_instance_opts {
    const char *id;       /* required, unique in the gateway */
    const char *endpoint; /* informational (JSON); NULL = "" */
    uint32_t max_load;    /* requests in flight at most; 0 = unlimited */
} af_instance_opts;

/* Adds an instance serving model_id through `backend` (owned from now on, even on failure).
 * 0, -EINVAL, AF_ENOTFOUND (unknown model), -EEXIST, -ENOSPC (64 instances per model at most)
 * or -ENOMEM. */
int af_serving_add_instance(af_serving *s, const char *model_id, const af_instance_opts *o,
                            af_model_backend *backend);
/* Marks an instance up or down (a down instance is never routed to). 0 or AF_ENOTFOUND. */
int af_serving_set_instance_available(af_serving *s, const char *instance_id, bool available);

typedef struct af_inference_request {
    const char *id;       /* NULL or "" = "req-<n>" */
    const char *model_id; /* required */
    const char *input;    /* required, non-empty */
    size_t input_len;     /* AF_LEN_NUL = strlen(input) */
    uint32_t max_tokens;  /* 0 = 64 */
    uint32_t timeout_ms;  /* 0 = opts.request_timeout_ms */
} af_inference_request;

typedef struct af_inference_response {
    char request_id[64];
    char *output; /* malloc'd copy owned by the response, NUL-terminated */
    size_t output_len;
    uint64_t latency_ns; /* whole request, as the caller saw it */
    bool cache_hit;
    uint32_t batch_size; /* 0 for a cache hit */
    int64_t prompt_tokens;
    int64_t completion_tokens;
    double cost;
    char instance_id[64]; /* "" for a cache hit */
    uint64_t completed_at_ns;
    char error[192]; /* message for a failure, "" on success */
} af_inference_response;

/*
 * Serves one request, blocking until the answer or the deadline (span model_serving.inference,
 * child of `parent`, NULL = current span). Returns 0, -EINVAL, AF_ENOTFOUND (unknown model),
 * AF_EFULL (overloaded), AF_ETIMEDOUT, -EHOSTDOWN (no instance up or backend unreachable),
 * AF_ESHUTDOWN, or a backend error; resp->error says which in words. Release resp with
 * af_inference_response_clear (also after a failure).
 */
int af_serving_infer(af_serving *s, const af_span_context *parent, const af_inference_request *req,
                     af_inference_response *resp);
/* Releases the output r owns and zeroes it, leaving the struct (the caller's) ready for
 * another _infer; NULL is a no-op. `_clear`, not `_free`: r is embedded, never allocated by
 * the library. */
void af_inference_response_clear(af_inference_response *r);
/* The former name of af_inference_response_clear, kept because it is part of the released
 * ABI (AGENTAFLOW_0) and services outside this tree call it; same behaviour. New code uses
 * _clear. */
void af_inference_response_free(af_inference_response *r);

/* Removes expired cache entries; returns how many. */
size_t af_serving_clean_expired_cache(af_serving *s);

typedef struct af_serving_stats {
    uint32_t total_models;
    uint32_t total_instances;
    uint32_t available_instances;
    uint32_t pending_requests; /* queued, not yet taken by a batcher */
    uint32_t in_flight;        /* taken by a batcher, not yet answered */
    uint64_t requests, cache_hits, cache_misses, batches, overloaded, timeouts, errors;
    uint64_t cache_entries, cache_expired;
} af_serving_stats;

void af_serving_stats_get(af_serving *s, af_serving_stats *out);

typedef struct af_instance_stats {
    char id[64];
    char model_id[64];
    char kind[16]; /* backend kind */
    bool available;
    uint32_t load; /* requests in flight */
    uint32_t max_load;
    double avg_latency_ms; /* moving average (alpha 0.2); 0 before the first answer */
    uint64_t served, failures;
    char breaker[12]; /* "closed", "open", "half_open" */
    uint32_t consecutive_failures;
} af_instance_stats;

/* Copies up to cap instances (registration order); returns how many exist. */
size_t af_serving_instances(af_serving *s, af_instance_stats *out, size_t cap);

/*
 * One JSON object: {"serving": {total_models, pending_requests, max_batch_size,
 * min_batch_size, max_wait_time_ms, ...}, "cache": {total_entries, total_hits,
 * expired_entries, cache_ttl_sec}, "routing": {total_instances, available_instances,
 * routing_strategy, models_registered, instances: [{id, model_id, endpoint, backend,
 * simulated, available, current_load, max_load, average_latency_ms, served, failures,
 * breaker ("closed", "open", "half_open"), consecutive_failures}]}, "models": [{id, name,
 * version, framework, owned_by, memory_size_mb, loaded_at_unix_ns, pricing:
 * {input_per_million, output_per_million, gpu_hourly, per_1k_tokens}}]} (the original's keys
 * and the gateway's). *out malloc'd; 0 or -ENOMEM.
 */
int af_serving_metrics_json(af_serving *s, char **out);

/* ---------------------------------------------------------------------------------------- */
/* Chat / text completions (the LLM gateway's seam; issue #16).                              */
/*
 * One request in the OpenAI shape, answered asynchronously: af_serving_chat_start() checks and
 * copies the request and returns at once; the answer arrives through callbacks, the text as
 * deltas when it streams, then exactly one on_done. The daemon's /v1/chat/completions and
 * /v1/completions routes sit on this.
 *
 * Ownership: the request and everything it points to are borrowed for the duration of
 * af_serving_chat_start only (copied). The af_chat_call handle is reference counted: the caller
 * holds one reference from a successful start until af_chat_call_release; the gateway holds
 * its own until on_done has returned. af_chat_result is owned by the gateway and valid only
 * during on_done (copy what you need; content is freed after on_done returns).
 *
 * Threads: all functions are thread-safe. Callbacks run on a gateway thread (the engine
 * thread of the instance's backend: one per simulated or HTTP backend, never one per call;
 * a custom blocking backend's call thread) or, for answers known at once (a cache hit, no
 * instance up, a deadline already past), on the thread of af_serving_chat_start before it
 * returns; never concurrently for one call, on_delta in order, on_done last. A callback must
 * not block (it holds up every stream of that backend) and must not call af_serving_free; it
 * may call af_serving_chat_cancel and af_chat_call_release.
 */

typedef struct af_chat_message {
    const char *role;    /* "system", "user", "assistant", "tool", ... */
    const char *content; /* may be NULL for an empty message */
    size_t content_len;  /* AF_LEN_NUL = strlen(content) */
} af_chat_message;

typedef enum af_chat_operation {
    AF_CHAT_OP_CHAT = 0,       /* /v1/chat/completions: messages */
    AF_CHAT_OP_TEXT_COMPLETION /* /v1/completions: prompt */
} af_chat_operation;

typedef struct af_chat_request {
    af_chat_operation operation;
    const char *model;               /* required: a registered model id */
    const af_chat_message *messages; /* chat: at least one */
    size_t n_messages;
    const char *prompt;  /* text completion: required */
    size_t prompt_len;   /* AF_LEN_NUL = strlen(prompt) */
    uint32_t max_tokens; /* 0 = model default */
    double temperature;  /* NAN = not given */
    bool stream;         /* deltas via on_delta as produced; else no on_delta */
    bool include_usage;  /* the client's stream_options.include_usage, for the caller (whether
                            to send a usage chunk): the gateway always asks a streaming backend
                            for usage and always puts it in the result */
    const char *user;    /* may be NULL */
    uint32_t timeout_ms; /* 0 = gateway default (request_timeout_ms) */
    /* The response id (gen_ai.response.id, af_chat_result.id), at most 63 bytes; NULL or ""
     * = the gateway makes one. A front door that must send the id before the call ends (the
     * first chunk of a stream) makes it and passes it here, so the trace holds one id. */
    const char *id;
} af_chat_request;

typedef struct af_chat_result {
    char id[64];              /* the gateway's "chatcmpl-..." / "cmpl-..." (the inference span's
                                 gen_ai.response.id; the CLIENT span carries the backend's own) */
    char response_model[128]; /* gen_ai.response.model */
    char provider[32];        /* gen_ai.provider.name value for the backend */
    char instance_id[64];     /* "" when no instance was reached (cache hit, early failure) */
    char *content;            /* full text when !stream; NULL when streamed (owned by the result) */
    size_t content_len;
    char finish_reason[16]; /* "stop", "length", "cancelled", "error", ... */
    int64_t input_tokens, output_tokens;
    uint64_t created_s; /* unix seconds */
    uint64_t time_to_first_token_ns, duration_ns;
    double cost_usd;
    bool cache_hit;
    af_span_context client_span; /* the backend CLIENT span (for exemplars); all-zero if none */
    /* On failure: "model_not_found", "overloaded", "timeout", "backend_unavailable",
     * "backend_error", "invalid_response", "cancelled", "shutdown", "internal_error"; "" on
     * success. */
    char error_type[32];
    char error[192]; /* human message on failure, "" on success */
} af_chat_result;

typedef struct af_chat_callbacks {
    /* A piece of the answer, in order (only when req->stream). Must not block. */
    void (*on_delta)(void *ctx, const char *text, size_t len);
    /* Exactly once, last. rc 0, or -ECANCELED (af_serving_chat_cancel), AF_ETIMEDOUT,
     * -EHOSTDOWN (no instance up / backend unreachable), AF_EFULL (every instance at
     * max_load), -EIO (backend answered with an error), AF_EPARSE (unreadable answer),
     * AF_ESHUTDOWN, -ENOMEM. res is valid during the call only. An answer already partly
     * streamed that then fails still ends here with rc != 0. */
    void (*on_done)(void *ctx, int rc, const af_chat_result *res);
} af_chat_callbacks;

typedef struct af_chat_call af_chat_call;

/*
 * Starts one request (span model_serving.inference, child of `parent`, NULL = current span).
 * Returns 0 (on_done will come; *out holds the caller's reference) or a negative code with NO
 * callback and *out NULL: -EINVAL (a missing or malformed field; `err` says which, when
 * err_len > 0), AF_ENOTFOUND (unknown model), AF_EFULL (too many calls in progress), -ENOMEM,
 * AF_ESHUTDOWN. cb->on_done is required; cb->on_delta is required when req->stream.
 */
int af_serving_chat_start(af_serving *s, const af_span_context *parent, const af_chat_request *req,
                          const af_chat_callbacks *cb, void *ctx, af_chat_call **out, char *err,
                          size_t err_len);
/* Aborts the call: the backend request is aborted and on_done comes with -ECANCELED (unless it
 * already came or is coming with another result). Idempotent, any thread, also from inside
 * the call's own callbacks. The caller must still hold its reference, and the gateway must
 * not have been freed (af_serving_free ends every call first, with AF_ESHUTDOWN). */
void af_serving_chat_cancel(af_chat_call *call);
/* Drops the caller's reference; safe before or after on_done. NULL is a no-op. */
void af_chat_call_release(af_chat_call *call);

/* What GET /v1/models lists. */
typedef struct af_serving_model_entry {
    char id[64];
    uint64_t created_s; /* unix seconds of registration */
    char owned_by[64];  /* the model's owner ("agentaflow" unless configured) */
} af_serving_model_entry;

/* Copies up to cap models (registration order); returns how many exist. */
size_t af_serving_models_list(af_serving *s, af_serving_model_entry *out, size_t cap);

AF_API_END
#ifdef __cplusplus
}
#endif
#endif
