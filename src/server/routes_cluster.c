/*
 * The cluster scheduler's routes: agent reports, the fleet's node list and the kube-scheduler
 * extender (k8s.io/kube-scheduler/extender/v1). Decisions are src/cluster's; this file only
 * moves bytes, and, with cluster.bind, creates the Binding through the Kubernetes API.
 *
 * Durability: a hold made by prioritize or turned into a binding by bind is committed to the
 * store before the answer (prioritize through persist.c; bind's worker commits after the
 * Kubernetes calls and waits for it). The hold is taken in memory first, under the cluster's
 * lock, in the same step that chose it: a decision taken now and applied after the commit
 * would let a concurrent prioritize hand out the same last GPU. If the commit fails, a
 * prioritize hold is released again and kube-scheduler gets the 503; a binding stays held
 * (Kubernetes has it already). Agent reports are not written (state_cluster.c checkpoints).
 *
 * Bind's Kubernetes calls (PATCH the pod, POST its Binding), each bounded by KUBE_TIMEOUT_MS,
 * run on the server's worker pool, not on the event loop: one slow API server must not stall
 * every other client of the loop. The loop answers when they are done.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentaflow/cluster.h"
#include "server/limits.h"
#include "server/routes_cluster.h"
#include "server/routes_int.h"
#include "server/server_int.h"
#include "util/buf.h"

#define KUBE_TIMEOUT_MS 5000L
#define GPU_ANNOTATION "agentaflow.io/gpu"

static bool need_cluster(af__req *rq, af__resp *rs)
{
    if (rq->srv->o.cluster)
        return true;
    af__resp_error(rs, 503, "unavailable",
                   "this daemon is not the cluster scheduler (start it with serve --cluster)");
    return false;
}

int af__h_cluster_report(af__req *rq, af__resp *rs)
{
    if (!need_cluster(rq, rs))
        return 0;
    char err[256] = "";
    int rc = af_cluster_report_json(rq->srv->o.cluster, rq->body, rq->body_len, err, sizeof(err));
    if (rc == -EINVAL)
        af__resp_error(rs, 400, "invalid_argument", "%s", err);
    else if (rc == -ENOSPC)
        af__resp_error(rs, 507, "insufficient_storage", "%s", err);
    else if (rc)
        af__resp_from_errno(rs, rc, err);
    else
        af__resp_json_take(rs, 200, strdup("{\"status\":\"ok\"}"));
    return 0;
}

int af__h_cluster_nodes(af__req *rq, af__resp *rs)
{
    if (!need_cluster(rq, rs))
        return 0;
    char *out = NULL;
    int rc = af_cluster_nodes_json(rq->srv->o.cluster, &out);
    if (rc)
        af__resp_from_errno(rs, rc, NULL);
    else
        af__resp_json_take(rs, 200, out);
    return 0;
}

/* A prioritize answer waiting for its hold's commit. */
typedef struct hold_commit {
    af_cluster *cluster;
    char *answer; /* the JSON body, sent once committed */
    char key[AF_CLUSTER_NODE_MAX];
} hold_commit;

/* The store's write of hold h (a reservation or a binding). */
static af_store_op hold_op(const af_cluster_hold_state *h)
{
    af_store_op op = {.kind = AF_STORE_CLUSTER_HOLD};
    op.u.cluster_hold = (af_store_cluster_hold){.key = h->pod_uid,
                                                .pod = h->pod,
                                                .node = h->node,
                                                .gpu_mask = h->gpu_mask,
                                                .memory_mb = h->memory_mb,
                                                .expires_ns = h->expires_ns,
                                                .bound = h->bound,
                                                .now_ns = af_now_ns()};
    return op;
}

static void apply_hold(af_server *s, void *ctx, af__resp *rs)
{
    (void)s;
    hold_commit *hc = ctx;
    af__resp_json_take(rs, 200, hc->answer);
    hc->answer = NULL;
}

/* The commit failed: the hold is given back before the 503 goes out. */
static void undo_hold(af_server *s, void *ctx, af__resp *rs)
{
    (void)s, (void)rs;
    hold_commit *hc = ctx;
    af_cluster_release(hc->cluster, hc->key);
}

static void hold_commit_free(void *ctx)
{
    hold_commit *hc = ctx;
    free(hc->answer);
    free(hc);
}

