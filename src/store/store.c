/*
 * The generic store: a queue of writes and one writer thread that commits them in groups.
 *
 * Group commit: whatever is queued when the writer wakes (up to max_batch) goes into one
 * transaction, so one fsync covers every write of that moment; callers are told only after
 * the COMMIT returned. A failed group is retried write by write when the failure may be one
 * write's own (a constraint), so a bad write never takes its neighbours down; when the
 * database itself failed (disk full, I/O error) every write of the group gets the error.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentaflow/store.h"
#include "agentaflow/trace_sdk.h"
#include "util/str.h"
#include "util/timeutil.h"

#define BUSY_RETRIES 5

typedef struct item {
    struct item *next;
    af_store_op op;
    af_store_done_fn done;
    void *user;
    int rc;
    char *err;   /* set when this write failed */
    char strs[]; /* the op's strings */
} item;

struct af_store {
    af_store_opts o;
    char *path;
    const af_store_backend_ops *ops;
    void *self;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    item *head, *tail;
    uint32_t queued;
    bool stop, started;
    pthread_t thread;
    uint64_t next_prune_mono;
    int fault_rc;
    uint32_t fault_count;

    /* health (mu) */
    uint64_t last_commit_ns, commits, writes, failures, last_error_ns;
    char last_error[256];
    uint64_t size_bytes;
};

void af_store_opts_init(af_store_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_batch = 4096;
    o->max_queue = 100000;
    o->retention_costs_s = 400ull * 86400ull;
    o->retention_workloads_s = 30ull * 86400ull;
    o->prune_batch = 500;
    o->prune_interval_ms = 1000;
}

int af_store_new(const af_store_opts *o, const af_store_backend_ops *ops, void *self,
                 af_store **out)
{
    af_store_opts def;
    *out = NULL;
    if (!ops) {
        return -EINVAL;
    }
    if (!o) {
        af_store_opts_init(&def);
        o = &def;
    }
    af_store *s = calloc(1, sizeof(*s));
    if (!s || !(s->path = af__strdup(o->path ? o->path : ""))) {
        free(s);
        ops->close(self);
        return -ENOMEM;
    }
    s->o = *o;
    s->o.path = s->path;
    if (!s->o.max_batch)
        s->o.max_batch = 4096;
    if (!s->o.max_queue)
        s->o.max_queue = 100000;
    if (!s->o.prune_batch)
        s->o.prune_batch = 500;
    if (!s->o.prune_interval_ms)
        s->o.prune_interval_ms = 1000;
    s->ops = ops;
    s->self = self;
    pthread_mutex_init(&s->mu, NULL);
    af__cond_init_monotonic(&s->cv);
    af_store_backend_stats st;
    ops->stats(self, &st);
    s->size_bytes = st.size_bytes;
    *out = s;
    return 0;
}

int af_store_load(af_store *s, const af_store_load_opts *o, const af_store_load_cb *cb, char *err,
                  size_t err_len)
{
    if (!s || !o || !cb)
        return -EINVAL;
    return s->ops->load(s->self, o, cb, err, err_len);
}

/* ---------------------------------------------------------------------------------------- */
/* Queue.                                                                                    */

static size_t slen(const char *p)
{
    return p ? strlen(p) + 1 : 0;
}

/* Copies p into the item's string area at *at. */
static const char *scopy(char **at, const char *p)
{
    if (!p)
        return NULL;
    size_t n = strlen(p) + 1;
    memcpy(*at, p, n);
    const char *r = *at;
    *at += n;
    return r;
}

