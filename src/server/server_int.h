/*
 * server/server_int.h - what the files of src/server share: the server object, the HTTP event
 * loops and their connections, the route table, histograms for the Prometheus exposition and
 * the WebSocket hub.
 *
 * Threads: plain HTTP is served by `event_loops` loop threads ("af-http-N", http_loop.c), each
 * with its own epoll set, connections and caches; the listeners are shared (EPOLLEXCLUSIVE),
 * so a connection lives and dies on the loop that accepted it. Fields marked "loop" belong to
 * their loop's thread. A WebSocket client stays on the loop that read its upgrade request: the
 * connection switches to the WebSocket protocol (ws.c) and keeps using the loop's reads and
 * writes. Other threads hand work over through queues behind mutexes (job completions and
 * WebSocket broadcasts, per loop) and wake the loop through its eventfd; "af-ws-push" is the
 * thread that builds the periodic metrics_update.
 */
#ifndef AF_SERVER_SERVER_INT_H
#define AF_SERVER_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/uio.h>

#include "agentaflow/server.h"
#include "server/guard.h"
#include "server/gw_out.h"
#include "server/http_parse.h"
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
 * headroom so headers and body go out in one write. */
#define AF__RESP_HEADROOM 1024

typedef struct af__resp {
    int status;
    const char *content_type; /* static string */
    af_buf body;              /* starts with AF__RESP_HEADROOM bytes of headroom */
    char allow[64];           /* Allow header for 405 */
    bool www_authenticate;
    const char *headers; /* static extra header lines, each ending in CRLF, or NULL */
    bool openai;         /* a /v1/... request: errors take OpenAI's shape (openai_json.h) */
} af__resp;

typedef struct af__loop af__loop;
typedef struct af__conn af__conn;
/* One call of the OpenAI front door in progress (routes_openai.c). */
typedef struct af__gw af__gw;

typedef struct af__req {
    af_server *srv;
    af__loop *loop;
    af__conn *conn;
    unsigned method;
    const char *method_name;
    const char *path;
    const char *query; /* after '?', NUL-terminated; "" when none */
    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX];
    const char *body;
    size_t body_len;
    af_span span; /* the SERVER span (may be AF_SPAN_NONE) */
    af_span_context span_ctx;
} af__req;

typedef int (*af__handler)(af__req *rq, af__resp *rs);

/* af__route.write: a read (0: the token only with server.auth.read), a write (1: always the
 * token), or a kube-scheduler extender call (the token unless cluster.extender_auth is off). */
#define AF__ROUTE_READ 0
#define AF__ROUTE_WRITE 1
#define AF__ROUTE_EXTENDER 2

typedef struct af__route {
    unsigned methods;
    const char *pattern; /* "/api/v1/gpu/{id}/metrics": {x} matches one segment */
    const char *name;    /* handler name, for the child span */
    af__handler fn;
    unsigned char write;    /* AF__ROUTE_*: what the bearer token guards, when one is set */
    const char *span_name;  /* "api_requests.<METHOD> <pattern>": the SERVER span */
    const char *child_name; /* "api_requests.<name>": the handler's child span */
} af__route;

extern const af__route af__routes[];
extern const size_t af__nroutes;

/* Finds the route for path; *allowed gets the methods any matching pattern accepts. Returns
 * the index of the route that also matches the method, or -1. Fills params. */
int af__route_match(const char *path, unsigned method, unsigned *allowed,
                    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX]);

/* Percent-decodes a matched route's path parameters in place ('+' stays '+': it is a query
 * convention only). 0; otherwise why gets "path parameter <name>: ..." for a 400. */
int af__route_params_decode(int route, char params[AF__MAX_PARAMS][AF_GPU_ID_MAX], char *why,
                            size_t cap);

/* The Allow header value for a method mask: "GET, POST, HEAD" (AF__M_* bit order). */
void af__allow_text(unsigned m, char *out, size_t cap);

/* Response helpers. */
void af__resp_init(af__resp *rs);
void af__resp_free(af__resp *rs);
void af__resp_reset_body(af__resp *rs);
/* {"error":{"code":code,"status":status,"message":msg}}; with rs->openai, OpenAI's
 * {"error":{"message":msg,"type":<of status>,"param":null,"code":code}}. */
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

/* What a write route does once its change is durable: change memory and fill the answer.
 * Runs on the connection's loop (or, at shutdown, on the stopping thread); ctx is the
 * route's. */
typedef void (*af__apply_fn)(af_server *s, void *ctx, af__resp *rs);

