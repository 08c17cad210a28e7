/*
 * The server object: its lifecycle (listeners, HTTP loops, the WebSocket thread, the worker
 * pool, the load generator) and the inference jobs the workers run.
 *
 * An asynchronous route (inference, cluster bind's Kubernetes calls) queues a job; a worker
 * runs it and posts it to the done list of the loop its connection lives on, then wakes that
 * loop, which writes the answer.
 */
#define AF_LOG_COMPONENT "server"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agentaflow/log.h"
#include "agentaflow/propagation.h"
#include "agentaflow/trace_helpers.h"
#include "server/server_int.h"
#include "server/tls.h"
#include "util/str.h"
#include "util/timeutil.h"

/* ---------------------------------------------------------------------------------------- */
/* Worker pool.                                                                              */

static void job_free(af__job *j)
{
    if (!j)
        return;
    free(j->model_id);
    free(j->input);
    free(j->request_id);
    af__resp_free(&j->resp);
    if (j->ctx_free)
        j->ctx_free(j->ctx);
    free(j);
}

static void run_job(af__job *j)
{
    af_server *s = j->srv;
    af__resp *resp = &j->resp;
    if (j->work) {
        j->work(j);
        return;
    }
    if (j->deadline_mono && af_monotonic_ns() >= j->deadline_mono) {
        /* The loop answered (or is about to answer) 504 already: a request that waited out
         * its deadline in the queue is not run, so a backlog drains instead of feeding the
         * backend work nobody waits for. */
        af__metrics_inference(s, j->model_id, AF_ETIMEDOUT, NULL, &j->parent);
        af__resp_error(resp, 504, "deadline_exceeded", "the deadline passed in the queue");
        return;
    }
    af_inference_request request = {.id = j->request_id,
                                    .model_id = j->model_id,
                                    .input = j->input,
                                    .input_len = AF_LEN_NUL,
                                    .max_tokens = j->max_tokens,
                                    .timeout_ms = j->timeout_ms};
    af_inference_response r;
    memset(&r, 0, sizeof(r));
    int rc = af_serving_infer(s->o.serving, &j->parent, &request, &r);
    af__metrics_inference(s, j->model_id, rc, &r, &j->parent);
    if (rc == AF_ETIMEDOUT) {
        /* The gateway gave up at the same deadline the loop answers at (af__job_expire):
         * whichever is first, the client reads the same error. */
        af__resp_error(resp, 504, "deadline_exceeded", "%s", r.error[0] ? r.error : "timeout");
        af_inference_response_clear(&r);
        return;
    }
    if (rc != 0) {
        af__resp_from_errno(resp, rc, r.error);
        af_inference_response_clear(&r);
        return;
    }
    char tid[33], ts[40];
    af_trace_id_to_hex(j->parent.trace_id, tid);
    af__fmt_rfc3339(r.completed_at_ns, 9, ts);
    af_buf *b = &resp->body;
    af__resp_reset_body(resp);
    resp->status = 200;
    af__buf_puts(b, "{\"request_id\":");
    af__buf_json_string(b, r.request_id, strlen(r.request_id));
    af__buf_puts(b, ",\"model_id\":");
    af__buf_json_string(b, j->model_id, strlen(j->model_id));
    af__buf_puts(b, ",\"output\":");
    af__buf_json_string(b, r.output ? r.output : "", r.output ? r.output_len : 0);
    af__buf_printf(b,
                   ",\"latency_ms\":%.3f,\"cache_hit\":%s,\"batch_size\":%u,"
                   "\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"cost\":%.6f,"
                   "\"instance_id\":",
                   (double)r.latency_ns / 1e6, r.cache_hit ? "true" : "false", r.batch_size,
                   (long long)r.prompt_tokens, (long long)r.completion_tokens, r.cost);
    af__buf_json_string(b, r.instance_id, strlen(r.instance_id));
    af__buf_printf(b, ",\"completed_at\":\"%s\",\"trace_id\":\"%s\"}", ts, tid);
    af_inference_response_clear(&r);
}

