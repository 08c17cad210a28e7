/*
 * agentaflow/cluster.h - the fleet view of the cluster scheduler (`agentaflow serve --cluster`):
 * node inventory fed by per-node agents, readiness, short-lived GPU reservations, and the
 * decisions of the Kubernetes scheduler extender (filter, prioritize, bind). It knows no HTTP:
 * the server turns requests into these calls, and the JSON helpers below speak the
 * k8s.io/kube-scheduler/extender/v1 shapes so fixtures can be tested without a socket.
 *
 * GPU ids are "<node>/gpu-<index>". A node is ready while its last report is younger than
 * node_timeout_ms; a node that is not ready gets no new work.
 *
 * Requests: a pod asks for whole GPUs (resources.limits["nvidia.com/gpu"], summed over its
 * containers) and/or a share of one GPU (annotation agentaflow.io/gpu-memory-mb). A pod that
 * asks for neither passes through untouched: every candidate node, equal scores, nothing held.
 * A whole GPU is free when it is healthy, nothing of agentaflow's holds it for another pod,
 * and its node's latest report shows no process on it and no more memory used than
 * whole_gpu_busy_memory_mb (a GPU the asking pod holds itself stays the pod's). A share fits
 * in the reported free memory less what agentaflow holds there.
 *
 * Reservations: prioritize holds the GPU(s) it chose on its best node for the pod (by uid) for
 * reservation_ttl_ms, so a pod scheduled right after does not get the same last free GPU; a
 * later call for the same pod replaces its hold. Bind turns the hold into a binding on the
 * node Kubernetes chose, kept for the same TTL (after which the agent's reports show the pod's
 * real use).
 *
 * Strategies (af_gpu_strategy of gpu.h), scores 0-10 per node from its best GPU(s):
 *   least_utilized  10 * (1 - utilization/100)
 *   best_fit        10 * (1 - leftover free memory / total): the tightest fit wins
 *   priority        spec.priority > 0: least_utilized (headroom for important pods);
 *                   otherwise best_fit (pack the rest)
 *   round_robin     10 for the first fitting node after the last one chosen (in candidate
 *                   order), the others spread over 0-9 by their distance from it
 *
 * Threads: every function is thread-safe (one mutex per cluster). Ownership: inputs are copied;
 * *_json outputs are malloc'd strings the caller frees. Errors: 0 or a negative code; a reason
 * naming the field goes into err (err_len 0 = none).
 *
 * Tracing: filter, prioritize and bind are SERVER spans gpu_scheduling.filter / .prioritize /
 * .bind (children of the calling thread's current span) through the components toggle
 * gpu_scheduler.trace_scheduling_decisions, with the pod's namespace, name and uid, the
 * candidate count, the chosen node and GPU and the reasons; a pod carrying annotation
 * agentaflow.io/traceparent gets a link to that context.
 */
#ifndef AGENTAFLOW_CLUSTER_H
#define AGENTAFLOW_CLUSTER_H

#include "agentaflow/gpu.h"