/* Commits prioritize's hold h, then answers `answer` (taken). */
static int commit_hold(af__req *rq, af__resp *rs, const af_cluster_hold_state *h, char *answer)
{
    hold_commit *hc = calloc(1, sizeof(*hc));
    if (!hc) {
        free(answer);
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    hc->cluster = rq->srv->o.cluster;
    hc->answer = answer;
    memcpy(hc->key, h->pod_uid, sizeof(hc->key));
    af_store_op op = hold_op(h);
    return af__commit_or_undo(rq, rs, &op, apply_hold, undo_hold, hc, hold_commit_free);
}

/* The error answer of an extender call that could not decide. */
static void decide_error(af__resp *rs, int rc, const char *err)
{
    if (rc == -EINVAL)
        af__resp_error(rs, 400, "invalid_argument", "%s", err);
    else
        af__resp_from_errno(rs, rc, err);
}

int af__h_scheduler_filter(af__req *rq, af__resp *rs)
{
    if (!need_cluster(rq, rs))
        return 0;
    char *out = NULL, err[256] = "";
    int rc =
        af_cluster_filter_json(rq->srv->o.cluster, rq->body, rq->body_len, &out, err, sizeof(err));
    if (rc)
        decide_error(rs, rc, err);
    else
        af__resp_json_take(rs, 200, out);
    return 0;
}

int af__h_scheduler_prioritize(af__req *rq, af__resp *rs)
{
    if (!need_cluster(rq, rs))
        return 0;
    char *out = NULL, err[256] = "";
    af_cluster_hold_state held;
    int rc = af_cluster_prioritize_json(rq->srv->o.cluster, rq->body, rq->body_len, &out, &held,
                                        err, sizeof(err));
    if (rc) {
        decide_error(rs, rc, err);
        return 0;
    }
    if (!held.pod_uid[0]) { /* nothing held: nothing to keep */
        af__resp_json_take(rs, 200, out);
        return 0;
    }
    return commit_hold(rq, rs, &held, out);
}

/* ---------------------------------------------------------------------------------------- */
/* Bind: the Kubernetes API.                                                                 */

static size_t sink(char *p, size_t size, size_t n, void *user)
{
    af_buf *b = user;
    /* Only the start of an error answer is kept for the message. */
    if (b->len < 512)
        af__buf_append(b, p, size * n < 512 - b->len ? size * n : 512 - b->len);
    return size * n;
}

/* Reads the service-account token (trimmed). 0 or -errno with err filled. */
static int read_token(const char *dir, char *out, size_t cap, char *err, size_t err_len)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/token", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        snprintf(err, err_len, "cannot read the service-account token %.300s: %s", path,
                 strerror(e));
        return -e;
    }
    size_t n = fread(out, 1, cap - 1, f);
    fclose(f);
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        n--;
    out[n] = '\0';
    if (!n) {
        snprintf(err, err_len, "the service-account token %.300s is empty", path);
        return -EINVAL;
    }
    return 0;
}

/* One call to the API server. 0 on a 2xx answer; otherwise err says what the server said. */
static int kube_call(af_server *s, const char *method, const char *path, const char *ctype,
                     const char *body, const char *token, char *err, size_t err_len)
{
    char url[2048], ca[4200], auth[4200], ct[128];
    snprintf(url, sizeof(url), "%s%s", s->kube_api_url, path);
    snprintf(ca, sizeof(ca), "%s/ca.crt", s->kube_sa_dir);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
    CURL *h = curl_easy_init();
    if (!h)
        return -ENOMEM;
    struct curl_slist *hd = curl_slist_append(NULL, auth);
    hd = curl_slist_append(hd, ct);
    hd = curl_slist_append(hd, "Accept: application/json");
    af_buf answer;
    af__buf_init(&answer);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, KUBE_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    int rc = 0;
    if (cc != CURLE_OK) {
        snprintf(err, err_len, "Kubernetes API %s %s: %s", method, path, curl_easy_strerror(cc));
        rc = -EIO;
    } else if (status < 200 || status > 299) {
        af__buf_terminate(&answer);
        snprintf(err, err_len, "Kubernetes API %s %s answered %ld: %.300s", method, path, status,
                 answer.data ? (const char *)answer.data : "");
        rc = -EIO;
    }
    af__buf_clear(&answer);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    return rc;
}

