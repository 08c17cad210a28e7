/*
 * The SQLite backend's reads: what a start loads (store.h, af_store_load_opts) in one read
 * transaction, and the ledger export of `agentaflow db export`.
 */
#include <stdio.h>
#include <string.h>

#include "store/sqlite_int.h"

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

static uint64_t col_u64(sqlite3_stmt *st, int i)
{
    sqlite3_int64 v = sqlite3_column_int64(st, i);
    return v > 0 ? (uint64_t)v : 0;
}

/* Prepares sql, binds the int64 parameters (n of them) and steps through every row with
 * row(). Returns 0, the callback's non-zero result, or a store code with err filled. */
static int each_row(sq *q, const char *sql, const sqlite3_int64 *params, int n,
                    int (*row)(sqlite3_stmt *st, const af_store_load_cb *cb),
                    const af_store_load_cb *cb, char *err, size_t len)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return af__sq_fail(q, rc, err, len, "load");
    for (int i = 0; i < n; i++)
        sqlite3_bind_int64(st, i + 1, params[i]);
    int out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((out = row(st, cb)) != 0)
            break;
    if (out == 0 && rc != SQLITE_DONE)
        out = af__sq_fail(q, rc, err, len, "load");
    sqlite3_finalize(st);
    return out;
}

static int row_cost(sqlite3_stmt *st, const af_store_load_cb *cb)
{
    af_store_cost c = {.id = col_text(st, 0),
                       .operation = col_text(st, 1),
                       .model_id = col_text(st, 2),
                       .currency = col_text(st, 3),
                       .duration_ns = col_u64(st, 4),
                       .tokens = sqlite3_column_int64(st, 5),
                       .gpu_hours = sqlite3_column_double(st, 6),
                       .cost = sqlite3_column_double(st, 7),
                       .timestamp_ns = col_u64(st, 8)};
    return cb->cost ? cb->cost(&c, cb->user) : 0;
}

static int row_hour(sqlite3_stmt *st, const af_store_load_cb *cb)
{
    af_store_cost_hour h = {.hour_ns = col_u64(st, 0),
                            .operation = col_text(st, 1),
                            .model_id = col_text(st, 2),
                            .cost = sqlite3_column_double(st, 3),
                            .gpu_hours = sqlite3_column_double(st, 4),
                            .tokens = sqlite3_column_int64(st, 5),
                            .count = col_u64(st, 6)};
    return cb->cost_hour ? cb->cost_hour(&h, cb->user) : 0;
}

static int row_wl(sqlite3_stmt *st, const af_store_load_cb *cb)
{
    af_store_workload w = {.id = col_text(st, 0),
                           .name = col_text(st, 1),
                           .priority = sqlite3_column_int(st, 2),
                           .memory_mb = col_u64(st, 3),
                           .estimated_ms = col_u64(st, 4),
                           .exclusive = sqlite3_column_int(st, 5) != 0,
                           .status = sqlite3_column_int(st, 6),
                           .pending_reason = sqlite3_column_int(st, 7),
                           .assigned_gpu = col_text(st, 8),
                           .failure = col_text(st, 9),
                           .submitted_ns = col_u64(st, 10),
                           .started_ns = col_u64(st, 11),
                           .completed_ns = col_u64(st, 12)};
    return cb->workload ? cb->workload(&w, cb->user) : 0;
}

static int row_gpu(sqlite3_stmt *st, const af_store_load_cb *cb)
{
    af_store_gpu g = {.id = col_text(st, 0),
                      .name = col_text(st, 1),
                      .memory_total_mb = col_u64(st, 2),
                      .memory_used_mb = col_u64(st, 3),
                      .utilization = sqlite3_column_double(st, 4),
                      .temperature = sqlite3_column_double(st, 5),
                      .power_usage = sqlite3_column_double(st, 6),
                      .available = sqlite3_column_int(st, 7) != 0};
    return cb->gpu ? cb->gpu(&g, cb->user) : 0;
}

static int row_alert(sqlite3_stmt *st, const af_store_load_cb *cb)
{
    af_store_alert a = {.id = col_u64(st, 0),
                        .gpu_id = col_text(st, 1),
                        .type = col_text(st, 2),
                        .severity = sqlite3_column_int(st, 3),
                        .message = col_text(st, 4),
                        .value = sqlite3_column_double(st, 5),
                        .threshold = sqlite3_column_double(st, 6),
                        .timestamp_ns = col_u64(st, 7),
                        .acknowledged = sqlite3_column_int(st, 8) != 0};
    return cb->alert ? cb->alert(&a, cb->user) : 0;
}

static int row_kv(sqlite3_stmt *st, const af_store_load_cb *cb)
{
    return cb->kv ? cb->kv(col_text(st, 0), col_text(st, 1), cb->user) : 0;
}

static int row_cluster_node(sqlite3_stmt *st, const af_store_load_cb *cb)
{
    af_store_cluster_node n = {col_text(st, 0), col_u64(st, 1), col_text(st, 2)};
    return cb->cluster_node ? cb->cluster_node(&n, cb->user) : 0;
}

static int row_cluster_hold(sqlite3_stmt *st, const af_store_load_cb *cb)
{
    af_store_cluster_hold h = {.key = col_text(st, 0),
                               .pod = col_text(st, 1),
                               .node = col_text(st, 2),
                               .gpu_mask = (uint64_t)sqlite3_column_int64(st, 3),
                               .memory_mb = col_u64(st, 4),
                               .expires_ns = col_u64(st, 5),
                               .bound = sqlite3_column_int(st, 6) != 0};
    return cb->cluster_hold ? cb->cluster_hold(&h, cb->user) : 0;
}

