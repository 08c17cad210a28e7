/*
 * server/server_int.h - what the files of src/server share: the server object, the per-
 * connection state, the route table, histograms for the Prometheus exposition and the
 * WebSocket hub.
 *
 * Threading rule: everything named lws_* and every field marked "loop" is touched only on the
 * event-loop thread ("af-server"). Other threads hand work over through the two queues below
 * (job completions, WebSocket broadcasts), each behind its own mutex, and wake the loop with
 * lws_cancel_service().
 */
#ifndef AF_SERVER_SERVER_INT_H
#define AF_SERVER_SERVER_INT_H

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>

#include "agentaflow/server.h"
#include "util/buf.h"

/* ---------------------------------------------------------------------------------------- */
/* Histograms with OpenMetrics exemplars (one per bucket: the latest observation there).     */

#define AF__HIST_MAX_BOUNDS 16

typedef struct af__exemplar {
    bool set;
    char trace_id[33];
    char span_id[17];
    double value;
    uint64_t time_ns;
} af__exemplar;

typedef struct af__hist {
    const double *bounds; /* upper bounds, ascending; +Inf implied */
    size_t n_bounds;
    uint64_t counts[AF__HIST_MAX_BOUNDS + 1]; /* per bucket (not cumulative) */
    af__exemplar ex[AF__HIST_MAX_BOUNDS + 1];
    uint64_t count;
    double sum;
} af__hist;

void af__hist_init(af__hist *h, const double *bounds, size_t n_bounds);
/* sc (may be NULL or invalid) becomes the bucket's exemplar when sampled. Caller locks. */
void af__hist_observe(af__hist *h, double v, const af_span_context *sc);

extern const double af__latency_bounds[]; /* seconds, 1 ms .. 30 s */
extern const size_t af__latency_nbounds;

/* ---------------------------------------------------------------------------------------- */
/* Requests, responses and routes.                                                           */

enum {
    AF__M_GET = 1u << 0,
    AF__M_POST = 1u << 1,
    AF__M_PUT = 1u << 2,
    AF__M_DELETE = 1u << 3,
    AF__M_PATCH = 1u << 4,
    AF__M_OPTIONS = 1u << 5,
    AF__M_HEAD = 1u << 6,
};

#define AF__MAX_PARAMS 2
#define AF__ASYNC 1 /* a handler's "the answer comes later" */

/* Bytes reserved in front of a response body: the response headers are written into this
 * headroom so headers and body go out in one write (lws needs LWS_PRE more before them). */
#define AF__RESP_HEADROOM 1024

typedef struct af__resp {
    int status;
    const char *content_type; /* static string */
    af_buf body;              /* starts with AF__RESP_HEADROOM bytes of headroom */
    char allow[64];           /* Allow header for 405 */
    bool www_authenticate;
} af__resp;

typedef struct af__req {
    af_server *srv;
    struct lws *wsi;
    unsigned method;
    const char *method_name;
    const char *path;
    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX];
    const char *body;
    size_t body_len;
    af_span span; /* the SERVER span (may be AF_SPAN_NONE) */
    af_span_context span_ctx;
} af__req;

typedef int (*af__handler)(af__req *rq, af__resp *rs);

typedef struct af__route {
    unsigned methods;
    const char *pattern; /* "/api/v1/gpu/{id}/metrics": {x} matches one segment */
    const char *name;    /* handler name, for the child span */
    af__handler fn;
    bool write;             /* needs the bearer token when one is configured */
    const char *span_name;  /* "api_requests.<METHOD> <pattern>": the SERVER span */
    const char *child_name; /* "api_requests.<name>": the handler's child span */
} af__route;

extern const af__route af__routes[];
extern const size_t af__nroutes;

/* Finds the route for path; *allowed gets the methods any matching pattern accepts. Returns
 * the index of the route that also matches the method, or -1. Fills params. */
int af__route_match(const char *path, unsigned method, unsigned *allowed,
                    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX]);

/* The Allow header value for a method mask: "GET, POST, HEAD" (AF__M_* bit order). */
void af__allow_text(unsigned m, char *out, size_t cap);

