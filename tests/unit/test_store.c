/*
 * Store: group commit, what a restart loads back, schema versions, damaged files, a full disk
 * (injected, and real under RLIMIT_FSIZE), retention, backup. Every test works in its own
 * temporary directory.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "agentaflow/store.h"
#include "testutil.h"

#define NS_PER_H (UINT64_C(3600) * UINT64_C(1000000000))

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, ok, last_rc;
    char last_err[512];
} waiter;

static void waiter_init(waiter *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

static void on_done(int rc, const char *err, void *user)
{
    waiter *w = user;
    pthread_mutex_lock(&w->mu);
    w->done++;
    w->ok += rc == 0;
    w->last_rc = rc;
    if (err)
        snprintf(w->last_err, sizeof(w->last_err), "%s", err);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Waits (bounded: 30 s) until n completions arrived. */
static void wait_done(waiter *w, int n)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 30;
    pthread_mutex_lock(&w->mu);
    while (w->done < n)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) != 0)
            break;
    int done = w->done;
    pthread_mutex_unlock(&w->mu);
    assert_int_equal(done, n);
}

static char dir[256];
static char dbpath[300];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/af-store-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(dbpath, sizeof(dbpath), "%s/" AF_STORE_DB_FILE, dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static af_store *open_store(const char *path, bool full)
{
    af_store_sqlite_opts so;
    af_store_sqlite_opts_init(&so);
    so.path = path;
    so.fsync_full = full;
    const af_store_backend_ops *ops;
    void *self;
    char err[512] = "";
    int rc = af_store_sqlite_open(&so, &ops, &self, err, sizeof(err));
    if (rc != 0)
        fail_msg("open: %d %s", rc, err);
    af_store_opts o;
    af_store_opts_init(&o);
    o.path = path;
    af_store *s = NULL;
    assert_int_equal(af_store_new(&o, ops, self, &s), 0);
    return s;
}

/* What a load delivered. */
typedef struct loaded {
    int costs, hours, workloads, gpus, alerts, kvs, nodes, holds;
    char node_names[4][32], node_inventory[256], hold_keys[4][32];
    uint64_t hold_mask;
    bool hold_bound;
    double cost_sum, hour_sum;
    uint64_t hour_count;
    char first_cost_id[64], last_wl[64], kv_value[64];
    int wl_status[16];
    char wl_ids[16][32];
    bool alert_acked;
    double exact_cost;
} loaded;

static int l_cost(const af_store_cost *c, void *u)
{
    loaded *l = u;
    if (!l->costs++)
        snprintf(l->first_cost_id, sizeof(l->first_cost_id), "%s", c->id);
    l->cost_sum += c->cost;
    if (strcmp(c->id, "exact") == 0)
        l->exact_cost = c->cost;
    return 0;
}

static int l_hour(const af_store_cost_hour *h, void *u)
{
    loaded *l = u;
    l->hours++;
    l->hour_sum += h->cost;
    l->hour_count += h->count;
    return 0;
}

static int l_wl(const af_store_workload *w, void *u)
{
    loaded *l = u;
    if (l->workloads < 16) {
        l->wl_status[l->workloads] = w->status;
        snprintf(l->wl_ids[l->workloads], sizeof(l->wl_ids[0]), "%s", w->id);
    }
    l->workloads++;
    snprintf(l->last_wl, sizeof(l->last_wl), "%s", w->id);
    return 0;
}

static int l_gpu(const af_store_gpu *g, void *u)
{
    (void)g;
    ((loaded *)u)->gpus++;
    return 0;
}

static int l_alert(const af_store_alert *a, void *u)
{
    loaded *l = u;
    l->alerts++;
    l->alert_acked = a->acknowledged;
    return 0;
}

static int l_kv(const char *k, const char *v, void *u)
{
    loaded *l = u;
    l->kvs++;
    if (strcmp(k, "scheduler.rr_cursor") == 0)
        snprintf(l->kv_value, sizeof(l->kv_value), "%s", v);
    return 0;
}

static int l_node(const af_store_cluster_node *n, void *u)
{
    loaded *l = u;
    if (l->nodes < 4)
        snprintf(l->node_names[l->nodes], sizeof(l->node_names[0]), "%s", n->name);
    l->nodes++;
    snprintf(l->node_inventory, sizeof(l->node_inventory), "%s", n->inventory);
    return 0;
}

static int l_hold(const af_store_cluster_hold *h, void *u)
{
    loaded *l = u;
    if (l->holds < 4)
        snprintf(l->hold_keys[l->holds], sizeof(l->hold_keys[0]), "%s", h->key);
    l->holds++;
    l->hold_mask = h->gpu_mask;
    l->hold_bound = h->bound;
    return 0;
}

static void load(af_store *s, uint64_t now, uint32_t raw_max, loaded *l)
{
    memset(l, 0, sizeof(*l));
    af_store_load_opts o = {.now_ns = now,
                            .cost_raw_s = 86400,
                            .cost_raw_max = raw_max,
                            .cost_hours_s = 720ull * 3600,
                            .finished_workloads = 1000,
                            .alerts = 1000};
    af_store_load_cb cb = {.cost = l_cost,
                           .cost_hour = l_hour,
                           .workload = l_wl,
                           .gpu = l_gpu,
                           .alert = l_alert,
                           .kv = l_kv,
                           .cluster_node = l_node,
                           .cluster_hold = l_hold,
                           .user = l};
    char err[512] = "";
    int rc = af_store_load(s, &o, &cb, err, sizeof(err));
    if (rc != 0)
        fail_msg("load: %d %s", rc, err);
}

static af_store_op cost_op(const char *id, double cost, uint64_t ts)
{
    af_store_op op = {.kind = AF_STORE_COST};
    op.u.cost = (af_store_cost){.id = id,
                                .operation = "inference",
                                .model_id = "m",
                                .currency = "USD",
                                .duration_ns = 5,
                                .tokens = 7,
                                .gpu_hours = 0.5,
                                .cost = cost,
                                .timestamp_ns = ts};
    return op;
}

static af_store_op wl_op(af_store_op_kind k, const char *id, int status)
{
    af_store_op op = {.kind = k};
    op.u.workload = (af_store_workload){.id = id,
                                        .name = "train",
                                        .priority = 3,
                                        .memory_mb = 1024,
                                        .status = status,
                                        .assigned_gpu = status == 1 ? "gpu-0" : "",
                                        .failure = "",
                                        .submitted_ns = 1,
                                        .started_ns = status == 1 ? 2 : 0};
    return op;
}

static void test_roundtrip(void **state)
{
    (void)state;
    af_store *s = open_store(dbpath, true);
    assert_int_equal(af_store_start(s), 0);
    waiter w;
    waiter_init(&w);
    uint64_t now = af_now_ns();
    af_store_op op = cost_op("exact", 0.1 + 0.2, now - 1000);
    assert_int_equal(af_store_submit(s, &op, on_done, &w), 0);
    op = wl_op(AF_STORE_WORKLOAD_NEW, "wl-b", 0);
    assert_int_equal(af_store_submit(s, &op, on_done, &w), 0);
    op = wl_op(AF_STORE_WORKLOAD_NEW, "wl-a", 0);
    assert_int_equal(af_store_submit(s, &op, on_done, &w), 0);
    op = wl_op(AF_STORE_WORKLOAD, "wl-b", 1); /* placed: keeps its submission order */
    assert_int_equal(af_store_submit(s, &op, on_done, &w), 0);
    op = (af_store_op){.kind = AF_STORE_GPU};
    op.u.gpu = (af_store_gpu){.id = "api-gpu", .name = "A100", .memory_total_mb = 40960};
    assert_int_equal(af_store_submit(s, &op, on_done, &w), 0);
    op = (af_store_op){.kind = AF_STORE_ALERT};
    op.u.alert = (af_store_alert){
        .id = 7, .gpu_id = "gpu-0", .type = "temperature", .message = "hot", .timestamp_ns = now};
    assert_int_equal(af_store_submit(s, &op, on_done, &w), 0);
    op = (af_store_op){.kind = AF_STORE_ALERT_ACK};
    op.u.alert.id = 7;
    assert_int_equal(af_store_submit(s, &op, on_done, &w), 0);
    op = (af_store_op){.kind = AF_STORE_KV};
    op.u.kv.key = "scheduler.rr_cursor";
    op.u.kv.value = "3";
    assert_int_equal(af_store_submit(s, &op, on_done, &w), 0);
    wait_done(&w, 8);
    assert_int_equal(w.ok, 8);
    af_store_health h;
    af_store_health_get(s, &h);
    assert_string_equal(h.backend, "sqlite");
    assert_true(h.last_commit_ns > 0);
    assert_int_equal(h.writes, 8);
    af_store_free(s);

    s = open_store(dbpath, true);
    loaded l;
    load(s, now, 10000, &l);
    assert_int_equal(l.costs, 1);
    /* The exact double, not a rounded decimal. */
    assert_true(l.exact_cost == 0.1 + 0.2);
    assert_int_equal(l.workloads, 2);
    assert_string_equal(l.wl_ids[0], "wl-b");
    assert_int_equal(l.wl_status[0], 1);
    assert_string_equal(l.wl_ids[1], "wl-a");
    assert_int_equal(l.gpus, 1);
    assert_int_equal(l.alerts, 1);
    assert_true(l.alert_acked);
    assert_string_equal(l.kv_value, "3");
    af_store_free(s);
}

static af_store_op hold_op(const char *key, uint64_t mask, uint64_t made, uint64_t expires)
{
    af_store_op op = {.kind = AF_STORE_CLUSTER_HOLD};
    op.u.cluster_hold = (af_store_cluster_hold){.key = key,
                                                .pod = "ml/p",
                                                .node = "n1",
                                                .gpu_mask = mask,
                                                .expires_ns = expires,
                                                .bound = mask == 3,
                                                .now_ns = made};
    return op;
}

/* The cluster scheduler's records: nodes upserted in arrival order, holds replaced, ended,
 * and not loaded (then deleted) once expired. */
static void test_cluster_records(void **state)
{
    (void)state;
    af_store *s = open_store(dbpath, true);
    assert_int_equal(af_store_start(s), 0);
    waiter w;
    waiter_init(&w);
    uint64_t now = af_now_ns(), sec = 1000000000ull;
    const char *names[] = {"n2", "n1", "n2"};
    for (int i = 0; i < 3; i++) {
        af_store_op op = {.kind = AF_STORE_CLUSTER_NODE};
        op.u.cluster_node = (af_store_cluster_node){names[i], now, i == 2 ? "{\"v\":2}" : "{}"};
        assert_int_equal(af_store_submit(s, &op, on_done, &w), 0);
    }
    af_store_op ops[] = {hold_op("old", 1, now - 60 * sec, now - 30 * sec),
                         hold_op("a", 1, now, now + 30 * sec), hold_op("a", 3, now, now + 30 * sec),
                         hold_op("b", 4, now, now + 30 * sec),
                         (af_store_op){.kind = AF_STORE_CLUSTER_HOLD_END}};
    ops[4].u.cluster_hold.key = "b";
    for (int i = 0; i < 5; i++)
        assert_int_equal(af_store_submit(s, &ops[i], on_done, &w), 0);
    wait_done(&w, 8);
    assert_int_equal(w.ok, 8);
    af_store_free(s);

    s = open_store(dbpath, true);
    loaded l;
    load(s, now, 10000, &l);
    assert_int_equal(l.nodes, 2);
    assert_string_equal(l.node_names[0], "n2"); /* first arrival, updated in place */
    assert_string_equal(l.node_names[1], "n1");
    assert_int_equal(l.holds, 1);
    assert_string_equal(l.hold_keys[0], "a");
    assert_int_equal(l.hold_mask, 3);
    assert_true(l.hold_bound);
    /* Half a minute later hold "a" has expired too: it is not loaded. */
    load(s, now + 31 * sec, 10000, &l);
    assert_int_equal(l.holds, 0);
    af_store_free(s);
}

/* A database of schema version 1 (before the cluster tables) is migrated forward. */
static void test_migrate_from_v1(void **state)
{
    (void)state;
    af_store_free(open_store(dbpath, true));
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TABLE cluster_nodes; DROP TABLE cluster_holds;"
                                  " PRAGMA user_version = 1",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    af_store *s = open_store(dbpath, true);
    assert_int_equal(af_store_start(s), 0);
    waiter w;
    waiter_init(&w);
    uint64_t now = af_now_ns();
    af_store_op op = hold_op("a", 1, now, now + 1000000000ull);
    assert_int_equal(af_store_submit(s, &op, on_done, &w), 0);
    wait_done(&w, 1);
    assert_int_equal(w.ok, 1);
    af_store_free(s);
    char err[256] = "";
    assert_int_equal(af_store_sqlite_check(dbpath, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "schema version 2"));
}

typedef struct producer {
    af_store *s;
    waiter *w;
    int base, n;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    for (int i = 0; i < p->n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "c-%d", p->base + i);
        af_store_op op = cost_op(id, 1.0, af_now_ns());
        assert_int_equal(af_store_submit(p->s, &op, on_done, p->w), 0);
    }
    return NULL;
}