typedef struct af__job {
    struct af__job *next;
    af_server *srv;
    af__loop *loop; /* where the answer goes */
    af__conn *conn; /* loop-only; NULL once the connection closed (orphan) */
    char *model_id;
    char *input;
    char *request_id;
    uint32_t max_tokens;
    uint32_t timeout_ms;
    uint64_t deadline_mono; /* the client gets 504 then (inference_timeout_ms); 0 = none */
    af_span_context parent;
    af__resp resp; /* filled by the worker */
    /* A store commit (persist.c) instead of an inference: apply runs after the commit. */
    af__apply_fn apply;
    af__apply_fn undo; /* a failed commit, before its 503 (may be NULL) */
    /* A route's own blocking work instead of an inference (cluster bind's Kubernetes calls):
     * a worker runs it to fill resp, with no inference deadline; apply (may be NULL) then
     * runs on the loop just before the answer is sent, even when the client has gone. */
    void (*work)(struct af__job *j);
    void *ctx;
    void (*ctx_free)(void *ctx);
    int commit_rc;
    char commit_err[256];
} af__job;

/* The request in progress on a connection: what the middleware, the route and the response
 * need after the head's bytes are gone (the head is parsed in place in the receive buffer,
 * which a body read may move). */
typedef struct af__txn {
    bool active;     /* between the head and the response */
    bool keep_alive; /* the client keeps the connection after this response */
    bool too_large;
    bool http10;
    int route;
    unsigned allowed; /* methods the path's patterns accept (405's Allow) */
    char params[AF__MAX_PARAMS][AF_GPU_ID_MAX];
    unsigned method;
    const char *method_name;
    char path[512];
    char *query; /* malloc'd copy after '?', or NULL */
    char authorization[512];
    char accept[256]; /* metrics listener: text format or OpenMetrics */
    af_buf body;
    af__resp resp;
    af__job *job;
    af__gw *gw; /* an OpenAI front-door call answering this request (routes_openai.c) */
    af_span span;
    uint64_t start_mono;
} af__txn;

/* ---------------------------------------------------------------------------------------- */
/* WebSocket hub (ws.c).                                                                     */

/* A server text frame, built once and shared by reference among the clients' queues. */
typedef struct af__ws_msg af__ws_msg;
/* A connection's WebSocket state: its queue and the frame reader. */
typedef struct af__ws_client af__ws_client;

/* ---------------------------------------------------------------------------------------- */
/* Model counters for the exposition.                                                        */

#define AF__MAX_MODELS 16
#define AF__MAX_PRIOS 16

typedef struct af__model_metrics {
    char id[129]; /* a model id of up to 128 bytes (server/limits.h), whole */
    uint64_t ok, errors, cache_hits, cache_misses, tokens;
    af__hist latency;
    af__hist batch;
} af__model_metrics;

/* One (operation, model) of the GenAI families (metrics_genai.c). */
#define AF__MAX_GENAI_ROWS 32
typedef struct af__genai_row {
    char op[24];
    char model[129];
    char error_type[32]; /* "" for the successful calls; failed ones only fill `duration` */
    af__hist input_tokens, output_tokens, duration, ttft;
} af__genai_row;

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

/* One HTTP connection, owned by its loop. */
typedef enum af__conn_state {
    AF__CONN_HEAD,    /* reading a request head */
    AF__CONN_BODY,    /* reading a Content-Length body */
    AF__CONN_CHUNKED, /* reading a chunked body */
    AF__CONN_BUSY,    /* the route answers later (a worker job) */
    AF__CONN_WS,      /* upgraded: the bytes are WebSocket frames (ws.c) */
} af__conn_state;

struct af__conn {
    af__loop *loop;
    int fd;
    bool metrics;     /* accepted on the Prometheus listener */
    bool close_after; /* close once the pending output is written */
    bool lingering;   /* our side is shut; reading the client's last bytes until it closes */
    uint32_t events;  /* what epoll watches now */
    af__conn_state state;
    af__conn *prev, *next;         /* the loop's timeout list, oldest deadline first; then the
                                    * list of closed connections waiting to be freed */
    af__conn *all_prev, *all_next; /* every open connection of the loop */
    uint64_t deadline_mono;        /* the current request must arrive / the output move by then */
    bool timed;                    /* on the timeout list (not while BUSY) */
    af_buf rx;                     /* received bytes; [rx_off, rx.len) are not consumed yet */
    size_t rx_off;
    af_buf tx; /* output the socket did not take yet; [tx_off, tx.len) */
    size_t tx_off;
    uint64_t body_left; /* AF__CONN_BODY */
    af__http_chunked chunked;
    char peer[46]; /* the client's address, for the span */
    af__txn txn;
    af__ws_client *ws; /* upgraded connections; freed with the connection */

