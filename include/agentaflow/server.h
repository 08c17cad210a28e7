/*
 * agentaflow/server.h - the daemon's network face: the HTTP JSON API, the dashboard page, the
 * /ws WebSocket (RFC 6455, on the same connections) and the Prometheus endpoint, all served by
 * the daemon's own HTTP/1.1 event loops (threads "af-http-N"), with the tracing middleware,
 * plus the in-process trace store and the built-in load generator.
 *
 * Threads: the event loops never block on slow work. Inference requests are handed to a small
 * pool of worker threads ("af-srv-work") and their HTTP transactions resume when the answer
 * is ready; everything else (scheduler, collector, cost tracker reads) is in-memory and runs
 * on the loops. "af-ws-push" makes the periodic WebSocket metrics_update; the load generator,
 * when on, is one more thread ("af-loadgen").
 *
 * Ownership: af_server_opts is copied (strings too). The components in it are borrowed and
 * must outlive the server; the server never frees them. af_server_stop/free must be called
 * before the components are freed.
 */
#ifndef AGENTAFLOW_SERVER_H
#define AGENTAFLOW_SERVER_H

#include "agentaflow/cluster.h"
#include "agentaflow/cost.h"
#include "agentaflow/export.h"
#include "agentaflow/gpu.h"
#include "agentaflow/serving.h"
#include "agentaflow/store.h"
#include "agentaflow/tracing.h"

