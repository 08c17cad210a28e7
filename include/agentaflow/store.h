/*
 * agentaflow/store.h - durable state: the storage interface the daemon's composition root
 * (src/server) writes the platform's state through, and its SQLite implementation (the
 * embedded default; docs/durability.md, docs/architecture.md "Durable state").
 *
 * Layering: the store sits below the components and knows none of them. Its records are
 * plain structs of its own; the server layer maps component types to them, so the cost
 * tracker, the scheduler and the collector never see SQL or this header.
 *
 * Two halves:
 *   af_store_backend_ops - what a database implements (SQLite here; a PostgreSQL (libpq) one
 *                          later): open a transaction, write one record, commit, load, prune.
 *   af_store             - the generic part on top: one writer thread ("af-store") that takes
 *                          every queued write, runs them in ONE transaction (group commit) and
 *                          only then calls each write's completion. Callers never block on the
 *                          disk: af_store_submit queues and returns.
 *
 * Threads: af_store_submit, af_store_health and af_store_inject_fault are thread-safe.
 * Completions run on the writer thread, after the transaction that holds the write committed
 * (rc 0) or failed (rc < 0: nothing of that write is in the database). They must not block.
 * af_store_load runs before the writer starts (af_store_start) and on the caller's thread.
 *
 * Ownership: records are copied by af_store_submit (strings too); records handed to load
 * callbacks are borrowed for the call.
 */
#ifndef AGENTAFLOW_STORE_H
#define AGENTAFLOW_STORE_H

#include "agentaflow/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A cost ledger entry: every field the API accepted, exactly. */
typedef struct af_store_cost {
    const char *id;
    const char *operation;
    const char *model_id;
    const char *currency;
    uint64_t duration_ns;
    int64_t tokens;
    double gpu_hours;
    double cost;
    uint64_t timestamp_ns;
} af_store_cost;

/* An hourly roll-up of the ledger (kept in the same transaction as the entries). */
typedef struct af_store_cost_hour {
    uint64_t hour_ns;
    const char *operation;
    const char *model_id;
    double cost;
    double gpu_hours;
    int64_t tokens;
    uint64_t count;
} af_store_cost_hour;

/* A workload's whole state. status / pending_reason are the scheduler's enum values. */
typedef struct af_store_workload {
    const char *id;
    const char *name;
    int32_t priority;
    uint64_t memory_mb;
    uint64_t estimated_ms;
    bool exclusive;
    int status;
    int pending_reason;
    const char *assigned_gpu; /* "" when none */
    const char *failure;      /* "" when none */
    uint64_t submitted_ns, started_ns, completed_ns;
} af_store_workload;

/* A GPU registered through the API. */
typedef struct af_store_gpu {
    const char *id;
    const char *name;
    uint64_t memory_total_mb;
    uint64_t memory_used_mb;
    double utilization, temperature, power_usage;
    bool available;
} af_store_gpu;

/* An alert and whether it was resolved. */
typedef struct af_store_alert {
    uint64_t id;
    const char *gpu_id;
    const char *type;
    int severity;
    const char *message;
    double value, threshold;
    uint64_t timestamp_ns;
    bool acknowledged;
} af_store_alert;

/* A node of the cluster scheduler's inventory, checkpointed (not written per report): its
 * last report time and its GPUs as the agent's report body (JSON text the store keeps
 * as it is). */
typedef struct af_store_cluster_node {
    const char *name;
    uint64_t last_report_ns;
    const char *inventory;
} af_store_cluster_node;

/* A reservation (hold) or binding of the cluster scheduler, keyed by the pod. */
typedef struct af_store_cluster_hold {
    const char *key; /* the pod's uid, or "namespace/name" */
    const char *pod; /* "namespace/name" */
    const char *node;
    uint64_t gpu_mask; /* bit i = the node's i-th GPU */
    uint64_t memory_mb;
    uint64_t expires_ns; /* wall clock */
    bool bound;
    uint64_t now_ns; /* when it was made: holds that expired before are deleted with it */
} af_store_cluster_hold;

