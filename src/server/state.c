/*
 * Durable state: the data directory (created 0700, locked with flock so one process owns
 * it), the SQLite store in it, the callbacks that copy the components' own changes into the
 * store (placements, pending reasons, finished workloads, costs the load generator and the
 * serving gateway record, new alerts) and the restore at start.
 *
 * Changes a component makes on its own are written without waiting (nobody was promised
 * anything); a client's write goes through the routes, which wait for the commit
 * (persist.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentaflow/log.h"
#include "agentaflow/server.h"
#include "server/state_cluster.h"
#include "util/str.h"

struct af_state {
    char *dir;
    int lock_fd;
    af_store *store;
    af_gpu_collector *collector;
    int alert_cb;
    af__cluster_ckpt *ckpt; /* serve --cluster only */
    size_t saved_cursor;    /* the last round-robin cursor written (changes are rare) */
    bool cursor_known;
    pthread_mutex_t mu; /* saved_cursor */
};

void af_state_opts_init(af_state_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->fsync_full = true;
    o->retention_costs_days = 400;
    o->retention_workloads_days = 30;
}

/* The directory: configured, else systemd's StateDirectory=, else ./data. */
char *af_state_resolve_dir(const char *configured)
{
    if (configured && *configured)
        return af__strdup(configured);
    const char *sd = getenv("STATE_DIRECTORY");
    if (sd && *sd) {
        /* Several StateDirectory= entries arrive colon-separated: the first is ours. */
        const char *colon = strchr(sd, ':');
        return colon ? af__strndup(sd, (size_t)(colon - sd)) : af__strdup(sd);
    }
    return af__strdup("./data");
}

/* mkdir -p, new components 0700 (the ledger is nobody else's business). */
static int make_dir(const char *dir, char *err, size_t len)
{
    char path[4096];
    if (af__strlcpy(path, dir, sizeof(path)) >= sizeof(path)) {
        snprintf(err, len, "data directory %s: path too long", dir);
        return -ENAMETOOLONG;
    }
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            int e = errno;
            snprintf(err, len, "data directory %s: cannot create %s: %s", dir, path, strerror(e));
            return -e;
        }
        *p = c;
        if (!c)
            break;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, len, "data directory %s: not a directory", dir);
        return -ENOTDIR;
    }
    return 0;
}

/* Takes the directory's lock file; a second daemon on it fails at once, naming the first. */
static int take_lock(const char *dir, int *fd_out, char *err, size_t len)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/agentaflow.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(err, len, "data directory %s: cannot open %s: %s", dir, path, strerror(e));
        return -e;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (e == EWOULDBLOCK)
            snprintf(err, len,
                     "data directory %s is in use by another agentaflow process%s%s%s; one "
                     "process per data directory",
                     dir, pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
        else
            snprintf(err, len, "data directory %s: cannot lock %s: %s", dir, path, strerror(e));
        close(fd);
        return e == EWOULDBLOCK ? -EBUSY : -e;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    /* The pid is only for the message above: failing to write it changes nothing. */
    if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) < 0)
        af_log(AF_LOG_DEBUG, "state: cannot write the pid into %s", path);
    *fd_out = fd;
    return 0;
}

