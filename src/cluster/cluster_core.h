/*
 * cluster/cluster_core.h - the af_cluster object and what its files share (cluster.c
 * inventory and readiness, holds.c, decide.c, view.c, snapshot.c). Every function here
 * expects the caller to hold c->mu unless its comment says otherwise.
 */
#ifndef AF_CLUSTER_CORE_H
#define AF_CLUSTER_CORE_H

#include <pthread.h>

#include "cluster/cluster_int.h"

typedef struct gpu_slot {
    af_cluster_gpu g;    /* procs owned */
    uint64_t held_mb;    /* shares held by pods */
    uint32_t held_whole; /* pods holding the whole GPU */
} gpu_slot;

typedef struct node {
    char name[AF_CLUSTER_NODE_MAX];
    uint64_t last_report_ns;
    size_t n_gpus;
    gpu_slot *gpus;
    bool awaiting_report; /* restored from a snapshot: not ready until its agent reports */
} node;

typedef struct hold {
    char key[AF_CLUSTER_NODE_MAX]; /* pod uid, or "namespace/name" without one */
    char pod[2 * AF_CLUSTER_NODE_MAX];
    uint32_t node; /* index into nodes */
    uint64_t mask;
    uint64_t memory_mb; /* 0 = whole GPUs */
    uint64_t expires_ns;
    bool bound;
} hold;

struct af_cluster {
    pthread_mutex_t mu;
    af_cluster_opts o;
    node *nodes; /* index = arrival order, which round_robin walks */
    size_t n_nodes, cap_nodes;
    uint32_t *map; /* open addressing: node index + 1, 0 = empty; no deletions */
    size_t map_cap;
    hold *holds;
    size_t n_holds, cap_holds;
    uint32_t rr_cursor; /* index of the node round_robin chose last */
    bool rr_started;
    uint64_t membership; /* af_cluster_membership: bumped when a node joins or resizes */
};

/* Inventory (cluster.c). */
node *af__cl_find_node(const af_cluster *c, const char *name);
node *af__cl_add_node(af_cluster *c, const char *name); /* NULL on ENOMEM */
bool af__cl_node_ready(const af_cluster *c, const node *n, uint64_t now);
void af__cl_free_node(node *n);
void af__cl_clear_locked(af_cluster *c);

/* Holds (holds.c). */
void af__cl_hold_remove(af_cluster *c, size_t i);
void af__cl_expire_locked(af_cluster *c, uint64_t now);
hold *af__cl_find_hold(af_cluster *c, const char *key);
int af__cl_add_hold(af_cluster *c, const hold *h);
/* The plain-value copy of a hold (snapshots, af_cluster_hold_get). */
void af__cl_hold_state(const af_cluster *c, const hold *h, af_cluster_hold_state *out);

/* Whether whole GPU g is busy by its latest report (o's whole_gpu_* rule), ignoring holds;
 * why (may be NULL) gets "gpu-N busy (2 processes, 14,336 MiB used, not by agentaflow)".
 * Pure: no lock needed (busy.c). */
bool af__cl_gpu_busy(const af_cluster_opts *o, const af_cluster_gpu *g, char *why, size_t cap);

/* "node/gpu-N" of every GPU in mask (decide.c). */
void af__cl_gpu_ids(const node *n, uint64_t mask, char *out, size_t cap);

#endif