/* Many concurrent writers share transactions: far fewer commits than writes. */
static void test_group_commit(void **state)
{
    (void)state;
    af_store *s = open_store(dbpath, true);
    assert_int_equal(af_store_start(s), 0);
    waiter w;
    waiter_init(&w);
    enum { T = 8, N = 500 };
    pthread_t th[T];
    producer p[T];
    for (int i = 0; i < T; i++) {
        p[i] = (producer){s, &w, i * N, N};
        pthread_create(&th[i], NULL, produce, &p[i]);
    }
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    wait_done(&w, T * N);
    assert_int_equal(w.ok, T * N);
    af_store_health h;
    af_store_health_get(s, &h);
    assert_int_equal(h.writes, T * N);
    assert_true(h.commits < (uint64_t)T * N);
    af_store_free(s);
    s = open_store(dbpath, true);
    loaded l;
    load(s, af_now_ns(), 100000, &l);
    assert_int_equal(l.costs, T * N);
    af_store_free(s);
}

/* Old entries come back as hourly roll-ups, recent ones one by one, none counted twice. */
static void test_load_rollups(void **state)
{
    (void)state;
    af_store *s = open_store(dbpath, false);
    assert_int_equal(af_store_start(s), 0);
    waiter w;
    waiter_init(&w);
    uint64_t now = af_now_ns();
    now -= now % NS_PER_H;
    now += NS_PER_H / 2;
    int n = 0;
    /* 3 days, 4 entries an hour. */
    for (int h = 0; h < 72; h++)
        for (int k = 0; k < 4; k++) {
            char id[32];
            snprintf(id, sizeof(id), "e-%d-%d", h, k);
            af_store_op op = cost_op(id, 1.0, now - (uint64_t)h * NS_PER_H - (uint64_t)k);
            assert_int_equal(af_store_submit(s, &op, on_done, &w), 0);
            n++;
        }
    wait_done(&w, n);
    assert_int_equal(w.ok, n);
    loaded l;
    load(s, now, 10000, &l);
    assert_true(l.costs > 0 && l.hours > 0);
    assert_int_equal((uint64_t)l.costs + l.hour_count, (uint64_t)n);
    assert_double_near(l.cost_sum + l.hour_sum, (double)n, 1e-9);
    /* A raw cap: fewer entries one by one, the total unchanged. */
    load(s, now, 10, &l);
    assert_true(l.costs <= 10);
    assert_int_equal((uint64_t)l.costs + l.hour_count, (uint64_t)n);
    af_store_free(s);
}