    /* TLS (tls.h); ssl is NULL on a plain listener. A blocked TLS read may have to write
     * first (the handshake) and a blocked write to read first: it then waits for the other
     * readiness. */
    struct ssl_st *ssl;
    bool tls_read_on_out;
    bool tls_write_on_in;
    bool tls_ready; /* on the loop's tls_ready list */
    af__conn *ready_next;
};

/* One HTTP event-loop thread. */
struct af__loop {
    af_server *srv;
    unsigned index;
    pthread_t thread;
    bool started;
    int epfd;
    int wake_fd;                       /* eventfd: job completions, streams, stop */
    af__conn *timed_head, *timed_tail; /* loop */
    af__conn *conns;                   /* loop: every open connection */
    af__conn *dead;                    /* loop: closed this turn, freed at its end */
    uint32_t n_conns;                  /* loop */
    uint32_t http_active;              /* loop: transactions in progress */
    bool listening;                    /* loop: the API listener is in this loop's epoll set */
    bool listening_metrics;            /* loop: and the metrics listener */
    uint64_t accept_warned_until;      /* loop: the next warning about it */
    uint64_t stop_deadline_mono;       /* loop */
    af__job *done_head;                /* finished jobs for this loop (job_mu) */
    af__gpus_cache gpus;               /* loop: GET /api/v1/gpus */
    af__ws_client *ws_clients;         /* loop: its WebSocket clients */
    af__ws_msg **ws_outbox;            /* broadcasts waiting for this loop (srv->ws_mu) */
    size_t ws_outbox_len, ws_outbox_cap;
    /* front-door calls with output or an answer for this loop (gw_out.h; routes_openai.c) */
    af__gw_queue gwq;
    /* loop: TLS connections to read at the end of the turn (input their sessions read ahead
     * is invisible to epoll), in order */
    af__conn *tls_ready_head, *tls_ready_tail;
};

struct af_server {
    af_server_opts o;
    char *bind_address, *auth_token, *title;
    char *kube_api_url, *kube_sa_dir; /* cluster.bind's Kubernetes API (routes_cluster.c) */
    int port, metrics_port;
    uint64_t started_wall_ns, started_mono_ns;
    unsigned propagators; /* OTEL_PROPAGATORS, read once: what the middleware extracts */

    /* HTTP: the listeners (owned; shut down on stop, closed by af_server_free) and loops */
    int api_fd, metrics_fd; /* -1 = none */
    struct af__tls *tls;    /* both listeners speak TLS; NULL = plain HTTP */
    af__loop *loops;
    unsigned n_loops;
    bool running;    /* af_server_start was called */
    af__guard guard; /* the request gate and descriptor-exhaustion state (guard.c) */
    atomic_bool stopping;

    /* jobs */
    pthread_mutex_t job_mu;
    pthread_cond_t job_cv;
    af__job *job_head, *job_tail; /* waiting for a worker */
    af__job *done_head;           /* finished, waiting for the loop */
    uint32_t inflight;            /* queued + running + done-not-sent */
    uint32_t commits_pending;     /* store commits not answered by the writer yet */
    uint32_t chat_calls;          /* gateway calls whose callbacks may still come */
    pthread_cond_t chat_cv;       /* chat_calls reached 0 (monotonic clock) */
    bool chat_calls_stuck;        /* some never ended: af_server_free leaves memory alone */
    bool workers_stop;
    pthread_t *workers;
    uint32_t n_workers;

    /* WebSocket hub: the clients belong to their loops; the loops' outboxes and the push
     * thread's stop flag are shared (ws_mu, ws_cv) */
    pthread_t ws_thread; /* "af-ws-push" */
    bool ws_started;
    bool ws_exit; /* ws_mu */
    pthread_mutex_t ws_mu;
    pthread_cond_t ws_cv;
    atomic_uint n_clients;
    atomic_ulong next_client_id;
    atomic_ulong ws_sent, ws_dropped, ws_rejected;

    /* metrics */
    pthread_mutex_t met_mu;
    af__hist *http_hist; /* one per route, + 1 for unmatched */
    uint64_t *http_errors;
    af__model_metrics models[AF__MAX_MODELS];
    size_t n_models;
    uint64_t models_folded; /* inference outcomes recorded under model "other" */
    af__genai_row genai[AF__MAX_GENAI_ROWS];
    size_t n_genai;
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
};

