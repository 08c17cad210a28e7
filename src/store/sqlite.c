/*
 * The SQLite backend of the store: WAL journal, one connection owned by the writer thread,
 * every statement prepared once with bound parameters. The schema carries its version in
 * PRAGMA user_version; migrations[] brings an older database forward, and a newer one is
 * refused before anything is written to it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "agentaflow/store.h"
#include "store/sqlite_int.h"
#include "util/str.h"

/* migrations[v] takes a database from user_version v to v + 1, in one transaction. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE costs(seq INTEGER PRIMARY KEY, id TEXT NOT NULL, operation TEXT NOT NULL,"
    " model_id TEXT NOT NULL, currency TEXT NOT NULL, duration_ns INTEGER NOT NULL,"
    " tokens INTEGER NOT NULL, gpu_hours REAL NOT NULL, cost REAL NOT NULL, ts INTEGER NOT NULL);"
    "CREATE INDEX costs_ts ON costs(ts);"
    "CREATE TABLE cost_hours(hour INTEGER NOT NULL, operation TEXT NOT NULL,"
    " model_id TEXT NOT NULL, cost REAL NOT NULL, gpu_hours REAL NOT NULL,"
    " tokens INTEGER NOT NULL, count INTEGER NOT NULL,"
    " PRIMARY KEY(hour, operation, model_id)) WITHOUT ROWID;"
    "CREATE TABLE workloads(id TEXT PRIMARY KEY, seq INTEGER NOT NULL, name TEXT NOT NULL,"
    " priority INTEGER NOT NULL, memory_mb INTEGER NOT NULL, estimated_ms INTEGER NOT NULL,"
    " exclusive INTEGER NOT NULL, status INTEGER NOT NULL, pending_reason INTEGER NOT NULL,"
    " assigned_gpu TEXT NOT NULL, failure TEXT NOT NULL, submitted_ns INTEGER NOT NULL,"
    " started_ns INTEGER NOT NULL, completed_ns INTEGER NOT NULL);"
    "CREATE INDEX workloads_seq ON workloads(seq);"
    "CREATE INDEX workloads_done ON workloads(completed_ns) WHERE status >= 2;"
    "CREATE TABLE gpus(id TEXT PRIMARY KEY, seq INTEGER NOT NULL, name TEXT NOT NULL,"
    " memory_total_mb INTEGER NOT NULL, memory_used_mb INTEGER NOT NULL,"
    " utilization REAL NOT NULL, temperature REAL NOT NULL, power_usage REAL NOT NULL,"
    " available INTEGER NOT NULL);"
    "CREATE TABLE alerts(id INTEGER PRIMARY KEY, gpu_id TEXT NOT NULL, type TEXT NOT NULL,"
    " severity INTEGER NOT NULL, message TEXT NOT NULL, value REAL NOT NULL,"
    " threshold REAL NOT NULL, ts INTEGER NOT NULL, acknowledged INTEGER NOT NULL);"
    "CREATE TABLE kv(key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    /* 1 -> 2: the cluster scheduler's inventory (checkpointed; rowid = arrival order) and
     * its reservations. */
    "CREATE TABLE cluster_nodes(name TEXT NOT NULL UNIQUE, last_report_ns INTEGER NOT NULL,"
    " inventory TEXT NOT NULL);"
    "CREATE TABLE cluster_holds(key TEXT PRIMARY KEY, pod TEXT NOT NULL, node TEXT NOT NULL,"
    " gpu_mask INTEGER NOT NULL, memory_mb INTEGER NOT NULL, expires_ns INTEGER NOT NULL,"
    " bound INTEGER NOT NULL);"
    "CREATE INDEX cluster_holds_expiry ON cluster_holds(expires_ns);",
};
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == AF_STORE_SCHEMA_VERSION,
               "one migration per schema version");