/* Response helpers. */
void af__resp_init(af__resp *rs);
void af__resp_free(af__resp *rs);
void af__resp_reset_body(af__resp *rs);
/* {"error":{"code":code,"status":status,"message":msg}} */
void af__resp_error(af__resp *rs, int status, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* Takes a malloc'd JSON string (NULL = out of memory -> 500) and frees it. */
void af__resp_json_take(af__resp *rs, int status, char *json);
/* Maps a component error code to an HTTP error response with msg. */
void af__resp_from_errno(af__resp *rs, int err, const char *msg);

/* ---------------------------------------------------------------------------------------- */
/* Asynchronous inference jobs.                                                              */

typedef struct af__job {
    struct af__job *next;
    af_server *srv;
    struct lws *wsi; /* loop-only; NULL once the connection closed (orphan) */
    char *model_id;
    char *input;
    char *request_id;
    uint32_t max_tokens;
    uint32_t timeout_ms;
    af_span_context parent;
    af__resp resp; /* filled by the worker */
} af__job;

/* Per-connection state (HTTP and WebSocket share the protocol). */
typedef struct af__ws_client af__ws_client;

typedef struct af__pss {
    /* HTTP */
    bool active; /* a transaction is in progress */
    bool ready;  /* the response is ready to send (async completion) */
    bool too_large;
    int route;
    unsigned allowed; /* methods the path's patterns accept (405's Allow) */
    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX];
    unsigned method;
    const char *method_name;
    char path[512];
    af_buf body;
    af__resp resp;
    af__job *job;
    af_span span;
    uint64_t start_mono;
    /* WebSocket */
    af__ws_client *ws;
} af__pss;

/* ---------------------------------------------------------------------------------------- */
/* WebSocket hub.                                                                            */

typedef struct af__ws_msg {
    atomic_uint refs;
    size_t len;
    unsigned char data[]; /* LWS_PRE headroom, then len bytes */
} af__ws_msg;

af__ws_msg *af__ws_msg_new(const char *json, size_t len);
void af__ws_msg_unref(af__ws_msg *m);

struct af__ws_client {
    af__ws_client *next, *prev;
    struct lws *wsi;
    uint64_t id;
    af__ws_msg **q; /* ring of ws_queue_depth */
    uint32_t q_head, q_len;
    uint64_t dropped;
    af_buf rx;
    bool rejected;
    bool closing;
};

/* ---------------------------------------------------------------------------------------- */
/* Model counters for the exposition.                                                        */

#define AF__MAX_MODELS 16
#define AF__MAX_PRIOS 16

typedef struct af__model_metrics {
    char id[64];
    uint64_t ok, errors, cache_hits, cache_misses, tokens;
    af__hist latency;
    af__hist batch;
} af__model_metrics;

typedef struct af__prio_metrics {
    int32_t priority;
    uint64_t submitted, completed, cancelled, failed;
    af__hist queue_time;
} af__prio_metrics;

/* ---------------------------------------------------------------------------------------- */
/* GET /api/v1/gpus: one row per GPU, exactly what the body shows. Rows are zeroed before they
 * are filled so two row arrays compare with memcmp; the body is rendered again only when the
 * rows differ from the ones it was rendered from (a new sample, a scheduler change).        */

typedef struct af__gpu_row {
    char id[AF_GPU_ID_MAX];
    char name[AF_GPU_NAME_MAX];
    const char *state; /* static string */
    double utilization, temperature, power;
    uint64_t memory_total_mb, memory_used_mb, updated_ns;
    uint32_t workloads;
    bool available;
} af__gpu_row;

typedef struct af__gpus_cache {
    af__gpu_row *rows, *scratch; /* rows: what body shows; scratch: this request's */
    size_t n_rows, cap;
    bool valid;
    af_buf body; /* {"gpus":[...],"total":n,"timestamp": */
    af_gpu_sample *samples;
    af_gpu_status *status;
} af__gpus_cache;

/* ---------------------------------------------------------------------------------------- */
/* The server.                                                                               */

struct af_server {
    af_server_opts o;
    char *bind_address, *auth_token, *title;
    struct lws_context *ctx;
    struct lws_vhost *vh_api, *vh_metrics;
    int port, metrics_port;
    uint64_t started_wall_ns, started_mono_ns;
    af_tracer *api_tracer, *ws_tracer;

    pthread_t loop_thread;
    bool loop_started;
    atomic_bool stopping;
    atomic_bool loop_exit;
    /* The API vhost's listening socket, found by its port once lws opened it (lws 4.1 has no
     * call that returns a vhost's listen wsi); -1 = not found. Owned by lws: the loop only
     * shuts it down on stop so new connections are refused. */
    int api_listen_fd;
    uint64_t stop_deadline_mono; /* loop */
    uint32_t http_active;        /* loop: transactions in progress */