/* http_loop.c and http_accept.c, http_conn.c, http_resp.c: the HTTP event loops. */
/* Binds and listens on addr:port (0 = ephemeral): *fd_out, *port_out. err gets a sentence. */
int af__http_listen(const char *addr, int port, int *fd_out, int *port_out, char *err,
                    size_t err_len);
/* Creates n loops watching s->api_fd and s->metrics_fd. */
int af__loops_new(af_server *s, unsigned n);
int af__loops_start(af_server *s);
/* Wakes every loop so it sees `stopping`, and joins them. */
void af__loops_stop(af_server *s);
void af__loops_free(af_server *s);
/* Any thread: makes the loop look at its finished jobs. */
void af__loop_wake(af__loop *l);
/* Loop: sends the transaction's response (headers + body) and ends the transaction. */
void af__conn_respond(af__conn *c);
/* Loop: after an asynchronous answer, handles requests that arrived meanwhile; on a
 * WebSocket connection, reads its frames and sends its queue as far as the socket allows. */
void af__conn_resume(af__conn *c);
/* Loop: writes bytes to the connection (what the socket does not take waits, in order). */
void af__conn_write(af__conn *c, const void *data, size_t len);
/* Loop: sends rs (its status, headers and body) with "connection: close", then closes. */
void af__conn_refuse(af__conn *c, af__resp *rs);
/* Loop: writes the pieces in order with one send (writev) where the socket takes them; what
 * it does not take waits, in order, as for af__conn_write. */
void af__conn_writev(af__conn *c, const struct iovec *iov, int n);
/* Loop: the head of a streamed answer (server-sent events) into h (AF__RESP_HEADROOM bytes):
 * 200 with content_type and, on HTTP/1.1, chunked transfer encoding; returns its length. The
 * transaction stays open; af__conn_stream_send sends the head with the first part. */
size_t af__conn_stream_head(af__conn *c, const char *content_type, char *h);
/* Loop: one turn of a streamed answer, in one write: head (head_len 0: none), the n parts (8
 * at most) as
 * one chunk on HTTP/1.1 (no chunk when they are empty) and, when last, the end of the answer;
 * then the transaction ends as after af__conn_respond. Output the socket does not take
 * waits, bounded by the write-progress deadline. */
void af__conn_stream_send(af__conn *c, const char *head, size_t head_len, const struct iovec *parts,
                          int n, bool last);
/* Loop: the connection closes once its pending output is written. */
void af__conn_finish(af__conn *c);
/* Loop: closes the connection now. */
void af__conn_close(af__conn *c, const char *why);

/* server.c: the transaction (the tracing middleware, routing, the response). */
/* Loop: a request head arrived; begins the transaction (the SERVER span starts here). */
void af__txn_begin(af__conn *c, const af__http_request *req);
/* Loop: the body is complete (or there is none): runs the route. The response is sent
 * before this returns unless the route went asynchronous (state AF__CONN_BUSY). */
void af__txn_dispatch(af__conn *c);
/* Loop: the connection closes with a transaction open (client gone, timeout, stop). */
void af__txn_abort(af__conn *c, const char *why);
/* Loop: the response was written: the middleware's epilogue (status and duration on the
 * span, the histogram), then the transaction's resources go. */
void af__txn_end(af__conn *c);
void af__txn_free(af__txn *t);
/* Loop: moves finished jobs to their connections. */
void af__jobs_drain(af__loop *l);
/* Loop: the connection's job passed its deadline: answers 504 deadline_exceeded now and
 * orphans the job (the worker's late answer is dropped when it arrives). */
void af__job_expire(af__conn *c);

/* server.c: a gateway call started whose callbacks may still come (they use the loops and
 * the metrics); af_server_stop waits, bounded, for every one to have ended. _end is the last
 * thing the call's final callback does with the server. */
void af__chat_call_begin(af_server *s);
void af__chat_call_end(af_server *s);

/* persist.c: write routes. With a store, queues op for commit and answers later (AF__ASYNC):
 * validate -> commit -> apply -> answer, so a failed commit (503 storage_unavailable) leaves
 * memory untouched. Without a store, applies at once (returns 0). ctx is the route's and is
 * released with ctx_free (may be NULL) in every case. */
int af__commit(af__req *rq, af__resp *rs, const af_store_op *op, af__apply_fn apply, void *ctx,
               void (*ctx_free)(void *ctx));
/* af__commit for a change already made in memory (a cluster hold, taken where it was chosen):
 * undo runs on the loop when the commit failed, before the 503 is answered. */
int af__commit_or_undo(af__req *rq, af__resp *rs, const af_store_op *op, af__apply_fn apply,
                       af__apply_fn undo, void *ctx, void (*ctx_free)(void *ctx));