static item *item_new(const af_store_op *op)
{
    const char *const *fields[6] = {NULL};
    af_store_op c = *op;
    size_t nf = 0;
    switch (c.kind) {
    case AF_STORE_COST:
        fields[0] = &c.u.cost.id;
        fields[1] = &c.u.cost.operation;
        fields[2] = &c.u.cost.model_id;
        fields[3] = &c.u.cost.currency;
        nf = 4;
        break;
    case AF_STORE_WORKLOAD_NEW:
    case AF_STORE_WORKLOAD:
        fields[0] = &c.u.workload.id;
        fields[1] = &c.u.workload.name;
        fields[2] = &c.u.workload.assigned_gpu;
        fields[3] = &c.u.workload.failure;
        nf = 4;
        break;
    case AF_STORE_GPU:
        fields[0] = &c.u.gpu.id;
        fields[1] = &c.u.gpu.name;
        nf = 2;
        break;
    case AF_STORE_ALERT:
    case AF_STORE_ALERT_ACK:
        fields[0] = &c.u.alert.gpu_id;
        fields[1] = &c.u.alert.type;
        fields[2] = &c.u.alert.message;
        nf = 3;
        break;
    case AF_STORE_KV:
        fields[0] = &c.u.kv.key;
        fields[1] = &c.u.kv.value;
        nf = 2;
        break;
    case AF_STORE_CLUSTER_NODE:
        fields[0] = &c.u.cluster_node.name;
        fields[1] = &c.u.cluster_node.inventory;
        nf = 2;
        break;
    case AF_STORE_CLUSTER_HOLD:
    case AF_STORE_CLUSTER_HOLD_END:
        fields[0] = &c.u.cluster_hold.key;
        fields[1] = &c.u.cluster_hold.pod;
        fields[2] = &c.u.cluster_hold.node;
        nf = 3;
        break;
    default:
        return NULL;
    }
    size_t total = 0;
    for (size_t i = 0; i < nf; i++)
        total += slen(*fields[i]);
    item *it = calloc(1, sizeof(*it) + total);
    if (!it)
        return NULL;
    char *at = it->strs;
    for (size_t i = 0; i < nf; i++)
        *(const char **)fields[i] = scopy(&at, *fields[i]);
    it->op = c;
    return it;
}

int af_store_submit(af_store *s, const af_store_op *op, af_store_done_fn done, void *user)
{
    if (!s || !op)
        return -EINVAL;
    item *it = item_new(op);
    if (!it)
        return op->kind >= AF_STORE_COST && op->kind <= AF_STORE_CLUSTER_HOLD_END ? -ENOMEM
                                                                                  : -EINVAL;
    it->done = done;
    it->user = user;
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->stop)
        rc = AF_ESHUTDOWN;
    else if (s->queued >= s->o.max_queue)
        rc = AF_EFULL;
    if (rc) {
        pthread_mutex_unlock(&s->mu);
        free(it);
        return rc;
    }
    if (s->tail)
        s->tail->next = it;
    else
        s->head = it;
    s->tail = it;
    s->queued++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Writer.                                                                                   */

static void note_error(af_store *s, const char *err)
{
    pthread_mutex_lock(&s->mu);
    s->failures++;
    s->last_error_ns = af_now_ns();
    af__strlcpy(s->last_error, err && *err ? err : "unknown error", sizeof(s->last_error));
    pthread_mutex_unlock(&s->mu);
}

/* One transaction over the list from first. Returns 0 or the failing code (-EINVAL: one write
 * was refused on its own, e.g. a constraint; anything else: the database failed). */
static int commit_group(af_store *s, item *first, char *err, size_t len)
{
    pthread_mutex_lock(&s->mu);
    int fault = 0;
    if (s->fault_count) {
        s->fault_count--;
        fault = s->fault_rc;
    }
    pthread_mutex_unlock(&s->mu);
    if (fault) {
        snprintf(err, len, "%s: %s (injected)", s->path, strerror(-fault));
        return fault;
    }
    int rc = 0;
    for (int attempt = 0; attempt < BUSY_RETRIES; attempt++) {
        rc = s->ops->begin(s->self, err, len);
        for (item *it = first; rc == 0 && it; it = it->next)
            rc = s->ops->write(s->self, &it->op, err, len);
        if (rc == 0)
            rc = s->ops->commit(s->self, err, len);
        if (rc != 0)
            s->ops->rollback(s->self);
        /* SQLITE_BUSY past busy_timeout (a backup or a checker holds a lock): try again
         * rather than fail a client's write. */
        if (rc != -EBUSY)
            break;
        struct timespec ts = {0, 20000000L * (attempt + 1)};
        nanosleep(&ts, NULL);
    }
    return rc;
}

static void finish(item *it, int rc, const char *err)
{
    if (it->done)
        it->done(rc, rc ? err : NULL, it->user);
}

static void run_batch(af_store *s, item *batch, uint32_t n)
{
    char err[512] = "";
    int rc = commit_group(s, batch, err, sizeof(err));
    if (rc == -EINVAL && n > 1) {
        /* One write was refused: commit the others on their own. */
        for (item *it = batch; it; it = it->next) {
            item *next = it->next;
            it->next = NULL;
            char e1[512] = "";
            it->rc = commit_group(s, it, e1, sizeof(e1));
            if (it->rc)
                it->err = af__strdup(e1);
            it->next = next;
        }
    } else {
        for (item *it = batch; it; it = it->next)
            it->rc = rc;
    }
    uint64_t ok = 0;
    for (item *it = batch; it; it = it->next)
        ok += it->rc == 0;
    af_store_backend_stats st;
    s->ops->stats(s->self, &st);
    pthread_mutex_lock(&s->mu);
    s->writes += ok;
    s->size_bytes = st.size_bytes;
    if (ok) {
        s->commits++;
        s->last_commit_ns = af_now_ns();
        s->last_error[0] = '\0';
    }
    pthread_mutex_unlock(&s->mu);
    if (rc != 0)
        note_error(s, err);
    while (batch) {
        item *next = batch->next;
        finish(batch, batch->rc, batch->err ? batch->err : err);
        free(batch->err);
        free(batch);
        batch = next;
    }
}