static const char *const sql_text[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_COST] = "INSERT INTO costs(id, operation, model_id, currency, duration_ns, tokens,"
                " gpu_hours, cost, ts) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_COST_HOUR] = "INSERT INTO cost_hours(hour, operation, model_id, cost, gpu_hours, tokens,"
                     " count) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                     " ON CONFLICT(hour, operation, model_id) DO UPDATE SET"
                     " cost = cost + excluded.cost, gpu_hours = gpu_hours + excluded.gpu_hours,"
                     " tokens = tokens + excluded.tokens, count = count + excluded.count",
    [ST_WL_NEW] = "INSERT OR REPLACE INTO workloads(id, seq, name, priority, memory_mb,"
                  " estimated_ms, exclusive, status, pending_reason, assigned_gpu, failure,"
                  " submitted_ns, started_ns, completed_ns) VALUES(?1,"
                  " (SELECT coalesce(max(seq), 0) + 1 FROM workloads), ?2, ?3, ?4, ?5, ?6, ?7,"
                  " ?8, ?9, ?10, ?11, ?12, ?13)",
    /* A state change of a workload whose submission row is missing (it was pruned, or the
     * submission was not persisted) inserts it at the end of the order. */
    [ST_WL] = "INSERT INTO workloads(id, seq, name, priority, memory_mb, estimated_ms, exclusive,"
              " status, pending_reason, assigned_gpu, failure, submitted_ns, started_ns,"
              " completed_ns) VALUES(?1, (SELECT coalesce(max(seq), 0) + 1 FROM workloads),"
              " ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
              " ON CONFLICT(id) DO UPDATE SET name = excluded.name,"
              " priority = excluded.priority, memory_mb = excluded.memory_mb,"
              " estimated_ms = excluded.estimated_ms, exclusive = excluded.exclusive,"
              " status = excluded.status, pending_reason = excluded.pending_reason,"
              " assigned_gpu = excluded.assigned_gpu, failure = excluded.failure,"
              " submitted_ns = excluded.submitted_ns, started_ns = excluded.started_ns,"
              " completed_ns = excluded.completed_ns",
    [ST_GPU] = "INSERT INTO gpus(id, seq, name, memory_total_mb, memory_used_mb, utilization,"
               " temperature, power_usage, available) VALUES(?1,"
               " (SELECT coalesce(max(seq), 0) + 1 FROM gpus), ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
               " ON CONFLICT(id) DO UPDATE SET name = excluded.name,"
               " memory_total_mb = excluded.memory_total_mb,"
               " memory_used_mb = excluded.memory_used_mb, utilization = excluded.utilization,"
               " temperature = excluded.temperature, power_usage = excluded.power_usage,"
               " available = excluded.available",
    [ST_ALERT] = "INSERT OR REPLACE INTO alerts(id, gpu_id, type, severity, message, value,"
                 " threshold, ts, acknowledged) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_ALERT_ACK] = "UPDATE alerts SET acknowledged = 1 WHERE id = ?1",
    [ST_KV] = "INSERT OR REPLACE INTO kv(key, value) VALUES(?1, ?2)",
    /* An upsert keeps the row (and its rowid, the arrival order). */
    [ST_CL_NODE] = "INSERT INTO cluster_nodes(name, last_report_ns, inventory) VALUES(?1, ?2, ?3)"
                   " ON CONFLICT(name) DO UPDATE SET last_report_ns = excluded.last_report_ns,"
                   " inventory = excluded.inventory",
    [ST_CL_HOLD] = "INSERT OR REPLACE INTO cluster_holds(key, pod, node, gpu_mask, memory_mb,"
                   " expires_ns, bound) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_CL_HOLD_EXPIRED] = "DELETE FROM cluster_holds WHERE expires_ns <= ?1",
    [ST_CL_HOLD_END] = "DELETE FROM cluster_holds WHERE key = ?1",
};