static void set_user_version(const char *path, int v)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    af_store_free(open_store(dbpath, true));
    set_user_version(dbpath, AF_STORE_SCHEMA_VERSION + 1);
    af_store_sqlite_opts so;
    af_store_sqlite_opts_init(&so);
    so.path = dbpath;
    const af_store_backend_ops *ops;
    void *self;
    char err[512] = "";
    assert_int_equal(af_store_sqlite_open(&so, &ops, &self, err, sizeof(err)), -EPROTO);
    assert_non_null(strstr(err, "newer agentaflow"));
    assert_non_null(strstr(err, dbpath));
}

static void test_corrupt_refused_untouched(void **state)
{
    (void)state;
    FILE *f = fopen(dbpath, "w");
    assert_non_null(f);
    char junk[8192];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)(i * 131 + 7);
    fwrite(junk, 1, sizeof(junk), f);
    fclose(f);
    af_store_sqlite_opts so;
    af_store_sqlite_opts_init(&so);
    so.path = dbpath;
    const af_store_backend_ops *ops;
    void *self;
    char err[512] = "";
    assert_int_equal(af_store_sqlite_open(&so, &ops, &self, err, sizeof(err)), -EILSEQ);
    assert_non_null(strstr(err, dbpath));
    char back[8192];
    f = fopen(dbpath, "r");
    assert_int_equal(fread(back, 1, sizeof(back), f), sizeof(back));
    fclose(f);
    assert_memory_equal(back, junk, sizeof(junk));
    char wal[400];
    snprintf(wal, sizeof(wal), "%s-wal", dbpath);
    assert_int_not_equal(access(wal, F_OK), 0);
    assert_int_not_equal(af_store_sqlite_check(dbpath, err, sizeof(err)), 0);
}