#ifdef __cplusplus
extern "C" {
#endif
AF_API_BEGIN

/* ---------------------------------------------------------------------------------------- */
/* Trace store: the last spans exported, grouped by trace id, for /api/v1/traces.           */

typedef struct af_trace_store af_trace_store;

/*
 * Creates a store holding at most max_spans spans (0 = 8192) and max_bytes bytes of span
 * copies (0 = 64 MiB; af_span_copy_bytes), oldest dropped first until both hold, and the
 * exporter that feeds it. Hand *exporter to af_tracing_add_exporter (which owns it from then
 * on); the store reads through it, so free the store before (or right after) the tracing
 * integration is freed and never use it after. 0, -EINVAL or -ENOMEM.
 */
int af_trace_store_new(size_t max_spans, size_t max_bytes, af_exporter **exporter,
                       af_trace_store **out);
void af_trace_store_free(af_trace_store *s);
/* Spans held now. */
size_t af_trace_store_span_count(af_trace_store *s);
/* Bytes of span copies held now, and the bound. */
size_t af_trace_store_bytes(af_trace_store *s);
size_t af_trace_store_max_bytes(af_trace_store *s);

typedef struct af_trace_query {
    const char *service;      /* resource service.name equal to this; NULL = any */
    const char *operation;    /* some span's name contains this; NULL = any */
    uint64_t min_duration_ns; /* trace duration (first start to last end) at least this */
    int error;                /* -1 any, 0 traces without an Error span, 1 with one */
    size_t limit;             /* newest first; 0 = 50 */
} af_trace_query;

void af_trace_query_init(af_trace_query *q);
/* JSON {"traces":[{trace_id, root_name, service, start_time, duration_ms, span_count,
 * error, services:[...]}], "total": n} of the matching traces, newest first. *out malloc'd.
 * 0 or -ENOMEM. */
int af_trace_store_list_json(af_trace_store *s, const af_trace_query *q, char **out);
/* JSON {"trace_id", "spans":[OTLP/JSON-shaped spans with service, start order]} of one
 * trace. AF_ENOTFOUND when no span of it is held, -EINVAL for a malformed id. */
int af_trace_store_get_json(af_trace_store *s, const char *trace_id_hex, char **out);

/* ---------------------------------------------------------------------------------------- */
/* Durable state: the data directory, its store, and the glue that keeps the components'     */
/* state in it (docs/durability.md). The components never see the store: the scheduler and   */
/* the cost tracker report changes through their callbacks (af_state_workload_changed,       */
/* af_state_cost_recorded), restored state goes back through their restore APIs, and the     */
/* server's write routes commit before they apply.                                           */

typedef struct af_state af_state;

typedef struct af_state_opts {
    /* NULL/"" = $STATE_DIRECTORY (systemd) or ./data; created 0700. */
    const char *data_dir;
    bool fsync_full;                   /* true: synchronous=FULL */
    uint32_t retention_costs_days;     /* 400 */
    uint32_t retention_workloads_days; /* 30 */
} af_state_opts;

void af_state_opts_init(af_state_opts *o);
/* The data directory a configured value (NULL/"" = default) means; malloc'd, NULL = ENOMEM. */
char *af_state_resolve_dir(const char *configured);
/*
 * Creates the data directory if needed, takes its lock (one process per directory) and
 * opens the database. Errors, each with a sentence naming the path in err: -EBUSY (another
 * process holds the directory), -EACCES / -EROFS / -ENOSPC / -EIO (cannot create or write
 * it), -EILSEQ (the database is damaged; it is left as it is), -EPROTO (written by a newer
 * version), -ENOMEM.
 */
int af_state_open(const af_state_opts *o, af_state **out, char *err, size_t err_len);
/* The resolved data directory. */
const char *af_state_dir(const af_state *st);
/* The store, for af_server_opts.store. */
af_store *af_state_store(af_state *st);
/* Scheduler on_change / cost tracker on_record callbacks (user = the af_state). */
void af_state_workload_changed(const af_workload_info *w, size_t rr_cursor, void *state);
void af_state_cost_recorded(const af_cost_entry *e, void *state);
/*
 * Puts the saved state back (API GPUs, workloads in submission order with their placement,
 * the round-robin cursor and strategy, the cost ledger as raw entries and hourly roll-ups,
 * alerts with their resolutions; for serve --cluster the fleet's nodes, not ready until their
 * agents report, and its unexpired reservations), then starts the writer, subscribes to new
 * alerts and, with a cluster, starts checkpointing its inventory (on membership changes and
 * every minute; reservations are committed by the extender routes). Any component may be
 * NULL. Borrowed until af_state_detach. 0 or an error with err filled.
 */
int af_state_restore(af_state *st, af_gpu_scheduler *sch, af_gpu_collector *col,
                     af_cost_tracker *costs, af_cluster *cluster, char *err, size_t err_len);
/* Saves the cluster's inventory a last time and stops checkpointing it, unsubscribes from
 * the collector (before either is freed). */
void af_state_detach(af_state *st);
/* Commits what is queued, closes the database and releases the directory. NULL is a no-op. */
void af_state_free(af_state *st);

/* ---------------------------------------------------------------------------------------- */
/* Server.                                                                                   */

typedef struct af_server af_server;

typedef struct af_server_opts {
    const char *bind_address; /* "127.0.0.1"; any other address needs auth_token */
    int port;                 /* 9000; 0 = an ephemeral port (see af_server_port) */
    int metrics_port;         /* 9001; 0 = ephemeral; -1 = no Prometheus listener */
    /* Bearer token required on write routes (POST); secret: never logged or shown. NULL or
     * "" = none, allowed only on a loopback bind address. */
    const char *auth_token;
    uint32_t ws_push_interval_ms; /* 2000: metrics_update broadcast period */
    uint32_t max_ws_clients;      /* 1000; more are closed with 1013 and a reason */
    uint32_t ws_queue_depth;      /* 16 messages per client; the oldest is dropped */
    size_t body_limit;            /* 1 MiB request body; more = 413 */
    uint32_t max_inflight;        /* 256 async requests in flight; more = 503 */
    uint32_t workers;             /* 4 inference worker threads */
    uint32_t event_loops;         /* 0: one HTTP event-loop thread per online CPU (max 8) */
    uint32_t shutdown_timeout_ms; /* 5000: bound for finishing in-flight requests */
    bool load_generator;          /* false: synthetic workloads, inference and costs */
    uint32_t load_interval_ms;    /* 1000: load generator tick */
    const char *title;            /* "AgentaFlow GPU Monitoring" (page title) */

    /* Exposure and hostile input (docs/security.md). Strings and the list are copied. */
    /* Host header values accepted besides the loopback names (localhost, 127.0.0.1, [::1])
     * with the listener's port; an entry without ":port" matches any port. */
    const char *const *allowed_hosts;
    size_t n_allowed_hosts;
    bool auth_read;                 /* false; true: GET routes, /ws and /metrics need the token */
    const char *tls_cert_file;      /* NULL/"" = plain HTTP; PEM chain; both listeners use TLS */
    const char *tls_key_file;       /* PEM private key; required with tls_cert_file */
    const char *tls_client_ca_file; /* NULL/"" = no client certificate; else mutual TLS */
    uint32_t inference_timeout_ms;  /* 30000: an inference past it answers 504 */
    uint32_t max_input_tokens;      /* 8192: longer inference input answers 400 */
    uint32_t max_label_values;      /* 1000 distinct label values per metric family */

    /* Components, borrowed; any may be NULL (its routes then answer 503). */
    af_tracing *tracing;
    af_gpu_scheduler *scheduler;
    af_gpu_collector *collector;
    af_serving *serving;
    af_cost_tracker *costs;
    af_trace_store *traces;
    /* NULL = nothing persists. Otherwise every write route commits its change here before it
     * changes memory and answers (503 storage_unavailable when the commit fails). */
    af_store *store;
    /* The cluster scheduler (serve --cluster): agent reports and the kube-scheduler extender.
     * With cluster_bind, /scheduler/bind creates the Binding through the Kubernetes API at
     * kube_api_url with the token and ca.crt of service_account_dir (both copied). */
    af_cluster *cluster;
    bool cluster_bind;
    /* true: the extender routes (/scheduler/filter, prioritize, bind) need the bearer token like
     * every write route; false: they need none, because kube-scheduler cannot send one (protect the
     * port with a NetworkPolicy or mutual TLS instead). */
    bool extender_auth;
    const char *kube_api_url;        /* "https://kubernetes.default.svc" */
    const char *service_account_dir; /* "/var/run/secrets/kubernetes.io/serviceaccount" */
} af_server_opts;

void af_server_opts_init(af_server_opts *o);

/*
 * Creates the event loop and binds both listeners (so the ports are known on return).
 * Returns 0, -EINVAL (bad option, or a TLS file missing or unusable), -EACCES (non-loopback bind
 * without a token; the reason is in err), -EADDRINUSE / -EIO (cannot listen) or -ENOMEM. err (may
 * be NULL) gets a sentence.
 */
int af_server_new(const af_server_opts *opts, af_server **out, char *err, size_t err_len);
/* Starts the event loop, worker and load generator threads. -EALREADY when running. */
int af_server_start(af_server *s);
/* The bound ports (after af_server_new). 0 for metrics when it has no listener. */
int af_server_port(const af_server *s);
int af_server_metrics_port(const af_server *s);
/*
 * Graceful stop: stops accepting connections and the load generator, lets in-flight requests
 * finish (bounded by shutdown_timeout_ms), closes WebSocket clients with 1001 and joins every
 * thread. Idempotent. Spans are not flushed here: the caller shuts the tracing down next.
 */
void af_server_stop(af_server *s);
/* Stops if needed and frees. NULL is a no-op. */
void af_server_free(af_server *s);

/*
 * Reads the TLS certificate, key and client CA files again (thread-safe; `agentaflow serve`
 * calls it on SIGHUP). Connections accepted from now on use them; open connections keep the
 * ones they started with. On failure the current ones stay and err gets a sentence naming the
 * file. 0, -EINVAL (TLS not configured, or a bad file) or -ENOMEM.
 */
int af_server_reload_tls(af_server *s, char *err, size_t err_len);

/* Sends a {"type":"notification"} WebSocket message to every client (thread-safe).
 * level: "success", "info", "warning" or "error". */
void af_server_notify(af_server *s, const char *title, const char *message, const char *level);
/* WebSocket clients connected now. */
uint32_t af_server_ws_clients(af_server *s);

AF_API_END
#ifdef __cplusplus
}
#endif
#endif
