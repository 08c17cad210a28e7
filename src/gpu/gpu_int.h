/*
 * gpu/gpu_int.h - declarations shared by the GPU scheduler and metrics files: a string-keyed
 * hash map, the placement index used by scheduling passes, tracer lookup and small helpers.
 * Nothing here is thread-safe on its own; callers hold their object's mutex.
 */
#ifndef AF_GPU_INT_H
#define AF_GPU_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentaflow/gpu.h"
#include "agentaflow/tracing.h"
#include "util/buf.h"

/* ---------------------------------------------------------------------------------------- */
/* Open-addressing hash map from a NUL-terminated key to a pointer. The key is borrowed: it  */
/* must live as long as its entry (it is normally a field of the value).                     */

typedef struct af_gpu_map_entry {
    const char *key; /* NULL = empty; the map's tombstone sentinel = deleted */
    void *val;
    uint32_t hash;
} af_gpu_map_entry;

typedef struct af_gpu_map {
    af_gpu_map_entry *slots;
    size_t cap; /* power of two or 0 */
    size_t len;
    size_t used; /* live + tombstones */
} af_gpu_map;

void af__gpu_map_free(af_gpu_map *m);
void *af__gpu_map_get(const af_gpu_map *m, const char *key);
/* Inserts or replaces; 0 or -ENOMEM. */
int af__gpu_map_put(af_gpu_map *m, const char *key, void *val);
void af__gpu_map_del(af_gpu_map *m, const char *key);

/* ---------------------------------------------------------------------------------------- */
/* Placement index: a treap over GPU slots ordered by a (k1, k2, slot) key and augmented with */
/* the largest free memory of each subtree (plain and "only if the GPU is empty"), so "the    */
/* first GPU in key order at or after `lo` with at least `need` MB free" costs O(log G).      */

/* One node per GPU slot, all fields in one cache line (the pass is bound by memory access). */
typedef struct af_gpu_place_node {
    int32_t left, right;
    uint32_t prio;
    double k1;
    uint64_t k2;
    uint64_t own, own_empty; /* this node's free memory (0 = cannot take anything) */
    uint64_t agg, agg_empty; /* subtree maxima */
} af_gpu_place_node;

typedef struct af_gpu_place {
    uint32_t cap;
    int32_t root;
    af_gpu_place_node *n;
} af_gpu_place;

typedef struct af_gpu_place_key {
    double k1;
    uint64_t k2;
    uint32_t slot;
} af_gpu_place_key;

void af__gpu_place_free(af_gpu_place *p);
/* Empties the index and makes room for n slots; 0 or -ENOMEM. */
int af__gpu_place_reset(af_gpu_place *p, uint32_t n);
/* Inserts slot with its key and free memory (slot must not be in the index). */
void af__gpu_place_insert(af_gpu_place *p, uint32_t slot, double k1, uint64_t k2, uint64_t own,
                          uint64_t own_empty);
/* Removes slot (which must be in the index). */
void af__gpu_place_erase(af_gpu_place *p, uint32_t slot);
/* The first slot with key >= lo whose free memory (empty-only when `empty`) is >= need, or -1. */
int32_t af__gpu_place_find(const af_gpu_place *p, const af_gpu_place_key *lo, uint64_t need,
                           bool empty);

/* ---------------------------------------------------------------------------------------- */
/* Misc.                                                                                     */

/* The backend's self pointer when it was created with `ops`, else NULL. */
void *af__gpu_backend_self(af_gpu_backend *b, const af_gpu_backend_ops *ops);

/* The tracer for component c: af_tracing's toggle when set, else the bare tracer. */
af_tracer *af__gpu_tracer(const af_gpu_tracing *t, af_trace_component c);