#define COST_COLS "id, operation, model_id, currency, duration_ns, tokens, gpu_hours, cost, ts"
#define WL_COLS                                                                                    \
    "id, name, priority, memory_mb, estimated_ms, exclusive, status, pending_reason,"              \
    " assigned_gpu, failure, submitted_ns, started_ns, completed_ns"

/* The first hour whose entries are loaded one by one (store.h, af_store_load_opts). */
static int raw_boundary(sq *q, const af_store_load_opts *o, uint64_t *out, char *err, size_t len)
{
    uint64_t keep = o->cost_raw_s * UINT64_C(1000000000);
    uint64_t cutoff = o->now_ns > keep ? o->now_ns - keep : 0;
    uint64_t h = cutoff - cutoff % NS_PER_H;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        q->db, "SELECT ts FROM costs WHERE ts >= ?1 ORDER BY ts DESC LIMIT 1 OFFSET ?2", -1, &st,
        NULL);
    if (rc != SQLITE_OK)
        return af__sq_fail(q, rc, err, len, "load");
    sqlite3_bind_int64(st, 1, (sqlite3_int64)h);
    sqlite3_bind_int64(st, 2, o->cost_raw_max);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        /* More than cost_raw_max entries since h: start after the hour of the one past it. */
        uint64_t t = col_u64(st, 0);
        h = (t / NS_PER_H + 1) * NS_PER_H;
    }
    int out_rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : af__sq_fail(q, rc, err, len, "load");
    sqlite3_finalize(st);
    *out = h;
    return out_rc;
}

int af__sq_load(void *self, const af_store_load_opts *o, const af_store_load_cb *cb, char *err,
                size_t len)
{
    sq *q = self;
    int rc;
    /* One read transaction: a consistent snapshot even if something else writes. */
    sqlite3_exec(q->db, "BEGIN", NULL, NULL, NULL);
    uint64_t h = 0;
    if ((rc = raw_boundary(q, o, &h, err, len)) != 0)
        goto out;
    uint64_t hkeep = o->cost_hours_s * UINT64_C(1000000000);
    sqlite3_int64 hp[2] = {(sqlite3_int64)h,
                           (sqlite3_int64)(o->now_ns > hkeep ? o->now_ns - hkeep : 0)};
    sqlite3_int64 one[1] = {(sqlite3_int64)h};
    sqlite3_int64 nfin[1] = {o->finished_workloads};
    sqlite3_int64 nal[1] = {o->alerts};
    sqlite3_int64 now[1] = {(sqlite3_int64)o->now_ns};
    if ((rc = each_row(q,
                       "SELECT key, value FROM kv UNION ALL SELECT '" AF_STORE_KEY_COSTS_LAST_SEQ
                       "', coalesce(max(seq), 0) FROM costs",
                       NULL, 0, row_kv, cb, err, len)) != 0 ||
        (rc = each_row(q,
                       "SELECT id, name, memory_total_mb, memory_used_mb, utilization,"
                       " temperature, power_usage, available FROM gpus ORDER BY seq",
                       NULL, 0, row_gpu, cb, err, len)) != 0 ||
        (rc = each_row(q,
                       "SELECT hour, operation, model_id, cost, gpu_hours, tokens, count"
                       " FROM cost_hours WHERE hour < ?1 AND hour >= ?2 ORDER BY hour",
                       hp, 2, row_hour, cb, err, len)) != 0 ||
        (rc = each_row(q, "SELECT " COST_COLS " FROM costs WHERE ts >= ?1 ORDER BY ts, seq", one, 1,
                       row_cost, cb, err, len)) != 0 ||
        (rc = each_row(q,
                       "SELECT * FROM (SELECT " WL_COLS ", seq FROM workloads WHERE status >= 2"
                       " ORDER BY seq DESC LIMIT ?1) ORDER BY seq",
                       nfin, 1, row_wl, cb, err, len)) != 0 ||
        (rc = each_row(q, "SELECT " WL_COLS " FROM workloads WHERE status < 2 ORDER BY seq", NULL,
                       0, row_wl, cb, err, len)) != 0 ||
        (rc = each_row(q,
                       "SELECT * FROM (SELECT id, gpu_id, type, severity, message, value,"
                       " threshold, ts, acknowledged FROM alerts ORDER BY id DESC LIMIT ?1)"
                       " ORDER BY id",
                       nal, 1, row_alert, cb, err, len)) != 0 ||
        (rc =
             each_row(q, "SELECT name, last_report_ns, inventory FROM cluster_nodes ORDER BY rowid",
                      NULL, 0, row_cluster_node, cb, err, len)) != 0 ||
        (rc = each_row(q,
                       "SELECT key, pod, node, gpu_mask, memory_mb, expires_ns, bound"
                       " FROM cluster_holds WHERE expires_ns > ?1 ORDER BY expires_ns",
                       now, 1, row_cluster_hold, cb, err, len)) != 0)
        goto out;
out:
    sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
    return rc;
}

int af_store_sqlite_each_cost(const char *path, int (*fn)(const af_store_cost *c, void *user),
                              void *user, char *err, size_t len)
{
    sq *q = NULL;
    int rc = af__sq_open(path, true, 5000, &q, err, len);
    if (rc != 0)
        return rc;
    af_store_load_cb cb = {.cost = fn, .user = user};
    rc = each_row(q, "SELECT " COST_COLS " FROM costs ORDER BY ts, seq", NULL, 0, row_cost, &cb,
                  err, len);
    af__sq_close(q);
    return rc;
}