static int annotate(af_server *s, const char *path, const char *gpu, const char *token, char *err,
                    size_t err_len)
{
    json_t *patch = json_pack("{s:{s:{s:s}}}", "metadata", "annotations", GPU_ANNOTATION, gpu);
    char *pb = json_dumps(patch, JSON_COMPACT);
    json_decref(patch);
    if (!pb)
        return -ENOMEM;
    int rc = kube_call(s, "PATCH", path, "application/merge-patch+json", pb, token, err, err_len);
    free(pb);
    return rc;
}

/* Annotates the pod with its GPU, then binds it: annotating first means a pod that is bound
 * always says which GPU it got. */
static int kube_bind(af_server *s, const af_cluster_binding_args *a, const char *gpu, char *err,
                     size_t err_len)
{
    char token[4096];
    int rc = read_token(s->kube_sa_dir, token, sizeof(token), err, err_len);
    if (rc)
        return rc;
    char path[1024];
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", a->pod_namespace, a->pod_name);
    /* A pod that asked for no GPU gets no annotation, only its Binding. */
    if (gpu[0] && (rc = annotate(s, path, gpu, token, err, err_len)) != 0)
        return rc;
    json_t *b =
        json_pack("{s:s,s:s,s:{s:s,s:s,s:s},s:{s:s,s:s,s:s}}", "apiVersion", "v1", "kind",
                  "Binding", "metadata", "name", a->pod_name, "namespace", a->pod_namespace, "uid",
                  a->pod_uid, "target", "apiVersion", "v1", "kind", "Node", "name", a->node);
    char *bb = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    if (!bb)
        return -ENOMEM;
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s/binding", a->pod_namespace,
             a->pod_name);
    rc = kube_call(s, "POST", path, "application/json", bb, token, err, err_len);
    free(bb);
    return rc;
}

/* ExtenderBindingResult {"error": "..."}: kube-scheduler reads failures from it. */
static char *bind_result_json(const char *error)
{
    json_t *r = json_pack("{s:s}", "error", error);
    char *s = json_dumps(r, JSON_COMPACT);
    json_decref(r);
    return s;
}

static void bind_result(af__resp *rs, const char *error)
{
    af__resp_json_take(rs, 200, bind_result_json(error));
}

/* One bind in progress: decided on the loop, its Kubernetes calls on a worker, its span ended
 * on the loop as the answer goes out. */
typedef struct bind_job {
    af_cluster *cluster;
    af_store *store; /* may be NULL */
    af_cluster_binding_args args;
    char gpu[AF_GPU_ID_MAX];
    char key[AF_CLUSTER_NODE_MAX];
    af_span span;
    bool ran;   /* the worker did the calls (and the bookkeeping after them) */
    bool ended; /* the span is ended */
    int rc;     /* the outcome the span gets */
    char err[512];
} bind_job;

/* The pod's binding goes (a failed Kubernetes call, or a bind that never ran), and so does
 * prioritize's saved hold; nobody waits for that write. */
static void bind_release(bind_job *b)
{
    af_cluster_release(b->cluster, b->key);
    if (b->store) {
        af_store_op op = {.kind = AF_STORE_CLUSTER_HOLD_END};
        op.u.cluster_hold.key = b->key;
        af_store_submit(b->store, &op, NULL, NULL);
    }
}

/* A worker waiting for one store commit. */
typedef struct sync_commit {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
    char err[256];
} sync_commit;