static void *worker_main(void *arg)
{
    af_server *s = arg;
    pthread_setname_np(pthread_self(), "af-srv-work");
    pthread_mutex_lock(&s->job_mu);
    for (;;) {
        while (!s->job_head && !s->workers_stop)
            pthread_cond_wait(&s->job_cv, &s->job_mu);
        if (!s->job_head)
            break;
        af__job *j = s->job_head;
        s->job_head = j->next;
        if (!s->job_head)
            s->job_tail = NULL;
        pthread_mutex_unlock(&s->job_mu);
        run_job(j);
        pthread_mutex_lock(&s->job_mu);
        af__loop *l = j->loop;
        j->next = l->done_head;
        l->done_head = j;
        pthread_mutex_unlock(&s->job_mu);
        af__loop_wake(l);
        pthread_mutex_lock(&s->job_mu);
    }
    pthread_mutex_unlock(&s->job_mu);
    return NULL;
}

/* Called by the inference route (and cluster bind, a work job) on the loop. Returns
 * AF__ASYNC, or fills rs with 503 and frees j (its ctx_free runs). */
int af__server_submit_job(af__req *req, af__resp *resp, af__job *j);
int af__server_submit_job(af__req *req, af__resp *resp, af__job *j)
{
    af_server *s = req->srv;
    pthread_mutex_lock(&s->job_mu);
    if (s->inflight >= s->o.max_inflight || s->workers_stop) {
        pthread_mutex_unlock(&s->job_mu);
        job_free(j);
        af__resp_error(resp, 503, "overloaded", "%u requests in flight; try again later",
                       s->o.max_inflight);
        return 0;
    }
    s->inflight++;
    j->srv = s;
    if (s->o.inference_timeout_ms && !j->work)
        j->deadline_mono = af_monotonic_ns() + (uint64_t)s->o.inference_timeout_ms * 1000000ull;
    j->loop = req->loop;
    j->conn = req->conn;
    j->next = NULL;
    af__resp_init(&j->resp);
    if (s->job_tail)
        s->job_tail->next = j;
    else
        s->job_head = j;
    s->job_tail = j;
    pthread_cond_signal(&s->job_cv);
    pthread_mutex_unlock(&s->job_mu);
    req->conn->txn.job = j;
    req->conn->state = AF__CONN_BUSY;
    return AF__ASYNC;
}

void af__jobs_drain(af__loop *l)
{
    af_server *s = l->srv;
    pthread_mutex_lock(&s->job_mu);
    af__job *done = l->done_head;
    l->done_head = NULL;
    pthread_mutex_unlock(&s->job_mu);
    while (done) {
        af__job *j = done;
        done = j->next;
        af__conn *c = j->conn;
        /* Committed changes are applied even when the client has gone. */
        if (j->apply)
            af__commit_finish(s, j);
        if (c) {
            af__resp_free(&c->txn.resp);
            c->txn.resp = j->resp;
            af__resp_init(&j->resp);
            c->txn.job = NULL;
            af__conn_respond(c);
            af__conn_resume(c);
        }
        job_free(j);
        pthread_mutex_lock(&s->job_mu);
        s->inflight--;
        pthread_mutex_unlock(&s->job_mu);
    }
}

void af__job_expire(af__conn *c)
{
    af__txn *t = &c->txn;
    if (t->job) {
        /* j->conn is loop-only, so the worker cannot be looking at it; the job stays counted
         * in flight (its worker is still busy) until af__jobs_drain frees it. */
        t->job->conn = NULL;
        t->job = NULL;
    }
    af__resp_error(&t->resp, 504, "deadline_exceeded",
                   "no answer within server.inference_timeout (%u ms)",
                   c->loop->srv->o.inference_timeout_ms);
    af__conn_respond(c);
    af__conn_resume(c);
}

/* ---------------------------------------------------------------------------------------- */
/* Lifecycle.                                                                                */

void af_server_opts_init(af_server_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->bind_address = "127.0.0.1";
    o->port = 9000;
    o->metrics_port = 9001;
    o->ws_push_interval_ms = 2000;
    o->max_ws_clients = 1000;
    o->ws_queue_depth = 16;
    o->body_limit = 1024 * 1024;
    o->max_inflight = 256;
    o->workers = 4;
    o->event_loops = 0;
    o->shutdown_timeout_ms = 5000;
    o->load_interval_ms = 1000;
    o->title = "AgentaFlow GPU Monitoring";
    o->inference_timeout_ms = 30000;
    o->max_input_tokens = 8192;
    o->max_label_values = 1000;
    o->extender_auth = true;
}