static void seterr(char *err, size_t len, const char *fmt, ...)
{
    if (!err || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

/* SQLite result -> the store's codes (store.h). A short write for want of space or under
 * RLIMIT_FSIZE is "full" whatever SQLite calls it: the remedy is the same. */
static int map_rc(sqlite3 *db, int rc)
{
    int sys = db ? sqlite3_system_errno(db) : 0;
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return -EILSEQ;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_CANTOPEN:
        return sys == EROFS ? -EROFS : sys == ENOENT ? -ENOENT : -EACCES;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
        return -EINVAL;
    case SQLITE_IOERR:
        /* A write(2) refused outright (EFBIG past RLIMIT_FSIZE, EDQUOT) comes back as
         * IOERR_WRITE, often with errno already overwritten by the rollback that followed;
         * for the operator it is the same condition as a full disk. */
        if (rc == SQLITE_IOERR_WRITE || sys == ENOSPC || sys == EFBIG || sys == EDQUOT)
            return -ENOSPC;
        return -EIO;
    default:
        return -EIO;
    }
}

/* Fills err with the file and SQLite's words (and the OS error when there is one). */
int af__sq_fail(sq *q, int rc, char *err, size_t len, const char *what)
{
    int code = map_rc(q->db, rc);
    int sys = q->db ? sqlite3_system_errno(q->db) : 0;
    const char *msg = q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc);
    if ((rc & 0xff) == SQLITE_IOERR)
        seterr(err, len, "%s: %s: %s (%s)", q->path, what, msg,
               sys                        ? strerror(sys)
               : rc == SQLITE_IOERR_WRITE ? "write refused: disk full or file size limit"
                                          : "no OS error");
    else
        seterr(err, len, "%s: %s: %s", q->path, what, msg);
    return code;
}

static int run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_STATIC);
}

/* One bound parameter of a write: text, an integer or a double. */
typedef struct param {
    char type; /* 's', 'i', 'd' */
    union {
        const char *s;
        int64_t i;
        double d;
    } v;
} param;

#define P_S(x) ((param){'s', {.s = (x)}})
#define P_I(x) ((param){'i', {.i = (int64_t)(x)}}) /* ns times fit int64 until 2262 */
#define P_D(x) ((param){'d', {.d = (x)}})
#define MAX_PARAMS 13

/* Binds p[0..n) to ?1..?n, runs the statement and resets it. */
static int run_params(sqlite3_stmt *st, const param *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int at = (int)i + 1;
        if (p[i].type == 's')
            bind_text(st, at, p[i].v.s);
        else if (p[i].type == 'i')
            sqlite3_bind_int64(st, at, (sqlite3_int64)p[i].v.i);
        else
            sqlite3_bind_double(st, at, p[i].v.d);
    }
    return run(st);
}

static void hours_clear(sq *q)
{
    for (size_t i = 0; i < q->n_hours; i++) {
        free(q->hours[i].operation);
        free(q->hours[i].model_id);
    }
    q->n_hours = 0;
}

/* Writes the summed roll-ups of this transaction. */
static int hours_flush(sq *q, char *err, size_t len)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *st = q->st[ST_COST_HOUR];
    for (size_t i = 0; i < q->n_hours && rc == SQLITE_OK; i++) {
        const pending_hour *h = &q->hours[i];
        param p[] = {P_I(h->hour),      P_S(h->operation), P_S(h->model_id), P_D(h->cost),
                     P_D(h->gpu_hours), P_I(h->tokens),    P_I(h->count)};
        rc = run_params(st, p, sizeof(p) / sizeof(p[0]));
    }
    hours_clear(q);
    return rc == SQLITE_OK ? 0 : af__sq_fail(q, rc, err, len, "cost roll-up");
}