    /* jobs */
    pthread_mutex_t job_mu;
    pthread_cond_t job_cv;
    af__job *job_head, *job_tail; /* waiting for a worker */
    af__job *done_head;           /* finished, waiting for the loop */
    uint32_t inflight;            /* queued + running + done-not-sent */
    bool workers_stop;
    pthread_t *workers;
    uint32_t n_workers;

    /* WebSocket hub: clients are loop-only; the outbox is shared */
    af__ws_client *clients;
    atomic_uint n_clients;
    uint64_t next_client_id; /* loop */
    pthread_mutex_t ws_mu;
    af__ws_msg **outbox;
    size_t outbox_len, outbox_cap;
    lws_sorted_usec_list_t push_timer;
    atomic_ulong ws_sent, ws_dropped, ws_rejected;

    /* metrics */
    pthread_mutex_t met_mu;
    af__hist *http_hist; /* one per route, + 1 for unmatched */
    uint64_t *http_errors;
    af__model_metrics models[AF__MAX_MODELS];
    size_t n_models;
    af__prio_metrics prios[AF__MAX_PRIOS];
    size_t n_prios;
    af__hist sched_hist[4];         /* per af_gpu_strategy */
    uint64_t sched_decisions[4][2]; /* [strategy][placed, unplaced] */
    af__hist exec_hist;
    uint64_t requests_total, requests_5xx;

    /* load generator */
    pthread_t loadgen;
    bool loadgen_started;
    pthread_mutex_t lg_mu;
    pthread_cond_t lg_cv;
    bool lg_stop;
    int alert_cb; /* collector callback handles, 0 = none */
    int sample_cb;
    uint64_t last_price_ns[256]; /* per GPU index: previous priced sample */

    af__gpus_cache gpus; /* loop */
};

/* server.c */
void af__server_wake(af_server *s);

/* metrics.c: recorders (thread-safe) and the exposition. */
void af__metrics_init(af_server *s);
void af__metrics_free(af_server *s);
void af__metrics_http(af_server *s, int route, int status, double seconds,
                      const af_span_context *sc);
void af__metrics_inference(af_server *s, const char *model_id, int rc,
                           const af_inference_response *r, const af_span_context *sc);
void af__metrics_workload(af_server *s, int32_t priority, af_workload_status to,
                          const af_workload_info *w, const af_span_context *sc);
void af__metrics_schedule(af_server *s, af_gpu_strategy strategy, double seconds, size_t placed,
                          size_t still_pending, const af_span_context *sc);
int af__metrics_render(af_server *s, bool openmetrics, af_buf *out);

/* ws.c */
void af__ws_timer_start(af_server *s);
/* Queues a message for every client (any thread). Takes the JSON string's bytes (copied). */
void af__ws_broadcast(af_server *s, const char *json, size_t len);
/* Loop: moves the outbox to the clients. */
void af__ws_drain(af_server *s);
int af__ws_callback(af_server *s, struct lws *wsi, enum lws_callback_reasons reason, af__pss *pss,
                    void *in, size_t len);
void af__ws_close_all(af_server *s);
/* The DashboardMetrics object (the REST /api/v1/metrics body and the metrics_update data). */
int af__dashboard_metrics_json(af_server *s, af_buf *out);
/* RFC 3339 UTC with nanoseconds into out[40]. */
void af__rfc3339(uint64_t ns, char out[40]);
/* RFC 3339 UTC with digits (1-9) fraction digits into out (at least 22 + digits bytes). */
void af__rfc3339_frac(uint64_t ns, int digits, char *out);

/* routes.c helpers used by the WebSocket and the load generator. */
void af__put_alert(af_buf *b, const af_gpu_alert *a);
int af__schedule_pass(af_server *s);
void af__system_update(af_server *s, const char *event, const char *id);
/* Frees the handlers' loop-only caches (af_server_free). */
void af__routes_free(af_server *s);

/* loadgen.c: the load generator thread, and GPU usage pricing + alert fan-out callbacks
 * registered on the collector for the server's whole life. */
int af__loadgen_start(af_server *s);
void af__loadgen_stop(af_server *s);
void af__collector_hooks_add(af_server *s);
void af__collector_hooks_remove(af_server *s);

#endif