static void test_injected_full(void **state)
{
    (void)state;
    af_store *s = open_store(dbpath, true);
    assert_int_equal(af_store_start(s), 0);
    waiter w;
    waiter_init(&w);
    af_store_inject_fault(s, -ENOSPC, 1);
    af_store_op op = cost_op("lost", 1.0, af_now_ns());
    assert_int_equal(af_store_submit(s, &op, on_done, &w), 0);
    wait_done(&w, 1);
    assert_int_equal(w.last_rc, -ENOSPC);
    af_store_health h;
    af_store_health_get(s, &h);
    assert_int_equal(h.failures, 1);
    assert_true(h.last_error[0] != '\0');
    op = cost_op("kept", 1.0, af_now_ns());
    assert_int_equal(af_store_submit(s, &op, on_done, &w), 0);
    wait_done(&w, 2);
    assert_int_equal(w.last_rc, 0);
    af_store_health_get(s, &h);
    assert_string_equal(h.last_error, "");
    af_store_free(s);
    s = open_store(dbpath, true);
    loaded l;
    load(s, af_now_ns(), 100, &l);
    assert_int_equal(l.costs, 1);
    assert_string_equal(l.first_cost_id, "kept");
    af_store_free(s);
}

/* A real short write: the file size limit stands in for a full disk. */
static void test_rlimit_full_then_recovers(void **state)
{
    (void)state;
    signal(SIGXFSZ, SIG_IGN);
    af_store *s = open_store(dbpath, true);
    assert_int_equal(af_store_start(s), 0);
    waiter w;
    waiter_init(&w);
    struct rlimit old;
    getrlimit(RLIMIT_FSIZE, &old);
    struct rlimit lim = {256 * 1024, old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    char big[2048];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    int sent = 0;
    /* One write a transaction until one fails. */
    for (int i = 0; i < 2000 && w.last_rc == 0; i++) {
        af_store_op op = cost_op(big, 1.0, af_now_ns());
        assert_int_equal(af_store_submit(s, &op, on_done, &w), 0);
        wait_done(&w, ++sent);
    }
    int failed_rc = w.last_rc;
    int ok_before = w.ok;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    if (failed_rc != -ENOSPC)
        fail_msg("rc %d: %s", failed_rc, w.last_err);
    assert_non_null(strstr(w.last_err, dbpath));
    af_store_op op = cost_op("after", 1.0, af_now_ns());
    assert_int_equal(af_store_submit(s, &op, on_done, &w), 0);
    wait_done(&w, ++sent);
    assert_int_equal(w.last_rc, 0);
    af_store_free(s);
    char err[512];
    assert_int_equal(af_store_sqlite_check(dbpath, err, sizeof(err)), 0);
    s = open_store(dbpath, true);
    loaded l;
    load(s, af_now_ns(), 100000, &l);
    /* Every acknowledged write, nothing of the failed one. */
    assert_int_equal(l.costs, ok_before + 1);
    af_store_free(s);
}

static void test_prune_and_backup(void **state)
{
    (void)state;
    af_store_sqlite_opts so;
    af_store_sqlite_opts_init(&so);
    so.path = dbpath;
    const af_store_backend_ops *ops;
    void *self;
    char err[512] = "";
    assert_int_equal(af_store_sqlite_open(&so, &ops, &self, err, sizeof(err)), 0);
    af_store_opts o;
    af_store_opts_init(&o);
    o.retention_costs_s = 86400;
    o.retention_workloads_s = 86400;
    o.prune_batch = 7;
    af_store *s = NULL;
    assert_int_equal(af_store_new(&o, ops, self, &s), 0);
    uint64_t now = af_now_ns(), old = now - 3 * 86400ull * 1000000000ull;
    /* Written through the backend directly, before the writer runs: the same path a load
     * would see. */
    assert_int_equal(ops->begin(self, err, sizeof(err)), 0);
    for (int i = 0; i < 20; i++) {
        af_store_op op = cost_op("old", 1.0, old);
        assert_int_equal(ops->write(self, &op, err, sizeof(err)), 0);
    }
    af_store_op op = cost_op("new", 1.0, now);
    assert_int_equal(ops->write(self, &op, err, sizeof(err)), 0);
    op = wl_op(AF_STORE_WORKLOAD_NEW, "done-long-ago", 2);
    op.u.workload.completed_ns = old;
    assert_int_equal(ops->write(self, &op, err, sizeof(err)), 0);
    assert_int_equal(ops->commit(self, err, sizeof(err)), 0);
    uint64_t deleted = 0, total = 0;
    do {
        assert_int_equal(ops->begin(self, err, sizeof(err)), 0);
        assert_int_equal(ops->prune(self, now - 86400ull * 1000000000ull,
                                    now - 86400ull * 1000000000ull, 7, &deleted, err, sizeof(err)),
                         0);
        assert_int_equal(ops->commit(self, err, sizeof(err)), 0);
        assert_true(deleted <= 7 * 3);
        total += deleted;
    } while (deleted);
    /* 20 entries, their roll-up, the finished workload. */
    assert_int_equal(total, 22);
    loaded l;
    load(s, now, 1000, &l);
    assert_int_equal(l.costs, 1);
    assert_int_equal(l.workloads, 0);

    assert_int_equal(af_store_start(s), 0);
    char dest[400];
    snprintf(dest, sizeof(dest), "%s/backup.db", dir);
    assert_int_equal(af_store_sqlite_backup(dbpath, dest, err, sizeof(err)), 0);
    assert_int_equal(af_store_sqlite_check(dest, err, sizeof(err)), 0);
    af_store_free(s);
    s = open_store(dest, true);
    load(s, now, 1000, &l);
    assert_int_equal(l.costs, 1);
    af_store_free(s);
}

/* A backend of the test's own: the generic layer needs nothing from SQLite. It refuses a cost
 * whose id is "bad" as a constraint would, and counts what it committed. */
typedef struct fake {
    int in_txn, committed, pending, commits;
} fake;

static int f_begin(void *self, char *err, size_t len)
{
    (void)err;
    (void)len;
    fake *f = self;
    f->in_txn = 1;
    f->pending = 0;
    return 0;
}

static int f_write(void *self, const af_store_op *op, char *err, size_t len)
{
    fake *f = self;
    if (op->kind == AF_STORE_COST && strcmp(op->u.cost.id, "bad") == 0) {
        snprintf(err, len, "refused");
        return -EINVAL;
    }
    f->pending++;
    return 0;
}

static int f_commit(void *self, char *err, size_t len)
{
    (void)err;
    (void)len;
    fake *f = self;
    f->committed += f->pending;
    f->commits++;
    f->in_txn = 0;
    return 0;
}

static void f_rollback(void *self)
{
    fake *f = self;
    f->pending = 0;
    f->in_txn = 0;
}

static int f_load(void *self, const af_store_load_opts *o, const af_store_load_cb *cb, char *err,
                  size_t len)
{
    (void)self, (void)o, (void)cb, (void)err, (void)len;
    return 0;
}

static int f_prune(void *self, uint64_t a, uint64_t b, uint32_t l, uint64_t *d, char *err,
                   size_t len)
{
    (void)self, (void)a, (void)b, (void)l, (void)err, (void)len;
    *d = 0;
    return 0;
}

static void f_stats(void *self, af_store_backend_stats *out)
{
    (void)self;
    memset(out, 0, sizeof(*out));
}

static void f_close(void *self)
{
    (void)self;
}

static const af_store_backend_ops fake_ops = {"fake", f_begin, f_write, f_commit, f_rollback,
                                              f_load, f_prune, f_stats, f_close};

/* One refused write in a group fails alone; its neighbours commit. */
static void test_refused_write_alone(void **state)
{
    (void)state;
    fake f = {0};
    af_store *s = NULL;
    assert_int_equal(af_store_new(NULL, &fake_ops, &f, &s), 0);
    waiter w;
    waiter_init(&w);
    /* Queued before the writer starts, so the three share one group. */
    const char *ids[] = {"a", "bad", "c"};
    for (int i = 0; i < 3; i++) {
        af_store_op op = cost_op(ids[i], 1.0, 1);
        assert_int_equal(af_store_submit(s, &op, on_done, &w), 0);
    }
    assert_int_equal(af_store_start(s), 0);
    wait_done(&w, 3);
    assert_int_equal(w.ok, 2);
    af_store_free(s);
    assert_int_equal(f.committed, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_rollups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_refused_untouched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_injected_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rlimit_full_then_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_and_backup, setup, teardown),
        cmocka_unit_test(test_refused_write_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