int af_state_open(const af_state_opts *o, af_state **out, char *err, size_t len)
{
    af_state_opts def;
    if (!o) {
        af_state_opts_init(&def);
        o = &def;
    }
    *out = NULL;
    af_state *st = calloc(1, sizeof(*st));
    if (!st || !(st->dir = af_state_resolve_dir(o->data_dir))) {
        free(st);
        snprintf(err, len, "out of memory");
        return -ENOMEM;
    }
    st->lock_fd = -1;
    pthread_mutex_init(&st->mu, NULL);
    int rc = make_dir(st->dir, err, len);
    if (rc == 0)
        rc = take_lock(st->dir, &st->lock_fd, err, len);
    char db[4200];
    snprintf(db, sizeof(db), "%s/" AF_STORE_DB_FILE, st->dir);
    const af_store_backend_ops *ops = NULL;
    void *self = NULL;
    if (rc == 0) {
        af_store_sqlite_opts so;
        af_store_sqlite_opts_init(&so);
        so.path = db;
        so.fsync_full = o->fsync_full;
        rc = af_store_sqlite_open(&so, &ops, &self, err, len);
        if (rc == -EILSEQ)
            strncat(err, "; the file was left untouched (restore a backup or move it away)",
                    len - strlen(err) - 1);
    }
    if (rc == 0) {
        af_store_opts so;
        af_store_opts_init(&so);
        so.path = db;
        so.retention_costs_s = (uint64_t)o->retention_costs_days * 86400u;
        so.retention_workloads_s = (uint64_t)o->retention_workloads_days * 86400u;
        rc = af_store_new(&so, ops, self, &st->store);
        if (rc != 0)
            snprintf(err, len, "out of memory");
    }
    if (rc != 0) {
        af_state_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

const char *af_state_dir(const af_state *st)
{
    return st ? st->dir : NULL;
}

af_store *af_state_store(af_state *st)
{
    return st ? st->store : NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Changes the components make on their own.                                                 */

static void save_cursor(af_state *st, size_t cursor)
{
    pthread_mutex_lock(&st->mu);
    bool changed = !st->cursor_known || st->saved_cursor != cursor;
    st->saved_cursor = cursor;
    st->cursor_known = true;
    pthread_mutex_unlock(&st->mu);
    if (!changed)
        return;
    char v[32];
    snprintf(v, sizeof(v), "%zu", cursor);
    af_store_op op = {.kind = AF_STORE_KV};
    op.u.kv.key = "scheduler.rr_cursor";
    op.u.kv.value = v;
    af_store_submit(st->store, &op, NULL, NULL);
}

void af_state_workload_changed(const af_workload_info *w, size_t rr_cursor, void *state)
{
    af_state *st = state;
    if (!st || !w)
        return;
    af_store_op op = {.kind = AF_STORE_WORKLOAD};
    op.u.workload = (af_store_workload){.id = w->id,
                                        .name = w->name,
                                        .priority = w->priority,
                                        .memory_mb = w->memory_required_mb,
                                        .estimated_ms = w->estimated_time_ms,
                                        .exclusive = w->exclusive,
                                        .status = (int)w->status,
                                        .pending_reason = (int)w->pending_reason,
                                        .assigned_gpu = w->assigned_gpu,
                                        .failure = w->failure,
                                        .submitted_ns = w->submitted_ns,
                                        .started_ns = w->started_ns,
                                        .completed_ns = w->completed_ns};
    /* A full queue loses this copy only: the next change of the workload writes it whole. */
    af_store_submit(st->store, &op, NULL, NULL);
    if (w->status == AF_WORKLOAD_RUNNING)
        save_cursor(st, rr_cursor);
}

void af_state_cost_recorded(const af_cost_entry *e, void *state)
{
    af_state *st = state;
    if (!st || !e)
        return;
    af_store_op op = {.kind = AF_STORE_COST};
    op.u.cost = (af_store_cost){.id = e->id,
                                .operation = e->operation,
                                .model_id = e->model_id,
                                .currency = e->currency,
                                .duration_ns = e->duration_ns,
                                .tokens = e->tokens_used,
                                .gpu_hours = e->gpu_hours,
                                .cost = e->cost,
                                .timestamp_ns = e->timestamp_ns};
    af_store_submit(st->store, &op, NULL, NULL);
}

static void on_alert(const af_gpu_alert *a, void *user)
{
    af_state *st = user;
    af_store_op op = {.kind = AF_STORE_ALERT};
    op.u.alert = (af_store_alert){.id = a->id,
                                  .gpu_id = a->gpu_id,
                                  .type = a->type,
                                  .severity = (int)a->severity,
                                  .message = a->message,
                                  .value = a->value,
                                  .threshold = a->threshold,
                                  .timestamp_ns = a->timestamp_ns,
                                  .acknowledged = a->acknowledged};
    af_store_submit(st->store, &op, NULL, NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Restore.                                                                                  */

typedef struct restore_ctx {
    af_gpu_scheduler *sch;
    af_gpu_collector *col;
    af_cost_tracker *costs;
    af__cluster_restore cluster;
    bool have_cursor, have_strategy;
    size_t cursor;
    af_gpu_strategy strategy;
    uint64_t n_costs, n_hours, n_workloads, n_gpus, n_alerts, skipped;
} restore_ctx;

static int r_kv(const char *key, const char *value, void *user)
{
    restore_ctx *c = user;
    if (strcmp(key, "scheduler.rr_cursor") == 0) {
        c->cursor = (size_t)strtoull(value, NULL, 10);
        c->have_cursor = true;
    } else if (strcmp(key, "scheduler.strategy") == 0) {
        c->have_strategy = af_gpu_strategy_parse(value, &c->strategy) == 0;
    } else if (strcmp(key, AF__CLUSTER_KEY_RR) == 0) {
        af__cluster_restore_cursor(&c->cluster, value);
    } else if (strcmp(key, AF_STORE_KEY_COSTS_LAST_SEQ) == 0 && c->costs) {
        af_cost_restore_id_floor(c->costs, strtoull(value, NULL, 10));
    }
    return 0;
}

static int r_gpu(const af_store_gpu *g, void *user)
{
    restore_ctx *c = user;
    if (!c->sch)
        return 0;
    af_gpu_spec spec = {.id = g->id,
                        .name = g->name,
                        .memory_total_mb = g->memory_total_mb,
                        .memory_used_mb = g->memory_used_mb,
                        .utilization = g->utilization,
                        .temperature = g->temperature,
                        .power_usage = g->power_usage,
                        .available = g->available};
    if (af_gpu_scheduler_register_gpu(c->sch, &spec, NULL, 0) == 0)
        c->n_gpus++;
    else
        c->skipped++;
    return 0;
}

static int r_workload(const af_store_workload *w, void *user)
{
    restore_ctx *c = user;
    if (!c->sch)
        return 0;
    af_workload_info wi;
    memset(&wi, 0, sizeof(wi));
    af__strlcpy(wi.id, w->id, sizeof(wi.id));
    af__strlcpy(wi.name, w->name, sizeof(wi.name));
    wi.priority = w->priority;
    wi.memory_required_mb = w->memory_mb;
    wi.estimated_time_ms = w->estimated_ms;
    wi.exclusive = w->exclusive;
    wi.status = (af_workload_status)w->status;
    wi.pending_reason = (af_pending_reason)w->pending_reason;
    af__strlcpy(wi.assigned_gpu, w->assigned_gpu, sizeof(wi.assigned_gpu));
    af__strlcpy(wi.failure, w->failure, sizeof(wi.failure));
    wi.submitted_ns = w->submitted_ns;
    wi.started_ns = w->started_ns;
    wi.completed_ns = w->completed_ns;
    int rc = af_gpu_scheduler_restore(c->sch, &wi);
    if (rc == -ENOMEM)
        return rc;
    if (rc == 0)
        c->n_workloads++;
    else
        c->skipped++;
    return 0;
}

static int r_cost(const af_store_cost *e, void *user)
{
    restore_ctx *c = user;
    if (!c->costs)
        return 0;
    af_cost_entry ce = {.id = e->id,
                        .operation = e->operation,
                        .model_id = e->model_id,
                        .duration_ns = e->duration_ns,
                        .tokens_used = e->tokens,
                        .gpu_hours = e->gpu_hours,
                        .cost = e->cost,
                        /* "" was saved for "the tracker's currency" */
                        .currency = e->currency[0] ? e->currency : NULL,
                        .timestamp_ns = e->timestamp_ns};
    int rc = af_cost_restore_entry(c->costs, &ce);
    if (rc == -ENOMEM)
        return rc;
    c->n_costs += rc == 0;
    c->skipped += rc != 0;
    return 0;
}

static int r_hour(const af_store_cost_hour *h, void *user)
{
    restore_ctx *c = user;
    if (!c->costs)
        return 0;
    af_cost_hourly ch = {.hour_ns = h->hour_ns,
                         .operation = h->operation,
                         .model_id = h->model_id,
                         .cost = h->cost,
                         .gpu_hours = h->gpu_hours,
                         .tokens = h->tokens,
                         .count = h->count};
    int rc = af_cost_restore_hourly(c->costs, &ch);
    if (rc == -ENOMEM)
        return rc;
    c->n_hours += rc == 0;
    c->skipped += rc != 0;
    return 0;
}

static int r_cluster_node(const af_store_cluster_node *n, void *user)
{
    return af__cluster_restore_node(n, &((restore_ctx *)user)->cluster);
}

static int r_cluster_hold(const af_store_cluster_hold *h, void *user)
{
    return af__cluster_restore_hold(h, &((restore_ctx *)user)->cluster);
}

static int r_alert(const af_store_alert *a, void *user)
{
    restore_ctx *c = user;
    if (!c->col)
        return 0;
    af_gpu_alert al;
    memset(&al, 0, sizeof(al));
    al.id = a->id;
    af__strlcpy(al.gpu_id, a->gpu_id, sizeof(al.gpu_id));
    af__strlcpy(al.type, a->type, sizeof(al.type));
    al.severity = (af_gpu_level)a->severity;
    af__strlcpy(al.message, a->message, sizeof(al.message));
    al.value = a->value;
    al.threshold = a->threshold;
    al.timestamp_ns = a->timestamp_ns;
    al.acknowledged = a->acknowledged;
    if (af_gpu_collector_restore_alert(c->col, &al) == 0)
        c->n_alerts++;
    return 0;
}

int af_state_restore(af_state *st, af_gpu_scheduler *sch, af_gpu_collector *col,
                     af_cost_tracker *costs, af_cluster *cluster, char *err, size_t len)
{
    if (!st)
        return -EINVAL;
    uint64_t t0 = af_monotonic_ns();
    restore_ctx c = {.sch = sch, .col = col, .costs = costs};
    c.cluster.cs.rr_cursor = UINT32_MAX;
    af_cost_tracker_opts to;
    af_cost_tracker_opts_init(&to);
    af_store_load_opts lo = {.now_ns = af_now_ns(),
                             .cost_raw_s = to.retention_s,
                             .cost_raw_max = to.max_entries,
                             .cost_hours_s = (uint64_t)to.bucket_retention_h * 3600u,
                             .finished_workloads = 1000,
                             .alerts = 1000};
    af_store_load_cb cb = {.cost = r_cost,
                           .cost_hour = r_hour,
                           .workload = r_workload,
                           .gpu = r_gpu,
                           .alert = r_alert,
                           .kv = r_kv,
                           .user = &c};
    if (cluster) {
        cb.cluster_node = r_cluster_node;
        cb.cluster_hold = r_cluster_hold;
    }
    int rc = af_store_load(st->store, &lo, &cb, err, len);
    if (rc != 0) {
        af_cluster_state_free(&c.cluster.cs);
        return rc;
    }
    size_t n_nodes = cluster ? af__cluster_restore_finish(&c.cluster, cluster) : 0;
    if (sch && c.have_strategy)
        af_gpu_scheduler_set_strategy(sch, c.strategy);
    if (sch && c.have_cursor)
        af_gpu_scheduler_set_rr_cursor(sch, c.cursor);
    pthread_mutex_lock(&st->mu);
    st->saved_cursor = c.cursor;
    st->cursor_known = c.have_cursor;
    pthread_mutex_unlock(&st->mu);
    if ((rc = af_store_start(st->store)) != 0) {
        snprintf(err, len, "cannot start the store's writer thread: %s", strerror(-rc));
        return rc;
    }
    if (sch && !c.have_strategy) {
        af_store_op op = {.kind = AF_STORE_KV};
        op.u.kv.key = "scheduler.strategy";
        op.u.kv.value = af_gpu_strategy_name(af_gpu_scheduler_strategy(sch));
        af_store_submit(st->store, &op, NULL, NULL);
    }
    if (cluster)
        st->ckpt = af__cluster_ckpt_start(st->store, cluster);
    if (col) {
        int h = af_gpu_collector_add_alert_callback(col, on_alert, st);
        st->collector = col;
        st->alert_cb = h > 0 ? h : 0;
    }
    af_log(AF_LOG_INFO,
           "state: restored %" PRIu64 " workloads, %" PRIu64 " cost entries + %" PRIu64
           " hourly roll-ups, %" PRIu64 " GPUs, %" PRIu64 " alerts, %zu cluster nodes from %s"
           " in %.1f ms%s",
           c.n_workloads, c.n_costs, c.n_hours, c.n_gpus, c.n_alerts, n_nodes, st->dir,
           (double)(af_monotonic_ns() - t0) / 1e6, c.skipped ? " (some rows skipped)" : "");
    return 0;
}

void af_state_detach(af_state *st)
{
    if (!st)
        return;
    af__cluster_ckpt_stop(st->ckpt);
    st->ckpt = NULL;
    if (!st->collector)
        return;
    if (st->alert_cb)
        af_gpu_collector_remove_callback(st->collector, st->alert_cb);
    st->collector = NULL;
    st->alert_cb = 0;
}

void af_state_free(af_state *st)
{
    if (!st)
        return;
    af_state_detach(st);
    af_store_free(st->store);
    if (st->lock_fd >= 0)
        close(st->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&st->mu);
    free(st->dir);
    free(st);
}