static int hours_add(sq *q, const af_store_cost *c, char *err, size_t len)
{
    uint64_t hour = c->timestamp_ns - c->timestamp_ns % NS_PER_H;
    const char *op = c->operation ? c->operation : "", *model = c->model_id ? c->model_id : "";
    for (size_t i = 0; i < q->n_hours; i++) {
        pending_hour *h = &q->hours[i];
        if (h->hour == hour && !strcmp(h->operation, op) && !strcmp(h->model_id, model)) {
            h->cost += c->cost;
            h->gpu_hours += c->gpu_hours;
            h->tokens += c->tokens;
            h->count++;
            return 0;
        }
    }
    if (q->n_hours == MAX_PENDING_HOURS) {
        int rc = hours_flush(q, err, len);
        if (rc != 0)
            return rc;
    }
    pending_hour *h = &q->hours[q->n_hours];
    *h = (pending_hour){hour, af__strdup(op), af__strdup(model), c->cost, c->gpu_hours, c->tokens,
                        1};
    q->n_hours++;
    if (!h->operation || !h->model_id) {
        snprintf(err, len, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static int sq_begin(void *self, char *err, size_t len)
{
    sq *q = self;
    int rc = run(q->st[ST_BEGIN]);
    return rc == SQLITE_OK ? 0 : af__sq_fail(q, rc, err, len, "begin");
}

static int sq_commit(void *self, char *err, size_t len)
{
    sq *q = self;
    int frc = hours_flush(q, err, len);
    if (frc != 0)
        return frc;
    int rc = run(q->st[ST_COMMIT]);
    return rc == SQLITE_OK ? 0 : af__sq_fail(q, rc, err, len, "commit");
}

static void sq_rollback(void *self)
{
    sq *q = self;
    hours_clear(q);
    /* A failed COMMIT (disk full) may have rolled back already. */
    if (!sqlite3_get_autocommit(q->db))
        run(q->st[ST_ROLLBACK]);
}

static size_t p_cost(const af_store_op *op, param *p)
{
    const af_store_cost *c = &op->u.cost;
    param r[] = {P_S(c->id),        P_S(c->operation),   P_S(c->model_id),
                 P_S(c->currency),  P_I(c->duration_ns), P_I(c->tokens),
                 P_D(c->gpu_hours), P_D(c->cost),        P_I(c->timestamp_ns)};
    memcpy(p, r, sizeof(r));
    return sizeof(r) / sizeof(r[0]);
}

static size_t p_workload(const af_store_op *op, param *p)
{
    const af_store_workload *w = &op->u.workload;
    param r[] = {P_S(w->id),          P_S(w->name),           P_I(w->priority),
                 P_I(w->memory_mb),   P_I(w->estimated_ms),   P_I(w->exclusive),
                 P_I(w->status),      P_I(w->pending_reason), P_S(w->assigned_gpu),
                 P_S(w->failure),     P_I(w->submitted_ns),   P_I(w->started_ns),
                 P_I(w->completed_ns)};
    memcpy(p, r, sizeof(r));
    return sizeof(r) / sizeof(r[0]);
}

static size_t p_gpu(const af_store_op *op, param *p)
{
    const af_store_gpu *g = &op->u.gpu;
    param r[] = {
        P_S(g->id),          P_S(g->name),        P_I(g->memory_total_mb), P_I(g->memory_used_mb),
        P_D(g->utilization), P_D(g->temperature), P_D(g->power_usage),     P_I(g->available)};
    memcpy(p, r, sizeof(r));
    return sizeof(r) / sizeof(r[0]);
}

static size_t p_alert(const af_store_op *op, param *p)
{
    const af_store_alert *a = &op->u.alert;
    param r[] = {P_I(a->id),        P_S(a->gpu_id),       P_S(a->type),
                 P_I(a->severity),  P_S(a->message),      P_D(a->value),
                 P_D(a->threshold), P_I(a->timestamp_ns), P_I(a->acknowledged)};
    memcpy(p, r, sizeof(r));
    return sizeof(r) / sizeof(r[0]);
}

static size_t p_alert_ack(const af_store_op *op, param *p)
{
    p[0] = P_I(op->u.alert.id);
    return 1;
}

static size_t p_kv(const af_store_op *op, param *p)
{
    p[0] = P_S(op->u.kv.key);
    p[1] = P_S(op->u.kv.value);
    return 2;
}

static size_t p_cluster_node(const af_store_op *op, param *p)
{
    const af_store_cluster_node *n = &op->u.cluster_node;
    p[0] = P_S(n->name);
    p[1] = P_I(n->last_report_ns);
    p[2] = P_S(n->inventory);
    return 3;
}

static size_t p_cluster_hold(const af_store_op *op, param *p)
{
    const af_store_cluster_hold *h = &op->u.cluster_hold;
    param r[] = {P_S(h->key),       P_S(h->pod),        P_S(h->node), P_I(h->gpu_mask),
                 P_I(h->memory_mb), P_I(h->expires_ns), P_I(h->bound)};
    memcpy(p, r, sizeof(r));
    return sizeof(r) / sizeof(r[0]);
}

static size_t p_expired(const af_store_op *op, param *p)
{
    p[0] = P_I(op->u.cluster_hold.now_ns);
    return 1;
}

static size_t p_key(const af_store_op *op, param *p)
{
    p[0] = P_S(op->u.cluster_hold.key);
    return 1;
}

/* What each write kind runs: its statement with its parameters, then optionally a second
 * one (a hold also drops the holds that expired before it was made). */
typedef size_t (*params_fn)(const af_store_op *op, param *p);
static const struct {
    int st;
    params_fn params;
    const char *what; /* for the error */
    int then_st;      /* 0 = none */
    params_fn then_params;
} writes[] = {
    [AF_STORE_COST] = {ST_COST, p_cost, "cost entry", 0, NULL},
    [AF_STORE_WORKLOAD_NEW] = {ST_WL_NEW, p_workload, "workload", 0, NULL},
    [AF_STORE_WORKLOAD] = {ST_WL, p_workload, "workload", 0, NULL},
    [AF_STORE_GPU] = {ST_GPU, p_gpu, "GPU", 0, NULL},
    [AF_STORE_ALERT] = {ST_ALERT, p_alert, "alert", 0, NULL},
    [AF_STORE_ALERT_ACK] = {ST_ALERT_ACK, p_alert_ack, "alert resolution", 0, NULL},
    [AF_STORE_KV] = {ST_KV, p_kv, "setting", 0, NULL},
    [AF_STORE_CLUSTER_NODE] = {ST_CL_NODE, p_cluster_node, "cluster node", 0, NULL},
    [AF_STORE_CLUSTER_HOLD] = {ST_CL_HOLD_EXPIRED, p_expired, "cluster reservation", ST_CL_HOLD,
                               p_cluster_hold},
    [AF_STORE_CLUSTER_HOLD_END] = {ST_CL_HOLD_END, p_key, "cluster reservation", 0, NULL},
};

static int sq_write(void *self, const af_store_op *op, char *err, size_t len)
{
    sq *q = self;
    size_t k = (size_t)op->kind;
    if (k >= sizeof(writes) / sizeof(writes[0]) || !writes[k].params) {
        seterr(err, len, "unknown write kind %d", (int)op->kind);
        return -EINVAL;
    }
    param p[MAX_PARAMS];
    int rc = run_params(q->st[writes[k].st], p, writes[k].params(op, p));
    if (rc == SQLITE_OK && writes[k].then_params)
        rc = run_params(q->st[writes[k].then_st], p, writes[k].then_params(op, p));
    if (rc != SQLITE_OK)
        return af__sq_fail(q, rc, err, len, writes[k].what);
    /* An entry also counts in its hour's roll-up. */
    return op->kind == AF_STORE_COST ? hours_add(q, &op->u.cost, err, len) : 0;
}

static int sq_prune(void *self, uint64_t costs_before, uint64_t wl_before, uint32_t limit,
                    uint64_t *deleted, char *err, size_t len)
{
    sq *q = self;
    *deleted = 0;
    static const char *const sql[] = {
        "DELETE FROM costs WHERE seq IN (SELECT seq FROM costs WHERE ts < ?1 LIMIT ?2)",
        "DELETE FROM cost_hours WHERE (hour, operation, model_id) IN (SELECT hour, operation,"
        " model_id FROM cost_hours WHERE hour < ?1 LIMIT ?2)",
        "DELETE FROM workloads WHERE id IN (SELECT id FROM workloads WHERE status >= 2"
        " AND completed_ns < ?1 LIMIT ?2)",
    };
    for (size_t i = 0; i < 3; i++) {
        uint64_t before = i < 2 ? costs_before : wl_before;
        if (!before)
            continue;
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(q->db, sql[i], -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)before);
            sqlite3_bind_int64(st, 2, limit);
            rc = sqlite3_step(st);
            rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_OK)
            return af__sq_fail(q, rc, err, len, "prune");
        *deleted += (uint64_t)sqlite3_changes(q->db);
    }
    return 0;
}

static uint64_t file_size(const char *path, const char *suffix)
{
    char p[4200];
    snprintf(p, sizeof(p), "%s%s", path, suffix);
    struct stat sb;
    return stat(p, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

static void sq_stats(void *self, af_store_backend_stats *out)
{
    sq *q = self;
    memset(out, 0, sizeof(*out));
    if (!q->in_memory)
        out->size_bytes = file_size(q->path, "") + file_size(q->path, "-wal");
}

void af__sq_close(void *self)
{
    sq *q = self;
    if (!q)
        return;
    hours_clear(q);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(q->st[i]);
    sqlite3_close(q->db);
    free(q->path);
    free(q);
}

static const af_store_backend_ops sqlite_ops = {
    .name = "sqlite",
    .begin = sq_begin,
    .write = sq_write,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .load = af__sq_load,
    .prune = sq_prune,
    .stats = sq_stats,
    .close = af__sq_close,
};

/* ---------------------------------------------------------------------------------------- */
/* Opening and migrating.                                                                    */

void af_store_sqlite_opts_init(af_store_sqlite_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->path = ":memory:";
    o->fsync_full = true;
    o->busy_ms = 5000;
}

static int exec(sq *q, const char *sql, char *err, size_t len, const char *what)
{
    int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : af__sq_fail(q, rc, err, len, what);
}

static int user_version(sq *q, int *out, char *err, size_t len)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_OK)
        return 0;
    int code = af__sq_fail(q, rc, err, len, "not a readable agentaflow database");
    return code;
}

static int migrate(sq *q, int from, char *err, size_t len)
{
    int rc = exec(q, "BEGIN IMMEDIATE", err, len, "migrate");
    for (int v = from; rc == 0 && v < AF_STORE_SCHEMA_VERSION; v++)
        rc = exec(q, migrations[v], err, len, "migrate");
    if (rc == 0) {
        /* PRAGMA takes no bound parameters; the value is this build's constant. */
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", AF_STORE_SCHEMA_VERSION);
        rc = exec(q, sql, err, len, "migrate");
    }
    if (rc == 0)
        rc = exec(q, "COMMIT", err, len, "migrate");
    if (rc != 0 && !sqlite3_get_autocommit(q->db))
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int af__sq_open(const char *path, bool read_only, uint32_t busy_ms, sq **out, char *err, size_t len)
{
    *out = NULL;
    sq *q = calloc(1, sizeof(*q));
    if (!q || !(q->path = af__strdup(path))) {
        free(q);
        seterr(err, len, "out of memory");
        return -ENOMEM;
    }
    q->in_memory = strcmp(path, ":memory:") == 0;
    int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path, &q->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        int code = af__sq_fail(q, rc, err, len, "cannot open");
        af__sq_close(q);
        return code;
    }
    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, (int)busy_ms);
    *out = q;
    return 0;
}