static bool is_loopback(const char *addr)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, addr, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, addr, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return strcmp(addr, "localhost") == 0;
}

static void seterr(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || !err_len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* One loop per online CPU (the loops are the request-serving threads), at most 8. */
static unsigned loops_for(uint32_t configured)
{
    if (configured)
        return configured;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 8 ? 8 : (unsigned)n;
}

/* Limits and the rule that a non-loopback listener needs a token. 0, -EINVAL or -EACCES. */
static int check_opts(const af_server_opts *opts, const char *addr, bool has_token, char *err,
                      size_t err_len)
{
    if (opts->port < 0 || opts->port > 65535 || opts->metrics_port < -1 ||
        opts->metrics_port > 65535 || opts->ws_queue_depth == 0 || opts->body_limit == 0 ||
        opts->max_inflight == 0 || opts->workers == 0 || opts->workers > 64 ||
        opts->ws_push_interval_ms == 0 || opts->event_loops > 64) {
        seterr(err, err_len,
               "invalid server options (ports 0-65535, non-zero limits, at most 64 workers and "
               "64 event loops)");
        return -EINVAL;
    }
    if (!is_loopback(addr) && !has_token) {
        seterr(err, err_len,
               "refusing to listen on %s without an auth token: set server.auth_token or "
               "AGENTAFLOW_AUTH_TOKEN, or bind 127.0.0.1",
               addr);
        return -EACCES;
    }
    return 0;
}

static void init_sync(af_server *s)
{
    pthread_mutex_init(&s->job_mu, NULL);
    pthread_cond_init(&s->job_cv, NULL);
    af__cond_init_monotonic(&s->chat_cv);
    pthread_mutex_init(&s->ws_mu, NULL);
    /* The push thread's waits are deadlines on the monotonic clock. */
    af__cond_init_monotonic(&s->ws_cv);
    pthread_mutex_init(&s->met_mu, NULL);
    pthread_mutex_init(&s->lg_mu, NULL);
    pthread_cond_init(&s->lg_cv, NULL);
}

int af_server_new(const af_server_opts *opts, af_server **out, char *err, size_t err_len)
{
    *out = NULL;
    af_server_opts def;
    if (!opts) {
        af_server_opts_init(&def);
        opts = &def;
    }
    const char *addr = opts->bind_address && *opts->bind_address ? opts->bind_address : "127.0.0.1";
    bool has_token = opts->auth_token && *opts->auth_token;
    int rc = check_opts(opts, addr, has_token, err, err_len);
    if (rc != 0)
        return rc;

    af_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->api_fd = s->metrics_fd = -1;
    atomic_init(&s->guard.reserve_fd, -1); /* af_server_free may run before af__guard_init */
    s->o = *opts;
    s->propagators = af_propagators_from_env();
    s->bind_address = af__strdup(addr);
    s->auth_token = has_token ? af__strdup(opts->auth_token) : NULL;
    s->title = af__strdup(opts->title ? opts->title : "AgentaFlow GPU Monitoring");
    s->o.bind_address = s->bind_address;
    s->o.auth_token = NULL; /* only s->auth_token holds it */
    s->o.title = s->title;
    s->kube_api_url =
        af__strdup(opts->kube_api_url ? opts->kube_api_url : "https://kubernetes.default.svc");
    s->kube_sa_dir =
        af__strdup(opts->service_account_dir ? opts->service_account_dir
                                             : "/var/run/secrets/kubernetes.io/serviceaccount");
    s->o.event_loops = loops_for(opts->event_loops);
    init_sync(s);
    s->started_wall_ns = af_now_ns();
    s->started_mono_ns = af_monotonic_ns();
    rc = -ENOMEM;
    if (!s->bind_address || !s->title || (has_token && !s->auth_token) || !s->kube_api_url ||
        !s->kube_sa_dir)
        goto fail;
    if (af__guard_init(&s->guard, opts, s->bind_address, s->auth_token) != 0)
        goto fail;
    af__metrics_init(s);
    if (!s->http_hist)
        goto fail;
    if ((opts->tls_cert_file && *opts->tls_cert_file) ||
        (opts->tls_key_file && *opts->tls_key_file)) {
        rc = af__tls_new(opts->tls_cert_file, opts->tls_key_file, opts->tls_client_ca_file, &s->tls,
                         err, err_len);
        if (rc != 0)
            goto fail;
    } else if (opts->tls_client_ca_file && *opts->tls_client_ca_file) {
        seterr(err, err_len,
               "server.tls.client_ca_file needs server.tls.cert_file and server.tls.key_file");
        rc = -EINVAL;
        goto fail;
    }
    /* The option strings are borrowed; only the TLS object keeps the paths. */
    s->o.tls_cert_file = s->o.tls_key_file = s->o.tls_client_ca_file = NULL;
    rc = af__http_listen(addr, opts->port, &s->api_fd, &s->port, err, err_len);
    if (rc != 0)
        goto fail;
    if (opts->metrics_port >= 0) {
        rc = af__http_listen(addr, opts->metrics_port, &s->metrics_fd, &s->metrics_port, err,
                             err_len);
        if (rc != 0)
            goto fail;
    }
    rc = af__loops_new(s, s->o.event_loops);
    if (rc != 0) {
        seterr(err, err_len, "cannot create the event loops: %s", strerror(-rc));
        goto fail;
    }
    *out = s;
    return 0;
fail:
    af_server_free(s);
    return rc;
}

int af_server_port(const af_server *s)
{
    return s ? s->port : 0;
}

int af_server_metrics_port(const af_server *s)
{
    return s ? s->metrics_port : 0;
}

int af_server_start(af_server *s)
{
    if (!s)
        return -EINVAL;
    if (s->running)
        return -EALREADY;
    s->running = true;
    s->workers = calloc(s->o.workers, sizeof(pthread_t));
    if (!s->workers)
        return -ENOMEM;
    for (uint32_t i = 0; i < s->o.workers; i++) {
        int rc = pthread_create(&s->workers[i], NULL, worker_main, s);
        if (rc != 0) {
            af_server_stop(s);
            return -rc;
        }
        s->n_workers++;
    }
    int rc = af__ws_start(s);
    if (rc == 0)
        rc = af__loops_start(s);
    if (rc != 0) {
        af_server_stop(s);
        return rc;
    }
    af__collector_hooks_add(s);
    if (s->o.load_generator && af__loadgen_start(s) != 0)
        af_log(AF_LOG_WARN, "server: the load generator did not start");
    af_log(AF_LOG_INFO, "server: listening on %s://%s:%d (metrics on %d, %u event loops)",
           s->tls ? "https" : "http", s->bind_address, s->port, s->metrics_port, s->n_loops);
    if (!s->tls && !is_loopback(s->bind_address))
        af_log(AF_LOG_WARN,
               "server: WARNING: listening on %s WITHOUT TLS: the bearer token, the API and the "
               "metrics cross the network in clear text; set server.tls.cert_file and "
               "server.tls.key_file",
               s->bind_address);
    return 0;
}

void af__chat_call_begin(af_server *s)
{
    pthread_mutex_lock(&s->job_mu);
    s->chat_calls++;
    pthread_mutex_unlock(&s->job_mu);
}

void af__chat_call_end(af_server *s)
{
    pthread_mutex_lock(&s->job_mu);
    if (--s->chat_calls == 0)
        pthread_cond_broadcast(&s->chat_cv);
    pthread_mutex_unlock(&s->job_mu);
}

/* Gateway calls were cancelled with their connections (af__loops_stop); a backend answers a
 * cancel at its next step, so their last callbacks come soon. Waits for them, at most
 * CHAT_DRAIN_NS: a backend that never answers makes the server leak rather than free what its
 * callback would still use. */
#define CHAT_DRAIN_NS 5000000000ull

static void wait_chat_calls(af_server *s)
{
    uint64_t deadline = af_monotonic_ns() + CHAT_DRAIN_NS;
    struct timespec ts = af__timespec_of_ns(deadline);
    pthread_mutex_lock(&s->job_mu);
    while (s->chat_calls && af_monotonic_ns() < deadline)
        pthread_cond_timedwait(&s->chat_cv, &s->job_mu, &ts);
    uint32_t left = s->chat_calls;
    s->chat_calls_stuck = left != 0;
    pthread_mutex_unlock(&s->job_mu);
    if (left)
        af_log(AF_LOG_ERROR,
               "server: %u model call%s did not end within 5 s of being cancelled; the "
               "server's memory is left allocated so that their last callbacks stay safe",
               left, left == 1 ? "" : "s");
}

void af_server_stop(af_server *s)
{
    if (!s)
        return;
    af__loadgen_stop(s);
    af__collector_hooks_remove(s);
    atomic_store(&s->stopping, true);
    /* New connections are refused from now on: shutdown() moves a listening TCP socket to
     * CLOSED (the kernel answers new SYNs and the unaccepted backlog with RST); the loops
     * drop it from their epoll sets and finish what is in progress. The metrics listener
     * stays open so the drain can be scraped. */
    if (s->api_fd >= 0 && shutdown(s->api_fd, SHUT_RD) != 0 && errno != ENOTCONN)
        af_log(AF_LOG_WARN, "server: cannot close the listener on port %d: %s", s->port,
               strerror(errno));
    af__loops_stop(s);
    af__ws_stop(s);
    wait_chat_calls(s);
    pthread_mutex_lock(&s->job_mu);
    /* The store answers every commit; its answers must not arrive after the server is gone. */
    while (s->commits_pending)
        pthread_cond_wait(&s->job_cv, &s->job_mu);
    s->workers_stop = true;
    pthread_cond_broadcast(&s->job_cv);
    pthread_mutex_unlock(&s->job_mu);
    for (uint32_t i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i], NULL);
    s->n_workers = 0;
    free(s->workers);
    s->workers = NULL;
}