static void run_prune(af_store *s)
{
    uint64_t now = af_now_ns(), ns = UINT64_C(1000000000);
    uint64_t cb = s->o.retention_costs_s && now > s->o.retention_costs_s * ns
                      ? now - s->o.retention_costs_s * ns
                      : 0;
    uint64_t wb = s->o.retention_workloads_s && now > s->o.retention_workloads_s * ns
                      ? now - s->o.retention_workloads_s * ns
                      : 0;
    uint64_t deleted = 0;
    char err[512] = "";
    int rc = 0;
    if (cb || wb) {
        rc = s->ops->begin(s->self, err, sizeof(err));
        if (rc == 0)
            rc = s->ops->prune(s->self, cb, wb, s->o.prune_batch, &deleted, err, sizeof(err));
        if (rc == 0)
            rc = s->ops->commit(s->self, err, sizeof(err));
        if (rc != 0) {
            s->ops->rollback(s->self);
            note_error(s, err);
        }
    }
    /* Rows remain: come back soon, in another short transaction, so queued writes go first. */
    uint64_t wait_ms =
        rc == 0 && deleted >= s->o.prune_batch ? s->o.prune_interval_ms : 60u * 1000u;
    s->next_prune_mono = af_monotonic_ns() + wait_ms * UINT64_C(1000000);
}

static void *writer_main(void *arg)
{
    af_store *s = arg;
    pthread_setname_np(pthread_self(), "af-store");
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stop) {
            uint64_t due = s->next_prune_mono;
            if (af_monotonic_ns() >= due)
                break;
            struct timespec ts = af__timespec_of_ns(due);
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        if (!s->head && s->stop)
            break;
        if (!s->head) {
            pthread_mutex_unlock(&s->mu);
            run_prune(s);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        item *batch = s->head, *last = batch;
        uint32_t n = 1;
        while (last->next && n < s->o.max_batch) {
            last = last->next;
            n++;
        }
        s->head = last->next;
        if (!s->head)
            s->tail = NULL;
        last->next = NULL;
        s->queued -= n;
        pthread_mutex_unlock(&s->mu);
        run_batch(s, batch, n);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int af_store_start(af_store *s)
{
    if (!s)
        return -EINVAL;
    if (s->started)
        return -EALREADY;
    /* The first prune a little after start, so it never competes with the restore. */
    s->next_prune_mono = af_monotonic_ns() + UINT64_C(5000000000);
    int rc = pthread_create(&s->thread, NULL, writer_main, s);
    if (rc != 0)
        return -rc;
    s->started = true;
    return 0;
}

void af_store_stop(af_store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->started) {
        pthread_join(s->thread, NULL);
        s->started = false;
    }
}

void af_store_free(af_store *s)
{
    if (!s)
        return;
    af_store_stop(s);
    /* Never started: what was queued is answered, not silently dropped. */
    while (s->head) {
        item *it = s->head;
        s->head = it->next;
        finish(it, AF_ESHUTDOWN, "the store was closed");
        free(it);
    }
    s->ops->close(s->self);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->path);
    free(s);
}

void af_store_health_get(af_store *s, af_store_health *out)
{
    memset(out, 0, sizeof(*out));
    if (!s)
        return;
    out->backend = s->ops->name;
    af__strlcpy(out->path, s->path, sizeof(out->path));
    pthread_mutex_lock(&s->mu);
    out->size_bytes = s->size_bytes;
    out->last_commit_ns = s->last_commit_ns;
    out->commits = s->commits;
    out->writes = s->writes;
    out->failures = s->failures;
    out->queued = s->queued;
    out->last_error_ns = s->last_error_ns;
    af__strlcpy(out->last_error, s->last_error, sizeof(out->last_error));
    pthread_mutex_unlock(&s->mu);
}

void af_store_inject_fault(af_store *s, int rc, uint32_t count)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->fault_rc = rc;
    s->fault_count = rc ? count : 0;
    pthread_mutex_unlock(&s->mu);
}
