/*
 * store/sqlite_int.h - what the SQLite backend's files share: the connection object with its
 * prepared statements (sqlite.c: open, migrate, write, prune; sqlite_load.c: load and the
 * read-only exports). One connection is used by one thread at a time (the store's writer,
 * or the loader before the writer starts).
 */
#ifndef AF_STORE_SQLITE_INT_H
#define AF_STORE_SQLITE_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentaflow/store.h"

#define NS_PER_H (UINT64_C(3600) * UINT64_C(1000000000))

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_COST,
    ST_COST_HOUR,
    ST_WL_NEW,
    ST_WL,
    ST_GPU,
    ST_ALERT,
    ST_ALERT_ACK,
    ST_KV,
    ST_CL_NODE,
    ST_CL_HOLD,
    ST_CL_HOLD_EXPIRED,
    ST_CL_HOLD_END,
    ST_COUNT
};

/* A roll-up change not written yet: a transaction's entries are summed per (hour, operation,
 * model) and each sum is written once at commit, instead of one upsert per entry. */
typedef struct pending_hour {
    uint64_t hour;
    char *operation, *model_id;
    double cost, gpu_hours;
    int64_t tokens;
    uint64_t count;
} pending_hour;

#define MAX_PENDING_HOURS 64

typedef struct sq {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    char *path;
    bool in_memory;
    pending_hour hours[MAX_PENDING_HOURS];
    size_t n_hours;
} sq;

/* SQLite's result as a store code, with the file and SQLite's words in err. */
int af__sq_fail(sq *q, int rc, char *err, size_t len, const char *what);
/* Opens a connection (no schema work). 0 or a store code with err filled. */
int af__sq_open(const char *path, bool read_only, uint32_t busy_ms, sq **out, char *err,
                size_t len);
void af__sq_close(void *self);
/* af_store_backend_ops.load (sqlite_load.c). */
int af__sq_load(void *self, const af_store_load_opts *o, const af_store_load_cb *cb, char *err,
                size_t len);

#endif