int af_store_sqlite_open(const af_store_sqlite_opts *o, const af_store_backend_ops **ops,
                         void **self, char *err, size_t len)
{
    af_store_sqlite_opts def;
    if (!o) {
        af_store_sqlite_opts_init(&def);
        o = &def;
    }
    *ops = NULL;
    *self = NULL;
    sq *q = NULL;
    int rc = af__sq_open(o->path ? o->path : ":memory:", o->read_only,
                         o->busy_ms ? o->busy_ms : 5000, &q, err, len);
    if (rc != 0)
        return rc;
    int v = 0;
    /* A read first: a file that is not a database (or a damaged header) fails here, before
     * any PRAGMA below could write to it. */
    if ((rc = user_version(q, &v, err, len)) != 0)
        goto fail;
    if (v > AF_STORE_SCHEMA_VERSION) {
        seterr(err, len,
               "%s: written by a newer agentaflow (schema version %d; this build knows %d); "
               "refusing to open it",
               q->path, v, AF_STORE_SCHEMA_VERSION);
        rc = -EPROTO;
        goto fail;
    }
    if (!o->read_only) {
        if (!q->in_memory && (rc = exec(q, "PRAGMA journal_mode = WAL", err, len, "WAL")) != 0)
            goto fail;
        if ((rc = exec(q,
                       o->fsync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
                       err, len, "synchronous")) != 0)
            goto fail;
        if (v < AF_STORE_SCHEMA_VERSION && (rc = migrate(q, v, err, len)) != 0)
            goto fail;
    } else if (v < AF_STORE_SCHEMA_VERSION) {
        seterr(err, len, "%s: schema version %d needs a migration; start the daemon on it first",
               q->path, v);
        rc = -EPROTO;
        goto fail;
    }
    for (int i = 0; !o->read_only && i < ST_COUNT; i++) {
        int prc =
            sqlite3_prepare_v3(q->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL);
        if (prc != SQLITE_OK) {
            rc = af__sq_fail(q, prc, err, len, "prepare");
            goto fail;
        }
    }
    *ops = &sqlite_ops;
    *self = q;
    return 0;
fail:
    af__sq_close(q);
    return rc;
}