void af_server_free(af_server *s)
{
    if (!s)
        return;
    af_server_stop(s);
    if (s->chat_calls_stuck)
        return; /* a late callback would use what we free: leave it (logged by the stop) */
    /* Jobs nobody will answer any more. */
    while (s->job_head) {
        af__job *j = s->job_head;
        s->job_head = j->next;
        job_free(j);
    }
    for (unsigned i = 0; i < s->n_loops; i++)
        while (s->loops[i].done_head) {
            af__job *j = s->loops[i].done_head;
            s->loops[i].done_head = j->next;
            /* Committed but not applied yet (the loops stopped): memory catches up. */
            if (j->apply)
                af__commit_finish(s, j);
            job_free(j);
        }
    af__ws_free(s);
    af__loops_free(s);
    af__tls_free(s->tls);
    if (s->api_fd >= 0)
        close(s->api_fd);
    if (s->metrics_fd >= 0)
        close(s->metrics_fd);
    af__metrics_free(s);
    af__guard_free(&s->guard);
    pthread_mutex_destroy(&s->job_mu);
    pthread_cond_destroy(&s->job_cv);
    pthread_cond_destroy(&s->chat_cv);
    pthread_mutex_destroy(&s->ws_mu);
    pthread_cond_destroy(&s->ws_cv);
    pthread_mutex_destroy(&s->met_mu);
    pthread_mutex_destroy(&s->lg_mu);
    pthread_cond_destroy(&s->lg_cv);
    if (s->auth_token) {
        /* The token is a secret: do not leave it in freed memory. */
        volatile char *p = s->auth_token;
        while (*p)
            *p++ = 0;
    }
    free(s->auth_token);
    free(s->bind_address);
    free(s->title);
    free(s->kube_api_url);
    free(s->kube_sa_dir);
    free(s);
}

int af_server_reload_tls(af_server *s, char *err, size_t err_len)
{
    if (!s || !s->tls) {
        seterr(err, err_len, "TLS is not configured (server.tls.cert_file)");
        return -EINVAL;
    }
    return af__tls_reload(s->tls, err, err_len);
}

uint32_t af_server_ws_clients(af_server *s)
{
    return s ? atomic_load(&s->n_clients) : 0;
}