static void sync_commit_done(int rc, const char *err, void *user)
{
    sync_commit *w = user;
    pthread_mutex_lock(&w->mu);
    w->rc = rc;
    snprintf(w->err, sizeof(w->err), "%s", err ? err : "");
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Worker: commits the binding before the answer, as prioritize's hold is. The store answers
 * every submitted write, so the wait ends. 0, or the store's code with err filled. */
static int commit_binding(af_store *store, const af_cluster_hold_state *h, char *err,
                          size_t err_len)
{
    af_store_op op = hold_op(h);
    sync_commit w = {.done = false};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    int rc = af_store_submit(store, &op, sync_commit_done, &w);
    if (rc == 0) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = w.rc;
        snprintf(err, err_len, "%s", w.err[0] ? w.err : af_strerror(rc));
    } else {
        snprintf(err, err_len, "%s",
                 rc == AF_EFULL ? "the store's queue is full" : af_strerror(rc));
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}

/* Worker: the Kubernetes calls (each bounded by KUBE_TIMEOUT_MS), then the binding's commit;
 * fills the answer. A failed call releases the pod's GPU; a failed commit answers 503 and
 * keeps the binding (Kubernetes has it). */
static void bind_work(af__job *j)
{
    bind_job *b = j->ctx;
    b->ran = true;
    b->rc = kube_bind(j->srv, &b->args, b->gpu, b->err, sizeof(b->err));
    if (b->rc) {
        bind_release(b);
        bind_result(&j->resp, b->err);
        return;
    }
    af_cluster_hold_state held;
    if (b->store && b->gpu[0] && af_cluster_hold_get(b->cluster, b->key, &held) == 0) {
        char why[256];
        b->rc = commit_binding(b->store, &held, why, sizeof(why));
        if (b->rc) {
            snprintf(b->err, sizeof(b->err), "the binding was not saved: %s", why);
            af__resp_error(&j->resp, 503, "storage_unavailable", "the change was not saved: %s",
                           why);
            return;
        }
    }
    bind_result(&j->resp, "");
}

/* Loop: the answer goes out now; the bind's span ends with it. */
static void bind_answered(af_server *s, void *ctx, af__resp *rs)
{
    (void)s, (void)rs;
    bind_job *b = ctx;
    af_cluster_bind_end(b->span, b->rc, b->err);
    b->ended = true;
}

/* The job is freed: answered, refused before it ran (the worker pool is full or stopping),
 * or dropped at shutdown. A bind that never ran gives its GPU back. */
static void bind_job_free(void *ctx)
{
    bind_job *b = ctx;
    if (!b->ran) {
        bind_release(b);
        b->rc = -ECANCELED;
        snprintf(b->err, sizeof(b->err), "%s",
                 "the Kubernetes calls were not made: the server is overloaded or stopping");
    }
    if (!b->ended)
        af_cluster_bind_end(b->span, b->rc ? b->rc : -ECANCELED,
                            b->rc ? b->err : "the answer was not sent: the server stopped");
    free(b);
}

/*
 * Bind decides on the loop (the pod's hold becomes a binding, or a fresh choice on the node)
 * and hands the Kubernetes calls to the worker pool (af__server_submit_job): a slow API server
 * holds one worker for up to 2 x KUBE_TIMEOUT_MS, never the event loop and its other clients.
 * The answer is sent by the loop when the calls (and the binding's commit) are done.
 */
int af__h_scheduler_bind(af__req *rq, af__resp *rs)
{
    if (!need_cluster(rq, rs))
        return 0;
    af_server *s = rq->srv;
    af_cluster_binding_args a;
    char err[512] = "";
    if (af_cluster_binding_args_parse(rq->body, rq->body_len, &a, err, sizeof(err)) != 0) {
        af__resp_error(rs, 400, "invalid_argument", "%s", err);
        return 0;
    }
    if (!s->o.cluster_bind) {
        bind_result(rs, "bind is off in this scheduler (cluster.bind: false): configure "
                        "kube-scheduler without bindVerb, or set cluster.bind: true");
        return 0;
    }
    /* The binding args carry no resources: the pod's hold (made by prioritize) knows them. A
     * pod without one is bound as a pass-through pod. */
    af_cluster_pod pod = {a.pod_namespace, a.pod_name, a.pod_uid, 0, 0, 0, NULL};
    bind_job *b = calloc(1, sizeof(*b));
    af__job *j = calloc(1, sizeof(*j));
    if (!b || !j) {
        free(b);
        free(j);
        af__resp_error(rs, 500, "internal", "out of memory");
        return 0;
    }
    b->cluster = s->o.cluster;
    b->store = s->o.store;
    b->args = a;
    af_cluster_pod_key(&pod, b->key, sizeof(b->key));
    int rc = af_cluster_bind_begin(s->o.cluster, &pod, a.node, b->gpu, sizeof(b->gpu), b->err,
                                   sizeof(b->err), &b->span);
    if (rc) {
        af_cluster_bind_end(b->span, rc, b->err);
        bind_result(rs, b->err[0] ? b->err : af_strerror(rc));
        free(b);
        free(j);
        return 0;
    }
    j->work = bind_work;
    j->apply = bind_answered;
    j->ctx = b;
    j->ctx_free = bind_job_free;
    return af__server_submit_job(rq, rs, j);
}