int af_store_sqlite_check(const char *path, char *err, size_t len)
{
    sq *q = NULL;
    int rc = af__sq_open(path, true, 5000, &q, err, len);
    if (rc != 0)
        return rc;
    int v = 0;
    if ((rc = user_version(q, &v, err, len)) == 0) {
        sqlite3_stmt *st = NULL;
        int src = sqlite3_prepare_v2(q->db, "PRAGMA integrity_check", -1, &st, NULL);
        if (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
            const unsigned char *rt = sqlite3_column_text(st, 0);
            const char *r = rt ? (const char *)rt : "";
            if (strcmp(r, "ok") != 0) {
                seterr(err, len, "%s: %s", path, r);
                rc = -EILSEQ;
            } else {
                seterr(err, len, "%s: ok (schema version %d)", path, v);
            }
        } else {
            rc = af__sq_fail(q, src, err, len, "integrity check");
        }
        sqlite3_finalize(st);
    }
    af__sq_close(q);
    return rc;
}

int af_store_sqlite_backup(const char *path, const char *dest, char *err, size_t len)
{
    sq *src = NULL, *dst = NULL;
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", dest);
    unlink(tmp);
    int rc = af__sq_open(path, true, 5000, &src, err, len);
    if (rc == 0)
        rc = af__sq_open(tmp, false, 5000, &dst, err, len);
    if (rc == 0) {
        sqlite3_backup *b = sqlite3_backup_init(dst->db, "main", src->db, "main");
        if (!b) {
            rc = af__sq_fail(dst, sqlite3_errcode(dst->db), err, len, "backup");
        } else {
            /* All pages in one step: the copy is one consistent snapshot (WAL readers do not
             * block the daemon's writer). */
            int brc = sqlite3_backup_step(b, -1);
            sqlite3_backup_finish(b);
            if (brc != SQLITE_DONE)
                rc = af__sq_fail(dst, brc, err, len, "backup");
        }
    }
    af__sq_close(src);
    af__sq_close(dst);
    if (rc == 0 && rename(tmp, dest) != 0) {
        seterr(err, len, "%s: %s", dest, strerror(errno));
        rc = -errno;
    }
    if (rc != 0)
        unlink(tmp);
    return rc;
}