/* snprintf into an optional error buffer. */
void af__gpu_err(char *err, size_t err_len, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* RFC 3339 UTC with nanoseconds ("2024-01-02T03:04:05.123456789Z") as a JSON string. */
void af__gpu_json_time(af_buf *b, uint64_t ns);
/* A JSON number; NaN/inf become 0 so output is always valid JSON. */
void af__gpu_json_num(af_buf *b, double v);

/* ---- Scheduler internals shared by scheduler.c and schedule_pass.c. ---- */

/* Links recorded on one schedule span: the SDK's default link limit. */
#define MAX_LINKS 128

typedef struct gpu {
    char *id;
    char *name;
    uint64_t total;
    uint64_t ext_used; /* memory used outside the scheduler */
    uint64_t reserved; /* sum of running workloads' requirements */
    double util, temp, power;
    bool available;
    uint32_t n_wl;
    uint32_t n_excl;
    uint64_t metrics_ns;
} gpu;

typedef struct wl {
    char *id;
    char *name;
    char *failure;
    char *assigned; /* the GPU's id, copied when the workload leaves it (it may go later) */
    int32_t priority;
    uint64_t mem;
    uint64_t est_ms;
    bool exclusive;
    af_workload_status status;
    af_pending_reason reason;
    gpu *on; /* while running */
    uint64_t submitted_ns, started_ns, completed_ns;
    struct wl *prev, *next; /* running list */
    /* The submit span's ids (not its tracestate: links need only the ids). */
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t trace_flags;
    bool has_ctx;
} wl;

struct af_gpu_scheduler {
    pthread_mutex_t mu;
    af_gpu_strategy strategy;
    double goal;
    uint32_t finished_cap;
    af_gpu_tracing tracing;

    gpu **gpus; /* registration order */
    size_t n_gpus, cap_gpus;
    af_gpu_map gpu_map;
    size_t rr_cursor; /* slot to try first in the next round-robin placement */

    wl **queue; /* pending workloads in submission order; finished entries compacted out */
    size_t q_len, q_cap;
    size_t n_pending;
    af_gpu_map wl_map; /* live and retained finished workloads */
    wl *run_head;
    size_t n_running;
    wl **finished; /* ring, oldest at fin_head */
    size_t fin_head, fin_len;

    /* Scratch reused by passes. */
    af_gpu_place place;
    wl **order, **order_tmp;
    uint32_t *keys, *keys_tmp;
    size_t order_cap;

    af_gpu_collector *collector;
    int collector_cb;

    af_workload_change_fn on_change; /* called with mu held */
    void *on_change_user;
};

/* Free memory on g for new placements. */
static inline uint64_t af__gpu_free_mb(const gpu *g)
{
    uint64_t used = g->ext_used + g->reserved;
    return used >= g->total ? 0 : g->total - used;
}

typedef struct pass_result {
    size_t placed;
    uint64_t max_wait_ms;
} pass_result;

/* Report w's new state to the change callback; called with mu held. */
void af__gpu_notify(af_gpu_scheduler *s, const wl *w);
/* w runs on g: its memory is reserved there and it joins the run list; called with mu held. */
void af__gpu_run_add(af_gpu_scheduler *s, wl *w, gpu *g);
/* One scheduling pass over the queue (schedule_pass.c); called with mu held. */
int af__gpu_pass_locked(af_gpu_scheduler *s, af_span sp, bool recording, pass_result *res);

/* ---- Collector internals shared by collector.c and alerts.c. ---- */

/* Alert condition kinds tracked per GPU for hysteresis. */
enum { COND_TEMP, COND_MEM, COND_POWER, COND_UTIL_LOW, COND_UTIL_HIGH, N_COND };

typedef struct gstate {
    af_gpu_sample *ring;
    size_t head, len;
    bool has_latest;
    af_gpu_sample latest;
    af_gpu_process procs[AF_GPU_MAX_PROCESSES];
    size_t n_procs;
    af_gpu_level level[N_COND]; /* raised level per condition (HEALTHY = clear) */
} gstate;

typedef struct callback {
    int handle;
    af_gpu_sample_cb on_sample;
    af_gpu_alert_cb on_alert;
    void *user;
} callback;

struct af_gpu_collector {
    af_gpu_backend *backend;
    char reason[256];
    uint32_t n;
    gstate *g;
    uint32_t interval_ms;
    uint32_t hist_cap;
    uint64_t retention_ns;

    pthread_mutex_t mu;
    af_gpu_thresholds th;
    af_gpu_tracing tracing;
    af_gpu_alert *alerts; /* ring */
    size_t a_cap, a_head, a_len;
    uint64_t next_alert_id;

    pthread_mutex_t cycle_mu;
    callback *cbs;
    size_t n_cbs;
    int next_handle;

    pthread_mutex_t run_mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool running, stop_req;
};

typedef struct new_alerts {
    af_gpu_alert a[8];
    size_t n;
} new_alerts;

/* Evaluate the threshold table for one new sample (alerts.c); called with mu held. */
void af__gpu_collector_evaluate(af_gpu_collector *c, gstate *gs, const af_gpu_sample *prev,
                                const af_gpu_sample *m, new_alerts *na);

#endif