#ifdef __cplusplus
extern "C" {
#endif
AF_API_BEGIN

#define AF_CLUSTER_NODE_MAX 254         /* bytes with the NUL: a DNS subdomain name */
#define AF_CLUSTER_GPUS_PER_NODE_MAX 64 /* more GPUs in one report are refused */
#define AF_CLUSTER_REASON_MAX 256       /* a reason names up to a few busy GPUs */

typedef struct af_cluster af_cluster;

typedef struct af_cluster_opts {
    af_gpu_strategy strategy;    /* least_utilized */
    uint32_t node_timeout_ms;    /* 20000: no report for this long = not ready */
    uint32_t reservation_ttl_ms; /* 30000 */
    uint32_t max_nodes;          /* 10000: inventory size and candidates per request */
    /* true: a whole GPU whose latest report shows a process, or more memory used than
     * whole_gpu_busy_memory_mb, is busy (false: only agentaflow's holds take a GPU). */
    bool whole_gpu_reported_use;       /* true */
    uint64_t whole_gpu_busy_memory_mb; /* 512; 0 = only a listed process makes it busy */
    af_gpu_tracing tracing;
    /* Wall clock in ns (default CLOCK_REALTIME; wall time so a snapshot means the same after
     * a restart). Tests inject their own. */
    uint64_t (*clock)(void *user);
    void *clock_user;
} af_cluster_opts;

void af_cluster_opts_init(af_cluster_opts *o);
int af_cluster_new(const af_cluster_opts *o, af_cluster **out);
void af_cluster_free(af_cluster *c); /* NULL is a no-op */
af_gpu_strategy af_cluster_strategy(af_cluster *c);
void af_cluster_set_strategy(af_cluster *c, af_gpu_strategy s);

/* ---------------------------------------------------------------------------------------- */
/* Inventory.                                                                                */

typedef struct af_cluster_gpu {
    uint32_t index; /* the N of "gpu-N" */
    char name[AF_GPU_NAME_MAX];
    uint64_t memory_total_mb, memory_used_mb, memory_free_mb;
    double utilization, temperature, power_draw;
    af_gpu_level health;   /* critical GPUs take no new work */
    uint64_t reported_ns;  /* when its node reported it (set by the cluster; a report's value
                            * is ignored) */
    uint32_t n_procs;      /* at most AF_GPU_MAX_PROCESSES */
    af_gpu_process *procs; /* in a report: borrowed; in a snapshot: malloc'd */
} af_cluster_gpu;

/* One agent report: a node's whole GPU inventory with its latest samples. */
typedef struct af_cluster_report {
    const char *node;
    const af_cluster_gpu *gpus;
    size_t n_gpus; /* at most AF_CLUSTER_GPUS_PER_NODE_MAX */
} af_cluster_report;

/* Replaces the node's inventory and stamps its report time (now). -EINVAL with the field
 * named in err ("node: ...", "gpus[3].memory_total_mb: ..."), -ENOSPC when max_nodes nodes are
 * known already, -ENOMEM. */
int af_cluster_report_nodes(af_cluster *c, const af_cluster_report *r, char *err, size_t err_len);

/* JSON body of POST /api/v1/cluster/report (what `agentaflow agent` sends):
 *   {"node":"n1","gpus":[{"index":0,"name":"...","memory_total_mb":81920,
 *    "memory_used_mb":1024,"memory_free_mb":80896,"utilization":12.5,"temperature":40,
 *    "power_draw":90,"health":"healthy","processes":[{"pid":1,"name":"python",
 *    "memory_used_mb":1024}]}]}
 * memory_free_mb may be omitted (total - used). Same errors as af_cluster_report_nodes. */
int af_cluster_report_json(af_cluster *c, const char *body, size_t len, char *err, size_t err_len);
/* Builds that body (the agent's side); *out malloc'd. 0 or -ENOMEM. */
int af_cluster_report_body(const af_cluster_report *r, char **out);

/* {"nodes":[{"name","ready","awaiting_report" (restored, no report since),"last_report_unix_ms",
 * "seconds_since_report","gpus":[{"id","name",
 * "memory_total_mb","memory_used_mb","memory_free_mb","memory_held_mb","held","utilization",
 * "temperature","power_draw","health","processes" (a count)}]}],"total","ready","strategy",
 * "reservations":[{"pod","uid" (the hold's key),"gpu","memory_mb","bound","expires_in_ms"}]} */
int af_cluster_nodes_json(af_cluster *c, char **out);

/* /api/v1/gpus over the fleet: {"gpus":[{"id":"node/gpu-N","node","name","node_ready",
 * "status" (critical / warning from the agent's health, else active above 5 % or idle),
 * "utilization","temperature","memory_total","memory_used","power_draw","workloads" (its
 * processes),"available" (free for a whole-GPU pod now),"last_updated" (the node's last
 * report, RFC 3339)}],"total","timestamp"}, nodes in arrival order. 0 or -ENOMEM. */
int af_cluster_gpus_json(af_cluster *c, char **out);

/* One fleet GPU by its id "node/gpu-N", copied. */
typedef struct af_cluster_gpu_info {
    char node[AF_CLUSTER_NODE_MAX];
    bool ready;
    uint64_t last_report_ns;
    af_cluster_gpu gpu; /* gpu.procs is NULL: the processes are in procs */
    af_gpu_process procs[AF_GPU_MAX_PROCESSES];
} af_cluster_gpu_info;
/* 0, or -ENOENT when no node reported that GPU. */
int af_cluster_gpu_get(af_cluster *c, const char *id, af_cluster_gpu_info *out);

typedef struct af_cluster_stats {
    uint32_t nodes, ready_nodes, gpus, ready_gpus, reservations, bindings;
} af_cluster_stats;
void af_cluster_stats_get(af_cluster *c, af_cluster_stats *out);

/* A number that changes whenever a node joins or its GPU count changes (not on ordinary
 * reports): a store checkpoints the inventory when it moved. */
uint64_t af_cluster_membership(af_cluster *c);

/* Calls fn for every GPU of every node (under the cluster's lock: fn must not call back). */
void af_cluster_each_gpu(af_cluster *c,
                         void (*fn)(const char *node, bool ready, const af_cluster_gpu *g,
                                    void *user),
                         void *user);

/* ---------------------------------------------------------------------------------------- */
/* Extender decisions.                                                                       */

typedef struct af_cluster_pod {
    const char *namespace_, *name, *uid; /* uid may be "" (then ns/name identifies the pod) */
    uint32_t gpus;                       /* whole GPUs */
    uint64_t memory_mb;                  /* a share of one GPU; 0 = none */
    int32_t priority;
    const char *traceparent; /* annotation agentaflow.io/traceparent, or NULL */
} af_cluster_pod;

typedef struct af_cluster_verdict {
    bool fits;
    bool unresolvable; /* no agent, not ready: preempting pods there would not help */
    char reason[AF_CLUSTER_REASON_MAX]; /* why not, in plain words */
} af_cluster_verdict;

/* One verdict per candidate node (names[i] -> out[i]). Returns how many fit, or -EINVAL when
 * n exceeds max_nodes. */
int af_cluster_filter(af_cluster *c, const af_cluster_pod *pod, const char *const *names, size_t n,
                      af_cluster_verdict *out);
/* One 0-10 score per candidate node; nodes that do not fit score 0. Holds the best node's
 * choice for the pod (see Reservations). chosen_gpu (may be NULL, >= AF_GPU_ID_MAX bytes) gets
 * the held GPU id(s), comma-separated, or "". Returns 0 or -EINVAL. */
int af_cluster_prioritize(af_cluster *c, const af_cluster_pod *pod, const char *const *names,
                          size_t n, int64_t *scores, char *chosen_gpu, size_t chosen_len);
/* Records the pod on `node`: its hold there if prioritize made one, else a fresh choice on that
 * node. A pod given without a request (ExtenderBindingArgs carry none) takes the request of
 * its hold; without either it passes through (0, gpu_out ""). gpu_out gets the GPU id(s).
 * -ENOENT "no agentaflow agent on node X", -EAGAIN when the node has no room any more (reason
 * in err). */
int af_cluster_bind(af_cluster *c, const af_cluster_pod *pod, const char *node, char *gpu_out,
                    size_t gpu_len, char *err, size_t err_len);
/* af_cluster_bind in two steps, for a caller whose bind goes on after the decision (the
 * Kubernetes calls): begin records the pod on the node exactly as af_cluster_bind does and
 * leaves its gpu_scheduling.bind span open in *span (AF_SPAN_NONE when not traced or on
 * -EINVAL); the caller ends it once with af_cluster_bind_end when its answer goes out, with
 * the final outcome (rc 0 or a negative code, why: the words of a failure, may be NULL). The
 * span may end on another thread than the one that began it. */
int af_cluster_bind_begin(af_cluster *c, const af_cluster_pod *pod, const char *node, char *gpu_out,
                          size_t gpu_len, char *err, size_t err_len, af_span *span);
void af_cluster_bind_end(af_span span, int rc, const char *why);
/* The key a pod's hold is kept under: its uid, or "namespace/name" without one. */
void af_cluster_pod_key(const af_cluster_pod *p, char *out, size_t cap);
/* Drops the pod's hold or binding (a failed Kubernetes bind). key: the pod's uid, or
 * "namespace/name" for a pod given without one. */
void af_cluster_release(af_cluster *c, const char *key);

/* A hold (reservation or binding) as plain values: snapshots, stores. */
typedef struct af_cluster_hold_state {
    char pod_uid[AF_CLUSTER_NODE_MAX];
    char pod[2 * AF_CLUSTER_NODE_MAX]; /* "namespace/name" */
    char node[AF_CLUSTER_NODE_MAX];
    uint64_t gpu_mask;  /* bit i = gpu-i */
    uint64_t memory_mb; /* 0 = whole GPUs */
    uint64_t expires_ns;
    bool bound;
} af_cluster_hold_state;

/* ---------------------------------------------------------------------------------------- */
/* The extender's JSON (k8s.io/kube-scheduler/extender/v1). Each returns 0 with *out set (an
 * ExtenderFilterResult / HostPriorityList), or -EINVAL with the field named in err (a 400). */

int af_cluster_filter_json(af_cluster *c, const char *body, size_t len, char **out, char *err,
                           size_t err_len);
/* held (may be NULL) gets the hold prioritize made for the pod, for a store to keep;
 * held->pod_uid is "" when it made none (a pass-through pod, no node fits). */
int af_cluster_prioritize_json(af_cluster *c, const char *body, size_t len, char **out,
                               af_cluster_hold_state *held, char *err, size_t err_len);

/* ExtenderBindingArgs {podName, podNamespace, podUID, node}. Strings are copied into the
 * caller's struct. */
typedef struct af_cluster_binding_args {
    char pod_name[AF_CLUSTER_NODE_MAX];
    char pod_namespace[AF_CLUSTER_NODE_MAX];
    char pod_uid[AF_CLUSTER_NODE_MAX];
    char node[AF_CLUSTER_NODE_MAX];
} af_cluster_binding_args;
int af_cluster_binding_args_parse(const char *body, size_t len, af_cluster_binding_args *out,
                                  char *err, size_t err_len);

/* ---------------------------------------------------------------------------------------- */
/* Snapshot / restore: the whole state as plain values, for a durable store to keep.         */

typedef struct af_cluster_node_state {
    char name[AF_CLUSTER_NODE_MAX];
    uint64_t last_report_ns;
    size_t n_gpus;
    af_cluster_gpu *gpus; /* malloc'd */
} af_cluster_node_state;

typedef struct af_cluster_state {
    af_cluster_node_state *nodes;
    size_t n_nodes;
    af_cluster_hold_state *holds;
    size_t n_holds;
    uint32_t rr_cursor;
} af_cluster_state;

int af_cluster_snapshot(af_cluster *c, af_cluster_state *out);
/* Replaces everything with st (copied). 0, -EINVAL (a bad entry, named in err) or -ENOMEM.
 * Restored nodes are not ready until their agent reports again (their samples are as old as
 * the snapshot); filter says so in its reason. Holds keep their expiry. */
int af_cluster_restore(af_cluster *c, const af_cluster_state *st, char *err, size_t err_len);
void af_cluster_state_free(af_cluster_state *st);

/* One hold as plain values (what a store keeps of a prioritize or bind). 0, or -ENOENT when
 * the pod holds nothing (or its hold expired). */
int af_cluster_hold_get(af_cluster *c, const char *key, af_cluster_hold_state *out);
/* A node's inventory from a report body (af_cluster_report_body's JSON, as a store keeps
 * it): out's GPUs (and their processes) are malloc'd, for an af_cluster_state that
 * af_cluster_state_free releases. 0, -EINVAL with the field in err, or -ENOMEM. */
int af_cluster_node_state_parse(const char *body, size_t len, uint64_t last_report_ns,
                                af_cluster_node_state *out, char *err, size_t err_len);

AF_API_END
#ifdef __cplusplus
}
#endif
#endif