/* A commit job's answer (apply on success, 503 on failure): on the loop, or at shutdown. */
void af__commit_finish(af_server *s, af__job *j);
/* Frees a GET /api/v1/gpus cache (routes.c). */
void af__gpus_cache_free(af__gpus_cache *c);

/* routes_openai.c: the OpenAI front door's calls. */
/* Loop: moves the output and answers the gateway produced to their connections. */
void af__gw_drain(af__loop *l);
/* Loop: the connection of a call in progress closes (client gone, timeout, stop): the
 * backend call is cancelled and the span says why. */
void af__gw_abort(af__conn *c, const char *why);
/* Loop (at free): drops the calls still queued for a loop that will not run again. */
void af__gw_loop_free(af__loop *l);

/* metrics_genai.c: the GenAI client/server families (any thread). sc: the exemplar. */
void af__metrics_genai(af_server *s, const char *operation, const char *model, int rc,
                       const af_chat_result *r, bool streamed, const af_span_context *sc);

/* metrics.c: recorders (thread-safe) and the exposition. */
void af__metrics_init(af_server *s);
void af__metrics_free(af_server *s);
void af__metrics_http(af_server *s, int route, int status, double seconds,
                      const af_span_context *sc);
/* r is read only when rc is 0 (may be NULL otherwise). */
void af__metrics_inference(af_server *s, const char *model_id, int rc,
                           const af_inference_response *r, const af_span_context *sc);
void af__metrics_workload(af_server *s, int32_t priority, af_workload_status to,
                          const af_workload_info *w, const af_span_context *sc);
void af__metrics_schedule(af_server *s, af_gpu_strategy strategy, double seconds, size_t placed,
                          size_t still_pending, const af_span_context *sc);
int af__metrics_render(af_server *s, bool openmetrics, af_buf *out);

/* ws.c: the WebSocket hub. */
/* Queues a message for every client (any thread). Takes the JSON string's bytes (copied). */
void af__ws_broadcast(af_server *s, const char *json, size_t len);
/* Loop: a GET /ws with Upgrade: websocket arrived (its head parsed, req valid during the
 * call): answers 101 and the connection becomes a WebSocket client (AF__CONN_WS), or answers
 * the JSON refusal and closes. */
void af__ws_upgrade(af__conn *c, const af__http_request *req);
/* Loop: an upgraded connection's turn, while it has no output pending: the frames in
 * c->rx[rx_off..) are handled, and queued messages are written as far as the socket
 * allows. */
void af__ws_input(af__conn *c);
/* Loop: the connection is closing: its client leaves the hub (idempotent). */
void af__ws_detach(af__conn *c);
/* Frees a connection's WebSocket state (NULL is a no-op). */
void af__ws_client_free(af__ws_client *w);
/* Loop: moves the broadcasts waiting for this loop to its clients. */
void af__ws_drain(af__loop *l);
/* Loop: the server is stopping: every client gets close 1001 (one that is not reading its
 * output is closed at once instead). */
void af__ws_loop_stop(af__loop *l);
/* The push thread ("af-ws-push": a metrics_update every ws_push_interval_ms). */
int af__ws_start(af_server *s);
void af__ws_stop(af_server *s);
/* Releases the broadcasts no loop took (before the loops are freed). */
void af__ws_free(af_server *s);
/* The DashboardMetrics object (the REST /api/v1/metrics body and the metrics_update data). */
int af__dashboard_metrics_json(af_server *s, af_buf *out);

/* routes.c helpers used by the WebSocket and the load generator. */
void af__put_alert(af_buf *b, const af_gpu_alert *a);
int af__schedule_pass(af_server *s);
void af__system_update(af_server *s, const char *event, const char *id);

/* loadgen.c: the load generator thread, and GPU usage pricing + alert fan-out callbacks
 * registered on the collector for the server's whole life. */
int af__loadgen_start(af_server *s);
void af__loadgen_stop(af_server *s);
void af__collector_hooks_add(af_server *s);
void af__collector_hooks_remove(af_server *s);

/* The tracers of the API and WebSocket spans, asked per operation because a reload may flip
 * their components.* toggles (NULL: no span). */
static inline af_tracer *af__api_tracer(const af_server *s)
{
    return af_tracing_tracer_for(s->o.tracing, AF_TRACE_API_REQUESTS);
}
static inline af_tracer *af__ws_tracer(const af_server *s)
{
    return af_tracing_tracer_for(s->o.tracing, AF_TRACE_WEBSOCKET_EVENTS);
}

#endif