typedef enum af_store_op_kind {
    AF_STORE_COST = 1,         /* insert an entry and add it to its hourly roll-up */
    AF_STORE_WORKLOAD_NEW,     /* a submission: the row and its submission order (replaces a
                                * finished workload's row of the same id) */
    AF_STORE_WORKLOAD,         /* a state change: every field but the submission order */
    AF_STORE_GPU,              /* insert or replace */
    AF_STORE_ALERT,            /* insert or replace */
    AF_STORE_ALERT_ACK,        /* mark alert `alert.id` resolved */
    AF_STORE_KV,               /* a small named value (scheduler strategy, round-robin cursor) */
    AF_STORE_CLUSTER_NODE,     /* insert or replace a node's inventory */
    AF_STORE_CLUSTER_HOLD,     /* insert or replace a hold (and drop the ones expired by now_ns) */
    AF_STORE_CLUSTER_HOLD_END, /* delete the hold `cluster_hold.key` */
} af_store_op_kind;

typedef struct af_store_op {
    af_store_op_kind kind;
    union {
        af_store_cost cost;
        af_store_workload workload;
        af_store_gpu gpu;
        af_store_alert alert;
        struct {
            const char *key, *value;
        } kv;
        af_store_cluster_node cluster_node;
        af_store_cluster_hold cluster_hold;
    } u;
} af_store_op;

/* ---------------------------------------------------------------------------------------- */
/* Backends.                                                                                 */

/* Receives what af_store_load reads; any callback may be NULL. Returning non-zero stops the
 * load with that code. */
/* Besides the kv table, a load reports this key: the highest ledger row number ever used,
 * so automatic cost ids ("cost-<n>") continue past every saved one. */
#define AF_STORE_KEY_COSTS_LAST_SEQ "costs.last_seq"

typedef struct af_store_load_cb {
    int (*cost)(const af_store_cost *c, void *user);           /* oldest first */
    int (*cost_hour)(const af_store_cost_hour *h, void *user); /* oldest first */
    int (*workload)(const af_store_workload *w, void *user);   /* submission order */
    int (*gpu)(const af_store_gpu *g, void *user);             /* registration order */
    int (*alert)(const af_store_alert *a, void *user);         /* oldest first */
    int (*kv)(const char *key, const char *value, void *user);
    int (*cluster_node)(const af_store_cluster_node *n, void *user); /* arrival order */
    int (*cluster_hold)(const af_store_cluster_hold *h, void *user); /* unexpired at now_ns */
    void *user;
} af_store_load_cb;

/* What to load. Raw ledger entries are loaded from a whole hour H on; older ones arrive as
 * hourly roll-ups (hour < H), so nothing is counted twice. H is the hour that holds
 * now - cost_raw_s, moved later while more than cost_raw_max entries would be raw. */
typedef struct af_store_load_opts {
    uint64_t now_ns;
    uint64_t cost_raw_s;         /* the tracker's raw retention (86400) */
    uint32_t cost_raw_max;       /* the tracker's raw cap (10000) */
    uint64_t cost_hours_s;       /* roll-ups younger than this (the tracker's bucket retention) */
    uint32_t finished_workloads; /* finished workloads loaded at most (newest; 1000) */
    uint32_t alerts;             /* alerts loaded at most (newest; 1000) */
} af_store_load_opts;

typedef struct af_store_backend_stats {
    uint64_t size_bytes; /* database files on disk */
    uint64_t costs;      /* ledger rows */
    uint64_t workloads;  /* workload rows */
} af_store_backend_stats;

/*
 * A database. `self` is the backend's own object; err gets a sentence on failure. Codes:
 * -ENOSPC (disk or file size limit full), -EIO (I/O error), -EBUSY (locked beyond the busy
 * timeout), -ENOMEM; the generic layer maps them to 503 storage_unavailable.
 */
typedef struct af_store_backend_ops {
    const char *name; /* "sqlite" */
    int (*begin)(void *self, char *err, size_t err_len);
    int (*write)(void *self, const af_store_op *op, char *err, size_t err_len);
    int (*commit)(void *self, char *err, size_t err_len);
    void (*rollback)(void *self);
    int (*load)(void *self, const af_store_load_opts *o, const af_store_load_cb *cb, char *err,
                size_t err_len);
    /* Deletes at most `limit` ledger rows and roll-ups older than costs_before_ns and
     * finished workloads completed before workloads_before_ns (0 = keep), in its own short
     * transaction. *deleted gets the count. */
    int (*prune)(void *self, uint64_t costs_before_ns, uint64_t workloads_before_ns, uint32_t limit,
                 uint64_t *deleted, char *err, size_t err_len);
    void (*stats)(void *self, af_store_backend_stats *out);
    void (*close)(void *self);
} af_store_backend_ops;

/* ---------------------------------------------------------------------------------------- */
/* SQLite.                                                                                   */

#define AF_STORE_SCHEMA_VERSION 2
#define AF_STORE_DB_FILE "agentaflow.db"

typedef struct af_store_sqlite_opts {
    const char *path; /* database file; ":memory:" for a private in-memory database */
    bool fsync_full;  /* true: synchronous=FULL (a commit survives power loss); false:
                       * NORMAL (survives a crash of the process, not of the machine) */
    uint32_t busy_ms; /* busy_timeout (5000) */
    bool read_only;   /* open for reading (db check, export) */
} af_store_sqlite_opts;

void af_store_sqlite_opts_init(af_store_sqlite_opts *o);
/*
 * Opens (creating when absent and not read_only) and migrates the database forward to
 * AF_STORE_SCHEMA_VERSION. Refuses: a database of a newer version (-EPROTO), a file that is
 * not a database or is corrupt (-EILSEQ; the file is never written), an unwritable path
 * (-EACCES / -EROFS / -EIO). err names the file and the reason. Fills ops and self for
 * af_store_new.
 */
int af_store_sqlite_open(const af_store_sqlite_opts *o, const af_store_backend_ops **ops,
                         void **self, char *err, size_t err_len);
/* PRAGMA integrity_check of a database file: 0 when "ok", else -EILSEQ with the first
 * problem in err (or the open error). */
int af_store_sqlite_check(const char *path, char *err, size_t err_len);
/* Online backup (sqlite3_backup_*) of a live database to dest (replaced). 0 or an error. */
int af_store_sqlite_backup(const char *path, const char *dest, char *err, size_t err_len);
/* Every ledger row, oldest first, to fn (borrowed record). */
int af_store_sqlite_each_cost(const char *path, int (*fn)(const af_store_cost *c, void *user),
                              void *user, char *err, size_t err_len);

/* ---------------------------------------------------------------------------------------- */
/* The store: group commit on one writer thread.                                             */

typedef struct af_store af_store;

typedef struct af_store_opts {
    const char *path;               /* shown in health (copied) */
    uint32_t max_batch;             /* writes per transaction at most (4096) */
    uint32_t max_queue;             /* writes queued at most; more answer AF_EFULL (100000) */
    uint64_t retention_costs_s;     /* ledger kept (400 days); 0 = forever */
    uint64_t retention_workloads_s; /* finished workloads kept (30 days); 0 = forever */
    uint32_t prune_batch;           /* rows deleted per prune transaction (500) */
    uint32_t prune_interval_ms;     /* between prune passes while rows remain (1000; 60000
                                     * once none did) */
} af_store_opts;

void af_store_opts_init(af_store_opts *o);
/* Takes ownership of the backend (closed by af_store_free, also on failure). */
int af_store_new(const af_store_opts *o, const af_store_backend_ops *ops, void *self,
                 af_store **out);
/* Runs the backend's load (before af_store_start). */
int af_store_load(af_store *s, const af_store_load_opts *o, const af_store_load_cb *cb, char *err,
                  size_t err_len);
/* Starts the writer thread. */
int af_store_start(af_store *s);
/* Commits what is queued, then joins the writer. Idempotent. */
void af_store_stop(af_store *s);
void af_store_free(af_store *s);

/* rc 0: committed. rc < 0: not written; err is a sentence (borrowed for the call). */
typedef void (*af_store_done_fn)(int rc, const char *err, void *user);
/*
 * Queues a write (copied). done (may be NULL: fire and forget, e.g. a placement the
 * scheduler made on its own) is called once, on the writer thread. Writes commit in the
 * order they were queued. Returns 0, AF_EFULL (queue full), AF_ESHUTDOWN or -ENOMEM; done is
 * not called then.
 */
int af_store_submit(af_store *s, const af_store_op *op, af_store_done_fn done, void *user);

typedef struct af_store_health {
    const char *backend; /* "sqlite" */
    char path[512];
    uint64_t size_bytes;
    uint64_t last_commit_ns; /* wall clock; 0 = none yet */
    uint64_t commits, writes, failures;
    uint32_t queued;
    char last_error[256]; /* "" = none since the last successful commit */
    uint64_t last_error_ns;
} af_store_health;

void af_store_health_get(af_store *s, af_store_health *out);

/* Tests: the next `count` commits fail with rc (e.g. -ENOSPC) before touching the database,
 * as a full disk would; count 0 clears. */
void af_store_inject_fault(af_store *s, int rc, uint32_t count);

#ifdef __cplusplus
}
#endif
#endif
